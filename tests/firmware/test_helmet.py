"""The helmet's main loop on the simulated board: events reach alarm, journal
and radio; sensor faults give one fault event and never a reading; a hung
loop stops feeding the watchdog; the button silences the alarm.

The loop's modules alone (protocol, driver, journal, alarm, asyncio) take
most of a 100 KB host heap before any buffer (host objects are about twice
their ESP32 size), so these tests ask for more; the firmware's measured
footprint is reported by tools/simboard/run_crowd.py and the soak bench."""

INTERPRETERS = ("micropython",)

import asyncio  # noqa: E402
import time  # noqa: E402

import machine  # noqa: E402

import alarm  # noqa: E402
import board  # noqa: E402
import buzzer  # noqa: E402
import calibration  # noqa: E402
import helmet  # noqa: E402
import mlx90640  # noqa: E402
import protocol  # noqa: E402
import simboard  # noqa: E402
from checks import heapsize, raises  # noqa: E402
from journal_fixtures import fresh_journal, journal_events  # noqa: E402

GARBAGE = 99.0  # what a half-read frame holds: screening must never see it


class FakeCamera:
    """read_frame fills 25.0 (and Ta 30.0); scripted failures write garbage
    first, as a read that fails after its first subpage does."""

    def __init__(self):
        self.fail = set()  # read numbers (0-based) that raise SensorError
        self.bus_down = False  # register reads fail too: a bus fault
        self.reads = 0
        self.configured = []
        self.hang_at = -1
        self.frame_ms = 0  # time a read takes

    def read_frame(self, out):
        n = self.reads
        self.reads += 1
        time.sleep_ms(self.frame_ms)
        if n == self.hang_at:
            led = machine.Pin(board.LED_PIN)
            while True:  # stuck (a firmware bug): the board's clock runs on
                led.value()
        if n in self.fail:
            out[0] = GARBAGE
            raise mlx90640.SensorError("scripted failure %d" % n)
        for i in range(len(out)):
            out[i] = 25.0
        return 30.0

    def read_register(self, reg):
        if self.bus_down:
            raise mlx90640.SensorError("NACK")
        return 0

    def configure(self, rate):
        if self.bus_down:
            raise mlx90640.SensorError("NACK")
        self.configured.append(rate)


class FakeScreening:
    """Emits the scripted outcome on the given frame numbers (1-based)."""

    def __init__(self, script=None):
        self.rate_hz = 8
        self.sink = None
        self.on_final = None
        self.script = script or {}
        self.frames = 0
        self.bad = 0

    def process(self, frame, ta_c=0.0, unix_time=0, t_ms=0):
        self.frames += 1
        if frame[0] != 25.0 or ta_c != 30.0:
            self.bad += 1
        out = self.script.get(self.frames)
        if out is not None:
            self.sink(protocol.ScreeningEvent(outcome=out, core_c=37.0, core_u_c=0.5, track_id=self.frames))
        return 0


class FakeBle:
    def __init__(self, journal):
        self.journal = journal
        self.recorded = []
        self.frames = 0
        self.live_on = False

    def record(self, ev):
        self.recorded.append(ev.outcome)
        return self.journal.append(ev)

    def live(self):
        return self.live_on

    def send_frame(self, body):
        assert len(body) == protocol.frame_body_size(32, 24)
        self.frames += 1
        return True

    async def run(self):
        while True:
            await asyncio.sleep_ms(1000)


def build(camera=None, script=None, ble=False, wdt=None, feed_ms=helmet.FEED_MS):
    simboard.reset_board()
    simboard.set_clock(None)
    journal = fresh_journal()
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())
    scr = FakeScreening(script)
    h = helmet.Helmet(
        camera or FakeCamera(),
        scr,
        al,
        journal,
        ble=FakeBle(journal) if ble else None,
        wdt=wdt,
        button=board.make_button(),
        feed_ms=feed_ms,
    )
    return h


def faults(journal):
    return [e.outcome for e in journal_events(journal) if e.kind == protocol.EVENT_FAULT]


def tones():
    return [e for e in simboard.pwm_timeline.get(board.BUZZER_PIN, []) if e[2]]


@heapsize("160k")
def test_events_flow_to_alarm_journal_and_radio():
    h = build(script={3: calibration.FEVER, 5: calibration.CLEAR}, ble=True)
    h.ble.live_on = True
    h.camera.frame_ms = 10  # the alarm ticks between frames
    asyncio.run(h.run(frames=8))
    assert h.frames == 8 and h.screening.frames == 8
    assert [e.outcome for e in journal_events(h.journal)] == [calibration.FEVER, calibration.CLEAR]  # journaled once
    assert h.ble.recorded == [calibration.FEVER, calibration.CLEAR]
    assert h.alarm.alarmed_track == 3  # the FEVER event reached the alarm
    assert tones() and tones()[0][1] == buzzer.FEVER[0][0]
    assert h.ble.frames == 8  # live view: every frame offered to the app
    assert h.camera.configured == [mlx90640.RATE_16HZ]  # 8 Hz frames = 16 Hz subpages


@heapsize("160k")
def test_without_radio_events_go_to_the_journal():
    h = build(script={2: calibration.RECHECK})
    asyncio.run(h.run(frames=3))
    assert [e.outcome for e in journal_events(h.journal)] == [calibration.RECHECK]


@heapsize("160k")
def test_sensor_error_burst_one_fault_event_no_reading_then_reinit_and_recovery():
    cam = FakeCamera()
    cam.fail = set(range(3, 10))  # seven failed reads in a row
    h = build(cam)
    asyncio.run(h.run(frames=20))
    assert faults(h.journal) == [protocol.FAULT_SENSOR_DATA, protocol.FAULT_SENSOR_REINIT]
    assert h.read_errors == 7
    assert h.reinits == 2  # after 3 and after 6 failures (backoff 250, then 500 ms)
    assert h.screening.bad == 0  # no failed frame, no garbage, ever reached screening
    assert h.screening.frames == 20 and h.frames == 20
    assert cam.configured == [mlx90640.RATE_16HZ] * 3


@heapsize("160k")
def test_bus_fault_is_reported_as_bus_and_reinit_waits_for_the_sensor():
    cam = FakeCamera()
    cam.fail = set(range(2, 9))
    cam.bus_down = True
    h = build(cam)

    async def plug_back():
        while h.read_errors < 6:
            await asyncio.sleep_ms(5)
        cam.bus_down = False  # the connector is pushed back

    async def main():
        asyncio.create_task(plug_back())
        await h.run(frames=12)

    asyncio.run(main())
    assert faults(h.journal) == [protocol.FAULT_SENSOR_BUS, protocol.FAULT_SENSOR_REINIT]
    assert h.screening.bad == 0 and h.frames == 12


@heapsize("160k")
def test_flapping_sensor_is_one_episode():
    cam = FakeCamera()
    cam.fail = {3, 5, 7, 9}  # good frames between, never RECOVERED_FRAMES in a row
    h = build(cam)
    asyncio.run(h.run(frames=30))
    assert faults(h.journal) == [protocol.FAULT_SENSOR_DATA]
    assert h.screening.bad == 0
    cam.fail = {cam.reads + 2}  # a new failure after a long good run: a new episode
    asyncio.run(h.run(frames=40))
    assert faults(h.journal) == [protocol.FAULT_SENSOR_DATA, protocol.FAULT_SENSOR_DATA]


@heapsize("256k")
def test_other_tasks_run_while_the_helmet_waits_for_the_sensor():
    """The frame is read a subpage at a time, awaiting each one's
    data-ready: the alarm's buzzer steps, the button and the radio are not
    held up for two subpage periods per frame."""
    import i2c16
    import mlx90640_device
    import virtual_mlx90640

    simboard.reset_board()
    board_clock = simboard.VirtualClock().install(mlx90640_device, i2c16)
    sensor = virtual_mlx90640.VirtualMLX90640()
    sensor.set_scene(22.0)
    simboard.attach_i2c(board.MLX90640_ADDRESS, sensor)
    rate = mlx90640.RATE_16HZ  # the helmet's 8 Hz frames: 62.5 ms subpages
    cam = mlx90640.MLX90640(board.make_i2c(), board.MLX90640_ADDRESS, refresh_rate=rate)
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())
    h = helmet.Helmet(cam, FakeScreening(), al, fresh_journal(), refresh_rate=rate, wait_ms=board_clock.wait_ms)
    turns = []

    async def other():
        while True:
            turns.append((h.frames, board_clock.now))
            await asyncio.sleep_ms(0)

    async def main():
        t = asyncio.create_task(other())
        await h.run(frames=5)
        t.cancel()

    asyncio.run(main())
    for n in range(1, 4):
        times = [ms for f, ms in turns if f == n]
        # between two frames the other task ran many times, spread over the
        # wait (a blocking read would give it one turn per frame)
        assert len(times) >= 8 and max(times) - min(times) >= 40, (n, times)


@heapsize("256k")
def test_real_driver_faults_on_the_virtual_sensor():
    import i2c16
    import mlx90640_device
    import virtual_mlx90640

    simboard.reset_board()
    # the driver's time on the virtual board clock (as tools/simboard/run_crowd.py)
    board_clock = simboard.VirtualClock().install(mlx90640_device, i2c16)
    sensor = virtual_mlx90640.VirtualMLX90640()
    sensor.set_scene(22.0)
    simboard.attach_i2c(board.MLX90640_ADDRESS, sensor)
    rate = mlx90640.RATE_16HZ  # the helmet's 8 Hz frames
    cam = mlx90640.MLX90640(board.make_i2c(), board.MLX90640_ADDRESS, refresh_rate=rate)
    scr = FakeScreening()
    seen = []

    def check(frame, ta_c=0.0, unix_time=0, t_ms=0):
        seen.append(min(frame) > 21.9 and max(frame) < 22.1)

    scr.process = check
    journal = fresh_journal()
    al = alarm.Alarm(buzzer.Buzzer(board.make_buzzer_pwm()), board.make_led())
    h = helmet.Helmet(cam, scr, al, journal, refresh_rate=rate, wait_ms=board_clock.wait_ms)
    asyncio.run(h.run(frames=2))
    # one spoiled subpage: a data fault, then good frames (the episode ends)
    sensor.corrupt_next("gain")
    asyncio.run(h.run(frames=2 + helmet.RECOVERED_FRAMES + 1))
    assert faults(journal) == [protocol.FAULT_SENSOR_DATA]
    # the sensor stops answering, then answers again: a bus fault, reads resume
    f0 = h.frames

    async def unplug_for_a_while():
        while h.frames < f0 + 2:
            await asyncio.sleep_ms(1)
        simboard.inject_i2c_fault(board.MLX90640_ADDRESS, "nack", count=-1)
        while h.read_errors < 5:
            await asyncio.sleep_ms(1)
        simboard.clear_i2c_faults()

    async def main(frames):
        asyncio.create_task(unplug_for_a_while())
        await h.run(frames)

    asyncio.run(main(f0 + 2 + helmet.RECOVERED_FRAMES + 1))
    # reads resume by themselves once the bus answers: no re-init needed
    assert faults(journal) == [protocol.FAULT_SENSOR_DATA, protocol.FAULT_SENSOR_BUS], faults(journal)
    # a brown-out resets the sensor to its power-on mode: every frame is
    # refused until the helmet re-initialises it
    f1 = h.frames

    async def brown_out():
        while h.frames < f1 + 2:
            await asyncio.sleep_ms(1)
        sensor.control = 0x1901

    async def main2():
        asyncio.create_task(brown_out())
        await h.run(f1 + 6)

    asyncio.run(main2())
    assert faults(journal) == [
        protocol.FAULT_SENSOR_DATA,
        protocol.FAULT_SENSOR_BUS,
        protocol.FAULT_SENSOR_DATA,
        protocol.FAULT_SENSOR_REINIT,
    ]
    assert all(seen) and len(seen) == h.frames  # every screened frame is the scene


@heapsize("160k")
def test_feeder_feeds_only_while_the_loop_makes_progress():
    h = build(feed_ms=10)
    h.wdt = machine.WDT(timeout=5000)

    async def main():
        task = asyncio.create_task(h.feeder())
        await asyncio.sleep_ms(55)  # no progress at all: only the first feed
        first = h.feeds
        h.beats += 1
        await asyncio.sleep_ms(25)
        task.cancel()
        return first

    first = asyncio.run(main())
    assert first == 1
    assert h.feeds == 2


@heapsize("160k")
def test_hung_sensor_loop_gets_the_board_reset():
    cam = FakeCamera()
    cam.hang_at = 10
    h = build(cam, feed_ms=20)
    h.wdt = machine.WDT(timeout=300)
    with raises(simboard.WatchdogReset):
        asyncio.run(h.run(frames=1000))
    assert h.frames == 10 and h.feeds >= 1  # it was fed while frames came
    assert simboard.reset_cause == machine.WDT_RESET


@heapsize("160k")
def test_healthy_loop_keeps_the_watchdog_fed():
    h = build(feed_ms=20)
    h.wdt = machine.WDT(timeout=200)

    async def main():
        await h.run(frames=0x7FFFFFFF)

    async def stop_later():
        t = asyncio.create_task(main())
        await asyncio.sleep_ms(600)  # three watchdog periods
        t.cancel()

    asyncio.run(stop_later())
    simboard.poll_watchdog()  # fed recently: no reset
    assert h.feeds >= 10 and not simboard.resets


@heapsize("160k")
def test_button_acknowledges_the_alarm_and_marks_later_events():
    h = build(script={2: calibration.FEVER, 40: calibration.CLEAR})

    async def press_after_fever():
        while h.alarm.alarmed_track < 0:
            await asyncio.sleep_ms(2)
        await asyncio.sleep_ms(200)  # a tone is on
        simboard.press_button(board.BUTTON_PIN)

    async def main():
        asyncio.create_task(h.alarm_loop())
        asyncio.create_task(press_after_fever())
        while h.alarm.alarmed_track < 0 or not h.alarm.silenced:
            h.step()
            await asyncio.sleep_ms(10)
        for _ in range(40):
            h.step()
            await asyncio.sleep_ms(0)

    asyncio.run(main())
    assert h.alarm.silenced and h.alarm.pattern is None
    assert simboard.pwm_timeline[board.BUZZER_PIN][-1][2] == 0  # buzzer silent
    evs = journal_events(h.journal)
    assert [e.outcome for e in evs] == [calibration.FEVER, calibration.CLEAR]
    assert not evs[0].flags & protocol.FLAG_ALARM_SILENCED
    assert evs[1].flags & protocol.FLAG_ALARM_SILENCED


@heapsize("160k")
def test_loop_step_allocates_nothing_of_its_own():
    """The loop's own per-frame path (read into the preallocated frame, screen,
    count) allocates nothing: proved with the heap locked around a step whose
    camera and screening allocate nothing either."""
    import micropython

    class Lean(FakeScreening):
        def process(self, frame, ta_c=0.0, unix_time=0, t_ms=0):
            self.frames += 1  # (reading a float pixel would box it: an allocation)
            return 0

    h = build()
    h.screening = Lean()
    h.step()  # first call: anything lazily made is made now
    micropython.heap_lock()
    try:
        for _ in range(5):
            ok = h.step()
    finally:
        micropython.heap_unlock()
    assert ok and h.frames == 6


@heapsize("160k")
def test_no_sensor_at_boot_opens_it_later_without_a_second_fault():
    """Boot recorded the missing sensor; the loop keeps trying to open it
    (with backoff, fed by its progress) and screens once it answers."""
    cam = FakeCamera()
    h = build()
    h.camera = None
    h._in_fault = True  # as Helmet(None, ...) after a failed self-test
    attempts = []

    def opener():
        attempts.append(1)
        if len(attempts) < 2:
            raise mlx90640.SensorError("no answer")
        return cam

    h.opener = opener
    asyncio.run(h.run(frames=3))
    assert len(attempts) == 2 and h.frames == 3
    assert faults(h.journal) == [protocol.FAULT_SENSOR_REINIT]  # boot's own event holds the fault


@heapsize("160k")
def test_events_carry_the_time_the_app_set():
    cam = FakeCamera()
    cam.fail = {1}
    h = build(cam)
    h.set_time(1700000000)
    asyncio.run(h.run(frames=3))
    (fault,) = [e for e in journal_events(h.journal) if e.kind == protocol.EVENT_FAULT]
    assert 1700000000 <= fault.time <= 1700000002
