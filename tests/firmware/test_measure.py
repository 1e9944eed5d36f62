"""Readings: fill fraction, distance and the skin estimate through calibration."""

INTERPRETERS = ("micropython",)

from array import array  # noqa: E402

import calibration  # noqa: E402
import detect  # noqa: E402
import measure  # noqa: E402
from checks import near  # noqa: E402

W = 32


def flat(t):
    # array(tc, range(n)) allocates once; a [t] * 768 list would need 6 KB more
    a = array("f", range(768))
    for i in range(768):
        a[i] = t
    return a


def scene(skin_app, w=5, h=8):
    f = flat(22.0)
    for r in range(4, 4 + h):
        for c in range(14, 14 + w):
            f[r * W + c] = skin_app
    f[(4 + h // 2) * W + 14 + w // 2] = skin_app + 0.01  # hottest pixel inside the face
    for r in range(4 + h, 24):
        for c in range(10, 14 + w + 4):
            f[r * W + c] = 28.0
    d = detect.Detector(8.0, noise_1hz_c=0.01)  # nearly noise-free frames: tiny max-bias correction
    d.process(flat(22.0))
    d.process(f)
    return d


def test_resolved_face_reads_skin_through_calibration():
    skin = 35.0
    app = calibration.apparent_from_object(skin, calibration.SKIN_EMISSIVITY, 22.0)
    d = scene(app)
    m = measure.Measurer()
    r = m.measure(d, 0, 22.0)
    assert r.ok and r.resolved
    # the fill fraction 0.99 +/- 0.012 reads a little warm; within its uncertainty
    assert abs(r.skin_c - skin) < 2 * r.u_skin_c
    near(r.skin_c, skin, 0.2)
    # uncalibrated sensor: the 0.6 degC of calibration dominates
    assert r.u_skin_c >= calibration.UNCALIBRATED_UNCERTAINTY_C


def test_distance_from_head_width():
    d = scene(34.5, w=5)
    r = measure.Measurer().measure(d, 0, 22.0)
    near(r.distance_m, measure.HEAD_WIDTH_M / (5 * measure.PX_M), 0.01)
    assert 0.1 * r.distance_m < r.u_distance_m < 0.3 * r.distance_m


def test_far_face_is_uncertain_not_cold():
    # a one-pixel face: the fraction bounds are wide, the uncertainty large
    f, uf = measure.fraction_bounds(4.0, 6.0, False)
    assert uf > 0.2 and f - uf > 0.0
    d = scene(29.0, w=1, h=2)
    r = measure.Measurer().measure(d, 0, 22.0)
    assert not r.resolved
    assert r.u_skin_c > 2.0


def test_fraction_narrows_as_people_approach():
    prev = 1.0
    for dist in (5.0, 4.0, 3.0, 2.0, 1.0):
        f, uf = measure.fraction_bounds(dist * 0.9, dist * 1.1, False)
        assert uf <= prev + 1e-6
        prev = uf
    assert prev < 0.03


def test_occluded_face_has_wider_fraction():
    f0, u0 = measure.fraction_bounds(2.5, 3.0, False)
    f1, u1 = measure.fraction_bounds(2.5, 3.0, True)
    assert u1 > u0 and f1 < f0


def test_expected_cover_of_the_best_pixel():
    # face edge at a random sub-pixel phase: 1 px long -> max(1 - p, p) averages 0.75
    near(measure._axis_cov(1.0), 0.75, 1e-6)
    near(measure._axis_cov(2.0), 1.0, 1e-6)
    near(measure._axis_cov(0.5), 0.4375, 1e-6)
    assert measure._axis_cov(1.5) < measure._axis_cov(1.9) < 1.0


def test_resolved_face_fraction_is_measured_from_neighbours():
    # a uniform face: the reading pixel's side neighbours are as warm as it,
    # so are its diagonals (separable cover): the PSF takes nothing
    app = calibration.apparent_from_object(35.0, calibration.SKIN_EMISSIVITY, 22.0)
    d = scene(app)
    r = measure.Measurer().measure(d, 0, 22.0)
    assert r.resolved
    near(r.fraction, 1.0, 0.0005)
    assert r.u_fraction >= 0.012  # the uncertainty is not shrunk


def test_interior_neighbours_noise_does_not_bias_the_fraction():
    # an interior pixel's neighbours are skin: reading 0.3 degC above or
    # below it is noise, and the two cancel (clipping the warm ones at 1
    # made f low by PSF_NB_W * 2 * 0.3 / 13, the skin about 0.02 degC high)
    nb = array("f", (35.3, 34.7, 35.3, 34.7))
    near(measure._psf_keep(35.0, 22.0, nb, 0, True), 1.0, 2e-4)
    # not interior: a warmer neighbour may be more skin, not noise: clipped
    assert measure._psf_keep(35.0, 22.0, nb, 0) < 1.0 - 0.001


def test_corner_pixel_loses_its_diagonals():
    # background left and above: separable cover puts three diagonals off
    # the face (one side off: two of them, as the old half allowance)
    nb = array("f", (22.0, 35.0, 22.0, 35.0))
    near(measure._psf_keep(35.0, 22.0, nb, 0), 1.0 - 2 * measure.PSF_NB_W - 0.75 * measure.PSF_DIAG_W, 1e-5)
    nb = array("f", (22.0, 35.0, 35.0, 35.0))
    near(measure._psf_keep(35.0, 22.0, nb, 0), 1.0 - measure.PSF_NB_W - 0.5 * measure.PSF_DIAG_W, 1e-5)


def test_unresolved_large_face_centre_is_expected_cover():
    # a face several pixels across whose peak is not interior: the centre is
    # the expected cover times the PSF's share, and the interval still
    # reaches the edge-pixel bound
    d = scene(30.0, w=3, h=4)
    d.h_interior[0] = 0
    r = measure.Measurer().measure(d, 0, 22.0)
    assert not r.resolved
    assert r.fraction - r.u_fraction <= measure.UNRESOLVED_MAX_LO + 1e-6
    assert r.fraction > 0.9


def test_head_fragment_gives_no_reading():
    d = scene(34.0, w=5)
    r = measure.Measurer().measure(d, 0, 22.0, weq=2.0 * d.h_weq[0])
    assert not r.ok
