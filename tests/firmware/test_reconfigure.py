"""A configuration written by the app applies at once (Screening.reconfigure,
Helmet.apply_config, the on_config hook helmet._radio gives the GATT server):
the decision rule of every track from the next frame on, announced outcomes
stand, nothing allocated per frame; the buzzer setting follows at once."""

INTERPRETERS = ("micropython",)

import gc  # noqa: E402
from array import array  # noqa: E402

import calibration  # noqa: E402
import protocol  # noqa: E402
import screening  # noqa: E402
from checks import heapsize, raises  # noqa: E402

W = 32
CAL = calibration.fit_calibration([(t, t) for t in (30.0, 32.5, 35.0, 37.5, 40.0)])
SKIN = 37.0  # core about 37.98 +/- 0.99 (expanded): RECHECK under 38.0, FEVER over 36.5


def draw(f, skin_c=SKIN, person=True):
    for i in range(768):
        f[i] = 22.0
    if not person:
        return
    c, top = 13, 4
    app = calibration.apparent_from_object(skin_c, calibration.SKIN_EMISSIVITY, 22.0)
    for r in range(top, top + 9):
        for x in range(c, c + 6):
            f[r * W + x] = app
    f[(top + 4) * W + c + 2] = app + 0.05
    for r in range(top + 9, 24):
        for x in range(c - 3, c + 9):
            f[r * W + x] = 28.0


def start(cfg=None):
    f = array("f", range(768))
    draw(f, person=False)
    events = []
    s = screening.Screening(cfg or protocol.DeviceConfig(), CAL, events.append)
    s.process(f)
    draw(f)
    for _ in range(12):
        s.process(f)
    return s, f, events


def outcomes(events):
    return [(e.track_id, e.outcome) for e in events]


@heapsize("128k")
def test_recheck_becomes_fever_when_the_threshold_is_lowered():
    s, f, events = start()
    assert [e.outcome for e in events] == [calibration.RECHECK]
    track = events[0].track_id
    s.reconfigure(protocol.DeviceConfig(threshold_c=36.5))
    s.process(f)  # the next frame decides with the new threshold
    assert s.outcome[s.trk.head_track[0]] == calibration.FEVER
    for _ in range(protocol.DeviceConfig().confirm_frames):
        s.process(f)
    assert outcomes(events) == [(track, calibration.RECHECK), (track, calibration.FEVER)]
    assert events[1].core_u_c < 1.1  # same k: same expanded uncertainty
    # FEVER is final: raising the threshold again takes nothing back
    s.reconfigure(protocol.DeviceConfig(threshold_c=40.0))
    for _ in range(10):
        s.process(f)
    assert s.outcome[s.trk.head_track[0]] == calibration.CLEAR  # the rule says so now...
    assert len(events) == 2  # ...but the FEVER announced stands


@heapsize("128k")
def test_offset_k_hysteresis_and_confirmation_apply_from_the_next_frame():
    s, f, events = start()
    # a larger skin-to-core offset: the same skin reads as a febrile core;
    # ten confirmation frames now
    cfg = protocol.DeviceConfig(skin_to_core_offset_c=2.5, confirm_frames=10, hysteresis_c=0.5, coverage_k=1.5)
    s.reconfigure(cfg)
    d = s.deciders[s.trk.head_track[0]]
    assert (d.threshold_c, d.hysteresis_c, d.k) == (38.0, 0.5, 1.5)
    for _ in range(9):
        s.process(f)
    assert len(events) == 1  # FEVER is the outcome, not yet confirmed
    assert s.outcome[s.trk.head_track[0]] == calibration.FEVER
    s.process(f)
    assert [e.outcome for e in events] == [calibration.RECHECK, calibration.FEVER]
    assert 39.0 < events[1].core_c < 39.5  # skin + the new offset
    assert 1.5 * 0.45 < events[1].core_u_c < 1.5 * 0.55  # the new k expands it


@heapsize("128k")
def test_a_new_track_uses_the_new_rule_and_a_bad_config_changes_nothing():
    s, f, events = start()
    cfg = protocol.DeviceConfig(threshold_c=36.5)
    cfg.confirm_frames = 0  # invalid (1..30)
    with raises(protocol.OutOfRange):
        s.reconfigure(cfg)
    assert s.cfg.confirm_frames == 3 and s.deciders[0].threshold_c == 38.0
    draw(f, person=False)
    for _ in range(16):  # the person leaves; their track retires
        s.process(f)
    s.reconfigure(protocol.DeviceConfig(threshold_c=36.5))
    draw(f)
    for _ in range(12):  # someone else, same skin: FEVER straight away
        s.process(f)
    assert [e.outcome for e in events] == [calibration.RECHECK, calibration.FEVER]
    assert events[0].track_id != events[1].track_id


@heapsize("128k")
def test_reconfigure_adds_no_allocation_per_frame():
    s, f, events = start()
    s.reconfigure(protocol.DeviceConfig(threshold_c=36.5, hysteresis_c=0.3))
    for _ in range(20):
        s.process(f)
    assert len(events) == 2
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(100):
        s.process(f)
    gc.collect()
    assert gc.mem_alloc() - before <= 0


# ------------------------------------------------------------------ on the helmet
@heapsize("320k")
def test_the_apps_config_applies_at_once_on_the_helmet():
    """helmet._radio's on_config (what the GATT server calls for OP_SET_CONFIG):
    persisted, the threshold used from the next frame, the buzzer silenced
    at once."""
    import os

    import bluetooth

    import alarm
    import board
    import buzzer
    import config
    import helmet
    import simboard
    from journal import Journal

    simboard.reset_board()
    simboard.set_clock(None)
    bluetooth.sim_reset()
    for name in ("journal.bin", "journal.meta", config.PATH):
        try:
            os.remove(name)
        except OSError:
            pass

    class Camera:
        person = False

        def read_frame(self, out):
            draw(out, person=self.person)
            return 25.0

        def configure(self, rate):
            pass

    cfg = protocol.DeviceConfig()
    scr = screening.Screening(cfg, CAL)
    journal = Journal(capacity=32)
    buzz = buzzer.Buzzer(board.make_buzzer_pwm())
    al = alarm.Alarm(buzz, board.make_led())
    cam = Camera()
    h = helmet.Helmet(cam, scr, al, journal)
    server = helmet._radio(journal, cfg, h)
    assert server is not None
    on_config = server._on_config

    def frames(n):
        for _ in range(n):
            assert h.step()
            al.tick(h.clock())

    def outs():
        buf = bytearray(protocol.EVENT_SIZE)
        got = []
        for seq in range(1, journal.next_seq):
            assert journal.read_into(seq, buf)
            got.append(protocol.decode_event(buf).outcome)
        return got

    def duty():
        return simboard.pwm_timeline[board.BUZZER_PIN][-1][2]

    frames(1)
    cam.person = True
    frames(12)
    assert outs() == [calibration.RECHECK]
    # the officer lowers the threshold from the app
    assert on_config(protocol.DeviceConfig(threshold_c=36.5)) is not False
    frames(4)
    assert outs() == [calibration.RECHECK, calibration.FEVER]
    assert al.pattern is not None and duty() != 0  # the FEVER warble is on
    # the officer turns the buzzer off: silent at once, before the next tick
    assert on_config(protocol.DeviceConfig(threshold_c=36.5, buzzer=False)) is not False
    assert duty() == 0 and not buzz.enabled
    frames(20)
    assert duty() == 0  # the pattern runs on silently (the LED still blinks)
    saved, why = config.load()
    assert why is None and saved.threshold_c == 36.5 and not saved.buzzer  # persisted for the next boot
    assert scr.cfg.threshold_c == 36.5
