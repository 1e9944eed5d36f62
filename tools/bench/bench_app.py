"""Companion app benchmark (issue 6): bench/results/app.json.

- live_view_fps: heat-map frames the Kivy UI actually puts on screen per
  second (window flips showing a new frame), rendering offscreen (SDL
  offscreen + Mesa), fed 8 Hz frames by a SimulatedLink through the real
  controller and app loop.  Baseline in the same run: the 8 Hz input rate;
  target: at least 95 % of it.  live_view_max_fps: the same with frames
  pushed as fast as the loop takes them and no frame-rate cap: the headroom.
- store_events_per_s: companion_app.store.bench_ingest (one event per
  transaction, synchronous=FULL, as the live link stores them).  Baseline:
  the most the helmet can emit, one event per 8 Hz frame; target: 10x that.
- app_start_s: process start (spawn, measured by this process) to the first
  live frame on screen, `python -m companion_app --headless --simulate`.
  Baseline: a bare Kivy app (one label) to its first frame, same run;
  target: under 5 s.

Each UI measurement runs in a child process: Kivy opens one window per process.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _p in (REPO, REPO / "shared"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
INPUT_HZ = 8.0
MEASURE_S = 5.0


def _env():
    env = dict(os.environ)
    env.update(SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1", KIVY_LOG_MODE="PYTHON", KIVY_CLIPBOARD="sdl2")
    env.setdefault("KIVY_HOME", tempfile.mkdtemp(prefix="kivy-home-"))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "shared"), env.get("PYTHONPATH", "")])
    return env


def _child(args, timeout=120):
    r = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO),
    )
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError("bench child %s failed (rc %d):\n%s" % (args, r.returncode, r.stderr[-3000:]))


def _first_line_time(cmd, marker, timeout=120):
    """Seconds from spawning cmd to the first stdout line containing marker."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    try:
        for line in p.stdout:
            if marker in line:
                dt = time.perf_counter() - t0
                break
        else:
            raise RuntimeError("%s: no %r (stderr: %s)" % (cmd, marker, p.stderr.read()[-2000:]))
        p.wait(timeout=timeout)
        return dt
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def run(results_dir):
    from run import Report

    from companion_app.store import bench_ingest

    with tempfile.TemporaryDirectory() as tmp:
        store_eps = bench_ingest(os.path.join(tmp, "ingest.db"), n=1000, synchronous="FULL", batch=1)
        live = _child(["live", str(INPUT_HZ), str(MEASURE_S)])
        peak = _child(["live", "0", "3"])
        bare_s = min(
            _first_line_time([sys.executable, str(Path(__file__).resolve()), "--child", "bare"], "FIRST")
            for _ in range(2)
        )
        app_s = min(
            _first_line_time(
                [sys.executable, "-m", "companion_app", "--headless", "--simulate", "--exit-after-first-frame"]
                + ["--data-dir", os.path.join(tmp, "app%d" % i)],
                "first frame rendered",
            )
            for i in range(2)
        )
    store_target = 10 * INPUT_HZ
    data = {
        "live_view_fps": round(live["fps"], 2),
        "live_view_input_hz": INPUT_HZ,
        "live_view_frames_in": live["frames_in"],
        "live_view_frames_shown": live["shown"],
        "live_view_max_fps": round(peak["fps"], 1),
        "store_events_per_s": round(store_eps, 1),
        "store_baseline_events_per_s": INPUT_HZ,
        "app_start_s": round(app_s, 3),
        "app_start_baseline_bare_kivy_s": round(bare_s, 3),
        "renderer": live.get("renderer", ""),
    }
    rows = [
        ("live view (8 Hz frames in)", "%.2f frames/s shown" % live["fps"], "input %.0f Hz" % INPUT_HZ, ">= 95 %"),
        ("live view, unthrottled", "%.1f frames/s" % peak["fps"], "-", "headroom"),
        (
            "store ingest (FULL, 1/tx)",
            "%.0f events/s" % store_eps,
            "%.0f events/s" % INPUT_HZ,
            ">= %.0f" % store_target,
        ),
        ("app start to first frame", "%.2f s" % app_s, "bare Kivy %.2f s" % bare_s, "< 5 s"),
    ]
    targets = [
        ("live view shows >= 95%% of 8 Hz frames (%.2f fps)" % live["fps"], live["fps"] >= 0.95 * INPUT_HZ),
        ("store ingests >= %.0f events/s (%.0f)" % (store_target, store_eps), store_eps >= store_target),
        ("app start to first frame < 5 s (%.2f s)" % app_s, app_s < 5.0),
    ]
    return Report("app", data, ("measure", "result", "baseline", "target"), rows, targets)


# --- child processes ----------------------------------------------------------------------
def _child_bare():
    from kivy.app import App
    from kivy.core.window import Window
    from kivy.uix.label import Label

    class Bare(App):
        def build(self):
            def flip(*_):
                Window.unbind(on_flip=flip)
                print("FIRST", flush=True)
                self.stop()

            Window.bind(on_flip=flip)
            return Label(text="bare")

    Bare().run()


def _child_live(rate_hz, seconds):
    import asyncio

    from kivy.config import Config

    Config.set("graphics", "width", "480")
    Config.set("graphics", "height", "800")
    if rate_hz == 0:
        Config.set("graphics", "maxfps", "0")  # no cap: how fast can it go?
    from kivy.core.window import Window
    from kivy.graphics.opengl import GL_RENDERER, glGetString

    from companion_app import controller as C
    from companion_app.store import Store
    from companion_app.ui.app import HelmetApp

    async def main():
        tmp = tempfile.mkdtemp()
        store = Store(os.path.join(tmp, "app.db"))
        link = C.SimulatedLink()
        ctl = C.AppController(store, link_factory=lambda **kw: link)
        app = HelmetApp(ctl)
        ui = asyncio.ensure_future(app.async_run(async_lib="asyncio"))
        ctl_task = asyncio.ensure_future(ctl.run())
        while app.root is None or ctl.link is None:
            await asyncio.sleep(0.01)
        hm = app.root.screens["live"].heatmap
        frames = [C.demo_frame(i) for i in range(64)]
        pushed = 0
        # Warm-up until the first frame is on screen, then measure.
        while hm.displayed == 0:
            link.push_frame(frames[pushed % 64])
            pushed += 1
            await asyncio.sleep(0.05)
        shown0, in0, t0 = hm.displayed, pushed, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            link.push_frame(frames[pushed % 64])
            pushed += 1
            if rate_hz:
                await asyncio.sleep(max(0.0, t0 + (pushed - in0) / rate_hz - time.perf_counter()))
            else:
                await asyncio.sleep(0)
        dt = time.perf_counter() - t0
        shown = hm.displayed - shown0
        renderer = glGetString(GL_RENDERER)
        app.stop()
        await ui
        await ctl.stop()
        await asyncio.gather(ctl_task, return_exceptions=True)
        result = {"fps": shown / dt, "shown": shown, "frames_in": pushed - in0, "seconds": dt}
        result["renderer"] = renderer.decode() if isinstance(renderer, bytes) else str(renderer)
        print("RESULT " + json.dumps(result), flush=True)
        Window.close()

    asyncio.run(main())


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--child":
    if sys.argv[2] == "bare":
        _child_bare()
    elif sys.argv[2] == "live":
        _child_live(float(sys.argv[3]), float(sys.argv[4]))
