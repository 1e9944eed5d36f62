"""Property tests for shared/protocol.py (CPython, hypothesis): round trips
for every record, FLOAT accuracy over a wide range, and decoders that raise
nothing but ProtocolError on any byte string."""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import protocol as p
import protocol_control as pc
import protocol_frames as pf
import protocol_hts as ph

DECODERS = (
    ph.decode_float,
    ph.decode_temperature_measurement,
    p.decode_event,
    p.decode_frame_body,
    pf.decode_chunk,
    p.decode_config,
    pc.decode_command,
    pc.decode_response,
)

finite = st.floats(allow_nan=False, allow_infinity=False)


# --- FLOAT ------------------------------------------------------------------------------


@given(st.floats(min_value=-1e6, max_value=1e6), st.integers(0, 6))
def test_float_is_value_rounded_to_decimals(x, d):
    assume(abs(x) * 10**d < 8388605)  # fits the mantissa at this precision
    got = ph.decode_float(ph.encode_float(x, d))
    # within half a unit of the last kept digit (plus float noise at the tie)
    assert abs(got - x) <= 0.5 * 10.0**-d * (1 + 1e-9) + abs(x) * 1e-15


@given(st.floats(min_value=-1e120, max_value=1e120), st.integers(-2, 8))
def test_float_wide_range_keeps_about_seven_digits(x, d):
    b = ph.encode_float(x, d)
    got = ph.decode_float(b)
    # either the asked precision, or (mantissa full) 6-7 significant digits
    assert abs(got - x) <= max(0.5 * 10.0**-d, abs(x) * 6e-7) * (1 + 1e-9)
    assert ph.encode_float(got, d) == b  # re-encoding is stable
    word = int.from_bytes(b, "little")
    mantissa = (word & 0xFFFFFF) - (0x1000000 if word & 0x800000 else 0)
    assert abs(mantissa) <= ph.FLOAT_MANTISSA_MAX


@given(st.integers(0, 0xFFFFFFFF))
def test_any_float_word_decodes(word):
    v = ph.decode_float(word.to_bytes(4, "little"))
    raw = word & 0xFFFFFF
    if ph.FLOAT_PINF <= raw <= ph.FLOAT_NINF:
        assert math.isnan(v) or math.isinf(v)
    else:
        assert math.isfinite(v)
        exponent = (word >> 24) - (256 if word >> 31 else 0)
        assert ph.decode_float(ph.encode_float(v, -exponent)) == pytest.approx(v, rel=1e-12)


# --- Temperature Measurement ----------------------------------------------------------------

timestamps = st.tuples(
    st.sampled_from([0, 1582, 2024, 9999]),
    st.integers(0, 12),
    st.integers(0, 31),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)


@given(st.integers(-10000, 20000), st.booleans(), st.none() | timestamps, st.none() | st.integers(1, 9))
def test_measurement_round_trip(centi, fahrenheit, ts, ttype):
    b = ph.encode_temperature_measurement(centi / 100, fahrenheit, ts, ttype)
    m = ph.decode_temperature_measurement(b)
    assert m == ph.TemperatureMeasurement(centi / 100, fahrenheit, ts, ttype)


# --- screening event --------------------------------------------------------------------

temps = st.none() | st.floats(-50.0, 150.0)
uncertainties = st.floats(0, 6) | st.just(math.inf)
distances = st.none() | st.floats(0, 20) | st.just(math.inf)


def _event_strategy(temp=temps):
    return st.builds(
        p.ScreeningEvent,
        seq=st.integers(0, 0xFFFFFFFF),
        time=st.integers(0, 0xFFFFFFFF),
        kind=st.just(p.EVENT_SCREENING),
        outcome=st.integers(0, 2),
        core_c=temp,
        core_u_c=uncertainties,
        skin_c=temp,
        skin_u_c=uncertainties,
        distance_m=distances,
        track_id=st.integers(0, 0xFFFF),
        flags=st.integers(0, p.EVENT_FLAGS_MASK),
    )


@given(_event_strategy())
def test_event_round_trip_quantises_as_documented(ev):
    b = p.encode_event(ev)
    assert len(b) == 20
    back = p.decode_event(b)
    assert p.encode_event(back) == b  # decode is exact on the wire grid
    for k in ("seq", "time", "kind", "outcome", "track_id", "flags"):
        assert getattr(back, k) == getattr(ev, k)
    for k in ("core_c", "skin_c"):
        if getattr(ev, k) is None:
            assert getattr(back, k) is None
        else:
            assert abs(getattr(back, k) - getattr(ev, k)) <= 0.005 + 1e-9
    for k in ("core_u_c", "skin_u_c"):
        u, bu = getattr(ev, k), getattr(back, k)
        assert bu >= u - 2e-5  # uncertainty is never understated
        assert bu == math.inf or bu - u < 0.02
        if u >= 5.1:
            assert bu == math.inf
    d, bd = ev.distance_m, back.distance_m
    if d is None:
        assert bd is None
    elif d >= 12.75:
        assert bd == math.inf
    elif bd != math.inf:
        assert abs(bd - d) <= 0.025 + 1e-9 or (d < 0.025 and bd == 0.05)


@given(_event_strategy(st.none() | st.integers(-5000, 15000).map(lambda c: c / 100)))
def test_event_exact_round_trip_on_the_grid(ev):
    ev.core_u_c = ev.skin_u_c = math.inf if ev.seq % 3 == 0 else (ev.seq % 255) / 50
    ev.distance_m = None if ev.time % 4 == 0 else (ev.time % 254 + 1) / 20
    assert p.decode_event(p.encode_event(ev)) == ev


@given(st.integers(0, 15), st.integers(0, 15), temps | finite, uncertainties | finite, distances | finite)
def test_event_encoder_raises_only_out_of_range(kind, outcome, t, u, d):
    ev = p.ScreeningEvent(kind=kind, outcome=outcome, core_c=t, core_u_c=u, distance_m=d)
    try:
        b = p.encode_event(ev)
    except p.OutOfRange:
        return
    assert p.decode_event(b).kind == kind


# --- frames -----------------------------------------------------------------------------


@given(st.integers(1, 12), st.integers(1, 12), st.integers(-5000, 15000), st.data())
def test_frame_body_round_trip(w, h, ta, data):
    px = data.draw(st.lists(st.integers(-32767, 32767), min_size=w * h, max_size=w * h))
    body = p.encode_frame_body(w, h, ta / 100, [c / 100 for c in px])
    assert len(body) == p.frame_body_size(w, h)
    w2, h2, ta2, out = p.decode_frame_body(body)
    assert (w2, h2, ta2, list(out)) == (w, h, ta / 100, px)


@given(st.binary(min_size=1, max_size=3000), st.integers(0, 0xFFFF), st.integers(23, 517))
def test_chunks_reassemble_any_body_at_any_mtu(body, fid, mtu):
    size = pf.chunk_payload_size(mtu)
    assume(len(body) <= 255 * size)
    chunks = list(pf.frame_chunks(body, fid, mtu))
    assert all(len(c) <= min(mtu - 3, 512) for c in chunks)
    a = pf.FrameAssembler()
    out = [a.feed(c) for c in chunks]
    assert out[-1] == body and all(o is None for o in out[:-1])


@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=6), st.data())
def test_assembler_never_returns_a_partial_or_foreign_frame(bodies, data):
    stream = []
    for fid, body in enumerate(bodies):
        stream.extend(pf.frame_chunks(body, fid, 23))
    # lose, duplicate and swap chunks at random
    ops = data.draw(st.lists(st.sampled_from("keep drop dup swap".split()), min_size=len(stream), max_size=len(stream)))
    mangled = []
    for c, op in zip(stream, ops, strict=True):
        if op == "keep":
            mangled.append(c)
        elif op == "dup":
            mangled += [c, c]
        elif op == "swap" and mangled:
            mangled.insert(len(mangled) - 1, c)
    a = pf.FrameAssembler()
    for c in mangled:
        out = a.feed(c)
        if out is not None:
            assert out == bodies[pf.decode_chunk(c)[0]]
    assert a.frames_completed + a.frames_dropped <= len(bodies) + len(mangled)


# --- configuration and control point --------------------------------------------------------

configs = st.builds(
    lambda thr, off, hyst, confirm, k, emis, rate, buzzer: p.DeviceConfig(
        thr / 100, off / 100, hyst / 100, confirm, k / 10, emis / 10000, rate, buzzer
    ),
    st.integers(3500, 4000),
    st.integers(-100, 500),
    st.integers(0, 100),
    st.integers(1, 30),
    st.integers(10, 40),
    st.integers(9000, 10000),
    st.sampled_from(p.FRAME_RATES),
    st.booleans(),
)


@given(configs)
def test_config_round_trip(cfg):
    b = p.encode_config(cfg)
    assert len(b) == 13 and p.decode_config(b) == cfg
    assert pc.decode_command(pc.encode_command(pc.OP_SET_CONFIG, cfg)) == (pc.OP_SET_CONFIG, cfg)


@given(st.binary(min_size=12, max_size=12))
def test_any_valid_config_bytes_re_encode_identically(tail):
    b = b"\x01" + tail
    try:
        cfg = p.decode_config(b)
    except p.OutOfRange:
        return
    assert p.encode_config(cfg) == b


@given(
    st.sampled_from([pc.OP_ACK, pc.OP_REPLAY, pc.OP_SET_TIME]),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 255),
    st.integers(1, 7),
)
def test_command_and_response_round_trip(op, value, any_op, result):
    assert pc.decode_command(pc.encode_command(op, value)) == (op, value)
    assert pc.decode_response(pc.encode_response(any_op, result, value)) == (any_op, result, value)


# --- robustness: nothing but ProtocolError escapes a decoder --------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=600))
@pytest.mark.parametrize("decode", DECODERS, ids=lambda f: f.__name__)
def test_decoders_raise_only_protocol_errors(decode, data):
    for b in (data, b"\x01" + data, bytearray(data), memoryview(b"\x01" + data)):
        try:
            decode(b)
        except p.ProtocolError:
            pass


@settings(max_examples=300)
@given(
    st.binary(min_size=19, max_size=19),
    st.binary(min_size=12, max_size=12),
    st.binary(min_size=7, max_size=7),
    st.binary(min_size=5, max_size=520),
)
def test_right_length_records_raise_only_protocol_errors(event, config, response, chunk):
    for decode, b in (
        (p.decode_event, b"\x01" + event),
        (p.decode_config, b"\x01" + config),
        (pc.decode_response, b"\x01" + response),
        (pf.decode_chunk, b"\x01" + chunk),
        (pc.decode_command, b"\x01\x04\x01" + config),
    ):
        try:
            decode(b)
        except p.ProtocolError:
            pass


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_assembler_survives_garbage(chunks):
    a = pf.FrameAssembler()
    for c in chunks:
        out = a.feed(c)
        assert out is None or isinstance(out, bytes)
