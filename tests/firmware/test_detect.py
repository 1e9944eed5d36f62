"""Detection on synthetic 32x24 frames: people found, hot objects rejected,
background adapts only where no person is."""

INTERPRETERS = ("micropython",)

import gc  # noqa: E402
from array import array  # noqa: E402

import detect  # noqa: E402
from checks import near  # noqa: E402

W = 32


def flat(t):
    # array(tc, range(n)) allocates once; a [t] * 768 list would need 6 KB more
    a = array("f", range(768))
    for i in range(768):
        a[i] = t
    return a


def frame(bg=22.0):
    return flat(bg)


def rect(f, r0, r1, c0, c1, t):
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            f[r * W + c] = t


def person(f, c=15, top=6, w=4, h=7, skin=34.5, body=28.0):
    rect(f, top, top + h - 1, c, c + w - 1, skin)  # head
    f[(top + 3) * W + c + 1] = skin + 0.2  # the hottest face pixel, inside the face
    rect(f, top + h, 23, c - 3, c + w + 2, body)  # torso to the bottom of the image


def test_person_head_found_at_top_of_body():
    d = detect.Detector(8.0)
    d.process(frame())  # empty scene: background
    f = frame()
    person(f)
    d.process(f)
    assert d.n_heads == 1
    assert d.h_r0[0] == 6
    assert d.h_c0[0] == 15 and d.h_c1[0] == 18
    near(d.h_peak_c[0], 34.7, 1e-4)
    assert d.h_peak[0] == 9 * W + 16
    near(d.h_bg_c[0], 22.0, 1e-4)
    near(d.h_weq[0], 4.0, 0.1)
    assert d.h_interior[0] == 1


def test_two_people_side_by_side():
    d = detect.Detector(8.0)
    d.process(frame())
    f = frame()
    person(f, c=5)
    person(f, c=22)
    d.process(f)
    assert d.n_heads == 2
    cols = sorted([d.h_x[0], d.h_x[1]])
    near(cols[0], 7.0, 0.01)
    near(cols[1], 24.0, 0.01)


def test_cool_fringe_over_a_near_crown_is_not_the_head():
    # Hot air (32 degC): hair barely clears the threshold and one noise
    # pixel above the crown makes a 1-pixel, 2-row top on a wide head.  It
    # widens abruptly like a far head on its shoulders, but the rows below
    # are far warmer than it (a face; a far person's clothes are cooler
    # than their head): the head goes on down, it is not the fringe.
    d = detect.Detector(8.0)
    d.process(frame(32.0))
    f = frame(32.0)
    person(f, c=12, top=6, w=8, h=10, skin=37.0, body=34.0)
    rect(f, 16, 23, 4, 23, 34.0)  # shoulders: the whole width of the image below
    f[4 * W + 15] = 33.6  # noise above the crown
    f[5 * W + 15] = 34.2  # hair at the crown
    d.process(f)
    assert d.n_heads == 1
    assert d.h_wmax[0] == 8
    assert d.h_peak[0] == 9 * W + 13
    near(d.h_peak_c[0], 37.2, 1e-4)


def test_far_head_on_its_shoulders_is_cut_there():
    # a far person: a 1-pixel head (mixed face) directly on shoulders
    # three times as wide and cooler (clothes): the head is the top only
    d = detect.Detector(8.0)
    d.process(frame())
    f = frame()
    rect(f, 8, 9, 15, 15, 29.0)
    rect(f, 10, 23, 14, 16, 26.5)
    d.process(f)
    assert d.n_heads == 1
    assert d.h_wmax[0] == 1 and d.h_rows[0] == 2


def test_hot_lamp_and_lone_warm_blob_rejected():
    d = detect.Detector(8.0)
    d.process(frame())
    f = frame()
    person(f, c=14, skin=60.0)  # a 60 degC lamp on a warm post
    rect(f, 3, 5, 2, 4, 35.0)  # a face-warm panel with nothing below
    d.process(f)
    assert d.n_heads == 0
    assert d.rejects[detect.REJECT_HOT] == 1
    assert d.rejects[detect.REJECT_NO_BODY] == 1


def test_wall_is_not_a_head():
    d = detect.Detector(8.0)
    d.process(frame())
    f = frame()
    rect(f, 10, 23, 0, 20, 30.0)  # a wide warm area: flatter than any head
    d.process(f)
    assert d.n_heads == 0


def test_background_adapts_except_under_people():
    d = detect.Detector(8.0)
    f = frame()
    for _ in range(200):  # past the start-up averaging
        d.process(f)
        d.update_background(f)
    person(f)
    rect(f, 0, 0, 28, 31, 22.5)  # a slow change of the wall, below the threshold
    for _ in range(80):  # 10 s at 8 Hz
        d.process(f)
        for k in range(d.n_heads):
            d.freeze_box(k)
        d.update_background(f)
    # the person is still there (not absorbed), the wall moved toward 22.5 with tau 2**7 frames
    assert d.n_heads == 1
    near(d.bg_c(6 * W + 16), 22.0, 1e-4)
    near(d.bg_c(0 * W + 30), 22.0 + 0.5 * (1 - (1 - 1 / 128) ** 80), 0.02)


def test_person_present_at_start_is_found():
    f = frame()
    person(f)
    d = detect.Detector(8.0)
    d.process(f)  # first frame ever: warm pixels are not taken as background
    assert d.n_heads == 1


def test_scene_player_streams_into_one_buffer():
    import struct

    from scene_player import ScenePlayer

    with open("rec.htrs", "wb") as out:
        out.write(struct.pack("<4sHHHfI", b"HTRS", 1, 32, 24, 8.0, 2))
        for k in range(2):
            out.write(struct.pack("<ff", k / 8.0, 28.5))
            row = array("f", range(32))
            for r in range(24):
                for c in range(32):
                    row[c] = 20.0 + k + (r * 32 + c) / 1000.0
                out.write(row)  # little-endian host, as the recording
    p = ScenePlayer("rec.htrs")
    buf = p.frame
    assert p.next() and p.index == 0 and p.ta_c == 28.5
    assert abs(p.frame[767] - 20.767) < 1e-4
    gc.collect()
    before = gc.mem_alloc()
    ok = p.next()
    grown = gc.mem_alloc() - before
    assert grown <= 64, grown  # t_s and ta_c (boxed floats) at most, no frame copy
    assert ok and p.frame is buf and p.t_s == 0.125
    assert abs(p.frame[0] - 21.0) < 1e-6
    assert not p.next()
    p.close()


def test_interior_pixels_counted_and_peak_neighbours_kept():
    d = detect.Detector(8.0)
    d.process(frame())
    f = frame()
    person(f)  # 4 x 7 head: interior pixels are columns 16-17, rows 7-11
    d.process(f)
    assert d.h_interior[0] == 1
    assert d.h_nint[0] == 10
    p = d.h_peak[0]
    for j, q in enumerate((p - 1, p + 1, p - W, p + W)):
        near(d.h_nb[j], f[q], 1e-4)
