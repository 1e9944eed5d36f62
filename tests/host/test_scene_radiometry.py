"""The simulator's vectorised radiance is the calibration module's, exactly."""

import numpy as np
import pytest

import calibration as cal
from scene import radiometry as rad

TEMPS = [-40.0, -10.0, 0.0, 22.0, 35.0, 36.6, 38.8, 62.0, 150.0, 300.0]


def test_radiance_matches_calibration_elementwise():
    got = rad.radiance(np.array(TEMPS))
    for t, r in zip(TEMPS, got, strict=True):
        assert r == pytest.approx(cal.radiance(t), rel=1e-14)
        assert rad.temperature_from_radiance(r) == pytest.approx(cal.temperature_from_radiance(r), abs=1e-9)


def test_mixing_matches_calibration_mix_pixel():
    for ts, tb in [(35.0, 22.0), (37.5, 10.0), (34.0, 30.0), (120.0, 20.0)]:
        for f in (0.05, 0.25, 0.5, 0.9, 0.95, 1.0):
            assert rad.mix(ts, tb, f) == pytest.approx(cal.mix_pixel(ts, tb, f), abs=1e-9)


def test_design_notes_mixing_table():
    # design.md: 35 degC face on a 22 degC background
    for f, err in [(0.95, -0.6), (0.90, -1.2), (0.50, -6.3), (0.25, -9.6)]:
        assert rad.mix(35.0, 22.0, f) - 35.0 == pytest.approx(err, abs=0.06)


def test_apparent_temperature_matches_calibration():
    for t, e, tr in [(35.0, 0.98, 22.0), (62.0, 0.92, 20.0), (180.0, 0.8, 10.0), (0.0, 0.95, 25.0)]:
        assert rad.apparent_temperature(t, e, tr) == pytest.approx(cal.apparent_from_object(t, e, tr), abs=1e-9)
        assert cal.correct_emissivity(float(rad.apparent_temperature(t, e, tr)), e, tr) == pytest.approx(t, abs=1e-9)


def test_constants_come_from_calibration():
    assert rad.KELVIN == cal.KELVIN
    assert rad.SKIN_EMISSIVITY == cal.SKIN_EMISSIVITY == 0.98
    assert rad.SKIN_TO_CORE_OFFSET_C == cal.DEFAULT_SKIN_TO_CORE_OFFSET_C
