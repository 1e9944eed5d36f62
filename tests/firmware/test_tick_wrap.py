"""time.ticks_ms() wraps: alarm, helmet and ToF fusion across the wrap.

On the ESP32 the tick period is 2**30 ms (12.4 days); the unix port's is
2**62, so a helmet would never see a wrap here.  WrapTime stands in for the
``time`` module of the firmware modules under test (module.time = w, as
simboard.VirtualClock installs itself) with the ESP32's period, and starts a
few hundred ms before the wrap."""

INTERPRETERS = ("micropython",)

import asyncio  # noqa: E402
import time  # noqa: E402

import machine  # noqa: E402

import alarm  # noqa: E402
import board  # noqa: E402
import buzzer  # noqa: E402
import calibration  # noqa: E402
import helmet  # noqa: E402
import protocol  # noqa: E402
import simboard  # noqa: E402
import tof  # noqa: E402
from checks import heapsize  # noqa: E402
from journal_fixtures import fresh_journal, journal_events  # noqa: E402

PERIOD = 1 << 30  # the ESP32 port's ticks period
MASK = PERIOD - 1
HALF = PERIOD // 2


class WrapTime:
    """ticks_ms/ticks_add/ticks_diff with the ESP32's period.  Manual
    (``advance``, sleep_ms moves it) or, with follow=True, following the
    real clock from ``start`` (for code run by asyncio, which sleeps in
    real time)."""

    def __init__(self, start, follow=False):
        self.start = start & MASK
        self.now = self.start
        self.follow = follow
        self.t0 = time.ticks_ms()

    def ticks_ms(self):
        if self.follow:
            return (self.start + time.ticks_diff(time.ticks_ms(), self.t0)) & MASK
        return self.now

    def ticks_add(self, t, delta):
        return (t + delta) & MASK

    def ticks_diff(self, a, b):
        return ((a - b + HALF) & MASK) - HALF

    def sleep_ms(self, ms):
        if self.follow:
            time.sleep_ms(ms)
        else:
            self.now = (self.now + ms) & MASK

    def advance(self, ms):
        self.now = (self.now + ms) & MASK

    def install(self, *modules):
        for m in modules:
            m.time = self
        return self


@heapsize("160k")
def test_wrap_time_is_the_esp32s():
    w = WrapTime(-5)
    assert w.ticks_ms() == PERIOD - 5
    assert w.ticks_add(w.ticks_ms(), 10) == 5
    assert w.ticks_diff(5, PERIOD - 5) == 10
    assert w.ticks_diff(PERIOD - 5, 5) == -10


# ------------------------------------------------------------------ alarm
def _alarm():
    simboard.reset_board()
    return alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led(), board.make_button())


def tones():
    return [e for e in simboard.pwm_timeline.get(board.BUZZER_PIN, []) if e[2]]


def _tick_for(a, w, ms, step=10):
    for _ in range(ms // step):
        a.tick(w.ticks_ms())
        w.advance(step)


@heapsize("160k")
def test_fever_pattern_plays_repeats_and_stops_across_the_wrap():
    w = WrapTime(-400).install(alarm)
    a = _alarm()
    # the event comes before the alarm's first tick (its ``now`` is stale)
    a.on_event(protocol.ScreeningEvent(outcome=calibration.FEVER, track_id=1, core_c=39.0, core_u_c=0.9))
    _tick_for(a, w, 1000)  # the first pattern (900 ms) straddles the wrap
    assert w.ticks_ms() < 1000  # wrapped
    assert [e[1] for e in tones()] == [p[0] for p in buzzer.FEVER]
    assert a.pattern is None and simboard.pwm_timeline[board.BUZZER_PIN][-1][2] == 0  # the tone ended
    _tick_for(a, w, 20000)  # the repeats, FEVER_REPEAT_MS apart, then no more
    assert len(tones()) == alarm.FEVER_REPEATS * len(buzzer.FEVER)
    assert a.pattern is None and a.repeats_left == 0
    assert simboard.pwm_timeline[board.BUZZER_PIN][-1][2] == 0


@heapsize("160k")
def test_led_times_out_and_button_debounces_across_the_wrap():
    w = WrapTime(-300).install(alarm)
    a = _alarm()
    a.tick(w.ticks_ms())
    a.on_event(protocol.ScreeningEvent(outcome=calibration.CLEAR, track_id=1))
    _tick_for(a, w, alarm.CLEAR_LED_MS - 50)
    assert simboard.pin_levels[board.LED_PIN] == 1  # still on, 700 ms after the wrap
    _tick_for(a, w, 100)
    assert simboard.pin_levels[board.LED_PIN] == 0 and a.led_mode == alarm.LED_OFF
    # a FEVER just before the wrap; the button just after it silences it
    w.now = PERIOD - 20
    a.on_event(protocol.ScreeningEvent(outcome=calibration.FEVER, track_id=2, core_c=39.0, core_u_c=0.9))
    _tick_for(a, w, 40)
    assert simboard.pwm_timeline[board.BUZZER_PIN][-1][2] != 0  # sounding
    simboard.press_button(board.BUTTON_PIN)
    a.tick(w.ticks_ms())
    assert a.silenced and a.pattern is None
    assert simboard.pwm_timeline[board.BUZZER_PIN][-1][2] == 0
    # a bounce within DEBOUNCE_MS is ignored, a press after it counts
    a.on_event(protocol.ScreeningEvent(outcome=calibration.FEVER, track_id=3, core_c=39.0, core_u_c=0.9))
    w.advance(10)
    simboard.press_button(board.BUTTON_PIN)
    a.tick(w.ticks_ms())
    assert not a.silenced  # the bounce: the new alarm goes on
    _tick_for(a, w, alarm.DEBOUNCE_MS)
    simboard.press_button(board.BUTTON_PIN)
    a.tick(w.ticks_ms())
    assert a.silenced


@heapsize("160k")
def test_button_works_after_days_without_a_press():
    """The debounce does not compare with a press half a period ago (a
    ticks_diff that far back has the wrong sign)."""
    w = WrapTime(0).install(alarm)
    a = _alarm()
    a.tick(w.ticks_ms())
    simboard.press_button(board.BUTTON_PIN)
    a.tick(w.ticks_ms())
    assert a.silenced
    a.silenced = False
    for _ in range(7):  # seven days (ticked sparsely: the outcome is the same)
        w.advance(24 * 3600 * 1000)
        a.tick(w.ticks_ms())
    simboard.press_button(board.BUTTON_PIN)
    a.tick(w.ticks_ms())
    assert a.silenced


# ------------------------------------------------------------------ ToF fusion
@heapsize("160k")
def test_tof_reading_is_fresh_or_stale_rightly_across_the_wrap():
    WrapTime(0).install(tof)
    f = tof.ToFFusion()
    t = PERIOD - 100  # the reading just before the wrap
    f.reading(1500, 0, t)
    assert f.fresh((t + 150) & MASK)  # a frame 150 ms later, after the wrap: fresh
    assert f.fresh((t + tof.MAX_AGE_MS) & MASK)
    assert not f.fresh((t - 30) & MASK)  # a frame before the reading: not from it
    assert f.valid  # (and the reading stays for the next frame)
    assert not f.fresh((t + tof.MAX_AGE_MS + 1) & MASK)  # stale
    # a stale reading never looks fresh again when the ticks come round
    assert not f.fresh((t + PERIOD + 10) & MASK)
    assert not f.valid


# ------------------------------------------------------------------ helmet
class FakeCamera:
    def __init__(self, fail=()):
        self.fail = set(fail)
        self.reads = 0
        self.configured = 0

    def read_frame(self, out):
        n = self.reads
        self.reads += 1
        time.sleep_ms(5)
        if n in self.fail:
            import mlx90640

            raise mlx90640.SensorError("scripted failure %d" % n)
        return 30.0

    def read_register(self, reg):
        return 0

    def configure(self, rate):
        self.configured += 1


class FakeScreening:
    """Emits a RECHECK on every 10th frame; remembers each frame's time stamp."""

    def __init__(self):
        self.rate_hz = 8
        self.sink = None
        self.on_final = None
        self.frames = 0
        self.stamps = []
        self.tof = None
        self.fresh = []

    def process(self, frame, ta_c=0.0, unix_time=0, t_ms=0):
        self.frames += 1
        self.stamps.append(t_ms)
        if self.tof is not None:
            self.fresh.append(self.tof.fresh(t_ms))
        if self.frames % 10 == 0:
            self.sink(protocol.ScreeningEvent(outcome=calibration.RECHECK, track_id=self.frames, time=unix_time))
        return 0


@heapsize("160k")
def test_backoff_feeder_and_event_times_across_the_wrap():
    simboard.reset_board()
    simboard.set_clock(None)  # the board (its watchdog) on real time
    w = WrapTime(-400, follow=True).install(helmet, alarm)
    cam = FakeCamera(fail=range(3, 10))  # seven failed reads: two re-inits, 250 + 500 ms of backoff
    scr = FakeScreening()
    journal = fresh_journal(capacity=64)
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())
    h = helmet.Helmet(cam, scr, al, journal, clock=w.ticks_ms, feed_ms=20)
    h.wdt = machine.WDT(timeout=300)
    h.set_time(1700000000)
    t0 = w.ticks_ms()
    asyncio.run(h.run(frames=40))
    assert w.ticks_diff(w.ticks_ms(), t0) > 750 and w.ticks_ms() < t0  # the run crossed the wrap
    assert h.read_errors == 7 and h.reinits == 2 and cam.configured == 3
    assert [e.outcome for e in journal_events(journal) if e.kind == protocol.EVENT_FAULT] == [
        protocol.FAULT_SENSOR_DATA,
        protocol.FAULT_SENSOR_REINIT,
    ]
    assert h.feeds >= 10 and not simboard.resets  # fed through the backoff, across the wrap
    times = [e.time for e in journal_events(journal)]
    assert times == sorted(times) and 1700000000 <= times[0] and times[-1] <= 1700000000 + 3, times
    assert h.unix_time() == 1700000000 + w.ticks_diff(w.ticks_ms(), t0) // 1000
    # the frames' stamps are the helmet's clock: they cross the wrap in order
    d = [w.ticks_diff(b, a) for a, b in zip(scr.stamps, scr.stamps[1:])]
    assert min(d) >= 0 and max(scr.stamps) > PERIOD - 400 and min(scr.stamps) < 1000


@heapsize("160k")
def test_unix_time_survives_more_than_half_a_tick_period():
    """Set once, read every second for 13 days (past the wrap and past
    ticks_diff's half-period range): it keeps counting."""
    simboard.reset_board()
    w = WrapTime(0).install(helmet)
    journal = fresh_journal(capacity=64)
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())
    h = helmet.Helmet(FakeCamera(), FakeScreening(), al, journal, clock=w.ticks_ms)
    h.set_time(1700000000)
    days = 13
    for _ in range(days * 24):
        for _ in range(3600):
            w.advance(1000)
        h.unix_time()  # hourly here; the loop calls it every frame
    assert h.unix_time() == 1700000000 + days * 86400


@heapsize("256k")
def test_tof_ranges_stay_fresh_and_a_stuck_tof_times_out_across_the_wrap():
    import virtual_vl53l1x
    import vl53l1x

    simboard.reset_board()
    simboard.set_clock(None)
    w = WrapTime(-800, follow=True).install(helmet, alarm, tof, vl53l1x)
    part = virtual_vl53l1x.VirtualVL53L1X()
    part.set_target(1400)
    simboard.attach_i2c(board.VL53L1X_ADDRESS, part)
    fusion = tof.ToFFusion()
    scr = FakeScreening()
    scr.tof = fusion
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())
    i2c = board.make_i2c()
    h = helmet.Helmet(
        FakeCamera(),
        scr,
        al,
        fresh_journal(capacity=64),
        clock=w.ticks_ms,
        tof=fusion,
        tof_opener=lambda: vl53l1x.VL53L1X(i2c, board.VL53L1X_ADDRESS, timing_budget_ms=50, period_ms=50),
    )
    marks = {}

    async def scenario():
        loop = asyncio.create_task(h.run(frames=0x7FFFFFFF))
        while w.ticks_diff(w.ticks_ms(), PERIOD - 150) < 0:  # ranging until just before the wrap
            await asyncio.sleep_ms(2)
        part.stuck = True  # no result ever becomes ready: the last one came before the wrap
        marks["stuck_t"] = w.ticks_ms()
        marks["stuck"] = len(scr.stamps)
        marks["ranges"] = h.tof_ranges
        for _ in range(400):  # 2 s at most
            if h.tof_faults:
                break
            await asyncio.sleep_ms(5)
        marks["fault_at"] = w.ticks_ms()
        loop.cancel()

    asyncio.run(scenario())
    assert marks["ranges"] >= 5
    # the timeout was noticed after the wrap, TOF_TIMEOUT_MS after the last range
    assert h.tof_faults == 1 and h.tof_errors == 1 and not fusion.valid
    assert marks["stuck_t"] > HALF  # (before the wrap)
    assert w.ticks_diff(marks["fault_at"], marks["stuck_t"]) <= helmet.TOF_TIMEOUT_MS + 150, marks
    # from the first valid range on, frames saw a fresh reading, across the
    # wrap, until it aged past MAX_AGE_MS after the part stuck; never again after
    first = scr.fresh.index(True)
    seen = scr.fresh[first:]
    n = seen.count(True)
    assert seen[:n] == [True] * n and first + n > marks["stuck"], (first, n, marks)
    fresh_stamps = scr.stamps[first : first + n]
    assert min(fresh_stamps) < 1000 and max(fresh_stamps) > PERIOD - 1000  # on both sides of the wrap
