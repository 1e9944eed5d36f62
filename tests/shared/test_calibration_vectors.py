"""Reference vectors for shared/calibration.py (tests/vectors/calibration.json).

Each case is {"name", "fn", "args", "expect"} or {"name", "fn", "args",
"error": "InvalidInput", "match": substring of the message}.  Special floats
are written as the strings "inf", "-inf" and "nan" (JSON has no literal for
them).  Numbers must agree within TOL = 1e-6 degC (radiances, ~1e10, within
1e-12 relative): both interpreters compute in double precision here; the
vectors pin behaviour, not the last ulp.
"""

import json
import math

import calibration as cal
from checks import iter_vectors  # noqa: E402

INTERPRETERS = ("cpython", "micropython")

VECTORS = "tests/vectors/calibration.json"
TOL = 1e-6
SPECIAL = {"inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}


def iter_cases():
    return iter_vectors(VECTORS)


def load_cases():
    """All cases as a list (for tools on the host; the tests stream)."""
    return list(iter_cases())


def _decode(v):
    if isinstance(v, str):
        return SPECIAL.get(v, v)
    if isinstance(v, list):
        return [_decode(x) for x in v]
    return v


def _encode(v):
    if isinstance(v, float) and (math.isinf(v) or math.isnan(v)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    return v


def _fields(c):
    return {
        "gain": c.gain,
        "offset_c": c.offset_c,
        "residual_rms_c": c.residual_rms_c,
        "uncertainty_c": c.uncertainty_c,
        "points": c.points,
        "device_id": c.device_id,
        "created": c.created,
    }


def _call(fn, args):
    if fn == "Decider":
        d = cal.Decider(*args[0])
        return [d.update(core, u) for core, u in args[1]]
    if fn == "Calibration":
        return _fields(cal.Calibration(*args))
    if fn == "Calibration.apply":
        return cal.Calibration(*args[0]).apply(*args[1:])
    if fn == "Calibration.apply_with_uncertainty":
        return cal.Calibration(*args[0]).apply_with_uncertainty(*args[1:])
    if fn == "Calibration.to_json":
        return json.loads(cal.Calibration(*args).to_json())
    if fn == "Calibration.from_json":
        return _fields(cal.Calibration.from_json(*args))
    if fn == "fit_calibration":
        return _fields(cal.fit_calibration(*args))
    return getattr(cal, fn)(*args)


def evaluate(case):
    """Result of one case as JSON-compatible data: floats unrounded, tuples
    as lists, outcomes as ints, inf/nan as strings, and for a rejected call
    {"error": class name, "message": text}."""
    try:
        result = _call(case["fn"], _decode(case["args"]))
    except cal.InvalidInput as e:
        return {"error": "InvalidInput", "message": str(e)}
    if isinstance(result, dict):
        return {k: _encode(v) for k, v in result.items()}
    return _encode(result)


def _same(actual, expected, where):
    if isinstance(expected, float) or isinstance(actual, float):
        assert isinstance(actual, (int, float)), where
        tol = max(TOL, 1e-12 * abs(expected))  # relative for radiances (~1e10)
        assert abs(actual - expected) <= tol, "%s: %r != %r" % (where, actual, expected)
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), "%s: %r" % (where, actual)
        for i in range(len(expected)):
            _same(actual[i], expected[i], "%s[%d]" % (where, i))
    elif isinstance(expected, dict):
        assert isinstance(actual, dict) and sorted(actual) == sorted(expected), "%s: %r" % (where, actual)
        for k in expected:
            _same(actual[k], expected[k], "%s.%s" % (where, k))
    else:
        assert actual == expected and type(actual) is type(expected), "%s: %r != %r" % (where, actual, expected)


def test_vectors():
    count = 0
    fns = set()
    for case in iter_cases():
        count += 1
        fns.add(case["fn"])
        got = evaluate(case)
        if "error" in case:
            assert isinstance(got, dict) and got.get("error") == case["error"], (case["name"], got)
            assert case["match"] in got["message"], (case["name"], got["message"])
        else:
            _same(got, case["expect"], case["name"])
    for name in (
        "radiance",
        "temperature_from_radiance",
        "mix_pixel",
        "correct_emissivity",
        "apparent_from_object",
        "skin_from_apparent",
        "core_from_skin",
        "decide",
        "Decider",
        "Calibration",
        "Calibration.apply",
        "Calibration.apply_with_uncertainty",
        "Calibration.to_json",
        "Calibration.from_json",
        "fit_calibration",
    ):
        assert name in fns, "no vector for " + name
    assert count >= 100, count


def test_evaluate_is_json_serialisable():
    for case in iter_cases():
        json.dumps(evaluate(case))


def test_vectors_can_fail():
    case = {"name": "x", "fn": "mix_pixel", "args": [35.0, 22.0, 0.9], "expect": 33.7}
    try:
        _same(evaluate(case), case["expect"], "x")
    except AssertionError:
        return
    raise AssertionError("a wrong expectation passed")
