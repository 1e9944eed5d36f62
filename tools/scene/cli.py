"""Command line: render one frame to a PNG, or write a recording.

    PYTHONPATH=tools:shared python -m scene render crowd_walk --t 3.0 --png out.png
    PYTHONPATH=tools:shared python -m scene record crowd_walk out.htrs --rate 8 --duration 20
    PYTHONPATH=tools:shared python -m scene schema
SCENARIO is a path or the name of a file in tools/scene/scenarios/.
"""

import argparse
import sys
import time

from .png import colorize, draw_box, upscale, write_png
from .recording import write_recording
from .render import Scene
from .scenario import Scenario, ScenarioError, schema_text


def _render(args):
    scene = Scene(Scenario.load(args.scenario), seed=args.seed)
    t0 = time.perf_counter()
    frame = scene.render(args.t, subpage_rate_hz=args.rate, noise=not args.no_noise, chess=args.chess)
    ms = (time.perf_counter() - t0) * 1e3
    print(
        "%s t=%.2f s: To %.2f..%.2f degC, Ta %.2f degC (%.1f ms)"
        % (scene.scenario.name, frame.t_s, frame.object_c.min(), frame.object_c.max(), frame.ta_c, ms)
    )
    for p in frame.people:
        if p.present:
            print(
                "  %-10s d=%5.2f m core=%.2f skin=%.2f fov=%-5s best=%s f=%.2f px=%d %s"
                % (
                    p.id,
                    p.distance_m,
                    p.core_c,
                    p.skin_c,
                    p.in_fov,
                    p.best_face_px,
                    p.skin_fraction,
                    p.skin_pixels,
                    ",".join(p.wearing + p.hidden_by),
                )
            )
    for d in frame.distractors:
        print(
            "  %-10s %-9s %.1f degC fov=%s area=%.1f px" % (d.id, d.kind, d.temperature_c, d.in_fov, d.visible_area_px)
        )
    if args.png:
        lo, hi = args.range if args.range else (None, None)
        rgb = upscale(colorize(frame.object_c, lo, hi), args.scale)
        if args.boxes:
            for p in frame.people:
                if p.in_fov:
                    draw_box(rgb, p.head_bbox_px, args.scale)
        write_png(args.png, rgb)
        print("wrote", args.png)


def _record(args):
    scene = Scene(Scenario.load(args.scenario), seed=args.seed)
    duration = args.duration if args.duration is not None else scene.scenario.data["duration_s"]
    t0 = time.perf_counter()
    n = write_recording(
        scene,
        args.out,
        args.rate,
        duration,
        subpage_rate_hz=args.subpage_rate,
        noise=not args.no_noise,
        chess=args.chess,
    )
    print(
        "wrote %s (%d frames, %.1f ms/frame) and %s.truth.json"
        % (args.out, n, (time.perf_counter() - t0) * 1e3 / max(n, 1), args.out)
    )


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m scene", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render one frame")
    r.add_argument("scenario")
    r.add_argument("--t", type=float, default=0.0, help="time in seconds")
    r.add_argument("--png", help="write a false-colour PNG here")
    r.add_argument("--rate", type=float, default=8.0, help="subpage rate (sets the noise), Hz")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--scale", type=int, default=10, help="PNG pixels per sensor pixel")
    r.add_argument("--range", type=float, nargs=2, metavar=("LO", "HI"), help="colour scale, degC")
    r.add_argument("--boxes", action="store_true", help="outline heads in the PNG")
    r.add_argument("--no-noise", action="store_true")
    r.add_argument("--chess", action="store_true", help="half the pixels one subpage older, like the sensor")
    r.set_defaults(run=_render)
    c = sub.add_parser("record", help="write a binary recording and its ground truth")
    c.add_argument("scenario")
    c.add_argument("out")
    c.add_argument("--rate", type=float, default=8.0, help="frames per second")
    c.add_argument("--duration", type=float, help="seconds (default: the scenario's duration_s)")
    c.add_argument("--subpage-rate", type=float, help="noise rate (default: --rate)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-noise", action="store_true")
    c.add_argument("--chess", action="store_true", help="half the pixels one subpage older, like the sensor")
    c.set_defaults(run=_record)
    s = sub.add_parser("schema", help="print the scenario schema")
    s.set_defaults(run=lambda args: print(schema_text()))
    args = ap.parse_args(argv)
    try:
        args.run(args)
    except (ScenarioError, OSError) as e:
        print("error:", e, file=sys.stderr)
        return 2
    return 0
