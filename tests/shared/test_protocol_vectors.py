"""Reference vectors for shared/protocol*.py (tests/vectors/protocol.json).

Each case is {"name", "fn", "args", "expect"} or {"name", "fn", "args",
"error": ProtocolError subclass name, "match": substring of the message}.
Bytes are lowercase hex strings; special floats are the strings "inf",
"-inf" and "nan"; records are lists in field order:
  event   [seq, time, kind, outcome, core_c, core_u_c, skin_c, skin_u_c,
           distance_m, track_id, flags]
  config  [threshold_c, skin_to_core_offset_c, hysteresis_c, confirm_frames,
           coverage_k, emissivity, frame_rate_hz, buzzer]
  measurement [value, fahrenheit, timestamp or null, temperature_type or null]
Extra fns: "encode_chunk" (encode_chunk_into at offset 0), "assemble" (feed
chunks to a FrameAssembler -> [results, frames_completed, frames_dropped])
and "command_result" (the result code the helmet answers a write with).
"""

import json

import protocol as p
import protocol_control as pc
import protocol_frames as pf
import protocol_hts as ph
from checks import iter_vectors  # noqa: E402

INTERPRETERS = ("cpython", "micropython")

VECTORS = "tests/vectors/protocol.json"
SPECIAL = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}
TOL = 1e-9


def iter_cases():
    return iter_vectors(VECTORS)


def load_cases():
    return list(iter_cases())


def _arg(v):
    if isinstance(v, str):
        return SPECIAL.get(v, v)
    if isinstance(v, list):
        return [_arg(x) for x in v]
    return v


def _out(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, float) and (v != v or v in (SPECIAL["inf"], SPECIAL["-inf"])):
        return "nan" if v != v else ("inf" if v > 0 else "-inf")
    if isinstance(v, (p.ScreeningEvent, p.DeviceConfig, ph.TemperatureMeasurement)):
        v = v._key()
    if isinstance(v, (list, tuple)) or type(v).__name__ == "array":
        return [_out(x) for x in v]
    return v


def _fn(name):
    """A vector's function by name, from whichever protocol module holds it."""
    for m in (p, ph, pf, pc):
        if name in m.__dict__:
            return m.__dict__[name]
    raise AttributeError(name)


def _config(f):
    return p.DeviceConfig(*f)


def _call(fn, a):
    h = bytes.fromhex
    if fn == "encode_event":
        return p.encode_event(p.ScreeningEvent(*a))
    if fn == "encode_config":
        return p.encode_config(_config(a))
    if fn == "encode_command":
        return pc.encode_command(a[0], _config(a[1]) if isinstance(a[1], list) else a[1])
    if fn == "encode_chunk":
        buf = bytearray(5 + len(a[3]) // 2)
        pf.encode_chunk_into(buf, 0, a[0], a[1], a[2], h(a[3]))
        return buf
    if fn == "frame_chunks":
        return list(pf.frame_chunks(h(a[0]), a[1], a[2]))
    if fn == "encode_temperature_measurement":
        return ph.encode_temperature_measurement(*a)
    if fn == "assemble":
        asm = pf.FrameAssembler()
        return [[asm.feed(h(c)) for c in a[0]], asm.frames_completed, asm.frames_dropped]
    if fn == "command_result":
        try:
            pc.decode_command(h(a[0]))
        except p.ProtocolError as e:
            return pc.result_for_error(e)
        return pc.RESULT_SUCCESS
    f = _fn(fn)
    if fn.startswith("decode_"):
        return f(h(a[0]))
    return f(*a)


def evaluate(case):
    """Result of one case as JSON-compatible data (hex for bytes, lists for
    records, inf/nan as strings); a rejected call gives {"error": class name,
    "message": text}."""
    try:
        return _out(_call(case["fn"], _arg(case["args"])))
    except p.ProtocolError as e:
        return {"error": type(e).__name__, "message": str(e)}


def _same(actual, expected, where):
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, float), "%s: %r is not a float" % (where, actual)
        assert abs(actual - expected) <= TOL * max(1.0, abs(expected)), "%s: %r != %r" % (where, actual, expected)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), "%s: %r" % (where, actual)
        for i in range(len(expected)):
            _same(actual[i], expected[i], "%s[%d]" % (where, i))
    else:
        assert actual == expected and type(actual) is type(expected), "%s: %r != %r" % (where, actual, expected)


def check(case):
    got = evaluate(case)
    if "error" in case:
        assert isinstance(got, dict) and got["error"] == case["error"], (case["name"], got)
        assert case["match"] in got["message"], (case["name"], got["message"])
    else:
        assert not isinstance(got, dict), (case["name"], got)
        _same(got, case["expect"], case["name"])


def test_vectors():
    count = 0
    fns = set()
    errors = set()
    for case in iter_cases():
        check(case)
        count += 1
        fns.add(case["fn"])
        if "error" in case:
            errors.add((case["fn"], case["error"]))
    for fn in (
        "encode_float",
        "decode_float",
        "encode_temperature_measurement",
        "decode_temperature_measurement",
        "encode_event",
        "decode_event",
        "encode_frame_body",
        "decode_frame_body",
        "chunk_payload_size",
        "encode_chunk",
        "decode_chunk",
        "frame_chunks",
        "assemble",
        "encode_config",
        "decode_config",
        "encode_command",
        "decode_command",
        "command_result",
        "encode_response",
        "decode_response",
    ):
        assert fn in fns, "no vector for " + fn
    # every versioned decoder is pinned for short, long, version and range errors
    for fn in (
        "decode_event",
        "decode_frame_body",
        "decode_chunk",
        "decode_config",
        "decode_command",
        "decode_response",
    ):
        for e in ("ShortRecord", "LongRecord", "UnknownVersion", "OutOfRange"):
            assert (fn, e) in errors, "no %s vector for %s" % (e, fn)
    assert count >= 200, count


def test_evaluate_is_json_serialisable():
    for case in iter_cases():
        json.dumps(evaluate(case))


def test_vectors_can_fail():
    for case in (
        {"name": "x", "fn": "encode_float", "args": [37.2, 2], "expect": "740100fe"},
        {"name": "y", "fn": "decode_float", "args": ["740100ff"], "expect": 37.3},
        {"name": "z", "fn": "decode_event", "args": [""], "error": "LongRecord", "match": ""},
        {"name": "w", "fn": "decode_event", "args": [""], "error": "ShortRecord", "match": "got 1"},
    ):
        try:
            check(case)
        except AssertionError:
            continue
        raise AssertionError("a wrong expectation passed: " + case["name"])
