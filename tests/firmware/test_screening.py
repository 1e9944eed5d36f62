"""The pipeline on synthetic frames: one event per confirmed change, FEVER
once per person, no heap growth per frame."""

INTERPRETERS = ("micropython",)

import gc  # noqa: E402
from array import array  # noqa: E402

import calibration  # noqa: E402
import protocol  # noqa: E402
import screening  # noqa: E402

W = 32


def flat(t):
    # array(tc, range(n)) allocates once; a [t] * 768 list would need 6 KB more
    a = array("f", range(768))
    for i in range(768):
        a[i] = t
    return a


# a blackbody-calibrated device (u = 0.19 degC), as the bench assumes
CAL = calibration.fit_calibration([(t, t) for t in (30.0, 32.5, 35.0, 37.5, 40.0)])


def fill(f, bg=22.0):
    for i in range(768):
        f[i] = bg


def draw_person(f, c, skin_c, top=4):
    app = calibration.apparent_from_object(skin_c, calibration.SKIN_EMISSIVITY, 22.0)
    for r in range(top, top + 9):
        for x in range(c, c + 6):
            f[r * W + x] = app
    f[(top + 4) * W + c + 2] = app + 0.05  # hottest pixel inside the face
    for r in range(top + 9, 24):
        for x in range(c - 3, c + 9):
            f[r * W + x] = 28.0


def run(skins, frames=24, cfg=None):
    f = flat(22.0)  # the frame buffer first, as the driver allocates it at boot
    events = []
    s = screening.Screening(cfg or protocol.DeviceConfig(), CAL, events.append)
    s.process(f)
    for _ in range(frames):
        fill(f)
        for i, sk in enumerate(skins):
            draw_person(f, 3 + 16 * i, sk)
        s.process(f)
    return s, events


def test_febrile_person_one_fever_event():
    # skin 38.5 + offset 1.3 -> core 39.8: the whole interval above 38.0
    # (noise-free frames read about 0.6 degC low: the noise-maximum correction)
    s, events = run([38.5])
    fevers = [e for e in events if e.outcome == calibration.FEVER]
    assert len(fevers) == 1, events
    e = fevers[0]
    assert e.kind == protocol.EVENT_SCREENING
    assert e.flags & protocol.FLAG_CALIBRATED
    assert 38.9 < e.core_c < 40.0
    assert e.core_u_c > 0.8  # expanded: k * u, u >= the 0.4 offset uncertainty
    protocol.encode_event(e)  # fits the wire format


def test_afebrile_person_clear_once_and_never_fever():
    s, events = run([35.0])  # core about 36.3
    assert [e.outcome for e in events] == [calibration.CLEAR]


def test_confirmation_needs_consecutive_frames():
    s, events = run([38.5], frames=9, cfg=protocol.DeviceConfig(confirm_frames=10))
    assert events == []


def test_confirmed_after_confirm_frames():
    s, events = run([38.5], frames=12, cfg=protocol.DeviceConfig(confirm_frames=10))
    assert [e.outcome for e in events] == [calibration.FEVER]


def test_two_people_each_get_their_own_outcome():
    s, events = run([35.0, 38.5])
    outs = {}
    for e in events:
        outs.setdefault(e.track_id, []).append(e.outcome)
    assert sorted(outs.values()) == [[calibration.CLEAR], [calibration.FEVER]]


def test_hot_object_never_fever():
    f = flat(22.0)
    events = []
    s = screening.Screening(protocol.DeviceConfig(), CAL, events.append)
    for _ in range(30):
        fill(f)
        for r in range(4, 13):
            for x in range(10, 16):
                f[r * W + x] = 48.0  # a hot lamp on a warm stand
        for r in range(13, 24):
            for x in range(7, 19):
                f[r * W + x] = 28.0
        s.process(f)
    assert all(e.outcome != calibration.FEVER for e in events)


def test_no_heap_growth_per_frame():
    g = flat(22.0)  # one frame buffer, as the driver's
    events = []
    s = screening.Screening(protocol.DeviceConfig(), CAL, events.append)
    s.process(g)  # empty scene first: the background
    draw_person(g, 5, 35.0)
    draw_person(g, 21, 38.5)
    for _ in range(40):  # warm-up: tracks, readings and events settle
        s.process(g)
    assert len(events) == 2
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(200):
        s.process(g)
    gc.collect()
    after = gc.mem_alloc()
    assert after - before <= 0, (before, after)
    assert len(events) == 2  # no event per frame


def test_static_warm_object_is_released_to_the_background():
    screening.STATIC_S = 2.0  # 16 frames instead of two minutes, for the test
    try:
        f = flat(22.0)
        events = []
        s = screening.Screening(protocol.DeviceConfig(), CAL, events.append)
        s.process(f)
        draw_person(f, 8, 35.0)  # a person-shaped warm thing that never moves
        for _ in range(20):
            s.process(f)
        assert s.obj[s.trk.head_track[0]] == 1  # judged an object after 2 s still
        n = len(events)
        for _ in range(400):  # 50 s: the background absorbs it (tau 20 s)
            s.process(f)
        assert len(events) == n
        assert s.det.n_heads == 0
    finally:
        screening.STATIC_S = 120.0


def draw_narrow_head(f, skin_c):
    """A head 3 px wide where draw_person(f, 12, ..., top=2) has one 6 px
    wide: someone twice as far away, or a fragment of that head."""
    app = calibration.apparent_from_object(skin_c, calibration.SKIN_EMISSIVITY, 22.0)
    for r in range(4, 9):
        for x in range(13, 16):
            f[r * W + x] = app
    f[6 * W + 14] = app + 0.05
    for r in range(9, 24):
        for x in range(11, 18):
            f[r * W + x] = 28.0


def test_someone_farther_stepping_into_the_place_of_the_cleared_person_is_a_new_person():
    """A queue: the person cleared close up steps aside and the next one,
    twice as far (half the head width) and febrile, appears where they
    stood before the track is retired.  The track must not hand the
    newcomer the last person's CLEAR: they get their own id and outcome,
    and the last person's track ends (on_final)."""
    f = flat(22.0)
    events = []
    ended = []
    s = screening.Screening(protocol.DeviceConfig(), CAL, events.append, lambda tid, out: ended.append((tid, out)))
    s.process(f)
    for _ in range(12):
        fill(f)
        draw_person(f, 12, 35.0, top=2)
        s.process(f)
    assert [e.outcome for e in events] == [calibration.CLEAR]
    first = events[0].track_id
    for _ in range(12):
        fill(f)
        draw_narrow_head(f, 38.5)
        s.process(f)
    assert [e.outcome for e in events] == [calibration.CLEAR, calibration.FEVER]
    assert events[1].track_id != first
    assert ended == [(first, calibration.CLEAR)]


def test_a_head_narrow_for_a_frame_or_two_keeps_its_track():
    """A fragment now and then (hair above a glasses band) is not someone else."""
    f = flat(22.0)
    events = []
    s = screening.Screening(protocol.DeviceConfig(), CAL, events.append)
    s.process(f)
    for i in range(40):
        fill(f)
        if i % 4 < 2:
            draw_narrow_head(f, 35.0)  # two frames in four
        else:
            draw_person(f, 12, 35.0, top=2)
        s.process(f)
    assert [e.outcome for e in events] == [calibration.CLEAR]
    assert s.trk.next_id == 2  # one track only
