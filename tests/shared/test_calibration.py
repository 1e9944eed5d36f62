"""Tests for shared/calibration.py, run under CPython and MicroPython.

Kept compact on purpose: MicroPython compiles this file from source inside
the 100 KB test heap.  Exhaustive input/validation cases live in
tests/vectors/calibration.json (test_calibration_vectors.py).
"""

import math
from array import array

import calibration as cal
from calibration import CLEAR, FEVER, RECHECK, Calibration, Decider, InvalidInput
from checks import near, raises

INTERPRETERS = ("cpython", "micropython")

INF = float("inf")
NAN = float("nan")


def f32(x):
    # x rounded to single precision, as the ESP32 holds it.
    return array("f", [x])[0]


def test_constants():
    assert (cal.KELVIN, CLEAR, RECHECK, FEVER) == (273.15, 0, 1, 2)
    assert cal.OUTCOME_NAMES == ("CLEAR", "RECHECK", "FEVER")
    assert (cal.DEFAULT_THRESHOLD_C, cal.DEFAULT_HYSTERESIS_C, cal.DEFAULT_COVERAGE_K) == (38.0, 0.1, 2.0)
    assert 0.5 <= cal.DEFAULT_SKIN_TO_CORE_OFFSET_C <= 2.5
    assert 0.0 < cal.DEFAULT_OFFSET_UNCERTAINTY_C <= 1.0
    assert (cal.SKIN_EMISSIVITY, cal.T_MIN_C, cal.T_MAX_C) == (0.98, -40.0, 300.0)
    assert issubclass(InvalidInput, ValueError)


# --- radiometry -------------------------------------------------------------------


def test_radiance_is_kelvin_to_the_fourth():
    near(cal.radiance(36.6), 309.75**4, 1e-3)
    for t in (-40.0, 0.0, 36.6, 300.0):
        near(cal.temperature_from_radiance(cal.radiance(t)), t, 1e-9)


def test_mix_pixel_design_table():
    # design.md: 35 degC face on a 22 degC background.
    for f, err, fever in ((0.95, -0.6, 0.96), (0.90, -1.2, 0.91), (0.50, -6.3, 0.53), (0.25, -9.6, 0.28)):
        app = cal.mix_pixel(35.0, 22.0, f)
        near(app - 35.0, err, 0.1)
        near(cal.mix_pixel(36.0, 22.0, f) - app, fever, 0.01)  # "a 1 degC fever looks like"
    near(cal.mix_pixel(35.0, 22.0, 0.9), 33.8, 0.05)


def test_mix_pixel_limits_and_order():
    assert cal.mix_pixel(35.0, 22.0, 1.0) == 35.0
    near(cal.mix_pixel(30.0, 30.0, 0.3), 30.0, 1e-12)
    assert cal.mix_pixel(35.0, 22.0, 0.5) > 28.5  # radiance mix reads above the linear mix
    assert cal.mix_pixel(35.0, 45.0, 0.5) > 35.0  # hot background reads above the skin
    prev = -INF
    for f in (0.05, 0.1, 0.3, 0.6, 0.9, 1.0):
        cur = cal.mix_pixel(35.0, 22.0, f)
        assert cur > prev
        prev = cur


def test_emissivity_round_trip_and_direction():
    app = cal.apparent_from_object(35.0, 0.98, 20.0)
    assert 34.5 < app < 35.0  # cold surroundings: a grey body reads low
    near(cal.correct_emissivity(34.7, 1.0, 20.0), 34.7, 1e-12)
    near(cal.correct_emissivity(25.0, 0.5, 25.0), 25.0, 1e-12)
    for e in (0.3, 0.98):
        for tr in (-10.0, 50.0):
            for t in (0.0, 36.6, 120.0):
                near(cal.correct_emissivity(cal.apparent_from_object(t, e, tr), e, tr), t, 1e-9)


# --- fill fraction, core -------------------------------------------------------------


def test_skin_from_apparent_inverts_mix():
    for f in (1.0, 0.9, 0.5, 0.25, 0.05):
        for ts, tb in ((35.0, 22.0), (37.5, 10.0), (36.0, 40.0), (33.0, -10.0)):
            t, u = cal.skin_from_apparent(cal.mix_pixel(ts, tb, f), 0.0, tb, 0.0, f, 0.0)
            near(t, ts, 1e-9)
            assert u == 0.0


def test_skin_uncertainty_analytic_terms():
    # Fraction 1: the background does not matter, even an unknown one.
    assert cal.skin_from_apparent(35.0, 0.2, 22.0, 5.0, 1.0, 0.0) == (35.0, 0.2)
    assert cal.skin_from_apparent(35.0, 0.0, 22.0, INF, 1.0, 0.0) == (35.0, 0.0)
    # Derivatives against small finite differences.
    app = cal.mix_pixel(35.0, 22.0, 0.5)
    t0, u = cal.skin_from_apparent(app, 0.01, 22.0, 0.0, 0.5, 0.0)
    near(u, cal.skin_from_apparent(app + 0.01, 0.0, 22.0, 0.0, 0.5, 0.0)[0] - t0, 1e-5)
    t0, u = cal.skin_from_apparent(app, 0.0, 22.0, 0.01, 0.5, 0.0)
    near(u, t0 - cal.skin_from_apparent(app, 0.0, 22.01, 0.0, 0.5, 0.0)[0], 1e-5)


def test_fraction_uncertainty_is_nonlinear_larger_side():
    def skin(app, f, uf=0.0):
        return cal.skin_from_apparent(app, 0.0, 22.0, 0.0, f, uf)

    app = cal.mix_pixel(35.0, 22.0, 0.5)
    t, u = skin(app, 0.5, 0.1)
    lo, hi = skin(app, 0.4)[0], skin(app, 0.6)[0]
    assert lo - t > t - hi > 0  # an overestimated fraction is the bigger error
    near(u, lo - t, 1e-9)
    app = cal.mix_pixel(35.0, 22.0, 0.95)  # 0.95 +/- 0.1 evaluates 0.85 and 1.0
    t, u = skin(app, 0.95, 0.1)
    near(u, skin(app, 0.85)[0] - t, 1e-9)


def test_uncertainty_grows_as_fraction_shrinks():
    prev = 0.0
    for f in (1.0, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1):
        _, u = cal.skin_from_apparent(cal.mix_pixel(35.0, 22.0, f), 0.1, 22.0, 0.5, f, 0.02)
        assert u > prev, (f, u, prev)
        prev = u


def test_unknown_fraction_gives_inf_and_recheck():
    # A febrile person far away (skin 37.5 -> core 38.8) filling 10 % of a pixel.
    app = cal.mix_pixel(37.5, 22.0, 0.1)
    assert app < 25.0  # the raw reading looks nothing like a fever
    for uf in (0.1, 0.2, INF):
        t, u = cal.skin_from_apparent(app, 0.1, 22.0, 0.5, 0.1, uf)
        near(t, 37.5, 1e-9)
        core, uc = cal.core_from_skin(t, u)
        assert u == uc == INF
        assert cal.decide(core, uc) == RECHECK
        assert Decider().update(core, uc) == RECHECK


def test_far_febrile_person_with_known_fraction_is_not_clear():
    for f in (0.5, 0.25, 0.1):
        app = cal.mix_pixel(37.5, 22.0, f)
        core, uc = cal.core_from_skin(*cal.skin_from_apparent(app, 0.1, 22.0, 0.5, f, 0.3 * f))
        assert cal.decide(core, uc) != CLEAR


def test_core_from_skin():
    core, u = cal.core_from_skin(35.0, 0.3)
    near(core, 35.0 + cal.DEFAULT_SKIN_TO_CORE_OFFSET_C, 1e-12)
    near(u, math.sqrt(0.09 + cal.DEFAULT_OFFSET_UNCERTAINTY_C**2), 1e-12)
    core, u = cal.core_from_skin(35.0, 0.3, 1.0, 0.4)
    assert (core, round(u, 12)) == (36.0, 0.5)
    assert cal.core_from_skin(35.0, INF)[1] == INF


def test_offset_follows_the_air_and_grows_less_certain_away_from_the_reference():
    at_ref = cal.core_from_skin(35.0, 0.3, 1.3, 0.4, cal.OFFSET_REFERENCE_AMBIENT_C)
    assert at_ref == cal.core_from_skin(35.0, 0.3, 1.3, 0.4)
    cold = cal.core_from_skin(35.0, 0.3, 1.3, 0.4, 17.0)
    hot = cal.core_from_skin(35.0, 0.3, 1.3, 0.4, 29.0)  # offset 0.4: not yet at the floor
    near(cold[0], 35.0 + 1.3 + 6 * cal.OFFSET_AMBIENT_SLOPE, 1e-9)  # cold skin: larger offset
    near(hot[0], 35.0 + 1.3 - 6 * cal.OFFSET_AMBIENT_SLOPE, 1e-9)
    assert cold[1] > at_ref[1] and near(cold[1], hot[1], 1e-12) is None
    with raises(cal.InvalidInput, match="ambient_c"):
        cal.core_from_skin(35.0, 0.3, 1.3, 0.4, float("nan"))


def _u_without_floor(u_skin, u_offset, ambient):
    # The uncertainty the air correction had before the floor existed.
    u_air = cal.OFFSET_AMBIENT_SLOPE_UNCERTAINTY * abs(cal.OFFSET_REFERENCE_AMBIENT_C - ambient)
    return math.sqrt(u_skin**2 + u_offset**2 + u_air**2)


def test_skin_stays_below_core_in_hot_air():
    # Unfloored, 1.3 + 0.15 * (23 - 32) = -0.05: a face hotter than the core.
    assert cal.MIN_SKIN_TO_CORE_OFFSET_C == 0.3
    for ambient in (30.0, 32.0, 36.0, 45.0):
        core, u = cal.core_from_skin(35.0, 0.3, 1.3, 0.4, ambient)
        assert core >= 35.0 + cal.MIN_SKIN_TO_CORE_OFFSET_C, (ambient, core)
        near(core, 35.0 + cal.MIN_SKIN_TO_CORE_OFFSET_C, 1e-9)
        # The floor does not make the air correction any more certain.
        assert u >= _u_without_floor(0.3, 0.4, ambient) - 1e-12, (ambient, u)
        near(u, _u_without_floor(0.3, 0.4, ambient), 1e-9)
    # Below the floor's onset (1.3 + 0.15 * (23 - a) = 0.3 at a ~= 29.7) the slope applies as before.
    near(cal.core_from_skin(35.0, 0.3, 1.3, 0.4, 29.0)[0], 35.0 + 1.3 - 6 * 0.15, 1e-9)
    # Unchanged at the reference ambient and in cold air.
    assert cal.core_from_skin(35.0, 0.3, 1.3, 0.4, 23.0) == cal.core_from_skin(35.0, 0.3, 1.3, 0.4)
    near(cal.core_from_skin(35.0, 0.3, 1.3, 0.4, 15.0)[0], 35.0 + 1.3 + 8 * 0.15, 1e-9)
    # Default arguments, as the firmware calls it.
    core, u = cal.core_from_skin(36.0, 0.2, ambient_c=32.0)
    near(core, 36.3, 1e-9)
    assert u >= _u_without_floor(0.2, cal.DEFAULT_OFFSET_UNCERTAINTY_C, 32.0) - 1e-12


def test_hot_air_floor_keeps_a_smaller_site_calibration():
    # A site offset already below the floor is its own floor: kept as
    # calibrated at the reference ambient, never lowered further by hot air.
    assert cal.core_from_skin(35.0, 0.3, 0.1, 0.4, 23.0) == cal.core_from_skin(35.0, 0.3, 0.1, 0.4)
    near(cal.core_from_skin(35.0, 0.3, 0.1, 0.4, 36.0)[0], 35.1, 1e-9)
    near(cal.core_from_skin(35.0, 0.3, -0.5, 0.1, 30.0)[0], 34.5, 1e-9)
    near(cal.core_from_skin(35.0, 0.3, 0.1, 0.4, 15.0)[0], 35.0 + 0.1 + 8 * 0.15, 1e-9)


def test_feverish_face_in_cold_air_is_not_cleared():
    # 38.2 degC core in 15 degC air: face skin sits about 2.5 degC below core
    # (1.3 at 23 degC plus 0.15 per degC of colder air).
    skin = 38.2 - 1.3 - 8 * 0.15
    ignoring_air = cal.decide(*cal.core_from_skin(skin, 0.1))
    assert ignoring_air == cal.CLEAR  # the constant offset alone would send them home
    assert cal.decide(*cal.core_from_skin(skin, 0.1, ambient_c=15.0)) != cal.CLEAR


def test_single_precision_inputs_within_0_01():
    # ESP32 floats are 32-bit: inputs rounded through array('f') must move
    # the key results by less than 0.01 degC (the factored radiance
    # differences keep a small fraction from amplifying rounding).
    for f in (1.0, 0.9, 0.5, 0.25, 0.1, 0.03):
        for ts, tb in ((35.0, 22.0), (37.7, 18.3), (36.1, 31.9)):
            app = cal.mix_pixel(ts, tb, f)
            near(cal.mix_pixel(f32(ts), f32(tb), f32(f)), app, 0.01)
            t, u = cal.skin_from_apparent(app, 0.1, tb, 0.3, f, 0.1 * f)
            t32, u32 = cal.skin_from_apparent(f32(app), f32(0.1), f32(tb), f32(0.3), f32(f), f32(0.1 * f))
            near(t32, t, 0.01)
            near(u32, u, 0.01)
    near(cal.correct_emissivity(f32(34.71), f32(0.98), f32(20.3)), cal.correct_emissivity(34.71, 0.98, 20.3), 0.01)
    pts = ((35.0, 34.21), (40.0, 39.13), (37.5, 36.64))
    c = cal.fit_calibration(pts)
    c32 = cal.fit_calibration([(f32(r), f32(m)) for r, m in pts])
    near(c32.apply(f32(36.3)), c.apply(36.3), 0.01)
    near(c32.uncertainty_c, c.uncertainty_c, 0.01)


# --- decision --------------------------------------------------------------------


def test_decide_at_and_around_threshold():
    for args, want in (
        ((38.0, 0.0), RECHECK),  # exactly at the threshold: cannot tell
        ((38.01, 0.0), FEVER),
        ((37.99, 0.0), CLEAR),
        ((38.5, 0.25), RECHECK),
        ((38.5, 0.24), FEVER),  # lower bound 38.0 / 38.02
        ((37.5, 0.25), RECHECK),
        ((37.5, 0.24), CLEAR),  # upper bound 38.0 / 37.98
        ((37.5, 0.25, 38.0, 1.0), CLEAR),
        ((37.6, 0.1, 37.3), FEVER),
        ((45.0, INF), RECHECK),
        ((30.0, INF), RECHECK),
    ):
        assert cal.decide(*args) == want, args


def test_decider_without_hysteresis_matches_decide():
    for core in (36.0, 37.9, 38.0, 38.1, 39.0):
        for u in (0.0, 0.05, 0.25, INF):
            assert Decider(38.0, 0.0, 2.0).update(core, u) == cal.decide(core, u), (core, u)


def _run(readings, h=0.1, u=0.0):
    d = Decider(38.0, h, 2.0)
    return [d.update(c, u) for c in readings]


def test_decider_hovering_reading_does_not_flap():
    above = (38.02, 37.98, 38.03, 37.97, 38.01, 37.95)
    plain = [cal.decide(c, 0.0) for c in above]
    assert FEVER in plain and CLEAR in plain  # decide() alone flaps
    assert _run(above) == [FEVER] * 6
    assert _run((37.85, 37.95, 37.92, 37.98, 37.91)) == [CLEAR] * 5


def test_decider_asymmetry():
    # CLEAR needs upper < threshold - h to enter, is left once upper reaches
    # the threshold, and is not re-entered without the margin.
    assert _run((37.95, 37.89, 37.99, 38.0, 37.95)) == [RECHECK, CLEAR, CLEAR, RECHECK, RECHECK]
    # FEVER is entered at lower > threshold and held down to threshold - h.
    assert _run((37.95, 38.05, 37.91, 37.90)) == [RECHECK, FEVER, FEVER, RECHECK]
    d = Decider()
    assert d.update(39.0, 0.1) == FEVER
    assert d.update(39.0, INF) == RECHECK  # unknown: RECHECK, never CLEAR


def test_decider_febrile_reading_is_never_clear():
    # upper = 37.6 + 2 * 0.2 = 38.0 reaches the threshold: CLEAR is left.
    assert _run((36.5, 37.6), u=0.2) == [CLEAR, RECHECK]
    assert _run((36.5, 38.6), u=0.2) == [CLEAR, FEVER]
    assert _run((36.0, 37.85), h=0.5, u=0.1) == [CLEAR, RECHECK]  # even with a large h


def test_decider_reset_and_attribute():
    d = Decider()
    assert d.outcome == RECHECK
    d.update(39.5, 0.2)
    assert d.outcome == FEVER
    d.reset()
    assert d.outcome == RECHECK
    assert d.update(38.05, 0.0) == FEVER


# --- blackbody calibration --------------------------------------------------------


def test_calibration_apply_and_identity():
    near(Calibration(1.02, -0.5).apply(35.0), 35.2, 1e-12)
    assert cal.IDENTITY.apply(36.6) == 36.6
    assert cal.IDENTITY.uncertainty_c == cal.UNCALIBRATED_UNCERTAINTY_C
    assert 0.3 <= cal.IDENTITY.uncertainty_c <= 1.0
    t, u = Calibration(1.1, 0.0, 0.0, 0.2).apply_with_uncertainty(30.0, 0.1)
    near(t, 33.0, 1e-12)
    near(u, math.sqrt(0.11**2 + 0.04), 1e-12)
    assert Calibration(uncertainty_c=0.2).apply_with_uncertainty(30.0, INF)[1] == INF


def test_fit_two_points_exact_with_floor():
    c = cal.fit_calibration([(35.0, 34.0), (40.0, 38.8)])
    near(c.gain, 5.0 / 4.8, 1e-12)
    near(c.apply(34.0), 35.0, 1e-9)
    near(c.apply(38.8), 40.0, 1e-9)
    near(c.residual_rms_c, 0.0, 1e-12)
    near(c.uncertainty_c, cal.FIT_UNCERTAINTY_FLOOR_C * math.sqrt(2.0), 1e-12)  # floor * sqrt(1 + 1/2 + 1/2)
    assert c.points == ((35.0, 34.0), (40.0, 38.8))


def test_fit_matches_normal_equations():
    pts = [(30.0, 30.4), (35.0, 35.1), (40.0, 40.5), (45.0, 44.9), (50.0, 50.6)]
    n = len(pts)
    sx = sum(m for _, m in pts)
    sy = sum(r for r, _ in pts)
    sxx = sum(m * m for _, m in pts)
    gain = (n * sum(m * r for r, m in pts) - sx * sy) / (n * sxx - sx * sx)
    offset = (sy - gain * sx) / n
    ssr = sum((r - gain * m - offset) ** 2 for r, m in pts)
    c = cal.fit_calibration(pts, "helmet-7", "2026-11-22T10:00:00Z")
    near(c.gain, gain, 1e-9)
    near(c.offset_c, offset, 1e-7)
    near(c.residual_rms_c, math.sqrt(ssr / n), 1e-9)
    s = math.sqrt(ssr / (n - 2))
    assert s > cal.FIT_UNCERTAINTY_FLOOR_C  # scatter, not the floor, dominates here
    lever = max((m - sx / n) ** 2 for _, m in pts) / (sxx - sx * sx / n)
    near(c.uncertainty_c, s * math.sqrt(1 + 1.0 / n + lever), 1e-9)
    assert c.device_id == "helmet-7"


def test_fit_rejects_degenerate_and_nonsense():
    for pts, match in (
        ([(35.0, 34.0)], "at least 2"),
        ([(35.0, 34.0), (40.0, 34.0)], "measured_c values are equal"),
        ([(30.0, 30.0), (45.0, 40.0)], "gain must be in"),
    ):  # gain 1.5
        with raises(InvalidInput, match=match):
            cal.fit_calibration(pts)


def test_json_round_trip():
    c = cal.fit_calibration([(35.0, 34.21), (40.0, 39.13), (37.5, 36.64)], "h1", "2026-11-22")
    d = Calibration.from_json(c.to_json())
    for name in ("gain", "offset_c", "residual_rms_c", "uncertainty_c", "points", "device_id", "created"):
        assert getattr(d, name) == getattr(c, name), name
    assert d == c and d != cal.IDENTITY
    import json

    doc = json.loads(c.to_json())
    assert (doc["format"], doc["version"]) == ("helmet-calibration", 1)
    assert doc["points"] == [[35.0, 34.21], [40.0, 39.13], [37.5, 36.64]]
    assert Calibration.from_json(cal.IDENTITY.to_json()) == cal.IDENTITY


def test_json_rejections():
    good = Calibration(1.01, 0.2, 0.05, 0.2, [[35.0, 34.8]], "h", "t").to_json()
    assert Calibration.from_json(good).gain == 1.01
    for old, new, match in (
        ('"helmet-calibration"', '"other"', "format"),
        ('"version": 1', '"version": true', "version"),
        ('"gain": 1.01', '"gain": "1.01"', "gain must be a number"),
        ('"created"', '"colour": 1, "created"', "unknown field 'colour'"),
        ('"gain": 1.01, ', "", "missing field 'gain'"),
        ("{", "{{", "not valid JSON"),
    ):
        with raises(InvalidInput, match=match):
            Calibration.from_json(good.replace(old, new, 1))


def test_validation_messages():
    sfa = cal.skin_from_apparent
    for fn, args, match in (
        (cal.mix_pixel, (35.0, 22.0, 1.2), "fraction must be in (0, 1], got 1.2"),
        (sfa, (NAN, 0.1, 22.0, 0.5, 0.9, 0.05), "t_apparent_c is NaN"),
        (sfa, (34.0, 0.1, 22.0, -0.1, 0.9, 0.05), "u_background_c must be >= 0, got -0.1"),
        (cal.radiance, (-41.0,), "t_c must be in [-40.0, 300.0] degC, got -41.0"),
        (cal.radiance, (INF,), "t_c must be finite, got inf"),
        (Calibration, (0.5,), "gain must be in [0.8, 1.2], got 0.5"),
        (cal.core_from_skin, ("35", 0.1), "t_skin_c must be a number, got '35'"),
    ):
        with raises(InvalidInput, match=match):
            fn(*args)
