"""Entry point: python -m companion_app [options].

    python -m companion_app                      # window, real helmet over BLE (bleak)
    python -m companion_app --headless           # same, rendered offscreen (no display needed)
    python -m companion_app --simulate           # a simulated helmet instead of BLE
    python -m companion_app --no-ui --run-seconds 60   # link, store and uploader only

It ends with a summary line: uploaded=N fever=N recheck=N clear=N.
"""

import argparse
import asyncio
import logging
import os
import sys
import time

T_START = time.time()  # as early as possible: app_start_s counts from here


def _paths():
    # protocol/calibration live in shared/ (installed by `pip install -e .`,
    # but not on Android or in a bare checkout).
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.join(os.path.dirname(here), "shared")
    if os.path.isdir(shared) and shared not in sys.path:
        sys.path.insert(0, shared)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="companion_app", description="Fever-screening helmet companion app")
    ap.add_argument("--headless", action="store_true", help="render offscreen: no display needed")
    ap.add_argument("--no-ui", action="store_true", help="no Kivy at all: link, store and uploader only")
    ap.add_argument("--simulate", action="store_true", help="a simulated helmet instead of BLE")
    ap.add_argument("--data-dir", help="where the log database and settings live")
    ap.add_argument("--address", help="connect only to this helmet")
    ap.add_argument("--adapter", help="BlueZ adapter, e.g. hci1")
    ap.add_argument("--pair", action="store_true", help="pair/bond when connecting")
    ap.add_argument("--endpoint", help="FHIR upload endpoint (overrides the settings)")
    ap.add_argument("--token", help="upload bearer token (overrides the settings)")
    ap.add_argument("--allow-http-loopback", action="store_true", help="plain http to 127.0.0.1 (demo)")
    ap.add_argument("--run-seconds", type=float, help="stop after this many seconds")
    ap.add_argument("--exit-after-first-frame", action="store_true", help="stop once a live frame is on screen")
    ap.add_argument("--screenshot", help="write a PNG of the window here when stopping")
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("-v", "--verbose", action="store_true")
    return ap.parse_args(argv)


def _data_dir(args, on_android):
    if args.data_dir:
        return args.data_dir
    if on_android:
        from companion_app import android

        return android.app_storage_path()
    return os.path.join(os.path.expanduser("~"), ".local", "share", "fever-helmet-app")


def main(argv=None):
    _paths()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    on_android = "ANDROID_ARGUMENT" in os.environ or "ANDROID_PRIVATE" in os.environ
    if not args.no_ui:
        # Must be decided before Kivy is imported: it opens the window then.
        os.environ.setdefault("KIVY_NO_ARGS", "1")
        os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # one logging setup (ours), not two
        os.environ.setdefault("KIVY_CLIPBOARD", "sdl2")  # no probing for xsel/xclip
        if args.headless:
            os.environ["SDL_VIDEODRIVER"] = "offscreen"
            # Nobody to hear it: alarms still "play", into SDL's null device.
            os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    data_dir = _data_dir(args, on_android)
    os.makedirs(data_dir, exist_ok=True)
    return asyncio.run(_amain(args, data_dir))


async def _amain(args, data_dir):
    from companion_app.controller import AppController, SimulatedLink
    from companion_app.store import Store

    store = Store(os.path.join(data_dir, "app.db"))
    sim = None

    def link_factory(address=None, resume=None):
        nonlocal sim
        if args.simulate:
            sim = SimulatedLink()
            return sim
        from companion_app.link import HelmetLink

        return HelmetLink(address=address or args.address, adapter=args.adapter, resume=resume, pair=args.pair)

    ctl = AppController(store, link_factory=link_factory, settings_path=os.path.join(data_dir, "settings.json"))
    overrides = {}
    if args.endpoint:
        overrides["endpoint"] = args.endpoint
    if args.token:
        overrides["token"] = args.token
    if args.allow_http_loopback:
        overrides["allow_http_loopback"] = True
    for k, v in overrides.items():
        setattr(ctl.settings, k, v)

    stop = asyncio.Event()
    extra = []
    if args.run_seconds:
        extra.append(asyncio.get_running_loop().call_later(args.run_seconds, stop.set))

    async def simulate():
        while sim is None or ctl.link is not sim:
            await asyncio.sleep(0.01)
        await sim.play_demo()

    tasks = [asyncio.ensure_future(simulate())] if args.simulate else []
    try:
        if args.no_ui:
            run = asyncio.ensure_future(ctl.run())
            await stop.wait()
            await ctl.stop()
            await run
        else:
            await _run_ui(ctl, args, stop)
    finally:
        for t in tasks:
            t.cancel()
        for h in extra:
            h.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        print("app: " + ctl.summary(), flush=True)
        store.close()
    return 0


async def _run_ui(ctl, args, stop):
    from kivy.config import Config

    if not args.verbose:
        logging.getLogger("kivy").setLevel(logging.WARNING)
    Config.set("graphics", "width", str(args.width))
    Config.set("graphics", "height", str(args.height))
    from kivy.core.window import Window

    from companion_app.ui.app import HelmetApp

    def first_frame():
        print("app: first frame rendered %.3f s after start" % (time.time() - T_START), flush=True)
        if args.exit_after_first_frame:
            stop.set()

    app = HelmetApp(ctl, first_frame_cb=first_frame)
    ctl_task = asyncio.ensure_future(ctl.run())
    ui_task = asyncio.ensure_future(app.async_run(async_lib="asyncio"))
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([ui_task, stopper], return_when=asyncio.FIRST_COMPLETED)
    if args.screenshot:
        print("app: screenshot %s" % Window.screenshot(name=args.screenshot), flush=True)
    if not ui_task.done():
        app.stop()
        await ui_task
    stopper.cancel()
    await ctl.stop()
    await asyncio.gather(ctl_task, stopper, return_exceptions=True)


if __name__ == "__main__":
    sys.exit(main())
