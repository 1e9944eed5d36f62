"""The optional VL53L1X on the helmet's main loop, on the simulated board:
the real driver against the virtual part (tools/simboard/virtual_vl53l1x.py),
the real screening and fusion; the thermal camera is a fake that draws a
person (the loop's ToF handling is under test here, not the MLX90640).

Real time: the ToF ranges every 50 ms while frames come every few tens of ms."""

INTERPRETERS = ("micropython",)

import asyncio  # noqa: E402
import time  # noqa: E402

import alarm  # noqa: E402
import board  # noqa: E402
import buzzer  # noqa: E402
import calibration  # noqa: E402
import helmet  # noqa: E402
import protocol  # noqa: E402
import simboard  # noqa: E402
import tof  # noqa: E402
from checks import heapsize, near  # noqa: E402
from journal_fixtures import fresh_journal, journal_events  # noqa: E402

W = 32
CAL = calibration.fit_calibration([(t, t) for t in (30.0, 32.5, 35.0, 37.5, 40.0)])
HEAD_SIZE_M = 0.694  # the drawn head's head-size distance (6 px wide)
TOF_M = 0.80  # what the ToF says (head centre): agrees with head size, and differs from it


class PersonCamera:
    """read_frame: 22 degC background, and a person (skin 35 degC: CLEAR)
    while ``person`` is set; a read takes ``frame_ms``."""

    def __init__(self, frame_ms=25):
        self.person = False
        self.frame_ms = frame_ms
        self.reads = 0
        self.app = calibration.apparent_from_object(35.0, calibration.SKIN_EMISSIVITY, 22.0)

    def read_frame(self, f):
        self.reads += 1
        time.sleep_ms(self.frame_ms)
        for i in range(768):
            f[i] = 22.0
        if self.person:
            c, top, app = 13, 4, self.app
            for r in range(top, top + 9):
                for x in range(c, c + 6):
                    f[r * W + x] = app
            f[(top + 4) * W + c + 2] = app + 0.05
            for r in range(top + 9, 24):
                for x in range(c - 3, c + 9):
                    f[r * W + x] = 28.0
        return 25.0

    def configure(self, rate):
        pass

    def read_register(self, reg):
        return 0


def tof_mm(head_centre_m):
    return int(round((head_centre_m - tof.FRONT_TO_CENTRE_M) * 1000))


def build(part=None):
    """The helmet as helmet.main builds it when the probe finds a VL53L1X."""
    import virtual_vl53l1x
    import vl53l1x
    from screening import Screening

    simboard.reset_board()
    simboard.set_clock(None)
    part = part or virtual_vl53l1x.VirtualVL53L1X()
    part.set_target(tof_mm(TOF_M))  # (used only for a head whose size agrees)
    simboard.attach_i2c(board.VL53L1X_ADDRESS, part)
    i2c = board.make_i2c()
    assert helmet.tof_fitted(i2c, board.VL53L1X_ADDRESS)
    fusion = tof.ToFFusion()
    scr = Screening(protocol.DeviceConfig(), CAL, tof=fusion)
    journal = fresh_journal()
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())

    def opener():
        return vl53l1x.VL53L1X(
            i2c, board.VL53L1X_ADDRESS, timing_budget_ms=helmet.TOF_PERIOD_MS, period_ms=helmet.TOF_PERIOD_MS
        )

    h = helmet.Helmet(PersonCamera(), scr, al, journal, tof=fusion, tof_opener=opener)
    return h, part


def distance_faults(journal):
    """The FAULT_DISTANCE_SENSOR events the journal holds."""
    evs = journal_events(journal, protocol.EVENT_FAULT)
    return [e for e in evs if e.outcome == protocol.FAULT_DISTANCE_SENSOR]


async def until(cond, what, ms=6000):
    t0 = time.ticks_ms()
    while not cond():
        if time.ticks_diff(time.ticks_ms(), t0) > ms:
            raise AssertionError("timed out waiting for " + what)
        await asyncio.sleep_ms(5)


async def frames(h, n):
    f0 = h.frames
    await until(lambda: h.frames >= f0 + n, "%d frames" % n)


@heapsize("160k")
def test_probe_finds_only_a_vl53l1x():
    import virtual_vl53l1x
    import vl53l1x

    assert helmet.TOF_MODEL_ID == vl53l1x.MODEL_ID
    simboard.reset_board()
    i2c = board.make_i2c()
    assert not helmet.tof_fitted(i2c, board.VL53L1X_ADDRESS)  # not fitted: no error
    simboard.attach_i2c(board.VL53L1X_ADDRESS, virtual_vl53l1x.VirtualVL53L1X(model_id=0xEEAA))
    assert not helmet.tof_fitted(i2c, board.VL53L1X_ADDRESS)  # another part at 0x29
    simboard.attach_i2c(board.VL53L1X_ADDRESS, virtual_vl53l1x.VirtualVL53L1X())
    assert helmet.tof_fitted(i2c, board.VL53L1X_ADDRESS)


@heapsize("320k")
def test_events_carry_the_tof_distance_and_an_unplugged_tof_is_not_used():
    h, part = build()
    cam = h.camera
    journal = h.journal

    async def scenario():
        loop = asyncio.create_task(h.run(frames=0x7FFFFFFF))
        # 1. someone in front of the helmet, the ToF sees them
        await until(lambda: h.tof_ranges >= 3, "ToF ranges")
        cam.person = True
        await until(lambda: len(journal_events(journal, protocol.EVENT_SCREENING)) >= 1, "the first event")
        await frames(h, 4)
        # 2. the ToF is unplugged; the person leaves
        simboard.detach_i2c(board.VL53L1X_ADDRESS)
        cam.person = False
        await until(lambda: h.tof_faults == 1 and not h.fusion.valid, "the ToF fault")
        assert len(distance_faults(journal)) == 1  # the officer learns of it at once
        await frames(h, 16)  # the track retires
        # 3. someone comes: screened without the ToF
        n = len(journal_events(journal, protocol.EVENT_SCREENING))
        cam.person = True
        await until(lambda: len(journal_events(journal, protocol.EVENT_SCREENING)) > n, "the second event")
        await frames(h, 4)
        assert h.tof_faults == 1 and h.tof_errors >= 1
        # 4. plugged back in: re-initialised after the backoff, ranging again
        cam.person = False
        simboard.attach_i2c(board.VL53L1X_ADDRESS, part)
        r0 = h.tof_ranges
        await until(lambda: h.tof_reinits >= 1 and h.tof_ranges > r0 + 2, "the ToF back")
        await frames(h, 16)
        # 5. and the next person gets the ToF's distance again
        n = len(journal_events(journal, protocol.EVENT_SCREENING))
        cam.person = True
        await until(lambda: len(journal_events(journal, protocol.EVENT_SCREENING)) > n, "the third event")
        loop.cancel()

    asyncio.run(scenario())
    evs = journal_events(journal, protocol.EVENT_SCREENING)
    by_track = {}
    for e in evs:
        by_track.setdefault(e.track_id, []).append(e)
    assert len(by_track) == 3, [(e.track_id, e.outcome, e.flags, e.distance_m) for e in evs]
    first, second, third = [by_track[t] for t in sorted(by_track)]
    for e in first + third:
        assert e.flags & protocol.FLAG_DISTANCE_TOF
        near(e.distance_m, TOF_M, 0.03)
    for e in second:
        assert not e.flags & protocol.FLAG_DISTANCE_TOF  # the unplugged ToF gave no distance
        near(e.distance_m, HEAD_SIZE_M, 0.03)
    assert all(e.outcome == calibration.CLEAR for e in evs)
    assert h.read_errors == 0  # the thermal side never noticed
    assert h.tof_faults == 1  # one episode, however many retries
    # ... and one fault event for it, the journal's only fault
    (fault,) = journal_events(journal, protocol.EVENT_FAULT)
    assert fault.outcome == protocol.FAULT_DISTANCE_SENSOR and h.tof_errors > 1
    assert fault.core_c is None and fault.skin_c is None and fault.track_id == 0


@heapsize("320k")
def test_invalid_range_statuses_give_no_distance_and_no_fault():
    h, part = build()
    cam = h.camera
    seen = []
    process = h.screening.process

    def spy(frame, ta_c=0.0, unix_time=0, t_ms=0):
        seen.append(h.fusion.fresh(t_ms))
        return process(frame, ta_c, unix_time, t_ms)

    h.screening.process = spy

    async def scenario():
        loop = asyncio.create_task(h.run(frames=0x7FFFFFFF))
        await until(lambda: h.tof_ranges >= 3, "ToF ranges")
        part.fault = "sigma"  # every result fails its sigma check from now on
        i0 = h.tof_invalid
        await until(lambda: h.tof_invalid >= i0 + 2, "invalid results")
        del seen[:]
        cam.person = True
        await until(lambda: len(journal_events(h.journal, protocol.EVENT_SCREENING)) >= 1, "an event")
        await frames(h, 4)
        loop.cancel()

    asyncio.run(scenario())
    assert not any(seen)  # no frame saw a usable ToF reading
    evs = journal_events(h.journal, protocol.EVENT_SCREENING)
    assert evs and not any(e.flags & protocol.FLAG_DISTANCE_TOF for e in evs)
    near(evs[-1].distance_m, HEAD_SIZE_M, 0.03)
    assert h.tof_faults == 0 and h.tof_errors == 0  # the part works: it says it cannot range


@heapsize("320k")
def test_tof_faults_back_off_and_never_stop_screening():
    """A NACK burst, a part that resets (brown-out: it stops ranging), and a
    part reporting hardware failure: each an episode, retried with a doubling
    backoff; frames keep coming throughout."""
    h, part = build()

    async def scenario():
        loop = asyncio.create_task(h.run(frames=0x7FFFFFFF))
        await until(lambda: h.tof_ranges >= 3, "ToF ranges")
        # a glitch longer than the driver's retries
        simboard.inject_i2c_fault(board.VL53L1X_ADDRESS, "nack", count=8)
        await until(lambda: h.tof_faults == 1, "the NACK")
        r = h.tof_ranges
        await until(lambda: h.tof_ranges >= r + helmet.TOF_RECOVERED and not h._tof_in_fault, "recovery")
        assert h.tof_reinits == 1
        assert len(distance_faults(h.journal)) == 1
        # a brown-out of the part: ranging stops, no result comes any more
        part.power_on()
        f0 = h.frames
        await until(lambda: h.tof_faults == 2, "the timeout")
        r = h.tof_ranges
        await until(lambda: h.tof_ranges >= r + helmet.TOF_RECOVERED and not h._tof_in_fault, "recovery 2")
        assert h.tof_reinits == 2 and h.frames > f0
        assert len(distance_faults(h.journal)) == 2  # recovered, then failed again: a second event
        # hardware fail: re-initialised again and again, backing off
        part.fault = "hardware"
        e0 = h.tof_errors
        t0 = time.ticks_ms()
        await until(lambda: h.tof_errors >= e0 + 4, "repeated failures", ms=8000)
        elapsed = time.ticks_diff(time.ticks_ms(), t0)
        assert h.tof_faults == 3
        assert len(distance_faults(h.journal)) == 3  # one for the episode, not one per failure
        f1 = h.frames
        await frames(h, 10)  # screening goes on
        loop.cancel()
        return elapsed, f1

    elapsed, f1 = asyncio.run(scenario())
    # backoffs of 250, 500 and 1000 ms between the four failures of the third episode
    assert elapsed >= 1750, elapsed
    assert h.tof_invalid >= 3 and not h.fusion.valid and h.read_errors == 0
    faults = journal_events(h.journal, protocol.EVENT_FAULT)
    assert [e.outcome for e in faults] == [protocol.FAULT_DISTANCE_SENSOR] * 3, [e.outcome for e in faults]
    assert h.tof_errors >= 6  # more failed reads than episodes


@heapsize("320k")
def test_no_tof_fitted_no_distance_sensor_fault():
    """As main() builds the helmet when the probe finds no VL53L1X: no
    fusion, no ToF task, and nothing ever reports the absent part."""
    from screening import Screening

    simboard.reset_board()
    simboard.set_clock(None)
    assert not helmet.tof_fitted(board.make_i2c(), board.VL53L1X_ADDRESS)
    journal = fresh_journal()
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())
    cam = PersonCamera()
    cam.person = True
    h = helmet.Helmet(cam, Screening(protocol.DeviceConfig(), CAL, tof=None), al, journal)
    asyncio.run(h.run(frames=24))
    evs = journal_events(journal, protocol.EVENT_SCREENING)
    assert evs and not any(e.flags & protocol.FLAG_DISTANCE_TOF for e in evs)  # head size only
    near(evs[-1].distance_m, HEAD_SIZE_M, 0.03)
    assert journal_events(journal, protocol.EVENT_FAULT) == []
    assert h.tof_faults == 0 and h.tof_errors == 0 and h._vl is None
