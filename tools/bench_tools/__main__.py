"""Command line of the bench tools (run with PYTHONPATH=tools:shared).

    python -m bench_tools bring-up  --port PORT [--arch xtensawin|x64] [--json FILE]
    python -m bench_tools deploy    --port PORT [--arch ...]
    python -m bench_tools selftest  --port PORT [--json FILE]
    python -m bench_tools live      --port PORT [--frames N] [--png DIR]
    python -m bench_tools calibrate --port PORT --points 35 40 --distance 0.3 --aperture 0.1
    python -m bench_tools config    --port PORT [--set field=value ...]
    python -m bench_tools journal   --port PORT [--json FILE]
    python -m bench_tools sim-board [--no-sensor] [--dead-pixel N] ...   (a simulated board to try them on)

PORT is anything mpremote connects to: /dev/ttyUSB0, or socket://127.0.0.1:PORT
for the simulated board.  Exit status: 0 pass, 1 the check failed or was
refused (the reason is printed), 2 usage or connection error.
"""

import argparse
import json
import sys

from bench_tools import build, mpr


def _deploy(a):
    from bench_tools import deploy

    s = deploy.deploy(a.port, a.arch)
    print("deploy: %d files, %d copied, %d stale removed, verified" % (s["files"], len(s["copied"]), len(s["removed"])))
    return s


def _selftest(a):
    from bench_tools import selftest

    rep = selftest.run(a.port, expect_version=getattr(a, "expect_version", None))
    print(selftest.format_report(rep))
    if a.json:
        selftest.save(rep, a.json)
    return rep


def cmd_deploy(a):
    _deploy(a)
    return 0


def cmd_selftest(a):
    return 0 if _selftest(a)["ok"] else 1


def cmd_bring_up(a):
    """Deploy, then self-test against the version just deployed."""
    _deploy(a)
    a.expect_version = _local_version()
    return 0 if _selftest(a)["ok"] else 1


def _local_version():
    text = (build.REPO / "firmware" / "version.py").read_text()
    for line in text.splitlines():
        if line.startswith("FIRMWARE_VERSION"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return None


def cmd_live(a):
    from bench_tools import live

    n, files = live.run(a.port, a.frames, a.rate, a.png, a.png_every, color=False if a.ascii else None)
    print("%d frames, %d PNG snapshots%s" % (n, len(files), " in %s" % a.png if files else ""))
    return 0


def cmd_calibrate(a):
    from bench_tools import calibrate

    def manual(t):
        input(
            "Set the blackbody to %.2f degC, %.2f m in front of the sensor, centred; press Enter when stable "
            % (t, a.distance)
        )

    try:
        rec = calibrate.calibrate(
            a.port,
            a.points,
            manual,
            a.distance,
            a.aperture,
            emissivity=a.emissivity,
            reflected_c=a.room,
            frames_per_point=a.frames,
            rate_hz=a.rate,
            out_dir=a.out,
            write=not a.no_write,
        )
    except calibrate.CalibrationRefused as exc:
        print("CALIBRATION REFUSED: %s" % exc)
        return 1
    print("calibration written to the device: %s; files: %s" % (rec["written_to_device"], ", ".join(rec["files"])))
    return 0


def cmd_config(a):
    from bench_tools import config

    if a.set:
        changes = {}
        for item in a.set:
            field, _, value = item.partition("=")
            changes[field] = config.parse_value(field, value)
        cfg = config.write(a.port, **changes)
        reason = None
    else:
        cfg, reason = config.read(a.port)
    print(json.dumps({"config": config.as_dict(cfg), "defaults_because": reason}, indent=2))
    return 0


def cmd_journal(a):
    from bench_tools import journal

    events, counters = journal.pull(a.port)
    if counters is None:
        print("the helmet has no journal yet")
    else:
        for e in events:
            print(
                "#%d %s %s" % (e["seq"], e["kind_name"], {k: v for k, v in e.items() if k not in ("seq", "kind_name")})
            )
        print(
            "%d events retained; acknowledged up to %d; %d dropped"
            % (len(events), counters["acked"], counters["dropped"])
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"events": events, "counters": counters}, f, indent=2)
    return 0


def parser():
    ap = argparse.ArgumentParser(prog="python -m bench_tools", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def add(name, func, help):
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        if name != "sim-board":
            p.add_argument("--port", required=True, help="mpremote device: /dev/ttyUSB0 or socket://127.0.0.1:PORT")
        return p

    for name, func, help in (
        ("bring-up", cmd_bring_up, "deploy, then self-test: one command for a new board"),
        ("deploy", cmd_deploy, "build, copy what changed, verify by hash, roll back on failure"),
    ):
        p = add(name, func, help)
        p.add_argument(
            "--arch", default="xtensawin", choices=build.ARCHS, help="xtensawin: ESP32; x64: simulated board"
        )
        if name == "bring-up":
            p.add_argument("--json", help="also write the self-test report here")
    p = add("selftest", cmd_selftest, "bench self-test: one pass/fail report")
    p.add_argument("--json", help="also write the report here")
    p.add_argument("--expect-version", help="fail unless the firmware reports this version")
    p = add("live", cmd_live, "stream frames to a terminal heat map and PNG snapshots")
    p.add_argument("--frames", type=int, default=0, help="number of frames (0: until Ctrl-C)")
    p.add_argument("--rate", type=int, default=4, choices=(1, 2, 4, 8, 16), help="subpage rate, Hz")
    p.add_argument("--png", help="directory for PNG snapshots")
    p.add_argument("--png-every", type=int, default=1)
    p.add_argument("--ascii", action="store_true", help="no colour")
    p = add("calibrate", cmd_calibrate, "blackbody calibration at two or more set points")
    p.add_argument("--points", type=float, nargs="+", required=True, help="blackbody set points, degC")
    p.add_argument("--distance", type=float, required=True, help="blackbody distance from the lens, m")
    p.add_argument("--aperture", type=float, required=True, help="blackbody aperture (square side), m")
    p.add_argument("--emissivity", type=float, default=0.99, help="blackbody emissivity (certificate)")
    p.add_argument("--room", type=float, default=23.0, help="room temperature reflected by the blackbody, degC")
    p.add_argument("--frames", type=int, default=16, help="frames per set point")
    p.add_argument("--rate", type=int, default=4, choices=(1, 2, 4, 8, 16), help="subpage rate, Hz")
    p.add_argument("--out", default="calibration", help="directory for the JSON record, export and PNG plot")
    p.add_argument("--no-write", action="store_true", help="fit and save, but do not write to the device")
    p = add("config", cmd_config, "read the configuration, or change fields with --set")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE", help="e.g. threshold_c=37.5 (repeatable)")
    p = add("journal", cmd_journal, "pull the event journal (read-only)")
    p.add_argument("--json", help="also write the events here")
    add("sim-board", None, "serve a simulated board on loopback until Ctrl-C (sim-board --help for its options)")
    return ap


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["sim-board"]:  # its options belong to simulated_board's own parser
        from bench_tools import simulated_board

        return simulated_board.main(argv[1:])
    a = parser().parse_args(argv)
    try:
        return a.func(a)
    except mpr.DeviceError as exc:
        print("ERROR: %s" % exc, file=sys.stderr)
        return 2
    except Exception as exc:  # deploy/build failures carry their own message
        from bench_tools.build import BuildError
        from bench_tools.deploy import DeployError

        if isinstance(exc, (BuildError, DeployError, ValueError)):
            print("ERROR: %s" % exc, file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
