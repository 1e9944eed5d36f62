"""Soak of the helmet's main loop (issue 4, item 5): a 10-minute simulated crowd.

The crowd_walk scenario (six walkers, a hot drink, a lamp), with the febrile
walker at core 39.6 so every pass raises a FEVER alarm, is rendered once at
8 Hz (20 s, tools/scene) and played PASSES times in a row (4800 frames =
600 s of 8 Hz screening) through the virtual MLX90640 into the firmware's
main loop (firmware/helmet.py) by tools/simboard/run_crowd.py, under the
real MicroPython unix port.  Simulated time is frames: the board clock is
virtual and advances only while the firmware waits, so the sensor runs at the
helmet's 8 Hz and the ten minutes take one or two of real time.  The run is
made twice: screening only, and with the GATT server and a
simulated phone that takes and acknowledges every event.

Heap: the code runs from the helmet's ROMFS image, mapped outside the heap
like the ESP32's flash (tests/support/romfs_launch.py, tools/simboard/rom_boot.py),
and the firmware gets exactly the free heap of a board with RAM (100k, the
ESP32's without PSRAM, as the unix port counts it): the simulated parts are
built first in a larger process heap and a ballast then takes everything
above that (run_crowd.py --ram).  On the 64-bit host objects are about twice
their ESP32 size, so this is the stricter test.  gc.mem_alloc() after
gc.collect() every EVERY frames gives the firmware's share (the simulation's
is measured before the firmware boots and subtracted).  Readings move by
about 2 KB within a pass (tracks, events, the alarm in flight); every pass
shows the same scene, so warm-up is the first pass.  Growth compares the
largest reading of the last third of the passes after it with that of the
first third: a sample catches whatever the other tasks hold at that moment
(the loop's tasks run while it waits for the sensor), so one pass's peak
can sit a few blocks above another's with no trend, while a leak lifts the
later passes' peaks.  The per-pass peaks and their least-squares slope are
in the JSON too.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

from run import Report

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (REPO / "tools", REPO / "tests" / "support", REPO / "shared"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import calibration  # noqa: E402
import protocol  # noqa: E402
from mpharness import board_free_heap, run_micropython_file  # noqa: E402
from scene import Scenario, Scene, write_recording  # noqa: E402

RUN_CROWD = REPO / "tools" / "simboard" / "run_crowd.py"
RATE_HZ = 8
PASS_S = 20.0
FRAMES = 4800  # 10 minutes at 8 Hz
EVERY = 8  # heap reading every second of crowd: the per-pass peaks are then exact
RAM = "100k"  # the target: the firmware's heap, as -X heapsize counts it
RAM_STEP_K = 2  # the search for the smallest heap that runs, in KB
RAM_MAX_K = 200
PROCESS_HEAPSIZE = "640k"  # the simulation, the ballast and the firmware's RAM
OUTCOMES = {0: "CLEAR", 1: "RECHECK", 2: "FEVER"}
FAULTS = {
    1: "SENSOR_BUS",
    2: "SENSOR_DATA",
    3: "SENSOR_REINIT",
    4: "WATCHDOG_RESET",
    5: "JOURNAL_OVERFLOW",
    6: "DISTANCE_SENSOR",
}


def crowd_dict(febrile_core_c=None):
    d = json.loads((REPO / "tools" / "scene" / "scenarios" / "crowd_walk.json").read_text())
    if febrile_core_c is not None:
        for p in d["people"]:
            if p["id"] == "febrile":
                p["core_c"] = febrile_core_c
    return d


def render(path, febrile_core_c=None, seconds=PASS_S, seed=7):
    """crowd_walk (optionally with another febrile core) as an 8 Hz recording."""
    scene = Scene(Scenario.from_dict(crowd_dict(febrile_core_c)), seed=seed)
    write_recording(scene, str(path), rate_hz=RATE_HZ, duration_s=seconds)
    return Path(path)


def bench_calibration():
    """The record the bench's blackbody calibration stores on a helmet whose
    sensor it found unbiased (as the simulated one is): five set points."""
    return calibration.fit_calibration([(t, t) for t in (30.0, 32.5, 35.0, 37.5, 40.0)])


def run_crowd(path, frames, every=EVERY, ram=RAM, tracks=False, ble=False, calibrated=True, timeout=1800):
    """Run the helmet on the recording for `frames` frames from the ROMFS
    image, the firmware with the free heap of a board with `ram`; parsed
    output.  `calibrated`: the board's flash holds a blackbody calibration
    record (firmware/calstore.py), as a helmet that passed the bench does."""
    args = [str(path), "--frames", str(frames), "--every", str(every), "--ram", str(board_free_heap(ram))]
    args += ["--tracks"] if tracks else []
    if ble:
        args.append("--ble")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="helmet-flash-") as flash:
        if calibrated:
            (Path(flash) / "calibration.json").write_text(bench_calibration().to_json())
        result = run_micropython_file(
            RUN_CROWD, args=args, heapsize=PROCESS_HEAPSIZE, cwd=flash, timeout=timeout, romfs=True
        )
    out = parse(result.stdout)
    out["returncode"] = result.returncode
    out["stderr"] = result.stderr
    out["wall_s"] = time.monotonic() - t0
    return out


def parse(text):
    res = {
        "events": [],
        "tracks": [],
        "heap": [],
        "sim": None,
        "ram": None,
        "link": 0,
        "boot": None,
        "memory_errors": [],
        "sensor_errors": [],
        "done": None,
        "phone": None,
    }
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "EVENT":
            ev = protocol.decode_event(bytes.fromhex(f[3]))
            res["events"].append(
                {
                    "pass": int(f[1]),
                    "frame": int(f[2]),
                    "kind": ev.kind,
                    "track": ev.track_id,
                    "outcome": ev.outcome,
                    "core": ev.core_c,
                    "flags": ev.flags,
                }
            )
        elif f[0] == "T":
            res["tracks"].append((int(f[1]), int(f[2]), int(f[3]), float(f[4]), float(f[5]), int(f[6]), float(f[7])))
        elif f[0] == "HEAP":
            res["heap"].append((int(f[1]), int(f[2]), int(f[3])))
        elif f[0] == "SIM":
            res["sim"] = int(f[1])
        elif f[0] == "RAM":
            res["ram"] = int(f[1])
        elif f[0] == "BOOT" and len(f) == 2:
            res["boot"] = int(f[1])
        elif f[0] == "LINK":
            res["link"] = int(f[1])
        elif f[0] == "MEMORYERROR":
            res["memory_errors"].append(line)
        elif f[0] == "SENSORERROR":
            res["sensor_errors"].append(line)
        elif f[0] == "PHONE":
            res["phone"] = {"received": int(f[1]), "acked": int(f[2]), "pending": int(f[3]), "journaled": int(f[4])}
        elif f[0] == "DONE":
            res["done"] = {
                "frames": int(f[1]),
                "read_errors": int(f[2]),
                "reinits": int(f[3]),
                "feeds": int(f[4]),
                "resets": int(f[5]),
                "seconds": float(f[6]),
                "pwm_changes": int(f[7]),
            }
    return res


def pass_peaks(heap, pass_frames):
    """Largest firmware reading in each pass of the recording."""
    peaks = {}
    for n, b, _ in heap:
        k = max(0, (n - 1) // pass_frames)
        peaks[k] = max(peaks.get(k, 0), b)
    return [peaks[k] for k in sorted(peaks)]


def heap_trend(peaks):
    """Growth over a soak from its per-pass peaks after the warm-up pass:
    (largest of the last third - largest of the first third, slope of a
    least-squares line through all of them in bytes per pass)."""
    n = len(peaks)
    if n < 3:
        return (peaks[-1] - peaks[0] if peaks else 0), 0.0
    w = n // 3
    mx = (n - 1) / 2
    my = sum(peaks) / n
    slope = sum((x - mx) * (y - my) for x, y in enumerate(peaks)) / sum((x - mx) ** 2 for x in range(n))
    return max(peaks[-w:]) - max(peaks[:w]), slope


def heap_growth(heap, warm_frames):
    """(warm-up peak, peak after warm-up, end reading) of the firmware's share."""
    warm = [b for n, b, _ in heap if n <= warm_frames]
    after = [b for n, b, _ in heap if n > warm_frames]
    return max(warm), (max(after) if after else max(warm)), heap[-1][1]


def per_pass(res, n):
    """The result restricted to pass n, in the shape bench_screening.person_results wants."""
    events = [
        {"frame": e["frame"], "track": e["track"], "outcome": e["outcome"]}
        for e in res["events"]
        if e["pass"] == n and e["kind"] == protocol.EVENT_SCREENING
    ]
    tracks = [t[1:] for t in res["tracks"] if t[0] == n]
    return {"events": events, "tracks": tracks}


def measure(res, passes):
    """The soak's figures from one run."""
    warm_frames = int(PASS_S * RATE_HZ)
    ok_run = res["returncode"] == 0 and res["done"] is not None
    heap = res["heap"]
    warm, after, end = heap_growth(heap, warm_frames) if heap else (0, 0, 0)
    growth, slope = heap_trend(pass_peaks(heap, warm_frames)[1:]) if heap else (0, 0.0)
    screenings = [e for e in res["events"] if e["kind"] == protocol.EVENT_SCREENING]
    by_outcome = {name: sum(e["outcome"] == code for e in screenings) for code, name in OUTCOMES.items()}
    done = res["done"] or {}
    return {
        "ok": ok_run,
        "frames": done.get("frames", 0),
        "simulated_s": done.get("frames", 0) / RATE_HZ,
        "firmware_free_at_start_bytes": res["ram"],
        "simulation_bytes": (res["sim"] or 0) + res["link"],
        "firmware_after_boot_bytes": res["boot"],
        "firmware_heap_warm_bytes": warm,
        "firmware_heap_peak_after_warm_bytes": after,
        "firmware_heap_end_bytes": end,
        "heap_growth_after_warm_bytes": growth,
        "heap_slope_bytes_per_pass": round(slope, 1),
        "heap_free_min_bytes": min((f for _, _, f in heap), default=0),
        "heap_peak_per_pass_bytes": pass_peaks(heap, warm_frames) if heap else [],
        "heap_every_frames": EVERY,
        "memory_errors": len(res["memory_errors"]) + (0 if ok_run else 1),
        "events_by_outcome": by_outcome,
        "fever_alarms": by_outcome["FEVER"],
        "passes": passes,
        "fault_events": [
            FAULTS.get(e["outcome"], str(e["outcome"])) for e in res["events"] if e["kind"] == protocol.EVENT_FAULT
        ],
        "read_errors": done.get("read_errors"),
        "watchdog_feeds": done.get("feeds"),
        "board_resets": done.get("resets"),
        "phone": res["phone"],
        "loop_s": done.get("seconds"),
        "wall_s": round(res["wall_s"], 1),
        "stderr_tail": res["stderr"][-2000:],
    }


def smallest_ram(path, ble, tried):
    """The smallest heap (KB, RAM_STEP_K steps from the target up) in which
    the helmet completes one pass of the crowd; every attempt into `tried`."""
    k = int(RAM[:-1])
    while k <= RAM_MAX_K:
        res = run_crowd(path, int(PASS_S * RATE_HZ), ram="%dk" % k, ble=ble)
        ok = res["returncode"] == 0 and res["done"] is not None
        tried.append({"ram_k": k, "ok": ok, "failure": "" if ok else res["stderr"].strip().splitlines()[-1:]})
        if ok:
            return k
        k += RAM_STEP_K
    return None


def soak(path, ble, passes):
    """The 10-minute soak at the target heap; when the firmware does not fit
    there, at the smallest heap it runs in (stepping up if the soak then
    fails), so the loop's behaviour is measured either way."""
    tried = []
    first = run_crowd(path, FRAMES, ble=ble)
    tried.append({"ram_k": int(RAM[:-1]), "ok": first["returncode"] == 0, "frames": FRAMES})
    if first["returncode"] == 0:
        return measure(first, passes) | {"ram": RAM, "fits_target": True, "ram_tried": tried}
    k = smallest_ram(path, ble, tried)
    while k is not None and k <= RAM_MAX_K:
        res = run_crowd(path, FRAMES, ble=ble, ram="%dk" % k)
        tried.append({"ram_k": k, "ok": res["returncode"] == 0, "frames": FRAMES})
        if res["returncode"] == 0:
            return measure(res, passes) | {"ram": "%dk" % k, "fits_target": False, "ram_tried": tried}
        k += RAM_STEP_K
    return measure(first, passes) | {"ram": None, "fits_target": False, "ram_tried": tried}


def run(results_dir):
    passes = FRAMES // int(PASS_S * RATE_HZ)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        path = render(Path(tmp) / "crowd.htrs", febrile_core_c=39.6)
        runs["screening"] = soak(path, False, passes)
        runs["with_radio"] = soak(path, True, passes)
    data = {"frames": FRAMES, "rate_hz": RATE_HZ, "ram_target": RAM, "ram_free_bytes": board_free_heap(RAM)}
    data["code"] = "ROMFS image mapped outside the heap (flash)"
    data.update(runs)
    a, b = runs["screening"], runs["with_radio"]
    outcomes = "%(CLEAR)d / %(RECHECK)d / %(FEVER)d"
    lines = (
        ("frames (8 Hz) / simulated s", lambda r: "%d / %.0f" % (r["frames"], r["simulated_s"])),
        ("firmware's free heap at start (bytes)", lambda r: r["firmware_free_at_start_bytes"]),
        ("simulation share, outside it (bytes)", lambda r: r["simulation_bytes"]),
        ("firmware built, before loop and radio (bytes)", lambda r: r["firmware_after_boot_bytes"]),
        ("firmware, warm-up peak (bytes)", lambda r: r["firmware_heap_warm_bytes"]),
        ("firmware, peak after warm-up (bytes)", lambda r: r["firmware_heap_peak_after_warm_bytes"]),
        ("firmware, end (bytes)", lambda r: r["firmware_heap_end_bytes"]),
        ("growth after warm-up: last - first third's peak (bytes)", lambda r: r["heap_growth_after_warm_bytes"]),
        ("per-pass peak trend (bytes per pass)", lambda r: r["heap_slope_bytes_per_pass"]),
        ("smallest free heap (bytes)", lambda r: r["heap_free_min_bytes"]),
        ("MemoryErrors", lambda r: r["memory_errors"]),
        ("events CLEAR / RECHECK / FEVER", lambda r: outcomes % r["events_by_outcome"]),
        ("fault events", lambda r: ", ".join(r["fault_events"]) or "none"),
        ("board resets / watchdog feeds", lambda r: "%s / %s" % (r["board_resets"], r["watchdog_feeds"])),
        (
            "phone: events received / pending",
            lambda r: "%(received)d / %(pending)d" % r["phone"] if r["phone"] else "-",
        ),
        ("real run time (s)", lambda r: r["wall_s"]),
    )
    rows = [["firmware heap (as -X heapsize)", a["ram"], b["ram"]]] + [[label, f(a), f(b)] for label, f in lines]
    targets = []
    for name, r in runs.items():
        targets += [
            ("%s: runs in %s of heap (smallest found: %s)" % (name, RAM, r["ram"]), r["fits_target"]),
            ("%s: no MemoryError over %d frames" % (name, FRAMES), r["ok"] and r["memory_errors"] == 0),
            (
                "%s: no heap growth after warm-up (growth %d B <= 0)" % (name, r["heap_growth_after_warm_bytes"]),
                r["ok"] and r["heap_growth_after_warm_bytes"] <= 0,
            ),
            ("%s: no board reset (watchdog fed throughout)" % name, r["ok"] and r["board_resets"] == 0),
            (
                "%s: one FEVER alarm per pass of the crowd (%d in %d passes)" % (name, r["fever_alarms"], passes),
                r["fever_alarms"] == passes,
            ),
        ]
    if b["phone"] is not None:
        targets.append(
            (
                "with_radio: every event reached the phone (%d pending)" % b["phone"]["pending"],
                b["phone"]["pending"] == 0,
            )
        )
    return Report("soak", data, ["measure", "screening only", "with radio and phone"], rows, targets)
