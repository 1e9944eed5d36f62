"""Accuracy benchmark of the on-helmet screening (issue 4), run under MicroPython.

Scenes (tools/scene, rendered on the host with ground truth) are written as
recordings; the firmware pipeline (firmware/screening.py with detect, track,
measure) plays them inside the real MicroPython unix port with a 100 KB heap,
and what it decided is compared with the truth:

- single people standing at 0.5, 1, 1.5, 2, 3, 4 and 5 m, ambient 15-32 degC,
  core 36.0-40.0 degC, with and without glasses / mask / hat (cycled);
- crowds of 2-5 people side by side at 2 m and beyond (as many as fit the
  55-degree view), cores drawn from the same range;
- hot objects: the hot_objects scenario and the crowd_walk distractors.

Per person the outcome is the last one the pipeline reported for the
track(s) that followed that person's head; "febrile" means core >= 38.0.
Sensitivity is given both as FEVER only and as flagged (FEVER or RECHECK);
see the note in the results for why the two differ.

The device is taken as blackbody-calibrated (five set points, u = 0.19 degC)
since the simulated sensor is unbiased; the skin-to-core offset is the
shipped default (1.3 +/- 0.4 degC, corrected for the air temperature by
shared/calibration).

The simulated world and our calibration model agree on how facial skin
follows the air (0.15 degC per degC, the middle of the literature's
0.1-0.2).  So that the result does not rest on that agreement, every scene
is rendered again with the world's slope at 0.10 and at 0.20, and the
safety figure (febrile people reported CLEAR) must hold there too.

ms_per_frame is the pipeline alone (no I/O), measured on this host's
MicroPython x64 port with the native emitter.
"""

import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from run import Report

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (REPO / "tools", REPO / "tests" / "support", REPO / "shared"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import calibration  # noqa: E402
from mpharness import compile_to_mpy, run_micropython  # noqa: E402
from scene import (  # noqa: E402
    Scenario,
    Scene,
    builders,  # noqa: E402
    read_truth,
    write_recording,
)
from scene import people as people_model  # noqa: E402
from scene.png import write_png  # noqa: E402

WORLD_SKIN_AIR_SLOPES = (0.10, 0.20)  # the literature's range, around the model's 0.15
DISTANCES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0)
AMBIENTS = (15.0, 19.0, 23.0, 27.0, 32.0)
CORES = (36.0, 36.6, 37.2, 37.7, 38.0, 38.4, 39.0, 40.0)
WEAR = ({}, {"glasses": True}, {"mask": True}, {"hat": True})
RATE_HZ = 8
SECONDS = 3.0
FEBRILE_C = 38.0
CLEAR, RECHECK, FEVER = 0, 1, 2
# Rough factor for MicroPython bytecode on an ESP32 at 240 MHz against one x64
# core: 10-30x slower (an assumption, not measured here).
ESP32_SLOWDOWN = (10.0, 30.0)

RUNNER = """
import gc
import sys
import time

import calibration
import protocol
import screening
import track
from scene_player import ScenePlayer

EVENTS = []


def _sink(ev):
    EVENTS.append(ev)


def blackbody_calibration():
    # a sensor checked against a blackbody at five set points and found
    # unbiased, as the simulated one is: u = fit floor 0.15 x 1.26 = 0.19 degC
    return calibration.fit_calibration([(t, t) for t in (30.0, 32.5, 35.0, 37.5, 40.0)])


def run(path, calibrated=1):
    # the pipeline first, as the firmware would build it at boot, then the
    # frame buffer (the driver's, on the helmet)
    gc.collect()
    cfg = protocol.DeviceConfig()
    scr = screening.Screening(cfg, blackbody_calibration() if calibrated else None, _sink)
    gc.collect()
    p = ScenePlayer(path)
    trk = scr.trk
    total = 0
    n = 0
    mem_warm = 0
    print("BEGIN", path)
    while p.next():
        del EVENTS[:]
        t0 = time.ticks_us()
        scr.process(p.frame, p.ta_c)
        total += time.ticks_diff(time.ticks_us(), t0)
        n += 1
        if n == 16:
            gc.collect()
            mem_warm = gc.mem_alloc()
        for ev in EVENTS:
            print("E", p.index, ev.track_id, ev.outcome, ev.core_c, ev.core_u_c, ev.distance_m, ev.flags)
        for t in range(track.MAX_TRACKS):
            if trk.active[t] and not scr.obj[t] and trk.seen[t]:
                print("T", p.index, trk.ids[t], trk.x[t], trk.y[t], scr.outcome[t], scr.core[t], scr.u_core[t],
                      scr.dist[t])
    p.close()
    scr = None
    gc.collect()
    print("MS", total / 1000.0, n)
    print("MEM", mem_warm, gc.mem_alloc())
"""


def build_runner(workdir):
    """Compile the runner module for the host; returns its directory."""
    src = Path(workdir) / "runner_src"
    src.mkdir(parents=True, exist_ok=True)
    (src / "screen_runner.py").write_text(RUNNER)
    return compile_to_mpy([src], Path(workdir) / "runner_mpy")


def run_recordings(paths, mpy_dir, heapsize="100k"):
    """Run each recording in a fresh MicroPython process (heap as on the
    helmet); returns {path: parsed output}."""
    out = {}
    for path in paths:
        src = "import screen_runner\nscreen_runner.run(%r)\n" % str(path)
        out[str(path)] = parse_output(run_micropython(src, heapsize=heapsize, extra_path=(mpy_dir,)))
    return out


def parse_output(text):
    res = {"events": [], "tracks": [], "ms": 0.0, "frames": 0, "mem": (0, 0)}
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "E":
            res["events"].append(
                {
                    "frame": int(f[1]),
                    "track": int(f[2]),
                    "outcome": int(f[3]),
                    "core": None if f[4] == "None" else float(f[4]),
                    "core_u": float(f[5]),
                    "distance": None if f[6] == "None" else float(f[6]),
                    "flags": int(f[7]),
                }
            )
        elif f[0] == "T":
            res["tracks"].append(
                (int(f[1]), int(f[2]), float(f[3]), float(f[4]), int(f[5]), float(f[6]), float(f[7]), float(f[8]))
            )
        elif f[0] == "MS":
            res["ms"], res["frames"] = float(f[1]), int(f[2])
        elif f[0] == "MEM":
            res["mem"] = (int(f[1]), int(f[2]))
    return res


def match_tracks(res, truth):
    """track id -> person id (majority vote over frames: the track's head
    position inside the person's true head box, grown by one pixel)."""
    votes = {}
    frames = truth["frames"]
    for fi, tid, x, y, *_ in res["tracks"]:
        for p in frames[fi]["people"]:
            b = p["head_bbox_px"]
            if b and p["in_fov"] and b[0] - 1 <= x <= b[2] + 1 and b[1] - 1 <= y <= b[3] + 1:
                key = (tid, p["id"])
                votes[key] = votes.get(key, 0) + 1
    best = {}
    for (tid, pid), n in votes.items():
        if tid not in best or n > best[tid][1]:
            best[tid] = (pid, n)
    return {tid: pid for tid, (pid, _) in best.items()}


def person_results(res, truth):
    """Per person: reported outcomes (in order), last core estimate,
    detected frames, visible frames."""
    owner = match_tracks(res, truth)
    people = {}
    frames = truth["frames"]
    for p in frames[0]["people"]:
        people[p["id"]] = {
            "core_c": p["core_c"],
            "wearing": p["wearing"],
            "outcomes": [],
            "core_est": None,
            "visible": 0,
            "detected": 0,
        }
    seen = set()
    for fi, tid, *_rest in res["tracks"]:
        pid = owner.get(tid)
        if pid is not None:
            seen.add((fi, pid))
            core = _rest[3]
            if core > 0.0:
                people[pid]["core_est"] = core
    for fi, fr in enumerate(frames):
        for p in fr["people"]:
            b = p["head_bbox_px"]
            if p["in_fov"] and b and b[0] >= 0 and b[2] <= 32 and b[1] >= 0:
                people[p["id"]]["visible"] += 1
                if (fi, p["id"]) in seen:
                    people[p["id"]]["detected"] += 1
    # an event belongs to the person whose head the track is on in the frame
    # of the event (a track that jumped to someone else reports for them);
    # the majority owner only when the track is not on anyone then
    # (a track coasting through a missed frame is placed where it was last seen)
    last = {}
    for fi, tid, x, y, *_ in res["tracks"]:
        last.setdefault(tid, []).append((fi, x, y))
    stray = []
    for ev in res["events"]:
        pid = None
        pos = None
        for fi, x, y in last.get(ev["track"], ()):
            if fi <= ev["frame"]:
                pos = (x, y, fi)
        if pos is not None:
            best = 1e9
            for p in frames[pos[2]]["people"]:
                b = p["head_bbox_px"]
                if p["hidden_by"] and not p["skin_pixels"]:
                    continue  # a head hidden behind someone nearer is not the one tracked
                if b and p["in_fov"] and b[0] - 1 <= pos[0] <= b[2] + 1 and b[1] - 1 <= pos[1] <= b[3] + 1:
                    # a far head inside a near person's box is the far person's
                    dd = (pos[0] - 0.5 * (b[0] + b[2])) ** 2 + (pos[1] - 0.5 * (b[1] + b[3])) ** 2
                    if dd < best:
                        best = dd
                        pid = p["id"]
        if pid is None:
            pid = owner.get(ev["track"])
        if pid is None:
            stray.append(ev)
        else:
            people[pid]["outcomes"].append(ev["outcome"])
    return people, stray


# --- scenes -------------------------------------------------------------------


def single_scenes(rng):
    scenes = []
    i = 0
    for d in DISTANCES:
        for amb in AMBIENTS:
            for core in CORES:
                wear = WEAR[i % len(WEAR)]
                i += 1
                person = builders.person(id="p", core_c=core, z_m=d, **wear)
                person["skin_variation_c"] = None  # drawn from the seed: N(0, 0.3)
                scenes.append(("single", d, builders.scenario([person], ambient_c=amb)))
    return scenes


def crowd_scenes(rng):
    scenes = []
    for d in DISTANCES:
        if d < 2.0:
            continue
        fov_w = 2 * np.tan(np.radians(27.5)) * d
        fit = int(min(5, max(2, (fov_w - 0.3) // 0.55 + 1)))
        for _rep in range(6):
            n = int(rng.integers(2, fit + 1))
            xs = (np.arange(n) - (n - 1) / 2) * 0.55
            people = []
            for k in range(n):
                core = float(rng.choice(CORES))
                wear = WEAR[int(rng.integers(0, len(WEAR)))]
                p = builders.person(id="c%d" % k, core_c=core, x_m=float(xs[k]), z_m=d, **wear)
                p["skin_variation_c"] = None
                p["height_m"] = float(rng.uniform(1.65, 1.85))
                people.append(p)
            amb = float(rng.choice(AMBIENTS))
            scenes.append(("crowd", d, builders.scenario(people, ambient_c=amb)))
    return scenes


def render_all(scenes, workdir, skin_air_slope=None):
    """Render every scene; ``skin_air_slope`` overrides how the simulated
    world's facial skin follows the air (degC per degC)."""
    paths = []
    shipped = people_model.SKIN_AMBIENT_SLOPE
    if skin_air_slope is not None:
        people_model.SKIN_AMBIENT_SLOPE = skin_air_slope
    try:
        for k, (_kind, _d, sc) in enumerate(scenes):
            path = str(Path(workdir) / ("scene%03d.htrs" % k))
            write_recording(Scene(Scenario.from_dict(sc), seed=k), path, rate_hz=RATE_HZ, duration_s=SECONDS)
            paths.append(path)
    finally:
        people_model.SKIN_AMBIENT_SLOPE = shipped
    return paths


def hot_object_recordings(workdir):
    paths = []
    for name, dur in (("hot_objects", 10.0), ("crowd_walk", 20.0)):
        path = str(Path(workdir) / (name + ".htrs"))
        write_recording(Scene(Scenario.load(name), seed=0), path, rate_hz=RATE_HZ, duration_s=dur)
        paths.append(path)
    return paths


# --- statistics -----------------------------------------------------------------


def _final(outcomes):
    return outcomes[-1] if outcomes else None


def summarise(rows):
    """rows: per-person dicts with distance; -> by_distance list."""
    out = []
    for d in DISTANCES:
        rs = [r for r in rows if r["distance_m"] == d]
        if not rs:
            continue
        vis = sum(r["visible"] for r in rs)
        det = sum(r["detected"] for r in rs)
        errs = [abs(r["core_est"] - r["core_c"]) for r in rs if r["core_est"] is not None]
        feb = [r for r in rs if r["core_c"] >= FEBRILE_C]
        afeb = [r for r in rs if r["core_c"] < FEBRILE_C]
        fin = [_final(r["outcomes"]) for r in rs]
        out.append(
            {
                "distance_m": d,
                "people": len(rs),
                "detection_rate": round(det / vis, 4) if vis else None,
                "core_mae_c": round(float(np.mean(errs)), 3) if errs else None,
                "core_p95_c": round(float(np.percentile(errs, 95)), 3) if errs else None,
                "core_bias_c": round(float(np.mean([r["core_est"] - r["core_c"] for r in rs if r["core_est"]])), 3)
                if errs
                else None,
                "sensitivity": round(sum(_final(r["outcomes"]) == FEVER for r in feb) / len(feb), 4) if feb else None,
                "sensitivity_flagged": round(sum(_final(r["outcomes"]) in (FEVER, RECHECK) for r in feb) / len(feb), 4)
                if feb
                else None,
                "specificity": round(sum(_final(r["outcomes"]) != FEVER for r in afeb) / len(afeb), 4)
                if afeb
                else None,
                "recheck_rate": round(sum(f == RECHECK for f in fin) / len(fin), 4),
                "clear_rate": round(sum(f == CLEAR for f in fin) / len(fin), 4),
                "unreported_rate": round(sum(f is None for f in fin) / len(fin), 4),
                "febrile_reported_clear": sum(CLEAR in r["outcomes"] for r in feb),
            }
        )
    return out


def plot(by_distance, path):
    """A small PNG: detection (white), FEVER sensitivity (red), flagged
    sensitivity (orange), specificity (green), RECHECK rate (blue) against
    distance (x, 0.5-5 m), 0-100 % (y), and core MAE (magenta, 0-2 degC)."""
    w, h, m = 420, 240, 20
    img = np.zeros((h, w, 3), np.uint8) + 24
    img[h - m, m : w - m] = 120
    img[m : h - m, m] = 120
    for frac in (0.25, 0.5, 0.75, 1.0):
        img[int(h - m - frac * (h - 2 * m)), m : w - m : 4] = 70
    for d in DISTANCES:
        img[h - m : h - m + 5, int(m + (d - 0.5) / 4.5 * (w - 2 * m))] = 200
    series = (
        ("detection_rate", (255, 255, 255), 1.0),
        ("sensitivity", (255, 40, 40), 1.0),
        ("sensitivity_flagged", (255, 160, 0), 1.0),
        ("specificity", (40, 220, 40), 1.0),
        ("recheck_rate", (60, 120, 255), 1.0),
        ("core_mae_c", (255, 0, 255), 2.0),
    )
    for key, color, full in series:
        pts = [
            (m + (r["distance_m"] - 0.5) / 4.5 * (w - 2 * m), h - m - min(r[key], full) / full * (h - 2 * m))
            for r in by_distance
            if r.get(key) is not None
        ]
        for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
            n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
            for s in np.linspace(0, 1, n):
                x, y = int(x0 + s * (x1 - x0)), int(y0 + s * (y1 - y0))
                img[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = color
    write_png(path, img)


def _chunks(seq, n):
    k = (len(seq) + n - 1) // n
    return [seq[i : i + k] for i in range(0, len(seq), k)]


def evaluate(scenes, paths, mpy_dir, workers=2):
    results = {}
    with ThreadPoolExecutor(workers) as pool:
        for part in pool.map(lambda chunk: run_recordings(chunk, mpy_dir), _chunks(paths, 8 * workers)):
            results.update(part)
    rows = []
    stray_fever = 0
    ms = 0.0
    frames = 0
    mem = []
    for (kind, d, sc), path in zip(scenes, paths, strict=True):
        res = results[path]
        truth = read_truth(path)
        people, stray = person_results(res, truth)
        skin = {p["id"]: p["skin_c"] for p in truth["frames"][0]["people"]}
        stray_fever += sum(ev["outcome"] == FEVER for ev in stray)
        ms += res["ms"]
        frames += res["frames"]
        mem.append(res["mem"])
        for pid, r in people.items():
            r.update(kind=kind, distance_m=d, id=pid, ambient_c=sc["ambient_c"], skin_c=skin[pid])
            rows.append(r)
    return rows, stray_fever, ms, frames, mem


def _near_summary(rows):
    near = [r for r in rows if r["distance_m"] <= 1.5]
    err = [abs(r["core_est"] - r["core_c"]) for r in near if r["core_est"] is not None]
    feb = [r for r in near if r["core_c"] >= FEBRILE_C]
    afeb = [r for r in near if r["core_c"] < FEBRILE_C]
    return {
        "core_mae_c": round(float(np.mean(err)), 3),
        "core_p95_c": round(float(np.percentile(err, 95)), 3),
        "sensitivity": round(sum(_final(r["outcomes"]) == FEVER for r in feb) / len(feb), 4),
        "sensitivity_flagged": round(sum(_final(r["outcomes"]) in (FEVER, RECHECK) for r in feb) / len(feb), 4),
        "specificity": round(sum(_final(r["outcomes"]) != FEVER for r in afeb) / len(afeb), 4),
        "febrile_reported_clear": sum(CLEAR in r["outcomes"] for r in feb),
    }


def _sensitivity_by_core(rows):
    """Final outcomes of febrile and afebrile people within 1.5 m by true
    core: FEVER-only sensitivity needs core - k*u above the threshold, and
    calibration's skin-to-core offset u (0.4 degC, k = 2) alone keeps cores
    within about 0.8 degC of it RECHECK even with a perfect skin reading."""
    near = [r for r in rows if r["distance_m"] <= 1.5]
    out = []
    for core in sorted({r["core_c"] for r in near}):
        rs = [r for r in near if r["core_c"] == core]
        fin = [_final(r["outcomes"]) for r in rs]
        out.append(
            {
                "core_c": core,
                "people": len(rs),
                "fever": sum(f == FEVER for f in fin),
                "recheck": sum(f == RECHECK for f in fin),
                "clear": sum(f == CLEAR for f in fin),
            }
        )
    return out


def _world_c(r):
    """Core error a perfect skin reading would leave: calibration's offset
    (at the scene's air) against the simulated person's own skin-to-core
    difference (the world's spread, no estimator removes it)."""
    return calibration.core_from_skin(r["skin_c"], 0.0, ambient_c=r["ambient_c"])[0] - r["core_c"]


def _decomposition(rows):
    """Within 1.5 m: core error = world (skin-to-core spread) + measurement
    (the skin estimate's error), by ambient, distance and what is worn."""

    def part(rs):
        rs = [r for r in rs if r["core_est"] is not None]
        err = [r["core_est"] - r["core_c"] for r in rs]
        world = [_world_c(r) for r in rs]
        meas = [e - w for e, w in zip(err, world, strict=True)]
        if not rs:
            return {"people": 0}
        return {
            "people": len(rs),
            "core_mae_c": round(float(np.mean(np.abs(err))), 3),
            "core_bias_c": round(float(np.mean(err)), 3),
            "world_mae_c": round(float(np.mean(np.abs(world))), 3),
            "world_bias_c": round(float(np.mean(world)), 3),
            "measurement_mae_c": round(float(np.mean(np.abs(meas))), 3),
            "measurement_bias_c": round(float(np.mean(meas)), 3),
        }

    near = [r for r in rows if r["distance_m"] <= 1.5]
    wear = sorted({"+".join(r["wearing"]) or "none" for r in near})
    return {
        "note": "core error = world + measurement; world = calibration's core for the true skin minus the true "
        "core (the simulated person-to-person skin-to-core spread: the MAE floor), measurement = the rest "
        "(the skin estimate's error: noise, fill fraction, background, emissivity)",
        "all": part(near),
        "by_ambient": {"%g" % a: part([r for r in near if r["ambient_c"] == a]) for a in AMBIENTS},
        "by_distance": {"%g" % d: part([r for r in near if r["distance_m"] == d]) for d in DISTANCES if d <= 1.5},
        "by_wearing": {w: part([r for r in near if ("+".join(r["wearing"]) or "none") == w]) for w in wear},
    }


def _people_rows(rows):
    """One row per person (every scene), for decomposing the error further."""
    out = []
    for r in rows:
        fin = _final(r["outcomes"])
        out.append(
            {
                "kind": r["kind"],
                "distance_m": r["distance_m"],
                "ambient_c": r["ambient_c"],
                "id": r["id"],
                "wearing": r["wearing"],
                "core_c": r["core_c"],
                "skin_c": round(r["skin_c"], 3),
                "core_est_c": None if r["core_est"] is None else round(r["core_est"], 3),
                "world_c": round(_world_c(r), 3),
                "outcome": None if fin is None else ("CLEAR", "RECHECK", "FEVER")[fin],
                "visible": r["visible"],
                "detected": r["detected"],
            }
        )
    return out


def run(results_dir):
    t_start = time.time()
    rng = np.random.default_rng(4)
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-screening-") as tmp:
        mpy_dir = build_runner(tmp)
        scenes = single_scenes(rng) + crowd_scenes(rng)
        paths = render_all(scenes, tmp)
        t_render = time.time() - t_start
        rows, stray_fever, ms, frames, mem = evaluate(scenes, paths, mpy_dir)
        mismatch = {}
        for slope in WORLD_SKIN_AIR_SLOPES:
            world = Path(tmp) / ("slope%.2f" % slope)
            world.mkdir()
            world_rows = evaluate(scenes, render_all(scenes, world, slope), mpy_dir)[0]
            world_by_distance = summarise(world_rows)
            mismatch["%.2f" % slope] = {
                "by_distance": world_by_distance,
                "within_1_5_m": _near_summary(world_rows),
                "febrile_reported_clear": sum(r["febrile_reported_clear"] for r in world_by_distance),
            }
        hot_paths = hot_object_recordings(tmp)
        hot = run_recordings(hot_paths, mpy_dir)
        hot_fever = stray_fever
        crowd_walk = None
        for path in hot_paths:
            people, stray = person_results(hot[path], read_truth(path))
            hot_fever += sum(ev["outcome"] == FEVER for ev in stray)
            if path.endswith("crowd_walk.htrs"):
                crowd_walk = {pid: r["outcomes"] for pid, r in people.items()}
            ms += hot[path]["ms"]
            frames += hot[path]["frames"]
            mem.append(hot[path]["mem"])
        # x64 timing of the long crowd recording alone, for the budget
        cw = hot[[p for p in hot_paths if p.endswith("crowd_walk.htrs")][0]]
    by_distance = summarise(rows)
    febrile_clear = sum(r["febrile_reported_clear"] for r in by_distance)
    near = [r for r in rows if r["distance_m"] <= 1.5]
    near_sum = _near_summary(rows)
    by_ambient = []
    for amb in AMBIENTS:
        rs = [r for r in near if r["kind"] == "single" and r["ambient_c"] == amb]
        if rs:
            e = [r["core_est"] - r["core_c"] for r in rs if r["core_est"] is not None]
            by_ambient.append({"ambient_c": amb, "core_bias_c": round(float(np.mean(e)), 3) if e else None})
    ms_per_frame = ms / frames if frames else None
    budget_ms = 1000.0 / 8
    mem_growth = max(b - a for a, b in mem if a)
    data = {
        "by_distance": by_distance,
        "within_1_5_m": near_sum,
        "core_bias_by_ambient_within_1_5_m": by_ambient,
        "error_decomposition_within_1_5_m": _decomposition(rows),
        "people_rows": _people_rows(rows),
        "sensitivity_by_core_within_1_5_m": _sensitivity_by_core(rows),
        "febrile_reported_clear": febrile_clear,
        "world_skin_air_slope": {
            "note": "the same scenes rendered with the simulated world's facial skin following the air at "
            "another slope than calibration's model (0.15 degC/degC); the firmware is unchanged",
            "runs": mismatch,
        },
        "hot_object_fever": hot_fever,
        "crowd_walk_outcomes": crowd_walk,
        "ms_per_frame": round(ms_per_frame, 3),
        "ms_per_frame_crowd_walk": round(cw["ms"] / cw["frames"], 3),
        "budget": {
            "frames_per_s": 8,
            "ms_per_frame_budget_esp32": budget_ms,
            "esp32_slowdown_assumed": list(ESP32_SLOWDOWN),
            "ms_per_frame_esp32_estimate": [round(ms_per_frame * f, 1) for f in ESP32_SLOWDOWN],
            "x64_budget_ms_at_30x": round(budget_ms / ESP32_SLOWDOWN[1], 2),
            "note": "ms_per_frame is measured: the screening pipeline alone (detect, track, measure, decide) "
            "on MicroPython's x64 unix port with the native emitter for the labelling loop. The ESP32 "
            "figure is an ASSUMPTION (10-30x slower than one x64 core for MicroPython code), not a "
            "measurement; the driver's share of the 125 ms budget is measured by the driver's own bench.",
        },
        "heap": {
            "heapsize": "100k",
            "max_growth_after_warmup_bytes": mem_growth,
            "note": "gc.mem_alloc() after gc.collect() at frame 16 and at the end of each recording",
        },
        # The PNG has no text (a dependency-free writer): its key is here.
        "plot": {
            "file": "screening.png",
            "x": "distance 0.5-5 m",
            "y": "0-100 % (core MAE: 0-2 degC)",
            "white": "detection rate",
            "red": "FEVER-only sensitivity",
            "orange": "flagged sensitivity (FEVER or RECHECK)",
            "green": "specificity",
            "blue": "RECHECK rate",
            "magenta": "core MAE",
        },
        "scenes": len(paths),
        "people": len(rows),
        "render_s": round(t_render, 1),
        "total_s": round(time.time() - t_start, 1),
        "note": "Outcome per person = last outcome reported for the track(s) on that person's head. "
        "calibration's default skin-to-core offset u = 0.4 degC (k = 2) leaves core estimates within about "
        "0.85 degC of 38.0 as RECHECK even with a perfect skin reading, so FEVER-only sensitivity is low for "
        "cores of 38.0-38.8 by design; flagged sensitivity (FEVER or RECHECK) is the safety figure.",
    }
    plot(by_distance, results_dir / "screening.png")
    headers = [
        "distance m",
        "people",
        "detect",
        "MAE",
        "p95",
        "sens FEVER",
        "sens flagged",
        "spec",
        "RECHECK",
        "feb CLEAR",
    ]
    table = [
        [
            r["distance_m"],
            r["people"],
            r["detection_rate"],
            r["core_mae_c"],
            r["core_p95_c"],
            r["sensitivity"],
            r["sensitivity_flagged"],
            r["specificity"],
            r["recheck_rate"],
            r["febrile_reported_clear"],
        ]
        for r in by_distance
    ]
    targets = [
        ("within 1.5 m core MAE <= 0.3 degC (got %.3f)" % near_sum["core_mae_c"], near_sum["core_mae_c"] <= 0.3),
        (
            "within 1.5 m FEVER sensitivity >= 95 %% (FEVER only %.1f %%, flagged %.1f %%)"
            % (100 * near_sum["sensitivity"], 100 * near_sum["sensitivity_flagged"]),
            near_sum["sensitivity"] >= 0.95,
        ),
        (
            "within 1.5 m specificity >= 98 %% (got %.1f %%)" % (100 * near_sum["specificity"]),
            near_sum["specificity"] >= 0.98,
        ),
        ("no febrile person ever reported CLEAR (got %d)" % febrile_clear, febrile_clear == 0),
        (
            "no febrile person reported CLEAR when the world's skin/air slope is %s (got %s)"
            % (" or ".join(mismatch), ", ".join(str(m["febrile_reported_clear"]) for m in mismatch.values())),
            all(m["febrile_reported_clear"] == 0 for m in mismatch.values()),
        ),
        ("hot objects raise no FEVER (got %d)" % hot_fever, hot_fever == 0),
        (
            "pipeline keeps up with 8 frames/s on an ESP32 assuming 30x slower than x64 (%.2f ms x64 <= %.2f ms)"
            % (ms_per_frame, budget_ms / ESP32_SLOWDOWN[1]),
            ms_per_frame <= budget_ms / ESP32_SLOWDOWN[1],
        ),
    ]
    return Report("screening", data, headers, table, targets)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    rep = run(REPO / "bench" / "results")
    print(rep.table())
    print(json.dumps(rep.data["within_1_5_m"]))
