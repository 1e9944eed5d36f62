"""Tracks keep their ids while people move, cross and leave."""

INTERPRETERS = ("micropython",)

from array import array  # noqa: E402

import track  # noqa: E402

XS = array("f", [0.0] * 8)
YS = array("f", [0.0] * 8)
WS = array("f", [0.0] * 8)


def step(t, heads):
    for k, (x, y, w) in enumerate(heads):
        XS[k] = x
        YS[k] = y
        WS[k] = w
    t.update(XS, YS, WS, len(heads))
    return [t.ids[t.head_track[k]] for k in range(len(heads))]


def test_ids_stable_while_walking():
    t = track.Tracker(8.0)
    first = step(t, [(5.0, 10.0, 3.0)])
    for i in range(1, 20):
        assert step(t, [(5.0 + 0.8 * i, 10.0, 3.0)]) == first


def test_crossing_people_keep_ids():
    t = track.Tracker(8.0)
    a, b = step(t, [(4.0, 10.0, 5.0), (28.0, 10.0, 2.0)])
    for i in range(1, 25):
        xa = 4.0 + i
        xb = 28.0 - i
        ia, ib = step(t, [(xa, 10.0, 5.0), (xb, 10.0, 2.0)])
        assert (ia, ib) == (a, b), (i, ia, ib)


def test_track_retired_after_missed_frames_and_new_id_after():
    t = track.Tracker(8.0, max_missed_s=0.5)  # 4 frames
    (a,) = step(t, [(10.0, 10.0, 3.0)])
    retired = False
    for _ in range(6):
        step(t, [])
        for s in range(track.MAX_TRACKS):
            if t.retired[s] and t.ids[s] == a:
                retired = True
    assert retired
    (b,) = step(t, [(10.0, 10.0, 3.0)])
    assert b != a


def test_short_occlusion_bridged():
    t = track.Tracker(8.0)
    (a,) = step(t, [(10.0, 10.0, 3.0)])
    step(t, [(11.0, 10.0, 3.0)])
    step(t, [])
    step(t, [])
    assert step(t, [(14.0, 10.0, 3.0)]) == [a]


def test_begin_gives_a_tracked_head_a_new_id_in_place():
    """What the screening calls when someone else has taken over a head."""
    t = track.Tracker(8.0)
    (a,) = step(t, [(10.0, 8.0, 8.0)])
    step(t, [(11.0, 8.0, 8.0)])
    slot = t.head_track[0]
    t.begin(slot, 12.0, 9.0, 4.0, 34.0)
    assert t.new[slot] and t.ids[slot] != a
    assert (t.x[slot], t.y[slot], t.w[slot], t.vx[slot]) == (12.0, 9.0, 4.0, 0.0)
    (b,) = step(t, [(12.0, 9.0, 4.0)])
    assert b == t.ids[slot] and b != a
