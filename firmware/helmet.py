"""The helmet's main loop: sensor -> screening -> alarm, journal and radio.

    helmet = Helmet(camera, screening, alarm, journal, ble=server, wdt=wdt, button=pin)
    asyncio.run(helmet.run())        # or main() after boot (firmware/main.py)

Every part is handed in (thin seams), so tests run the loop with fakes or on
the simulated board.  asyncio tasks:

- sensor loop: a frame -> screening.process(frame, ta) -> each event to the
  alarm, then to the journal (through ble.record when a radio is given,
  which journals it too), and the frame to the app while live view is on.
  The frame is read a subpage at a time, awaiting each one's data-ready
  (wait_ms between polls), so the other tasks run while the sensor
  integrates: a buzzer tone or a button press waits at most one subpage's
  bus read and pixel pass, not two subpage periods.  A camera without
  subpage reads (tests' fakes) is read with its blocking read_frame.
- alarm: alarm.tick(clock()) every _TICK_MS (buzzer patterns, LED, button).
- radio: ble.run() when a server is given.
- ToF (when a VL53L1X is fitted, see below): a range every TOF_PERIOD_MS
  into the screening's tof.ToFFusion.
- watchdog feeder: feeds only when the sensor loop has made progress since
  the last feed (a frame, a fault step, a backoff slice).  A loop stuck on
  an await, or blocked in a call, stops the feeds and the board resets.

Sensor faults (mlx90640.SensorError: bus failure, implausible data): a
failed read is never turned into a reading and screening never sees that
frame (read_frame overwrites every pixel only when both subpages are good).
The first failure of an episode records one FAULT_SENSOR_BUS (the sensor
does not answer a register read) or FAULT_SENSOR_DATA event; after
_REINIT_AFTER failures in a row the camera is re-initialised (control register
rewritten; opened anew when boot found none) with a doubling backoff, and the
first re-init of an episode that the sensor accepts records
FAULT_SENSOR_REINIT.  The episode ends after RECOVERED_FRAMES good frames in
a row, so a flapping sensor does not flood the journal.  Screening then
simply gets the next good frame: its tracks coast over the gap or restart.

The optional VL53L1X: main() probes its model id on the bus (the driver's
check); not fitted = no ToF, no fault, and the driver is never imported
(its RAM stays free).  When fitted, screening gets a tof.ToFFusion and the
ToF task polls the part without blocking (data ready? then the result):
each result goes to the fusion stamped with the helmet's clock, and every
frame goes to screening stamped with the same clock, so the fusion's
freshness test compares like with like.  A ToF fault (NACK, bus timeout,
no result for TOF_TIMEOUT_MS: the part reset or stopped) withdraws the
fusion's reading at once (screening goes on with head-size distances),
counts in tof_errors, and the part is re-initialised after a doubling
backoff; tof_faults counts episodes (ended by TOF_RECOVERED results in a
row).  The first failure of an episode records one FAULT_DISTANCE_SENSOR
event (as the thermal sensor's faults: once per episode, not per failed
read), so the officer learns that distances now come from head size; a part
not fitted records none.  A result with an invalid range status is counted
(tof_invalid) and withdraws the reading (the fusion only ever takes status
0); it is a fault only for "hardware fail": nothing in reach, sigma/signal/
wrap fail are the part working as meant (an empty street gives signal fail
all day).  The driver's blocking waits happen only in a (re)init (boot
poll, the discarded VHV ranging: about one timing budget).

Time: the clock is time.ticks_ms(), which wraps (2**30 ms, 12.4 days, on
the ESP32): times are compared with ticks_diff and moved with ticks_add
only, and the unix-time anchor is moved forward every second, as ticks_diff
is right only within half the period.

Live reconfiguration: apply_config(cfg) (the app's OP_SET_CONFIG, after
config.save) gives the screening its new decision rule from the next frame
on and the buzzer its setting at once.

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
import gc
import time

from micropython import const

import mlx90640
import protocol
from buffers import zeros

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

_TICK_MS = const(10)  # alarm resolution: buzzer steps are 80-150 ms
FEED_MS = 500  # feeder period; WDT_TIMEOUT_MS leaves room for slow frames and retries
WDT_TIMEOUT_MS = 8000
_RETRY_MS = const(20)  # between quick retries of a failed read
_REINIT_AFTER = const(3)  # failed reads in a row before the camera is re-initialised
_BACKOFF_MIN_MS = const(250)
_BACKOFF_MAX_MS = const(8000)
RECOVERED_FRAMES = 8  # good frames in a row that end a fault episode
TOF_PERIOD_MS = 50  # the VL53L1X's timing budget and period: a range every 50 ms
_TOF_RETRY_MS = const(10)  # poll again this soon when the next range was not ready yet
TOF_TIMEOUT_MS = 300  # no range for this long: the part stopped ranging (reset)
TOF_RECOVERED = 8  # ranges in a row that end a ToF fault episode
_TOF_MODEL_ID_REG = const(0x010F)  # IDENTIFICATION__MODEL_ID, as vl53l1x checks it
TOF_MODEL_ID = 0xEACC  # vl53l1x.MODEL_ID (the driver is not imported to probe)
_STATUS_REG = const(0x8000)  # MLX90640 status register: any answer means the bus works
_FRAME_W = const(32)
_FRAME_H = const(24)


def new_frame():
    """The 768-float frame buffer (buffers.zeros: no temporary)."""
    return zeros("f", mlx90640.NPIX)


def tof_fitted(i2c, address):
    """Does a VL53L1X answer at ``address``: its model id, as the driver
    checks it (a NACK or another part: not fitted, no error)?"""
    import i2c16

    b = bytearray(2)
    if i2c16.transfer(i2c, address, False, _TOF_MODEL_ID_REG, b, 2) is not None:
        return False
    return ((b[0] << 8) | b[1]) == TOF_MODEL_ID


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
    alarm may own it instead); clock: () -> ms (ticks: compared with
    time.ticks_diff); frame: new_frame() from boot; refresh_rate: sensor rate
    code (default: from screening.rate_hz); tof: the screening's
    tof.ToFFusion and tof_opener: () -> an initialised, ranging
    vl53l1x.VL53L1X (raises ToFError), when a VL53L1X is fitted."""

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
        tof=None,
        tof_opener=None,
        wait_ms=None,
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
        # awaited between data-ready polls (the simulated board passes one
        # that moves its clock, as the driver's sleeps do)
        self.wait_ms: "Callable[[int], Any]" = asyncio.sleep_ms if wait_ms is None else wait_ms
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
        self._backoff = _BACKOFF_MIN_MS
        self._unix_base = 0  # unix seconds at _unix_ms (0 = clock unset)
        self._unix_ms: "Any" = 0  # ticks
        self._body: "Any" = None
        self.fusion = tof
        self.tof_opener: "Callable[[], Any] | None" = tof_opener
        self.tof_dev: "Any" = None
        self.tof_ranges = 0  # valid ranges given to the fusion
        self.tof_invalid = 0  # results with an invalid range status (no distance)
        self.tof_errors = 0  # bus failures, timeouts, refused (re)inits
        self.tof_faults = 0  # fault episodes
        self.tof_reinits = 0  # re-inits the part accepted after a fault
        self._tof_up = False  # initialised and ranging
        self._tof_in_fault = False
        self._tof_good = 0  # results in a row
        self._tof_backoff = _BACKOFF_MIN_MS
        self._tof_last: "Any" = 0  # clock (ticks) at the last result or init
        self._vl: "Any" = None
        if tof_opener is not None:
            import vl53l1x  # only when fitted: the driver's RAM is spent only then

            self._vl = vl53l1x
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
        # move the anchor on by whole seconds: ticks_diff is right only
        # within half the tick period (6.2 days), the helmet runs longer
        s = time.ticks_diff(self.clock(), self._unix_ms) // 1000
        if s > 0:
            self._unix_base += s
            self._unix_ms = time.ticks_add(self._unix_ms, 1000 * s)
        return self._unix_base

    def apply_config(self, cfg):
        """A new configuration from the app, applied at once: the screening's
        decision rule from the next frame on, the buzzer now (a tone that
        is on stops).  Frame rate and emissivity wait for the next boot."""
        self.screening.reconfigure(cfg)
        buzz = self.alarm.buzz
        buzz.enabled = cfg.buzzer
        if not cfg.buzzer:
            buzz.silence()

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
        """Read (blocking) and screen one frame.  Returns True for a good
        frame, False for a failed read (already accounted for: fault event,
        counters)."""
        try:
            ta = self.camera.read_frame(self.frame)
        except mlx90640.SensorError:
            self._failed()
            return False
        return self._screen(ta)

    async def step_async(self):
        """step() for the main loop: awaits the subpages (_read_frame)."""
        try:
            ta = await self._read_frame()
        except mlx90640.SensorError:
            self._failed()
            return False
        return self._screen(ta)

    async def _read_frame(self):
        """Both subpages into self.frame; returns Ta."""
        cam = self.camera
        if not hasattr(cam, "read_subpage_into"):
            return cam.read_frame(self.frame)
        seen = 0
        sp = 0
        for _ in range(4):
            await self._subpage_ready(cam)
            sp = cam.read_subpage_into(self.frame)
            seen |= 1 << sp
            if seen == 3:
                return cam.finish_frame(self.frame)
        raise mlx90640.SensorError("MLX90640: subpages do not alternate (subpage %d only)" % sp)

    async def _subpage_ready(self, cam):
        """Until the next subpage is in the sensor's RAM, polling as the
        driver does; past the driver's timeout its wait raises the
        SensorError (with the status word)."""
        poll = cam.subpage_ms // 8 or 1
        limit = cam.data_timeout_ms()
        start = self.clock()
        while not cam.data_ready():
            if time.ticks_diff(self.clock(), start) > limit:
                cam.wait_data_ready(0)
                return
            await self.wait_ms(poll)

    def _screen(self, ta):
        """A good frame (ta: the sensor's temperature): screen it."""
        self.ta_c = ta
        self._fails = 0
        self._good_run += 1
        if self._in_fault and self._good_run >= RECOVERED_FRAMES:
            self._in_fault = False
            self._backoff = _BACKOFF_MIN_MS
        self.frames += 1
        # the frame's time on the clock the ToF ranges are stamped with
        self.screening.process(self.frame, ta, self.unix_time(), self.clock())
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
            self._backoff = _BACKOFF_MIN_MS
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
            self.unix_time()  # keeps its anchor recent while no frame comes

    async def sensor_loop(self, frames=0):
        """Screen frames (forever, or until ``frames`` good ones)."""
        if self.camera is None or not self._configure():
            self._in_fault = True
            await self._recover()
        while not frames or self.frames < frames:
            if self.camera is not None and await self.step_async():
                self.beats += 1
                await asyncio.sleep_ms(0)  # let the alarm, radio and feeder run
                continue
            self.beats += 1
            if self.camera is None or self._fails >= _REINIT_AFTER:
                await self._recover()
            else:
                await asyncio.sleep_ms(_RETRY_MS)

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
        self._backoff = min(2 * self._backoff, _BACKOFF_MAX_MS)
        self._fails = 0
        self.reinit()

    # ------------------------------------------------------------ the ToF
    def tof_step(self):
        """Poll the VL53L1X once; returns the ms to wait before the next
        poll.  Never raises for the ToF (see the module docstring)."""
        vl = self._vl
        now = self.clock()
        try:
            if not self._tof_up:
                self._tof_open()
                self._tof_last = self.clock()
                return TOF_PERIOD_MS
            dev = self.tof_dev
            if not dev.data_ready():
                if time.ticks_diff(now, self._tof_last) > TOF_TIMEOUT_MS:
                    return self._tof_failed()  # as a NACK: the part reset or stopped
                return _TOF_RETRY_MS
            status = dev.read(False)  # read(): no tuple, nothing allocated
        except vl.ToFError:
            return self._tof_failed()
        self._tof_last = now
        if status == vl.STATUS_VALID:
            self.tof_ranges += 1
            self.fusion.reading(dev.distance_mm, status, now)
        else:
            self.tof_invalid += 1
            self.fusion.reading(None, status, now)  # withdraws the last range
            if status == vl.STATUS_HARDWARE_FAIL:
                return self._tof_failed()  # the part says it is broken: re-init it
        self._tof_good += 1
        if self._tof_in_fault and self._tof_good >= TOF_RECOVERED:
            self._tof_in_fault = False
            self._tof_backoff = _BACKOFF_MIN_MS
        return TOF_PERIOD_MS

    def _tof_open(self):
        if self.tof_dev is None:
            self.tof_dev = self.tof_opener()  # type: ignore[misc]
        else:
            self.tof_dev.init()  # boot wait, identity, configuration, start
        self._tof_up = True
        if self._tof_in_fault:
            self.tof_reinits += 1

    def _tof_failed(self):
        """A ToF fault: no distance from it until it ranges again; one
        episode (and one FAULT_DISTANCE_SENSOR event) until TOF_RECOVERED
        results in a row; re-init after a doubling backoff."""
        self.fusion.valid = False
        self.tof_errors += 1
        self._tof_good = 0
        self._tof_up = False
        if not self._tof_in_fault:
            self._tof_in_fault = True
            self._tof_backoff = _BACKOFF_MIN_MS
            self.tof_faults += 1
            self._fault(protocol.FAULT_DISTANCE_SENSOR)
        ms = self._tof_backoff
        self._tof_backoff = min(2 * ms, _BACKOFF_MAX_MS)
        return ms

    async def tof_loop(self):
        while True:
            await asyncio.sleep_ms(self.tof_step())

    # ------------------------------------------------------------ the other tasks
    async def alarm_loop(self):
        alarm, clock = self.alarm, self.clock
        while True:
            alarm.tick(clock())
            await asyncio.sleep_ms(_TICK_MS)

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
        if self.tof_opener is not None and self.fusion is not None:
            tasks.append(asyncio.create_task(self.tof_loop()))
        try:
            await self.sensor_loop(frames)
        finally:
            for t in tasks:
                t.cancel()


# ---------------------------------------------------------------- entry point
def main(boot):
    """Build the helmet from the board and run it forever.

    ``boot``: main.boot, called here once the frame buffer is allocated and
    the modules are loaded (the driver then gets its tables from a heap the
    imports have not left holes in); or boot's result, (report, boot event
    bytes), when the caller booted."""
    frame = new_frame()  # first, before anything else fragments the heap
    # the modules before the self-test: on the simulated board the self-test
    # first needs 4 KB more heap (fragmentation; tools/simboard/run_crowd.py)
    import machine

    import board
    import calstore
    import config
    from alarm import Alarm
    from buzzer import Buzzer
    from journal import Journal
    from screening import Screening

    try:
        import ble_server  # noqa: F401  (the radio's code too, loaded before the heap fragments)
    except ImportError:
        pass  # a build without bluetooth: _radio finds no radio
    report, boot_event = boot(image=frame) if callable(boot) else boot
    camera = report.sensor.camera if report.ok else None
    report = boot = None  # the self-test's objects (and so its module) can go
    cfg, _why = config.load()
    cal, _cal_why = calstore.load()  # the bench's blackbody calibration, if any
    i2c = board.make_i2c()
    fusion = None
    tof_open: "Any" = None
    if tof_fitted(i2c, board.VL53L1X_ADDRESS):
        import vl53l1x
        from tof import ToFFusion

        fusion = ToFFusion()

        def tof_open():
            # initialised in the ToF task (not here: boot goes on meanwhile)
            return vl53l1x.VL53L1X(i2c, board.VL53L1X_ADDRESS, timing_budget_ms=TOF_PERIOD_MS, period_ms=TOF_PERIOD_MS)

    # collect before each long-lived structure: its many small objects then
    # fill the holes boot's garbage left, lowest first, and the blocks that
    # need a contiguous run find one (on the simulated board: 100 KB of heap
    # instead of 102 KB)
    gc.collect()
    scr = Screening(cfg, cal, tof=fusion)
    journal = Journal()
    journal.append(protocol.decode_event(boot_event))
    if machine.reset_cause() == machine.WDT_RESET:
        journal.append(protocol.ScreeningEvent(kind=protocol.EVENT_FAULT, outcome=protocol.FAULT_WATCHDOG_RESET))
    buzz = Buzzer(board.make_buzzer_pwm())
    buzz.enabled = cfg.buzzer
    alarm = Alarm(buzz, board.make_led())
    gc.collect()
    helmet = Helmet(
        camera,
        scr,
        alarm,
        journal,
        button=board.make_button(),
        frame=frame,
        opener=lambda: mlx90640.MLX90640(i2c, board.MLX90640_ADDRESS),
        tof=fusion,
        tof_opener=tof_open,
    )
    radio = _radio(journal, cfg, helmet)
    if radio is not None:
        helmet.attach_ble(radio)
    helmet.wdt = machine.WDT(timeout=WDT_TIMEOUT_MS)  # last: from here on only progress feeds it
    asyncio.run(helmet.run())


def _radio(journal, cfg, helmet):
    """The GATT server, or None when the radio does not start."""
    import binascii

    import machine

    import config

    try:
        import bluetooth

        from ble_server import BleServer
    except ImportError:
        return None  # a build without bluetooth

    def on_config(new_cfg):
        # persisted first (a failed save fails the request and changes
        # nothing), then applied at once
        config.save(new_cfg)
        helmet.apply_config(new_cfg)

    try:
        gc.collect()  # as for the screening: the server's objects fill holes first
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
