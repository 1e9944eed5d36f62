"""The helmet's main loop: sensor -> screening -> alarm, journal and radio.

    helmet = Helmet(camera, screening, alarm, journal, ble=server, wdt=wdt, button=pin)
    asyncio.run(helmet.run())        # or main() after boot (firmware/main.py)

Every part is handed in (thin seams), so tests run the loop with fakes or on
the simulated board.  asyncio tasks:

- sensor loop: camera.read_frame(frame) -> screening.process(frame, ta) ->
  each event to the alarm, then to the journal (through ble.record when a
  radio is given, which journals it too), and the frame to the app while live
  view is on.  read_frame blocks for up to two subpage periods; the other
  tasks run between frames.
- alarm: alarm.tick(clock()) every TICK_MS (buzzer patterns, LED, button).
- radio: ble.run() when a server is given.
- watchdog feeder: feeds only when the sensor loop has made progress since
  the last feed (a frame, a fault step, a backoff slice).  A loop stuck on
  an await, or blocked in a call, stops the feeds and the board resets.

Sensor faults (mlx90640.SensorError: bus failure, implausible data): a
failed read is never turned into a reading and screening never sees that
frame (read_frame overwrites every pixel only when both subpages are good).
The first failure of an episode records one FAULT_SENSOR_BUS (the sensor
does not answer a register read) or FAULT_SENSOR_DATA event; after
REINIT_AFTER failures in a row the camera is re-initialised (control register
rewritten; opened anew when boot found none) with a doubling backoff, and the
first re-init of an episode that the sensor accepts records
FAULT_SENSOR_REINIT.  The episode ends after RECOVERED_FRAMES good frames in
a row, so a flapping sensor does not flood the journal.  Screening then
simply gets the next good frame: its tracks coast over the gap or restart.

Events emitted while the officer has silenced the alarm (button, or the app's
OP_SILENCE) and no new FEVER alarm has started since carry
FLAG_ALARM_SILENCED.

Memory: main() allocates the frame buffer first thing, then runs the
self-test (the driver's 3 KB tables), then builds the rest: a late 3 KB
block may not fit a fragmented heap (seen on the simulated board when the
order is turned round).  The loop allocates no buffers per frame (the
float Ta and the screening's temporaries are garbage collected as usual).
"""

import asyncio
import time
from array import array

import mlx90640
import protocol

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

TICK_MS = 10  # alarm resolution: buzzer steps are 80-150 ms
FEED_MS = 500  # feeder period; WDT_TIMEOUT_MS leaves room for slow frames and retries
WDT_TIMEOUT_MS = 8000
RETRY_MS = 20  # between quick retries of a failed read
REINIT_AFTER = 3  # failed reads in a row before the camera is re-initialised
BACKOFF_MIN_MS = 250
BACKOFF_MAX_MS = 8000
RECOVERED_FRAMES = 8  # good frames in a row that end a fault episode
_STATUS_REG = 0x8000  # MLX90640 status register: any answer means the bus works
_FRAME_W = 32
_FRAME_H = 24


def new_frame():
    """The 768-float frame buffer, allocated once at its final size (no
    temporary of the same size, as bytes(4 * 768) would need)."""
    a = array("f", range(mlx90640.NPIX))
    for i in range(mlx90640.NPIX):
        a[i] = 0.0
    return a


def rate_code(frame_rate_hz):
    """MLX90640 refresh-rate code for a full-frame rate: the sensor's rate is
    per subpage, two subpages make a frame (8 Hz frames -> RATE_16HZ)."""
    code = mlx90640.RATE_2HZ
    hz = 1
    while hz < frame_rate_hz and code < mlx90640.RATE_64HZ:
        hz *= 2
        code += 1
    return code


class Helmet:
    """camera: read_frame(out) -> Ta, configure(rate) (an mlx90640.MLX90640),
    or None when boot found no working sensor (then ``opener()`` is tried);
    screening: screening.Screening (its sink and on_final are wired here);
    alarm: alarm.Alarm; journal: journal.Journal; ble: ble_server.BleServer
    or None; wdt: machine.WDT or None; button: a Pin (pull-up) or None (the
    alarm may own it instead); clock: () -> ms; frame: new_frame() from boot;
    refresh_rate: sensor rate code (default: from screening.rate_hz)."""

    def __init__(
        self,
        camera,
        screening,
        alarm,
        journal,
        ble=None,
        wdt=None,
        button=None,
        clock=None,
        frame=None,
        refresh_rate=None,
        opener=None,
        feed_ms=FEED_MS,
    ):
        self.camera = camera
        self.screening = screening
        self.alarm = alarm
        self.journal = journal
        self.ble = ble
        self.wdt = wdt
        self.clock: "Callable[[], Any]" = time.ticks_ms if clock is None else clock
        self.frame = new_frame() if frame is None else frame
        self.rate = rate_code(screening.rate_hz) if refresh_rate is None else refresh_rate
        self.opener: "Callable[[], Any] | None" = opener
        self.feed_ms = feed_ms
        self.ta_c = 0.0
        self.frames = 0  # good frames screened
        self.read_errors = 0  # failed reads, ever
        self.reinits = 0  # re-inits the sensor accepted
        self.record_errors = 0  # events the flash refused
        self.beats = 0  # progress of the sensor loop (the feeder watches it)
        self.feeds = 0
        self._fails = 0  # failed reads in a row
        self._good_run = 0  # good frames in a row
        self._in_fault = camera is None  # boot already recorded the missing sensor
        self._reinit_logged = False
        self._backoff = BACKOFF_MIN_MS
        self._unix_base = 0  # unix seconds at _unix_ms (0 = clock unset)
        self._unix_ms = 0
        self._body: "Any" = None
        if ble is not None:
            self.attach_ble(ble)
        # Wire the screening's outputs here; bound methods made once.
        screening.sink = self._on_event
        screening.on_final = alarm.on_final
        if button is not None:
            button.irq(self._on_button, trigger=1)  # Pin.IRQ_FALLING: the button pulls to ground

    def attach_ble(self, ble):
        """Give the helmet its radio (built after the helmet: it calls back)."""
        self.ble = ble
        if self._body is None:
            self._body = bytearray(protocol.frame_body_size(_FRAME_W, _FRAME_H))

    # ------------------------------------------------------------ hooks (IRQ, radio)
    def _on_button(self, pin):
        # IRQ context: only set the flag; alarm.tick debounces and acknowledges
        self.alarm.pressed = True

    def silence(self):
        """The app's OP_SILENCE: as the button."""
        self.alarm.acknowledge()

    def set_time(self, unix_s):
        """The app's OP_SET_TIME: events carry unix time from now on."""
        self._unix_base = unix_s
        self._unix_ms = self.clock()

    def unix_time(self):
        if not self._unix_base:
            return 0
        return self._unix_base + time.ticks_diff(self.clock(), self._unix_ms) // 1000

    # ------------------------------------------------------------ events
    def _on_event(self, ev):
        """Screening's sink: alarm first (it must sound even if flash fails)."""
        self.alarm.on_event(ev)
        if self.alarm.silenced:
            ev.flags |= protocol.FLAG_ALARM_SILENCED  # the officer silenced the alarm
        self._record(ev)

    def _record(self, ev):
        try:
            if self.ble is not None:
                self.ble.record(ev)  # journals it too
            else:
                self.journal.append(ev)
        except OSError:
            self.record_errors += 1  # flash full or failing: screening and alarm go on

    def _fault(self, code):
        self._record(protocol.ScreeningEvent(time=self.unix_time(), kind=protocol.EVENT_FAULT, outcome=code))

    # ------------------------------------------------------------ the sensor
    def step(self):
        """Read and screen one frame.  Returns True for a good frame, False
        for a failed read (already accounted for: fault event, counters)."""
        try:
            ta = self.camera.read_frame(self.frame)
        except mlx90640.SensorError:
            self._failed()
            return False
        self.ta_c = ta
        self._fails = 0
        self._good_run += 1
        if self._in_fault and self._good_run >= RECOVERED_FRAMES:
            self._in_fault = False
            self._backoff = BACKOFF_MIN_MS
        self.frames += 1
        self.screening.process(self.frame, ta, self.unix_time())
        if self.ble is not None and self.ble.live():
            self._send_frame(ta)
        return True

    def _failed(self):
        self.read_errors += 1
        self._fails += 1
        self._good_run = 0
        if not self._in_fault:
            self._in_fault = True
            self._reinit_logged = False
            self._backoff = BACKOFF_MIN_MS
            self._fault(protocol.FAULT_SENSOR_DATA if self._answers() else protocol.FAULT_SENSOR_BUS)

    def _answers(self):
        """Does the sensor answer on the bus (then its data was bad)?"""
        try:
            self.camera.read_register(_STATUS_REG)
            return True
        except mlx90640.SensorError:
            return False

    def reinit(self):
        """Re-initialise the sensor (open it if boot found none).  True when
        the sensor accepted it; records FAULT_SENSOR_REINIT once per episode."""
        try:
            if self.camera is None:
                if self.opener is None:
                    return False
                self.camera = self.opener()
            self.camera.configure(self.rate)
        except mlx90640.SensorError:
            return False
        self.reinits += 1
        if not self._reinit_logged:
            self._reinit_logged = True
            self._fault(protocol.FAULT_SENSOR_REINIT)
        return True

    def _send_frame(self, ta):
        body = self._body
        try:
            protocol.encode_frame_body_into(body, 0, _FRAME_W, _FRAME_H, ta, self.frame)
        except protocol.OutOfRange:
            return  # an implausible Ta for the header: skip this live frame
        self.ble.send_frame(body)

    async def _pause(self, ms):
        """Sleep, beating in slices: a loop in backoff is alive, not hung."""
        while ms > 0:
            n = ms if ms < self.feed_ms else self.feed_ms
            await asyncio.sleep_ms(n)
            ms -= n
            self.beats += 1

    async def sensor_loop(self, frames=0):
        """Screen frames (forever, or until ``frames`` good ones)."""
        if self.camera is None or not self._configure():
            self._in_fault = True
            await self._recover()
        while not frames or self.frames < frames:
            if self.camera is not None and self.step():
                self.beats += 1
                await asyncio.sleep_ms(0)  # let the alarm, radio and feeder run
                continue
            self.beats += 1
            if self.camera is None or self._fails >= REINIT_AFTER:
                await self._recover()
            else:
                await asyncio.sleep_ms(RETRY_MS)

    def _configure(self):
        try:
            self.camera.configure(self.rate)
            return True
        except mlx90640.SensorError:
            self._failed()
            return False

    async def _recover(self):
        """Back off, then re-initialise; the backoff doubles up to its cap."""
        await self._pause(self._backoff)
        self._backoff = min(2 * self._backoff, BACKOFF_MAX_MS)
        self._fails = 0
        self.reinit()

    # ------------------------------------------------------------ the other tasks
    async def alarm_loop(self):
        alarm, clock = self.alarm, self.clock
        while True:
            alarm.tick(clock())
            await asyncio.sleep_ms(TICK_MS)

    async def feeder(self):
        """Feed the watchdog only if the sensor loop moved since the last feed."""
        last = -1
        while True:
            if self.beats != last:
                last = self.beats
                self.wdt.feed()
                self.feeds += 1
            await asyncio.sleep_ms(self.feed_ms)

    async def run(self, frames=0):
        """All tasks; returns after ``frames`` good frames (0 = never)."""
        tasks = [asyncio.create_task(self.alarm_loop())]
        if self.wdt is not None:
            tasks.append(asyncio.create_task(self.feeder()))
        if self.ble is not None:
            tasks.append(asyncio.create_task(self.ble.run()))
        try:
            await self.sensor_loop(frames)
        finally:
            for t in tasks:
                t.cancel()


# ---------------------------------------------------------------- entry point
def main(boot):
    """Build the helmet from the board and run it forever.

    ``boot``: main.boot, called here right after the frame buffer is
    allocated (the driver then gets its big tables from a fresh heap too);
    or boot's result, (report, boot event bytes), when the caller booted."""
    frame = new_frame()  # first, before anything else fragments the heap
    report, boot_event = boot() if callable(boot) else boot
    import machine

    import board
    import config
    from alarm import Alarm
    from buzzer import Buzzer
    from journal import Journal
    from screening import Screening

    cfg, _why = config.load()
    scr = Screening(cfg)
    journal = Journal()
    journal.append(protocol.decode_event(boot_event))
    if machine.reset_cause() == machine.WDT_RESET:
        journal.append(protocol.ScreeningEvent(kind=protocol.EVENT_FAULT, outcome=protocol.FAULT_WATCHDOG_RESET))
    buzz = Buzzer(board.make_buzzer_pwm())
    buzz.enabled = cfg.buzzer
    alarm = Alarm(buzz, board.make_led())
    i2c = board.make_i2c()
    camera = report.sensor.camera if report.ok else None
    helmet = Helmet(
        camera,
        scr,
        alarm,
        journal,
        button=board.make_button(),
        frame=frame,
        opener=lambda: mlx90640.MLX90640(i2c, board.MLX90640_ADDRESS),
    )
    radio = _radio(journal, cfg, helmet, buzz)
    if radio is not None:
        helmet.attach_ble(radio)
    helmet.wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)  # last: from here on only progress feeds it
    asyncio.run(helmet.run())


def _radio(journal, cfg, helmet, buzz):
    """The GATT server, or None when the radio does not start."""
    import binascii

    import bluetooth
    import machine

    import config
    from ble_server import BleServer

    def on_config(new_cfg):
        # persisted; the buzzer follows at once, thresholds at the next boot
        config.save(new_cfg)
        buzz.enabled = new_cfg.buzzer

    try:
        return BleServer(
            bluetooth.BLE(),
            journal,
            cfg,
            on_set_time=helmet.set_time,
            on_config=on_config,
            on_silence=helmet.silence,
            serial=binascii.hexlify(machine.unique_id()).decode(),
        )
    except OSError:
        return None  # screening and alarm work without the radio
