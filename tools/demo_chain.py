"""The whole simulated deployment, end to end (`make demo`'s last section; issue 6, item 7).

    .venv/bin/python tools/demo_chain.py [--headless] [--keep DIR]

1. Scene: crowd_walk (six people walking toward the officer, a hot drink, a
   lamp) rendered at 8 Hz for 20 s with ground truth, the febrile walker at
   core 39.6 degC instead of the shipped 38.8 (which the default 0.4 degC
   offset uncertainty leaves RECHECK, not FEVER; see the README's status).
2. Helmet: the firmware's main loop (firmware/helmet.py: driver, screening,
   alarm, journal, GATT server) under the MicroPython unix port on the
   simulated board, one recording frame per frame the driver reads
   (tools/simboard/run_crowd.py --ble, virtual clock).
3. Radio: the simulated ``bluetooth`` module bridged over loopback TCP to
   tools/ble_host (BleBridge), which exports the helmet's GATT server on
   bluezoo (an emulated BlueZ on a private dbus-daemon); the phone's side is
   bleak's BlueZ backend on the second adapter, bonded with Just Works.
4. App: companion_app's AppController with its HelmetLink (bleak), SQLite
   store and FHIR uploader; the Kivy screens too, in a window when there is
   a display and --headless is not given.
5. Server: tools/ingest_server over HTTPS with a throw-away CA (trustme) and
   a bearer token, all on 127.0.0.1.

The officer's phone bonds first, then the crowd walks in; once the helmet has
screened the last frame the run waits (on events, not on the clock) until the
app has every journaled event, the helmet has their acknowledgement and the
outbox is drained, then asks the server for its Observations and checks every
number against the scene's ground truth and the helmet's own journal.  The
last line printed is ``uploaded=N fever=N recheck=N clear=N`` (the app's own
summary); the exit status is non-zero when any check fails.  Every process
(MicroPython, dbus-daemon, bluezoo, the ingest server) is stopped on the way
out, also on failure or timeout.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "tools" / "bench", REPO / "tools", REPO / "shared", REPO / "tests" / "support", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import bench_screening  # noqa: E402
import bench_soak  # noqa: E402

import calibration  # noqa: E402
import protocol as P  # noqa: E402
from mpharness import micropython_command, micropython_env  # noqa: E402
from scene import read_truth  # noqa: E402

RUN_CROWD = REPO / "tools" / "simboard" / "run_crowd.py"
SCENARIO = "crowd_walk"
FEBRILE_CORE_C = 39.6  # the shipped 38.8 is usually RECHECK: see the module doc
SHIPPED_FEBRILE_CORE_C = 38.8
FRAMES = int(bench_soak.PASS_S * bench_soak.RATE_HZ)  # one pass: 160 frames, 20 s of crowd
HEAPSIZE = "320k"  # firmware + radio + the simulated board; the memory proof is make bench (soak)
TIMEOUT_S = 60.0  # from the render to the drained outbox; about 5 s on 2 cores
WINDOW_LINGER_S = 15.0
DEVICE = "helmet-app"  # the ingest server's name for the app's credential
OUTCOMES = {P.CLEAR: "clear", P.RECHECK: "recheck", P.FEVER: "fever"}
NOBODY = "not a person"


class ChainError(RuntimeError):
    """A part of the chain failed or did not get there in time."""


class CrowdHelmet:
    """run_crowd.py under MicroPython, its radio bridged to `bridge_address`;
    parses its output as it comes and calls `on_progress` on every milestone."""

    def __init__(self, recording, bridge_address, flash_dir, on_progress):
        self.recording, self.bridge_address, self.flash_dir = recording, bridge_address, flash_dir
        self.on_progress = on_progress
        self.proc = None
        self.lines = []  # everything it printed, for bench_soak.parse
        self.stderr = []
        self.linked = False
        self.serving = None  # events journaled, once the crowd is done
        self.acked = 0
        self._tasks = []

    async def start(self):
        from ble_host.environment import spawn  # dbus_fast: only where the radio runs

        env = micropython_env()
        env["HELMET_BLE_BRIDGE"] = self.bridge_address
        args = [str(self.recording), "--ble", "--wait-link", "--tracks", "--frames", str(FRAMES), "--every", "40"]
        argv = [micropython_command(), "-X", "heapsize=" + HEAPSIZE, str(RUN_CROWD), *args]
        self.proc = await spawn(argv, self.flash_dir, env)  # cwd: the board's flash (journal, bond keys)
        self._tasks = [asyncio.create_task(self._read_stdout()), asyncio.create_task(self._read_stderr())]
        return self

    @property
    def exited(self):
        return self.proc is not None and self.proc.returncode is not None

    async def _read_stdout(self):
        while line := await self.proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            self.lines.append(text)
            f = text.split()
            if not f:
                continue
            if f[0] == "LINKED":
                self.linked = True
            elif f[0] == "SERVING":
                self.serving = int(f[1])
            elif f[0] == "ACKED":
                self.acked = int(f[1])
            else:
                continue
            self.on_progress()
        await self.proc.wait()
        self.on_progress()  # an exit is news too: the waits fail fast

    async def _read_stderr(self):
        while line := await self.proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace").rstrip())

    async def stop(self):
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def journal(self):
        """(seq, pass, frame, decoded event) of every journaled event."""
        out = []
        for text in self.lines:
            f = text.split()
            if f and f[0] == "EVENT":
                ev = P.decode_event(bytes.fromhex(f[3]))
                out.append((ev.seq, int(f[1]), int(f[2]), ev))
        return out


@dataclasses.dataclass
class ChainRun:
    """What every part of the chain saw (the checks and the summary read it)."""

    febrile_core_c: float
    ui: str
    truth: dict
    helmet: dict  # bench_soak.parse of the firmware's output
    journal: list  # (seq, pass, frame, event) per journaled event
    owner: dict  # seq -> person id (ground truth), screening events only
    app_counts: dict  # the controller's counters
    app_events: int  # rows in the app's store
    summary: str  # the app's summary line
    outbox: list  # store.OutboxRow
    alarms: list  # (outcome, seq) the app raised
    observations: list  # the server's Observation resources
    link_stats: object
    helmet_id: str
    acked: int
    seconds: dict  # phase -> wall seconds


def _render(workdir, febrile_core_c):
    path = bench_soak.render(Path(workdir) / "crowd.htrs", febrile_core_c=febrile_core_c)
    return path, read_truth(str(path))


def _owners(helmet_res, journal, truth):
    """seq -> the person the scene's ground truth puts under the event's track
    (bench_screening's attribution, one event at a time so the seq is kept)."""
    owner = {}
    for seq, pass_no, frame, ev in journal:
        if ev.kind != P.EVENT_SCREENING:
            continue
        one = {
            "events": [{"frame": frame, "track": ev.track_id, "outcome": ev.outcome}],
            "tracks": [t[1:] for t in helmet_res["tracks"] if t[0] == pass_no],
        }
        people, _stray = bench_screening.person_results(one, truth)
        owner[seq] = next((pid for pid, p in people.items() if p["outcomes"]), None)
    return owner


async def run_chain(workdir, ui="none", febrile_core_c=FEBRILE_CORE_C, timeout_s=TIMEOUT_S, say=print, screenshot=None):
    """Run the chain in `workdir` (flash, app data, certificates, server DB).
    ui: "none" (controller only), "offscreen" (Kivy screens rendered
    offscreen) or "window"; screenshot: a PNG of the app's screen at the
    end (not with ui "none").  Returns a ChainRun; raises ChainError."""
    from ble_host.chain import simulated_link
    from companion_app.backoff import Backoff
    from companion_app.controller import AppController
    from companion_app.link import HelmetLink
    from companion_app.store import Store
    from companion_app.uploader import Uploader
    from ingest_server.launch import IngestServer, tls_test_files

    workdir = Path(workdir)
    t0 = time.monotonic()
    seconds = {}
    recording, truth = await asyncio.to_thread(_render, workdir, febrile_core_c)
    seconds["render"] = time.monotonic() - t0

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    progress = asyncio.Event()  # set by the helmet's output and the app's listeners
    token = secrets.token_urlsafe(24)
    cafile, certfile, keyfile = await asyncio.to_thread(tls_test_files, workdir / "tls")
    server = IngestServer(workdir / "ingest.db", {DEVICE: token}, cert=(certfile, keyfile), cafile=cafile)
    helmet = None
    alarms = []

    async def until(pred, what):
        """Wait for `pred()`, woken by progress; fail fast if the helmet died."""
        while not pred():
            if helmet is not None and helmet.exited:
                tail = "\n".join((helmet.stderr + helmet.lines)[-25:])
                raise ChainError("the helmet exited (%s) waiting for %s:\n%s" % (helmet.proc.returncode, what, tail))
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise ChainError("timed out after %.0f s waiting for %s" % (timeout_s, what)) from None

    async with contextlib.AsyncExitStack() as stack:
        # Cleanup runs in reverse: app, helmet, radio, server; also on failure.
        started = asyncio.create_task(asyncio.to_thread(server.start))  # beside the radio's start

        async def stop_server():
            # A start still under way in its thread must finish first, or
            # stop() would find no process and the server would outlive us.
            await asyncio.wait([started])
            server.stop()

        stack.push_async_callback(stop_server)
        c = await stack.enter_async_context(simulated_link(helmet=False))
        await asyncio.shield(started)  # the server's own error, if it failed
        seconds["radio_and_server_up"] = time.monotonic() - t0

        flash = workdir / "flash"
        flash.mkdir(exist_ok=True)
        # the helmet passed the bench: its blackbody calibration is on flash
        (flash / "calibration.json").write_text(bench_soak.bench_calibration().to_json())
        helmet = CrowdHelmet(recording, c.bridge.address, flash, progress.set)
        await helmet.start()
        stack.push_async_callback(helmet.stop)

        (workdir / "app").mkdir(exist_ok=True)
        store = Store(str(workdir / "app" / "app.db"))
        stack.callback(store.close)

        def link_factory(address=None, resume=None):
            # The phone's adapter of the emulated BlueZ; bond first (the
            # helmet serves bonded phones only), quick retries for a demo.
            return HelmetLink(
                adapter=c.env.central_adapter,
                address=address,
                resume=resume,
                pair=True,
                backoff=Backoff(0.05, 1.0),
                scan_timeout_s=5.0,
            )

        def uploader_factory(st, cfg, on_status):
            # The throw-away CA is in no system store: trust it for this run only.
            cfg = dataclasses.replace(cfg, cafile=cafile, backoff_base_s=0.2, backoff_cap_s=2.0)
            return Uploader(st, cfg, on_status=on_status)

        ctl = AppController(
            store,
            link_factory=link_factory,
            settings_path=str(workdir / "app" / "settings.json"),
            uploader_factory=uploader_factory,
            exports_dir=str(workdir / "app"),
        )
        ctl.settings.endpoint, ctl.settings.token = server.url, token
        ctl.add_listener(lambda topic: progress.set())
        ctl.alert_sinks.append(lambda a: alarms.append((a.outcome, a.reading.event.seq)))
        app_ui = None
        if ui != "none":
            app_ui = await _start_ui(ctl, ui)
        ctl_task = asyncio.create_task(ctl.run(), name="app")

        async def stop_app():
            if app_ui is not None:
                await app_ui.stop()
            await ctl.stop()
            await asyncio.gather(ctl_task, return_exceptions=True)

        stack.push_async_callback(stop_app)

        await until(lambda: helmet.linked, "the app to bond with the helmet")
        seconds["bonded"] = time.monotonic() - t0
        say("  app bonded with the helmet over the emulated radio; the crowd walks in")
        await until(lambda: helmet.serving is not None, "the helmet to screen the crowd")
        seconds["crowd_screened"] = time.monotonic() - t0
        n = helmet.serving
        say("  helmet: %d frames screened, %d events journaled; draining to the app" % (FRAMES, n))
        await until(lambda: store.count_events() >= n, "the app to receive all %d events" % n)
        await until(lambda: helmet.acked >= n, "the helmet to get every event acknowledged")

        def drained():
            counts = store.outbox_counts()
            return counts["pending"] == 0 and counts["sending"] == 0

        await until(drained, "the outbox to drain to the ingest server")
        seconds["drained"] = time.monotonic() - t0
        observations = await asyncio.to_thread(server.observations, token)
        if ui == "window":
            say("  the app's window stays open for %.0f s (close it to go on sooner)" % WINDOW_LINGER_S)
            await app_ui.linger(WINDOW_LINGER_S)
        if app_ui is not None and screenshot:
            say("  app screenshot: %s" % app_ui.screenshot(screenshot))
        helmet_id = ctl.link.helmet_id if ctl.link is not None else "?"
        link_stats = ctl.link.stats if ctl.link is not None else None
        app_counts, summary = dict(ctl.counts), ctl.summary()
        outbox = store.outbox(limit=None)
        app_events = store.count_events()
        acked = helmet.acked
    seconds["total"] = time.monotonic() - t0
    res = bench_soak.parse("\n".join(helmet.lines))
    journal = helmet.journal()
    return ChainRun(
        febrile_core_c=febrile_core_c,
        ui=ui,
        truth=truth,
        helmet=res,
        journal=journal,
        owner=_owners(res, journal, truth),
        app_counts=app_counts,
        app_events=app_events,
        summary=summary,
        outbox=outbox,
        alarms=alarms,
        observations=observations,
        link_stats=link_stats,
        helmet_id=helmet_id,
        acked=acked,
        seconds=seconds,
    )


class _Ui:
    """The app's Kivy screens on the same asyncio loop (as companion_app.main runs them)."""

    def __init__(self, app, task):
        self.app, self.task = app, task

    async def linger(self, seconds):
        # For whoever watches: until the window is closed, at most `seconds`.
        # (The live screen stays: leaving it sends OP_LIVE_STOP, which would
        # still be in flight when the link stops.)
        await asyncio.wait([self.task], timeout=seconds)

    def screenshot(self, path):
        from kivy.core.window import Window

        return Window.screenshot(name=str(path))

    async def stop(self):
        if not self.task.done():
            self.app.stop()
        await asyncio.gather(self.task, return_exceptions=True)


async def _start_ui(ctl, ui):
    import logging

    # Decided before Kivy is imported (it opens the window then), as companion_app.main does.
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")
    if ui == "offscreen":
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    logging.getLogger("kivy").setLevel(logging.WARNING)
    from kivy.config import Config

    Config.set("graphics", "width", "480")
    Config.set("graphics", "height", "800")
    from companion_app.ui.app import HelmetApp

    app = HelmetApp(ctl)
    return _Ui(app, asyncio.ensure_future(app.async_run(async_lib="asyncio")))


# --- checks against the scene's ground truth and the helmet's journal -----------------------------
def _identifier_seq(obs):
    value = obs["identifier"][0]["value"]  # "<helmet id>-<seq>"
    return int(value.rsplit("-", 1)[1])


def _interpretation(obs):
    return obs["interpretation"][0]["coding"][0]["code"]  # H: FEVER, IND: RECHECK


def expected(run):
    """What the scene says must happen: who is febrile, who is in it."""
    people = run.truth["frames"][0]["people"]
    threshold = calibration.DEFAULT_THRESHOLD_C
    return {
        "people": sorted(p["id"] for p in people),
        "febrile": sorted(p["id"] for p in people if p["core_c"] >= threshold),
    }


def screenings(run):
    return [(seq, ev) for seq, _, _, ev in run.journal if ev.kind == P.EVENT_SCREENING]


def checks(run):
    """[(what, ok)] — every one must hold for the demo to pass."""
    exp = expected(run)
    scr = screenings(run)
    by_outcome = {name: sum(ev.outcome == code for _, ev in scr) for code, name in OUTCOMES.items()}
    flagged = {seq for seq, ev in scr if ev.outcome in (P.FEVER, P.RECHECK)}
    fevers = [seq for seq, ev in scr if ev.outcome == P.FEVER]
    febrile = set(exp["febrile"])
    screened = {run.owner.get(seq) for seq, _ in scr} - {None}
    outcomes = {pid: [ev.outcome for seq, ev in scr if run.owner.get(seq) == pid] for pid in febrile}
    obs_seqs = [_identifier_seq(o) for o in run.observations]
    obs_fever = [_identifier_seq(o) for o in run.observations if _interpretation(o) == "H"]
    sent = [r for r in run.outbox if r.state == "sent"]
    done = run.helmet["done"] or {}
    n_journaled = len(run.journal)
    return [
        (
            "the helmet screened every frame, watchdog fed, no sensor error",
            done.get("frames") == FRAMES
            and done.get("resets") == 0
            and done.get("read_errors") == 0
            and not run.helmet["memory_errors"],
        ),
        (
            "every person in the scene was screened (%d of %d)"
            % (len(screened & set(exp["people"])), len(exp["people"])),
            screened >= set(exp["people"]),
        ),
        (
            "each febrile person: exactly one FEVER, never CLEAR",
            all(o.count(P.FEVER) == 1 and P.CLEAR not in o for o in outcomes.values()),
        ),
        (
            "FEVER only for febrile people (%d febrile in the scene, %d FEVER)" % (len(febrile), len(fevers)),
            len(fevers) == len(febrile) and all(run.owner.get(s) in febrile for s in fevers),
        ),
        (
            "the app received every journaled event once (%d)" % n_journaled,
            run.app_events == n_journaled and run.link_stats is not None and run.link_stats.events == n_journaled,
        ),
        (
            "the app's counts are the helmet's decisions",
            all(run.app_counts[name] == by_outcome[name] for name in OUTCOMES.values())
            and run.app_counts["events"] == len(scr),
        ),
        ("the helmet's journal was acknowledged up to its last event", run.acked == n_journaled),
        (
            "uploaded == fever + recheck events (%d)" % len(flagged),
            len(sent) == len(flagged) == len(run.outbox) and {r.seq for r in sent} == flagged,
        ),
        ("the server holds exactly the flagged readings, no CLEAR", sorted(obs_seqs) == sorted(flagged)),
        (
            "nothing uploaded twice (identifiers unique, every POST created)",
            len(set(obs_seqs)) == len(obs_seqs) and all(r.http_status == 201 for r in sent),
        ),
        (
            "the febrile walker's FEVER reached the server exactly once",
            len(obs_fever) == 1 and obs_fever == fevers and run.owner.get(obs_fever[0]) in febrile,
        ),
        ("the app raised an alarm for the FEVER", any(o == P.FEVER and s in fevers for o, s in run.alarms)),
    ]


def report(run, results, say=print):
    """The human-readable summary (the caller prints the final line)."""
    scr = screenings(run)
    exp = expected(run)
    per_person = {}
    for seq, ev in scr:
        per_person.setdefault(run.owner.get(seq) or NOBODY, []).append(calibration.OUTCOME_NAMES[ev.outcome])
    say(
        "  scene: %s, %d people (febrile: %s at core %.1f C), %d frames at 8 Hz"
        % (SCENARIO, len(exp["people"]), ", ".join(exp["febrile"]), run.febrile_core_c, FRAMES)
    )
    for pid in exp["people"] + [k for k in per_person if k not in exp["people"]]:
        say("    %-12s %s" % (pid, " -> ".join(per_person.get(pid, ["not screened"]))))
    if NOBODY in per_person:
        say("    (%s: a track the ground truth puts on no one's head: the hot drink, the lamp, a lost head)" % NOBODY)
    done = run.helmet["done"] or {}
    buzzer = done.get("pwm_changes", 0)
    fevers = sum(ev.outcome == P.FEVER for _, ev in scr)
    rechecks = sum(ev.outcome == P.RECHECK for _, ev in scr)
    held = " (a RECHECK does not replace an unacknowledged FEVER banner)" if len(run.alarms) < fevers + rechecks else ""
    say("  people screened: %d" % len({run.owner.get(s) for s, _ in scr} & set(exp["people"])))
    say(
        "  alarms: helmet %d FEVER + %d RECHECK (buzzer: %d PWM changes); app: %d alarm banner(s) raised%s"
        % (fevers, rechecks, buzzer, len(run.alarms), held)
    )
    s = run.link_stats
    say(
        "  events received by the app: %d of %d journaled (link: %d connect(s), %d duplicate(s) dropped)"
        % (run.app_events, len(run.journal), s.connects if s else 0, s.duplicates if s else 0)
    )
    say(
        "  readings uploaded: %d Observation(s) at the ingest server over HTTPS (%d FEVER, %d RECHECK)"
        % (
            len(run.observations),
            sum(_interpretation(o) == "H" for o in run.observations),
            sum(_interpretation(o) == "IND" for o in run.observations),
        )
    )
    if not any(ev.flags & P.FLAG_TIME_VALID for _, ev in scr):
        say(
            "  note: nothing sets the helmet's clock (the app sends no OP_SET_TIME), so each Observation's time"
            " is when the app received the reading"
        )
    t = run.seconds
    say(
        "  wall time: %.1f s (render %.1f, bonded at %.1f, crowd screened at %.1f, drained at %.1f)"
        % (t["total"], t["render"], t["bonded"], t["crowd_screened"], t["drained"])
    )
    for what, ok in results:
        say("  [%s] %s" % ("ok" if ok else "FAILED", what))


def choose_ui(headless):
    if headless:
        return "none"
    return "window" if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else "none"


UI_TEXT = {
    "none": "headless (controller, link, store, uploader, alarms; no screens)",
    "offscreen": "its Kivy screens rendered offscreen",
    "window": "its Kivy screens in a window",
}


def run_section(headless, workdir=None, say=print, ui=None, screenshot=None, febrile_core_c=FEBRILE_CORE_C):
    """For tools/demo.py: run, report; -> (ok, final summary line)."""
    ui = ui or choose_ui(headless)
    if febrile_core_c != SHIPPED_FEBRILE_CORE_C:
        say(
            "  scenario: crowd_walk with the febrile walker at core %.1f C, not the shipped %.1f C: with the"
            " default skin-to-core" % (febrile_core_c, SHIPPED_FEBRILE_CORE_C)
        )
        say(
            "  offset uncertainty (0.4 C) a %.1f C walker is usually RECHECK (use a thermometer), not FEVER"
            % SHIPPED_FEBRILE_CORE_C
        )
    else:
        say("  scenario: crowd_walk as shipped (febrile walker at core %.1f C)" % febrile_core_c)
    say("  app: %s" % UI_TEXT[ui])
    from ble_host.environment import unavailable_reason

    failed = "uploaded=0 fever=0 recheck=0 clear=0"
    reason = unavailable_reason()
    if reason is not None:  # no other chain would be this one: say why, and fail
        say("  chain NOT RUN: %s" % reason)
        return False, failed
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="helmet-chain-")
        workdir = tmp
    try:
        run = asyncio.run(run_chain(workdir, ui=ui, say=say, screenshot=screenshot, febrile_core_c=febrile_core_c))
    except ChainError as e:
        say("  chain FAILED: %s" % e)
        return False, failed
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    results = checks(run)
    report(run, results, say)
    return all(ok for _, ok in results), run.summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--headless", action="store_true", help="no app window even when a display exists")
    ap.add_argument("--keep", metavar="DIR", help="keep the run's files (flash, app DB, server DB) in DIR")
    ap.add_argument("--ui", choices=sorted(UI_TEXT), help="the app's screens (default: a window if there is a display)")
    ap.add_argument("--screenshot", metavar="PNG", help="save the app's screen at the end (with its screens)")
    ap.add_argument(
        "--febrile-core",
        type=float,
        default=FEBRILE_CORE_C,
        help="the febrile walker's core (%.1f as shipped)" % SHIPPED_FEBRILE_CORE_C,
    )
    args = ap.parse_args(argv)
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
    print("== The whole chain: helmet firmware -> emulated BLE -> companion app -> FHIR ingest server")
    try:
        ok, line = run_section(
            args.headless, workdir=args.keep, ui=args.ui, screenshot=args.screenshot, febrile_core_c=args.febrile_core
        )
    except KeyboardInterrupt:  # every process is already stopped by then
        print("chain: interrupted")
        return 130
    print("chain: %s" % ("OK" if ok else "PROBLEM"))
    print(line)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
