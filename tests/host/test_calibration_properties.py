"""Property tests for shared/calibration.py (CPython, hypothesis)."""

import json
import math
from array import array

from hypothesis import assume, given, settings
from hypothesis import strategies as st

import calibration as cal
from calibration import CLEAR, FEVER, RECHECK, Calibration, Decider, InvalidInput

# Screening-relevant ranges; the radiometry also holds over the sensor's full range.
skin_t = st.floats(25.0, 45.0)
scene_t = st.floats(cal.T_MIN_C, cal.T_MAX_C)
background_t = st.floats(-20.0, 50.0)
fraction = st.floats(0.01, 1.0)
unc = st.floats(0.0, 2.0)
emissivity = st.floats(0.05, 1.0)
core_t = st.floats(34.0, 42.0)
core_u = st.one_of(st.floats(0.0, 1.0), st.just(math.inf))


def f32(x):
    return array("f", [x])[0]


@given(scene_t, scene_t, fraction)
def test_skin_from_apparent_inverts_mix_pixel(ts, tb, f):
    app = cal.mix_pixel(ts, tb, f)
    assume(cal.T_MIN_C <= app <= cal.T_MAX_C)
    t, u = cal.skin_from_apparent(app, 0.0, tb, 0.0, f, 0.0)
    # 1/f amplifies double rounding of the apparent value (~1e-13 degC).
    assert abs(t - ts) <= 1e-9 / f
    assert u == 0.0


@given(scene_t, scene_t, fraction)
def test_mix_lies_between_its_components(ts, tb, f):
    app = cal.mix_pixel(ts, tb, f)
    assert min(ts, tb) - 1e-9 <= app <= max(ts, tb) + 1e-9


@given(scene_t, emissivity, background_t)
def test_emissivity_round_trip(t, e, tr):
    app = cal.apparent_from_object(t, e, tr)
    assume(cal.T_MIN_C <= app <= cal.T_MAX_C)
    assert abs(cal.correct_emissivity(app, e, tr) - t) <= 1e-9 / e


@given(skin_t, background_t, fraction, unc, unc, st.floats(0.0, 0.5), st.floats(0.0, 0.5))
def test_uncertainty_monotone_in_u_fraction(ts, tb, f, ua, ub, uf1, uf2):
    app = cal.mix_pixel(ts, tb, f)
    lo, hi = sorted((uf1, uf2))
    _, u_lo = cal.skin_from_apparent(app, ua, tb, ub, f, lo)
    _, u_hi = cal.skin_from_apparent(app, ua, tb, ub, f, hi)
    assert u_hi >= u_lo - 1e-12
    if hi >= f:
        assert u_hi == math.inf  # fraction not known to be positive


@given(skin_t, background_t, fraction, unc, unc, st.floats(0.0, 0.5))
def test_uncertainty_covers_each_component(ts, tb, f, ua, ub, uf):
    app = cal.mix_pixel(ts, tb, f)
    _, u = cal.skin_from_apparent(app, ua, tb, ub, f, uf)
    # The apparent term alone is ua / f * (T_app/T_skin)^3, and since
    # T_app^4 >= f T_skin^4 that factor is >= f^(-1/4) >= 1.
    assert u >= ua * (1 - 1e-12)
    _, u_nofrac = cal.skin_from_apparent(app, ua, tb, ub, f, 0.0)
    assert u >= u_nofrac - 1e-12


@given(skin_t, background_t, st.floats(0.02, 1.0), st.floats(0.0, 0.5), st.floats(0.0, 0.3))
def test_single_precision_inputs(ts, tb, f, ua, uf_rel):
    app = cal.mix_pixel(ts, tb, f)
    uf = uf_rel * f
    t, u = cal.skin_from_apparent(app, ua, tb, 0.3, f, uf)
    t32, u32 = cal.skin_from_apparent(f32(app), f32(ua), f32(tb), f32(0.3), f32(f), f32(uf))
    # Rounding the inputs moves the apparent value by up to ~2e-6 degC, which
    # the inversion amplifies by about 1/f: bounded by 0.01 for f >= 0.02.
    assert abs(t32 - t) <= 0.01
    assert abs(u32 - u) <= 0.01


@given(core_t, core_u, st.floats(36.0, 39.0), st.floats(0.5, 3.0))
def test_decide_consistent_with_bounds(core, u, thr, k):
    out = cal.decide(core, u, thr, k)
    lower, upper = core - k * u, core + k * u
    if out == FEVER:
        assert lower > thr
    elif out == CLEAR:
        assert upper < thr
    else:
        assert out == RECHECK and not lower > thr and not upper < thr


readings = st.lists(st.tuples(core_t, core_u), min_size=1, max_size=40)


@given(readings, st.floats(36.0, 39.0), st.floats(0.0, 0.5), st.floats(0.5, 3.0))
def test_decider_never_clear_when_upper_reaches_threshold(seq, thr, h, k):
    d = Decider(thr, h, k)
    for core, u in seq:
        out = d.update(core, u)
        assert out == d.outcome
        if core + k * u >= thr:
            assert out != CLEAR
        if core - k * u > thr:
            assert out == FEVER  # a confident fever is always reported
        if u == math.inf:
            assert out == RECHECK


@given(readings, st.floats(36.0, 39.0), st.floats(0.5, 3.0))
def test_decider_without_hysteresis_is_decide(seq, thr, k):
    d = Decider(thr, 0.0, k)
    for core, u in seq:
        assert d.update(core, u) == cal.decide(core, u, thr, k)


@given(readings, st.floats(36.0, 39.0), st.floats(0.0, 0.5), st.floats(0.5, 3.0))
def test_hysteresis_only_differs_in_the_safe_direction(seq, thr, h, k):
    # Against the memoryless rule, the Decider may only hold FEVER longer or
    # withhold CLEAR (RECHECK instead); it never adds a CLEAR.
    d = Decider(thr, h, k)
    for core, u in seq:
        out, plain = d.update(core, u), cal.decide(core, u, thr, k)
        if out != plain:
            assert (out, plain) in ((FEVER, RECHECK), (FEVER, CLEAR), (RECHECK, CLEAR))


fit_points = st.lists(st.tuples(st.floats(20.0, 50.0), st.floats(-1.0, 1.0)), min_size=2, max_size=8)


@given(fit_points, st.floats(0.9, 1.1), st.floats(-2.0, 2.0))
def test_fit_recovers_line_and_uncertainty_floor(raw, gain, offset):
    # measured = (reference - offset) / gain + noise
    pts = [(r, (r - offset) / gain + n * 0.05) for r, n in raw]
    ms = [m for _, m in pts]
    assume(max(ms) - min(ms) > 1.0)
    c = cal.fit_calibration(pts)
    assert abs(c.gain - gain) < 0.1 and abs(c.offset_c - offset) < 5.0
    assert c.uncertainty_c >= cal.FIT_UNCERTAINTY_FLOOR_C
    assert c.uncertainty_c >= c.residual_rms_c
    if len(pts) == 2:
        assert c.residual_rms_c < 1e-9


@given(
    st.floats(0.8, 1.2),
    st.floats(-5.0, 5.0),
    st.floats(0.0, 1.0),
    st.floats(0.0, 2.0),
    st.lists(st.tuples(scene_t, scene_t), max_size=5),
    st.text(max_size=20),
    st.text(max_size=30),
)
def test_json_round_trip(gain, offset, res, u, pts, dev, created):
    c = Calibration(gain, offset, res, u, pts, dev, created)
    text = c.to_json()
    d = Calibration.from_json(text)
    assert (d.gain, d.offset_c, d.residual_rms_c, d.uncertainty_c) == (gain, offset, res, u)
    assert d.points == tuple(pts) and d.device_id == dev and d.created == created
    assert json.loads(text)["format"] == "helmet-calibration"


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=80), st.binary(max_size=40).map(lambda b: b.decode("latin-1"))))
def test_from_json_rejects_garbage_with_invalid_input(text):
    try:
        Calibration.from_json(text)
    except InvalidInput:
        pass


def test_vectors_file_is_one_json_list():
    # The vectors test streams the file line by line; it must also be plain JSON.
    import test_calibration_vectors as tv
    from checks import repo_path

    with open(repo_path(tv.VECTORS)) as f:
        whole = json.load(f)
    assert whole == tv.load_cases()
