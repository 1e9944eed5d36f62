"""Radiance <-> temperature, vectorised over numpy arrays.

Same model as shared/calibration.py (and the MLX90640's own To formula):
the band radiance of a surface is proportional to (T in kelvin)**4.  The
calibration module works on scalars (it also runs on MicroPython); these are
the numpy forms of ``calibration.radiance`` / ``temperature_from_radiance``,
checked against them in tests/host/test_scene_radiometry.py.
"""

import numpy as np

import calibration

KELVIN = calibration.KELVIN
SKIN_EMISSIVITY = calibration.SKIN_EMISSIVITY
SKIN_TO_CORE_OFFSET_C = calibration.DEFAULT_SKIN_TO_CORE_OFFSET_C


def radiance(t_c):
    """Relative radiance (T/K)**4 of a blackbody at t_c degC (array or scalar)."""
    k = np.asarray(t_c, dtype=np.float64) + KELVIN
    k = k * k
    return k * k


def temperature_from_radiance(r):
    """Inverse of radiance(): degC whose relative radiance is r (> 0)."""
    return np.sqrt(np.sqrt(np.asarray(r, dtype=np.float64))) - KELVIN


def apparent_radiance(t_c, emissivity, reflected_c):
    """What a grey body emits plus what it reflects: e*R(T) + (1-e)*R(Tr).

    This is the radiance the sensor sees; read at emissivity 1 it gives the
    'apparent' temperature the MLX90640 reports.
    """
    return emissivity * radiance(t_c) + (1.0 - emissivity) * radiance(reflected_c)


def apparent_temperature(t_c, emissivity, reflected_c):
    """Reading (at emissivity 1) of a large grey body: calibration.apparent_from_object."""
    return temperature_from_radiance(apparent_radiance(t_c, emissivity, reflected_c))


def mix(t_a_c, t_b_c, fraction):
    """Apparent temperature of a pixel `fraction` covered by t_a, the rest t_b."""
    return temperature_from_radiance(fraction * radiance(t_a_c) + (1.0 - fraction) * radiance(t_b_c))
