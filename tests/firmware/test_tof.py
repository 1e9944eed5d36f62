"""Which head a ToF reading belongs to, and the fused distance (firmware/tof.py)."""

INTERPRETERS = ("micropython",)

from array import array  # noqa: E402

import measure  # noqa: E402
import tof  # noqa: E402
from checks import near  # noqa: E402

XS = array("f", [0.0] * 8)
YS = array("f", [0.0] * 8)
WS = array("f", [0.0] * 8)


def weq_at(d):
    """Equivalent head width (px) of a head at d metres."""
    return measure.HEAD_WIDTH_M / (d * measure.PX_M)


def heads(*hs):
    for k, (x, y, d) in enumerate(hs):
        XS[k] = x
        YS[k] = y
        WS[k] = weq_at(d)
    return len(hs)


def mm_for(d):
    """What the ToF reads for a person whose head centre is at d metres."""
    return int((d - tof.FRONT_TO_CENTRE_M) * 1000)


def test_cone_window_in_pixels():
    near(tof.HALF_COLS, 7.38, 0.01)
    near(tof.HALF_ROWS, 9.14, 0.01)
    assert tof.WINDOW == (8, 23, 2, 21)
    f = tof.ToFFusion()
    assert f.cone_offset(16.0, 12.0) == 0.0
    near(f.cone_offset(16.0 + tof.HALF_COLS, 12.0), 1.0, 1e-4)
    near(f.cone_offset(16.0 - tof.HALF_COLS, 12.0), 1.0, 1e-4)
    near(f.cone_offset(16.0, 12.0 + tof.HALF_ROWS), 1.0, 1e-4)
    assert f.cone_offset(16.0, 2.0) == 0.0  # head above the axis: its body crosses it
    assert f.cone_offset(24.0, 12.0) > 1.0
    assert f.cone_offset(25.0, 12.0, 2.0) < 1.0  # shoulders reach in


def test_single_head_in_cone_takes_the_tof_distance():
    f = tof.ToFFusion()
    n = heads((17.0, 11.0, 2.1))  # head size says 2.1 m (+/- about 0.3)
    f.reading(mm_for(2.0), 0, 1000)
    assert f.pick(XS, YS, WS, n, 1050) == 0
    d = f.fuse(WS[0], True)
    assert f.from_tof
    near(d, 2.0, 0.002)
    near(f.u_distance_m, tof.TOF_U_M + tof.TOF_U_REL * 2.0, 1e-6)
    dh, uh = tof.head_distance(WS[0])
    assert f.u_distance_m < 0.5 * uh  # the point of the sensor
    # another head, not picked, keeps its head-size distance
    d = f.fuse(weq_at(3.0), False)
    assert not f.from_tof
    near(d, 3.0, 1e-3)


def test_head_outside_the_cone_gets_nothing():
    f = tof.ToFFusion()
    n = heads((3.0, 12.0, 2.0))
    f.reading(mm_for(2.0), 0, 0)
    assert f.pick(XS, YS, WS, n, 10) == -1


def test_invalid_stale_or_inconsistent_readings_are_not_used():
    f = tof.ToFFusion()
    n = heads((16.0, 12.0, 1.5))
    for status in (1, 2, 4, 7, 255):
        f.reading(2900, status, 0)  # a non-zero status never becomes a distance
        assert f.pick(XS, YS, WS, n, 10) == -1
        f.fuse(WS[0], True)
        assert not f.from_tof
    f.reading(None, 0, 0)
    assert f.pick(XS, YS, WS, n, 10) == -1
    f.reading(mm_for(1.5), 0, 0)
    assert f.pick(XS, YS, WS, n, 10) == 0
    assert f.pick(XS, YS, WS, n, tof.MAX_AGE_MS + 1) == -1  # stale
    # a valid reading followed by an invalid one: the old value is withdrawn
    f.reading(2900, 2, 20)
    assert f.pick(XS, YS, WS, n, 30) == -1
    # a hand raised at 0.4 m in front of a person whose head says 1.5 m
    f.reading(400, 0, 40)
    assert f.pick(XS, YS, WS, n, 50) == -1
    d = f.fuse(WS[0], True)
    assert not f.from_tof
    near(d, 1.5, 1e-3)
    # far away head size says little (1.4 px wide at 3 m): the gate is wide
    n = heads((16.0, 12.0, 3.0))
    f.reading(mm_for(2.0), 0, 60)
    assert f.pick(XS, YS, WS, n, 70) == 0
    # out of the part's range after the offset
    f.reading(5000, 0, 80)
    assert not f.valid


def test_two_heads_reading_goes_to_the_one_it_agrees_with():
    f = tof.ToFFusion()
    # a far person right on the axis, a near one off to the side: the ToF
    # sees the nearest surface in its cone, the near person
    n = heads((16.0, 12.0, 3.5), (21.0, 12.0, 1.2))
    f.reading(mm_for(1.2), 0, 0)
    assert f.pick(XS, YS, WS, n, 5) == 1
    n = heads((21.0, 12.0, 1.2), (16.0, 12.0, 3.5))  # order does not matter
    assert f.pick(XS, YS, WS, n, 5) == 0
    # both at about the same distance: the one nearest the image centre
    n = heads((19.0, 12.0, 1.5), (15.0, 11.0, 1.55), (20.0, 13.0, 1.45))
    f.reading(mm_for(1.5), 0, 0)
    assert f.pick(XS, YS, WS, n, 5) == 1
    assert f.pick(XS, YS, WS, 0, 5) == -1  # no heads


def test_fuse_rechecks_agreement_with_the_smoothed_width():
    f = tof.ToFFusion()
    f.reading(mm_for(0.6), 0, 0)
    near(f.fuse(weq_at(0.62), True), 0.6, 0.002)
    assert f.from_tof
    f.fuse(weq_at(1.5), True)  # the track's width says otherwise: head size
    assert not f.from_tof
    near(f.distance_m, 1.5, 1e-3)


def test_head_distance_matches_measure():
    dh, uh = tof.head_distance(weq_at(2.0))
    near(dh, 2.0, 1e-4)
    assert 0.5 < uh < 0.9  # a 2.1 px head: 10 % head size and 0.7 px of width
    dh, uh = tof.head_distance(0.1)  # clamped like measure
    near(dh, measure.HEAD_WIDTH_M / (0.3 * measure.PX_M), 1e-3)
