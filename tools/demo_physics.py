"""Why distance matters, computed with shared/calibration (runs on both interpreters).

A person's face (15 x 20 cm) seen by the 55-degree MLX90640 lens at a range of
distances: the best face pixel's skin fraction, what that pixel reads, and the
honest estimate and decision the shared code makes from it.  The alignment
of face and pixels is unknown, so the fraction is taken at its worst case
(face centred on a pixel boundary) with half the uncovered part as its
uncertainty.  This is the physics the screening pipeline builds on; the real
pipeline finds the face in simulated frames (a later issue).
"""

import math

import calibration

FACE_W_M = 0.15
FACE_H_M = 0.20
LENS_FOV_DEG = 55.0
PIXELS_ACROSS = 32
AMBIENT_C = 22.0
U_APPARENT_C = 0.2  # sensor noise at 1-2 Hz plus calibration residual
U_BACKGROUND_C = 0.5


def pixel_footprint_m(distance_m):
    return 2.0 * distance_m * math.tan(math.radians(LENS_FOV_DEG / 2)) / PIXELS_ACROSS


def best_pixel_fraction(distance_m):
    p = pixel_footprint_m(distance_m)
    return min(1.0, FACE_W_M / (2 * p)) * min(1.0, FACE_H_M / (2 * p))


def screen(core_c, distance_m):
    """One row: (true core, distance, fraction, apparent, core estimate, U = k*u, outcome)."""
    fraction = best_pixel_fraction(distance_m)
    skin_c = core_c - calibration.DEFAULT_SKIN_TO_CORE_OFFSET_C
    apparent_c = calibration.mix_pixel(skin_c, AMBIENT_C, fraction)
    est_skin, u_skin = calibration.skin_from_apparent(
        apparent_c, U_APPARENT_C, AMBIENT_C, U_BACKGROUND_C, fraction, (1.0 - fraction) / 2
    )
    core, u_core = calibration.core_from_skin(est_skin, u_skin)
    outcome = calibration.decide(core, u_core)
    return (core_c, distance_m, fraction, apparent_c, core, calibration.DEFAULT_COVERAGE_K * u_core, outcome)


DISTANCES_M = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
PEOPLE_CORE_C = (36.8, 39.2)


def table():
    return [screen(core, d) for core in PEOPLE_CORE_C for d in DISTANCES_M]


if __name__ == "__main__":
    for row in table():
        print("ROW", " ".join(repr(v) for v in row))
