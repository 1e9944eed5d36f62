INTERPRETERS = ("micropython",)

from array import array  # noqa: E402

import calibration  # noqa: E402
import protocol  # noqa: E402
import screening  # noqa: E402
import tof  # noqa: E402
from checks import heapsize  # noqa: E402

W = 32
CAL = calibration.fit_calibration([(t, t) for t in (30.0, 32.5, 35.0, 37.5, 40.0)])


def draw_person(f, c, skin_c, top=4, wdt=6):
    app = calibration.apparent_from_object(skin_c, calibration.SKIN_EMISSIVITY, 22.0)
    for r in range(top, top + 9):
        for x in range(c, c + wdt):
            f[r * W + x] = app
    f[(top + 4) * W + c + 2] = app + 0.05
    for r in range(top + 9, 24):
        for x in range(c - 3, c + 9):
            f[r * W + x] = 28.0


def run(with_tof, bias=0.0, d_true=0.6938):
    f = array("f", range(768))
    for i in range(768):
        f[i] = 22.0
    events = []
    fus = tof.ToFFusion() if with_tof else None
    s = screening.Screening(protocol.DeviceConfig(), CAL, events.append, tof=fus)
    s.process(f, t_ms=0)
    for i in range(24):
        for j in range(768):
            f[j] = 22.0
        draw_person(f, 13, 38.5)
        t = 125 * (i + 1)
        if fus is not None:
            d = d_true + bias
            fus.reading(int((d - tof.FRONT_TO_CENTRE_M) * 1000), 0, t)
        s.process(f, t_ms=t)
    return s, events


@heapsize("128k")
def test_tof_flag_and_same_outcome():
    s0, e0 = run(False)
    s1, e1 = run(True)
    print("no tof", [(e.outcome, e.flags, e.distance_m, e.core_c) for e in e0])
    print("tof   ", [(e.outcome, e.flags, e.distance_m, e.core_c) for e in e1])
    print(1)
    assert e1 and e1[-1].flags & protocol.FLAG_DISTANCE_TOF
    assert not e0[-1].flags & protocol.FLAG_DISTANCE_TOF
    assert [e.outcome for e in e0] == [e.outcome for e in e1]


@heapsize("128k")
def test_inconsistent_tof_is_ignored():
    s1, e1 = run(True, bias=-0.4)  # hits something 0.4 m in front of a 0.7 m head
    print("bias  ", [(e.outcome, e.flags, e.distance_m) for e in e1])
    assert e1 and not e1[-1].flags & protocol.FLAG_DISTANCE_TOF
