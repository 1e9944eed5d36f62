"""The app's brain, without Kivy: owns the link, the store and the uploader,
and holds the state the screens show.

    ctl = AppController(Store("app.db"), link_factory=HelmetLink, settings_path="settings.json")
    ctl.add_listener(lambda topic: ...)     # "link", "device", "scan", "frame", "reading",
                                            # "alarm", "log", "uploads", "settings", "message"
    await ctl.run()                         # until ctl.stop()

Why a separate controller: the screens only read attributes and call
methods here, so tests drive the whole app with SimulatedLink (no BLE, no
Kivy) and the UI stays a thin view.  Everything runs on one asyncio loop
(Kivy's async mode shares it), so state needs no locks.

Privacy: the controller keeps the latest live frame in memory only (never
stored, never uploaded), asks for live frames only while the live screen is
open, and stores only what the store's schema holds (no images, no identity).
The upload token lives in the settings file in the app's private directory
(mode 0600) and is never logged.
"""

import asyncio
import dataclasses
import datetime
import json
import logging
import math
import os
import time
from array import array

import protocol as P
import protocol_control as PC
import protocol_gatt as PG
from calibration import DEFAULT_SKIN_TO_CORE_OFFSET_C, DEFAULT_THRESHOLD_C, OUTCOME_NAMES

from .link_state import EventItem, FrameItem, LinkState, LinkStats, StateChange
from .store import DEFAULT_RETENTION_DAYS, FAILED, PENDING, SENDING, SENT, Store, is_flagged

log = logging.getLogger(__name__)

# A replayed journal may bring a FEVER from an hour ago: log and upload it,
# but only sound the alarm for readings this recent (the person is still there).
ALARM_MAX_AGE_S = 120.0
RETENTION_PURGE_EVERY_S = 3600.0
# Heat-map scale: fixed so colours mean the same temperature from frame to
# frame (an auto-scaled map would paint a cold room's warmest chair red).
HEATMAP_LO_C = 20.0
HEATMAP_HI_C = 40.0

TOPICS = ("link", "device", "scan", "frame", "reading", "alarm", "log", "uploads", "settings", "message")


# --- formatting (shared by every screen; units are a display choice only) -------------------
def to_unit(c, units):
    return c * 9.0 / 5.0 + 32.0 if units == "F" else c


def fmt_temp(c, units="C"):
    if c is None:
        return "--"
    return "%.1f °%s" % (to_unit(c, units), units)


def fmt_uncertainty(u, units="C"):
    """An uncertainty is a temperature difference: F scales it, no offset."""
    if u is None:
        return ""
    if math.isinf(u):
        return "± ≥5.1 °%s" % units if units == "C" else "± ≥9.2 °F"
    return "± %.1f °%s" % (u * (1.8 if units == "F" else 1.0), units)


def fmt_distance(d):
    if d is None:
        return "distance unknown"
    if math.isinf(d):
        return "> 12.7 m"
    return "%.1f m" % d


def fmt_time(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def link_text(change):
    """The link state in the officer's words."""
    st, who = change.state, change.helmet_id or change.detail or "helmet"
    if st == LinkState.SCANNING:
        return "looking for a helmet"
    if st == LinkState.CONNECTING:
        return "connecting to %s" % (change.detail or "helmet")
    if st == LinkState.CONNECTED:
        return "connected to %s" % who
    if st == LinkState.BACKOFF:
        return "not connected: next try in %.0f s" % change.delay_s
    if st == LinkState.DISCONNECTED:
        return "disconnected from %s" % who
    return {LinkState.IDLE: "not connected", LinkState.STOPPED: "link stopped"}.get(st, st.value)


def outcome_name(outcome):
    return OUTCOME_NAMES[outcome] if 0 <= outcome < len(OUTCOME_NAMES) else "?"


def fault_name(code):
    """What the officer reads for a helmet fault code (protocol.FAULT_NAMES);
    a code this app does not know yet still says that something failed."""
    if 0 < code < len(P.FAULT_NAMES):
        return P.FAULT_NAMES[code]
    return "unknown to this app version"


# --- heat map (pure functions: tested without Kivy) ------------------------------------------
def _ramp(x):
    """0..1 -> (r, g, b) bytes: black, blue, magenta, red, yellow, white ("iron")."""
    stops = ((0.0, (0, 0, 0)), (0.25, (40, 0, 160)), (0.5, (200, 0, 120)), (0.75, (255, 90, 0)), (0.9, (255, 210, 0)))
    stops += ((1.0, (255, 255, 255)),)
    for (x0, c0), (x1, c1) in zip(stops, stops[1:], strict=False):
        if x <= x1:
            f = (x - x0) / (x1 - x0)
            return bytes(round(a + (b - a) * f) for a, b in zip(c0, c1, strict=True))
    return bytes(stops[-1][1])


# One entry per 0.1 degC step over the scale: a frame converts with 768 lookups.
_LUT_STEPS = int(round((HEATMAP_HI_C - HEATMAP_LO_C) * 10))
_LUT = [_ramp(i / _LUT_STEPS) for i in range(_LUT_STEPS + 1)]
_NA_RGB = bytes((90, 90, 90))  # "not available" pixels: grey, not a temperature colour


def heat_color(c):
    """RGB bytes for a temperature in degC (clamped to the scale)."""
    i = int(round((c - HEATMAP_LO_C) * 10))
    return _LUT[min(max(i, 0), _LUT_STEPS)]


def frame_rgb(pixels_centi, width, height, bottom_up=True):
    """RGB bytes of a frame (row-major, row 0 at the top).  bottom_up: rows
    reversed, as an OpenGL texture (origin bottom-left) wants them."""
    lo = int(HEATMAP_LO_C * 100)
    lut, top, na = _LUT, _LUT_STEPS, P.PIXEL_NA
    rows = range(height - 1, -1, -1) if bottom_up else range(height)
    out = []
    for y in rows:
        for c in pixels_centi[y * width : (y + 1) * width]:
            if c == na:
                out.append(_NA_RGB)
            else:
                i = (c - lo + 5) // 10
                out.append(lut[0 if i < 0 else top if i > top else i])
    return b"".join(out)


def hottest_region(pixels_centi, width, height, size=3):
    """(x, y, size, mean degC) of the warmest size x size window (x, y: top-left,
    row 0 at the top).  The live frame carries no head boxes, so the live view
    marks this and says what it is: the hottest spot, not a detected head."""
    best, bx, by = None, 0, 0
    na = P.PIXEL_NA
    for y in range(max(1, height - size + 1)):
        for x in range(max(1, width - size + 1)):
            s = n = 0
            for yy in range(y, min(y + size, height)):
                for c in pixels_centi[yy * width + x : yy * width + min(x + size, width)]:
                    if c != na:
                        s += c
                        n += 1
            if n and (best is None or s / n > best):
                best, bx, by = s / n, x, y
    if best is None:
        return None
    return bx, by, size, best / 100.0


# --- state the screens show ------------------------------------------------------------------
@dataclasses.dataclass
class Settings:
    threshold_c: float = DEFAULT_THRESHOLD_C
    skin_to_core_offset_c: float = DEFAULT_SKIN_TO_CORE_OFFSET_C
    endpoint: str = ""
    token: str = ""
    retention_days: float = float(DEFAULT_RETENTION_DAYS)
    units: str = "C"
    helmet_address: str | None = None  # None: first helmet found
    allow_http_loopback: bool = False  # demo/tests only: plain http to 127.0.0.1

    def check(self):
        P.DeviceConfig(threshold_c=self.threshold_c, skin_to_core_offset_c=self.skin_to_core_offset_c).validate()
        if self.units not in ("C", "F"):
            raise ValueError("units must be C or F")
        if not 0 <= self.retention_days <= 365:
            raise ValueError("retention days must be within 0..365")
        return self


@dataclasses.dataclass
class FoundHelmet:
    address: str
    name: str
    rssi: int | None


@dataclasses.dataclass
class DeviceInfo:
    address: str | None = None
    battery_pct: int | None = None
    firmware: str | None = None
    bonded: bool | None = None  # None: not known yet
    rssi: int | None = None
    config: P.DeviceConfig | None = None  # the helmet's configuration as last read


@dataclasses.dataclass
class Reading:
    helmet_id: str
    event: P.ScreeningEvent
    received_at: float

    @property
    def outcome(self):
        return outcome_name(self.event.outcome)


@dataclasses.dataclass
class Alarm:
    outcome: int  # P.FEVER or P.RECHECK
    reading: Reading
    raised_at: float
    acknowledged: bool = False
    note: str = ""  # e.g. "helmet not reached: its buzzer may still sound"

    @property
    def name(self):
        return outcome_name(self.outcome)


# --- a link without BLE: tests, the bench, and `--simulate` ------------------------------------
class SimulatedLink:
    """Speaks HelmetLink's API (events/frames/states/command/set_live_view)
    from items pushed by a test or played by play_demo().  Commands are
    recorded and answered with success unless `fail_commands` is set."""

    def __init__(self, helmet_id="SIM:00:00:00:00:01", frame_queue=4):
        self.helmet_id = helmet_id
        self.state = LinkState.IDLE
        self.stats = LinkStats()
        self.commands = []
        self.fail_commands = None  # an exception instance to raise from command()
        self.live = False
        self.config = P.DeviceConfig()
        self.battery_pct = 87
        self.firmware = "helmet 0.1.0 (simulated)"
        self._events = asyncio.Queue()
        self._frames = asyncio.Queue(maxsize=frame_queue)
        self._states = asyncio.Queue()
        self._end = object()

    async def start(self):
        self.push_state(LinkState.CONNECTED, "simulated")
        return self

    async def stop(self):
        self.push_state(LinkState.STOPPED)
        for q in (self._events, self._states):
            q.put_nowait(self._end)
        while self._frames.full():
            self._frames.get_nowait()
        self._frames.put_nowait(self._end)

    async def _drain(self, q):
        while True:
            item = await q.get()
            if item is self._end:
                q.put_nowait(self._end)
                return
            yield item

    def events(self):
        return self._drain(self._events)

    def frames(self):
        return self._drain(self._frames)

    def states(self):
        return self._drain(self._states)

    def next_seq(self, helmet_id=None):
        return None

    async def command(self, opcode, arg=None):
        self.commands.append((opcode, arg))
        if self.fail_commands is not None:
            raise self.fail_commands
        if opcode == PC.OP_SET_CONFIG:
            self.config = arg
        return PC.RESULT_SUCCESS, 0

    async def set_live_view(self, on):
        await self.command(PC.OP_LIVE_START if on else PC.OP_LIVE_STOP)
        self.live = bool(on)

    async def read_device_info(self):
        return DeviceInfo(self.helmet_id, self.battery_pct, self.firmware, True, -58, self.config)

    # --- feeding ---
    def push_state(self, state, detail=""):
        self.state = state
        self._states.put_nowait(StateChange(state, self.helmet_id, detail))

    def push_event(self, ev, received_at=None):
        self.stats.events += 1
        self._events.put_nowait(EventItem(self.helmet_id, ev, time.time() if received_at is None else received_at))

    def push_frame(self, pixels_centi, width=32, height=24, ambient_c=24.0):
        """Newest kept, like HelmetLink: a slow UI drops old frames."""
        self.stats.frames += 1
        item = FrameItem(self.helmet_id, width, height, ambient_c, array("h", pixels_centi), time.time())
        if self._frames.full():
            self._frames.get_nowait()
            self.stats.frames_dropped += 1
        self._frames.put_nowait(item)

    async def play_demo(self, rate_hz=8.0, event_every_s=4.0, seconds=None):
        """A warm head walking across a 22 degC room at rate_hz, and a
        screening event every event_every_s (CLEAR, RECHECK, FEVER in turn)."""
        t0 = time.monotonic()
        seq = i = 0
        next_event = t0 + event_every_s
        outcomes = (P.CLEAR, P.RECHECK, P.FEVER)
        while seconds is None or time.monotonic() - t0 < seconds:
            self.push_frame(demo_frame(i))
            i += 1
            now = time.monotonic()
            if now >= next_event:
                next_event += event_every_s
                self.push_event(demo_event(seq, outcomes[seq % 3]))
                seq += 1
            await asyncio.sleep(max(0.0, t0 + i / rate_hz - time.monotonic()))


def demo_frame(i, width=32, height=24, head_c=35.5, room_c=22.0):
    """A synthetic 32x24 frame: room, and a 6x8 warm head moving left-right."""
    cx = 4 + (i // 2) % (width - 8)
    px = [int(room_c * 100) + ((x * 7 + y * 3) % 5) * 10 for y in range(height) for x in range(width)]
    for y in range(6, 14):
        for x in range(cx - 3, cx + 3):
            px[y * width + x] = int(head_c * 100) - abs(x - cx) * 40
    return px


def demo_event(seq, outcome, now=None):
    t = int(time.time() if now is None else now)
    core = {P.CLEAR: 36.8, P.RECHECK: 37.6, P.FEVER: 38.9}[outcome]
    return P.ScreeningEvent(
        seq=seq,
        time=t,
        outcome=outcome,
        core_c=core,
        core_u_c=0.9 if outcome == P.RECHECK else 0.5,
        skin_c=core - 1.3,
        skin_u_c=0.4,
        distance_m=1.5 if outcome != P.RECHECK else 3.2,
        track_id=seq,
        flags=P.FLAG_TIME_VALID,
    )


def _uuid16(u):
    return "0000%04x-0000-1000-8000-00805f9b34fb" % u


async def bleak_scan(seconds=5.0):
    """Helmets in range (screening service advertised), strongest first."""
    import bleak  # lazily: tests and --simulate runs need no BLE stack

    found = await bleak.BleakScanner.discover(timeout=seconds, return_adv=True, service_uuids=[PG.SCREENING_SERVICE])
    out = [FoundHelmet(d.address, d.name or adv.local_name or "helmet", adv.rssi) for d, adv in found.values()]
    return sorted(out, key=lambda h: -(h.rssi if h.rssi is not None else -999))


class AppController:
    def __init__(
        self,
        store: Store,
        link_factory=None,
        settings_path=None,
        uploader_factory=None,
        scanner=bleak_scan,
        clock=time.time,
        exports_dir=None,
    ):
        self.store = store
        self.link_factory = link_factory  # (address=, resume=) -> a link; None: no link
        self.uploader_factory = uploader_factory  # (store, UploadConfig, on_status) -> Uploader
        self.scanner = scanner
        self.clock = clock
        self.settings_path = settings_path
        self.exports_dir = exports_dir or (os.path.dirname(os.path.abspath(store.path)) if store.path else ".")
        self.settings = self._load_settings()
        self.link = None
        self.uploader = None
        self.upload_status = "uploads not configured: set the endpoint and token in Settings"
        self.link_state = StateChange(LinkState.IDLE)
        self.device = DeviceInfo()
        self.scan_results: list[FoundHelmet] = []
        self.scanning = False
        self.frame: FrameItem | None = None
        self.frames_shown = 0
        self.reading: Reading | None = None
        self.alarm: Alarm | None = None
        self.message = ""
        self.counts = {"events": 0, "fever": 0, "recheck": 0, "clear": 0}
        self.live_wanted = False
        self.alert_sinks = []  # callables(Alarm): sound, vibration (set by the UI)
        self.silence_sinks = []  # callables(): stop sound/vibration
        self._listeners = []
        self._tasks = []
        self._link_tasks = []
        self._upload_task = None
        self._stopped = asyncio.Event()

    # --- listeners ---------------------------------------------------------------------------
    def add_listener(self, fn):
        self._listeners.append(fn)

    def _notify(self, topic):
        for fn in list(self._listeners):
            try:
                fn(topic)
            except Exception:  # a broken view must not stop the link
                log.exception("listener failed on %s", topic)

    def _say(self, text):
        self.message = text
        log.info("app: %s", text)
        self._notify("message")

    # --- settings ----------------------------------------------------------------------------
    def _load_settings(self):
        s = Settings()
        if self.settings_path and os.path.exists(self.settings_path):
            try:
                with open(self.settings_path) as f:
                    data = json.load(f)
                known = {f.name for f in dataclasses.fields(Settings)}
                s = Settings(**{k: v for k, v in data.items() if k in known}).check()
            except (ValueError, TypeError, OSError, P.ProtocolError) as e:
                log.warning("settings file unreadable (%s): using defaults", e)
                s = Settings()
        return s

    def _save_settings(self):
        if not self.settings_path:
            return
        tmp = self.settings_path + ".tmp"
        # 0600: the file holds the upload credential.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(dataclasses.asdict(self.settings), f, indent=1)
        os.replace(tmp, self.settings_path)

    async def save_settings(self, **changes):
        """Validate and apply settings; threshold/offset changes are pushed to
        the helmet (OP_SET_CONFIG).  Returns the message shown to the officer."""
        new = dataclasses.replace(self.settings, **changes)
        try:
            new.check()
        except (ValueError, P.ProtocolError) as e:
            self._say("settings not saved: %s" % e)
            return self.message
        old, self.settings = self.settings, new
        self._save_settings()
        notes = ["settings saved"]
        if (old.endpoint, old.token, old.allow_http_loopback) != (new.endpoint, new.token, new.allow_http_loopback):
            notes.append(self._restart_uploader())
        if old.retention_days != new.retention_days:
            n = self.purge()
            notes.append("%d old event(s) purged" % n if n else "")
        if (old.threshold_c, old.skin_to_core_offset_c) != (new.threshold_c, new.skin_to_core_offset_c):
            notes.append(await self.push_config())
        self._notify("settings")
        self._say("; ".join(n for n in notes if n))
        return self.message

    async def push_config(self):
        """Send threshold and offset to the helmet, keeping its other settings
        (hysteresis, k, emissivity, rate, buzzer) as read from it: a default
        record would silently undo a site's calibration."""
        if self.link is None or self.link_state.state != LinkState.CONNECTED:
            return "helmet not connected: threshold/offset will be sent when it connects"
        base = self.device.config
        if base is None:
            await self.refresh_device_info()
            base = self.device.config
        if base is None:
            return "helmet configuration not readable (not bonded?): threshold/offset not sent"
        cfg = P.DeviceConfig(
            self.settings.threshold_c,
            self.settings.skin_to_core_offset_c,
            base.hysteresis_c,
            base.confirm_frames,
            base.coverage_k,
            base.emissivity,
            base.frame_rate_hz,
            base.buzzer,
        )
        try:
            await self.link.command(PC.OP_SET_CONFIG, cfg)
        except Exception as e:  # NotConnected, CommandFailed, timeout: say it, keep running
            return "helmet did not take the configuration: %s" % e
        self.device.config = cfg
        self._notify("device")
        shown = " (%s)" % fmt_temp(cfg.threshold_c, "F") if self.settings.units == "F" else ""
        return "helmet now uses threshold %.2f °C%s, offset %.2f °C" % (
            cfg.threshold_c,
            shown,
            cfg.skin_to_core_offset_c,
        )

    def _pending_config(self):
        c = self.device.config
        return c is not None and (c.threshold_c, c.skin_to_core_offset_c) != (
            self.settings.threshold_c,
            self.settings.skin_to_core_offset_c,
        )

    # --- life cycle ----------------------------------------------------------------------------
    async def run(self):
        """Start everything and wait until stop()."""
        self._stopped.clear()
        self.purge()
        self._restart_uploader()
        self._tasks.append(asyncio.create_task(self._retention_loop(), name="retention"))
        if self.link_factory is not None:
            await self.connect(self.settings.helmet_address)
        await self._stopped.wait()

    async def stop(self):
        await self._stop_link()
        for t in self._tasks + ([self._upload_task] if self._upload_task else []):
            t.cancel()
        await asyncio.gather(*self._tasks, *([self._upload_task] if self._upload_task else []), return_exceptions=True)
        self._tasks, self._upload_task = [], None
        self._stopped.set()

    async def connect(self, address=None):
        """(Re)start the link, to `address` or the first helmet found."""
        await self._stop_link()
        if address != self.settings.helmet_address:
            self.settings.helmet_address = address
            self._save_settings()
        self.device = DeviceInfo(address=address, rssi=self._rssi_of(address))
        self.link = self.link_factory(address=address, resume=self.store.next_seqs())
        self.attach_link(self.link)
        await self.link.start()

    def attach_link(self, link):
        """Consume a started-or-not link's streams (tests call it directly).
        The controller stores every event, so the link acknowledges to the
        helmet only what the store has committed."""
        self.link = link
        if hasattr(link, "confirm_stored"):
            link.ack_when_stored = True
        self._link_tasks = [
            asyncio.create_task(self._pump(link.states(), self.handle_state), name="link-states"),
            asyncio.create_task(self._pump(link.events(), self.handle_event), name="link-events"),
            asyncio.create_task(self._pump(link.frames(), self.handle_frame), name="link-frames"),
        ]

    async def _stop_link(self):
        if self.link is not None:
            await self.link.stop()
        for t in self._link_tasks:
            t.cancel()
        await asyncio.gather(*self._link_tasks, return_exceptions=True)
        self._link_tasks = []
        self.link = None

    async def _pump(self, stream, handler):
        async for item in stream:
            try:
                r = handler(item)
                if asyncio.iscoroutine(r):
                    await r
            except Exception:
                log.exception("app: handling %r failed", type(item).__name__)

    async def _retention_loop(self):
        while True:
            await asyncio.sleep(RETENTION_PURGE_EVERY_S)
            self.purge()

    def purge(self):
        n = self.store.purge(self.settings.retention_days, now=self.clock())
        if n:
            self._notify("log")
        return n

    # --- link items ----------------------------------------------------------------------------
    async def handle_state(self, change: StateChange):
        self.link_state = change
        self._notify("link")
        if change.state == LinkState.CONNECTED:
            self.device.address = change.helmet_id or self.device.address
            await self.refresh_device_info()
            if self.live_wanted:
                await self._live(True)
            if self._pending_config():
                self._say(await self.push_config())

    def handle_event(self, item: EventItem):
        ev = item.event
        new = self.store.add_event(item.helmet_id, ev, received_at=item.received_at)
        if self.link is not None and hasattr(self.link, "confirm_stored"):
            self.link.confirm_stored(item.helmet_id, ev.seq)  # committed: the helmet may forget it
        if ev.kind == P.EVENT_SCREENING:
            reading = Reading(item.helmet_id, ev, item.received_at)
            self.reading = reading
            if new:
                self.counts["events"] += 1
                name = outcome_name(ev.outcome).lower()
                if name in self.counts:
                    self.counts[name] += 1
            self._notify("reading")
            if new and is_flagged(ev.kind, ev.outcome):
                if self.uploader is not None:
                    self.uploader.wake()
                t = ev.time if (ev.flags & P.FLAG_TIME_VALID and ev.time > 0) else item.received_at
                if self.clock() - t <= ALARM_MAX_AGE_S:
                    self.raise_alarm(reading)
        elif ev.kind == P.EVENT_FAULT and new:
            self._say("helmet fault: %s (code %d, see log)" % (fault_name(ev.outcome), ev.outcome))
        if new:
            self._notify("log")
            self._notify("uploads")

    def handle_frame(self, item: FrameItem):
        # Kept in memory only, for the live view; never stored or uploaded.
        self.frame = item
        self._notify("frame")

    # --- alarm ----------------------------------------------------------------------------------
    def raise_alarm(self, reading: Reading):
        # A FEVER is never replaced by a later RECHECK while unacknowledged.
        if (
            self.alarm
            and not self.alarm.acknowledged
            and self.alarm.outcome == P.FEVER
            and reading.event.outcome != P.FEVER
        ):
            return
        self.alarm = Alarm(reading.event.outcome, reading, self.clock())
        for sink in self.alert_sinks:
            try:
                sink(self.alarm)
            except Exception:
                log.exception("alert sink failed")
        self._notify("alarm")

    async def acknowledge_alarm(self):
        """The officer saw it: stop the phone's alert and silence the helmet
        (OP_SILENCE).  The alarm is acknowledged on the phone even if the
        helmet cannot be reached; the banner then says so."""
        if self.alarm is None:
            return
        self.alarm.acknowledged = True
        for sink in self.silence_sinks:
            try:
                sink()
            except Exception:
                log.exception("silence sink failed")
        if self.link is None:
            self.alarm.note = "no helmet link: silence the helmet with its button"
        else:
            try:
                await self.link.command(PC.OP_SILENCE)
                self.alarm.note = "helmet silenced"
            except Exception as e:
                self.alarm.note = "helmet not reached (%s): silence it with its button" % (str(e) or type(e).__name__)
        self._notify("alarm")

    def dismiss_alarm(self):
        self.alarm = None
        self._notify("alarm")

    # --- live view -------------------------------------------------------------------------------
    async def set_live_wanted(self, on):
        """Frames flow only while the live screen is open (privacy, battery)."""
        self.live_wanted = bool(on)
        if not on:
            self.frame = None
        if self.link is not None and self.link_state.state == LinkState.CONNECTED:
            await self._live(on)

    async def _live(self, on):
        try:
            await self.link.set_live_view(on)
        except Exception as e:
            self._say("live view %s failed: %s" % ("start" if on else "stop", e))

    # --- devices -------------------------------------------------------------------------------
    async def scan(self, seconds=5.0):
        self.scanning = True
        self._notify("scan")
        try:
            self.scan_results = await self.scanner(seconds)
            self._say("%d helmet(s) found" % len(self.scan_results))
        except Exception as e:
            self.scan_results = []
            self._say("scan failed: %s" % e)
        finally:
            self.scanning = False
            self._notify("scan")
        return self.scan_results

    def _rssi_of(self, address):
        for h in self.scan_results:
            if h.address == address:
                return h.rssi
        return None

    async def refresh_device_info(self):
        """Battery, firmware, bond state and configuration of the connected helmet."""
        if self.link is None:
            return
        reader = getattr(self.link, "read_device_info", None)
        try:
            info = await reader() if reader is not None else await self._read_gatt_info()
        except Exception as e:
            log.warning("device info: %s", e)
            return
        if info is not None:
            info.rssi = info.rssi if info.rssi is not None else self._rssi_of(info.address or self.device.address)
            info.address = info.address or self.device.address
            self.device = info
            self._notify("device")

    async def _read_gatt_info(self):
        # HelmetLink has no public GATT read yet, so read through its client
        # while connected (reported to the lead: add HelmetLink.read_char()).
        client = getattr(self.link, "_client", None)
        if client is None:
            return None
        info = DeviceInfo(address=getattr(self.link, "helmet_id", None))
        try:
            info.battery_pct = bytes(await client.read_gatt_char(_uuid16(PG.BATTERY_LEVEL)))[0]
        except Exception as e:
            log.info("battery level unreadable: %s", e)
        try:
            raw = bytes(await client.read_gatt_char(_uuid16(PG.FIRMWARE_REVISION)))
            info.firmware = raw.decode("utf-8", "replace")
        except Exception as e:
            log.info("firmware revision unreadable: %s", e)
        try:
            # The configuration characteristic is encrypted-only: reading it
            # works only on a bonded (encrypted) link.
            info.config = P.decode_config(bytes(await client.read_gatt_char(PG.CONFIGURATION_CHAR)))
            info.bonded = True
        except Exception as e:
            log.info("configuration unreadable (not bonded?): %s", e)
            info.bonded = False
        return info

    # --- log and uploads -------------------------------------------------------------------------
    def log_rows(self, outcome=None, since_s=None, limit=200):
        """Log screen rows; outcome: None (all events) or P.FEVER/RECHECK/CLEAR;
        since_s: only the last since_s seconds."""
        since = None if since_s is None else self.clock() - since_s
        return self.store.events(outcomes=None if outcome is None else [outcome], since=since, limit=limit)

    def export_csv(self, outcome=None, since_s=None):
        """Write the (filtered) log as CSV; returns (path, rows)."""
        os.makedirs(self.exports_dir, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        path = os.path.join(self.exports_dir, "screening-log-%s.csv" % stamp)
        since = None if since_s is None else self.clock() - since_s
        with open(path, "w", newline="") as f:
            n = self.store.export_csv(f, outcomes=None if outcome is None else [outcome], since=since)
        self._say("exported %d event(s) to %s" % (n, path))
        return path, n

    def outbox_rows(self, limit=200):
        return self.store.outbox(limit=limit)

    def outbox_counts(self):
        return self.store.outbox_counts()

    def retry_uploads(self):
        n = self.uploader.retry_now() if self.uploader is not None else self.store.retry_now()
        self._say("%d upload(s) due now" % n if self.uploader is not None else "uploads not configured")
        self._notify("uploads")
        return n

    def _restart_uploader(self):
        if self._upload_task is not None:
            self._upload_task.cancel()
            self._upload_task = None
        self.uploader = None
        s = self.settings
        if not (s.endpoint and s.token):
            self.upload_status = "uploads not configured: set the endpoint and token in Settings"
            self._notify("uploads")
            return ""
        from .uploader import UploadConfig, Uploader

        try:
            cfg = UploadConfig(s.endpoint, s.token, allow_http_loopback=s.allow_http_loopback)
            factory = self.uploader_factory or (lambda st, c, cb: Uploader(st, c, on_status=cb))
            self.uploader = factory(self.store, cfg, self._on_upload_status)
        except ValueError as e:
            self.upload_status = "uploads stopped: %s" % e
            self._notify("uploads")
            return self.upload_status
        try:
            self._upload_task = asyncio.get_running_loop().create_task(self.uploader.run(), name="uploader")
        except RuntimeError:  # no loop yet: run() starts it
            pass
        return "uploading to %s" % s.endpoint

    def _on_upload_status(self, text):
        self.upload_status = text
        self._notify("uploads")

    def summary(self):
        c = self.store.outbox_counts()
        return "uploaded=%d fever=%d recheck=%d clear=%d" % (
            c[SENT],
            self.counts["fever"],
            self.counts["recheck"],
            self.counts["clear"],
        )


__all__ = [
    "AppController",
    "SimulatedLink",
    "Settings",
    "Alarm",
    "Reading",
    "DeviceInfo",
    "FoundHelmet",
    "PENDING",
    "SENDING",
    "SENT",
    "FAILED",
]
