"""Benchmark: our MLX90640 To computation against the PyPI package
adafruit-circuitpython-mlx90640, on the same MicroPython interpreter, with
the same EEPROM and frames (Melexis' example data).

    make bench ARGS=driver      (or: .venv/bin/python tools/bench/run.py driver)

The baseline is pip-installed into a temporary directory at bench time (never
vendored); its I2C dependency (adafruit_bus_device) is replaced by a stub, and
its own code runs unchanged: _ExtractParameters on the EEPROM words, then per
subpage _GetTa and _CalculateTo, exactly what its getFrame does after the bus
reads.  Ours per subpage: get_ta + calculate_to on array('H') frames, as the
device class holds them.  Both full frames = two subpages.

Also measured: our float loop with @micropython.native and without it
("plain"), heap after init on a 100 KB heap with the firmware imported as
deployed (.mpy), per-frame allocation, whether a whole frame and the
per-pixel kernel run with the heap locked (micropython.heap_lock: any
allocation raises), and the largest difference between the two drivers'
temperatures.
"""

import json
import os
import subprocess
import sys
import tempfile
from array import array
from pathlib import Path

from run import Report

from mpharness import DATA, REPO, build_host_mpy, micropython_command

REPEAT = 30
TARGET_RATIO = 10.0

OURS = r"""
import array, gc, time, micropython
gc.collect()
m0 = gc.mem_alloc()
import mlx90640
gc.collect()
m_import = gc.mem_alloc() - m0
ee = array.array("H", open(%(ee)r, "rb").read())
fr = array.array("H", open(%(fr)r, "rb").read())
f0 = fr[0:834]
f1 = fr[834:1668]
del fr
gc.collect()
m1 = gc.mem_alloc()
p = mlx90640.extract_parameters(ee)
del ee
gc.collect()
m2 = gc.mem_alloc()
p.fixed_point = %(fixed)s
out = array.array("f", bytes(3072))

def full_frame():
    ta = mlx90640.get_ta(f0, p)
    mlx90640.calculate_to(f0, p, 0.95, ta - 8, out)
    ta = mlx90640.get_ta(f1, p)
    mlx90640.calculate_to(f1, p, 0.95, ta - 8, out)

full_frame()
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
full_frame()
a1 = gc.mem_alloc()
gc.enable()
n = %(repeat)d
t = time.ticks_us()
for _ in range(n):
    full_frame()
ms = time.ticks_diff(time.ticks_us(), t) / n / 1000

def runs_locked(fn):
    micropython.heap_lock()
    try:
        fn()
        return 1
    except MemoryError:
        return 0
    finally:
        micropython.heap_unlock()

frame_locked = runs_locked(full_frame)
kernel_locked = 0
if p.fixed_point:
    import mlx90640_fixed as fx
    tab = fx.root_table()
    kernel_locked = runs_locked(lambda: fx.to_kernel(f0, out, p.offset, p.ktan, p.amant, p._fc, tab, fx.QUARTER_POW))
full_frame()
# GC cost of a frame's garbage: collect after every frame (an upper bound:
# left to itself the GC runs only when the heap fills, batching frames).
gc_us = 0
for _ in range(n):
    full_frame()
    t = time.ticks_us()
    gc.collect()
    gc_us += time.ticks_diff(time.ticks_us(), t)
print("RESULT", ms, m2 - m1, m_import + m2 - m1, a1 - a0, frame_locked, kernel_locked, gc_us / n / 1000)
for x in out:
    print("TO", x)
"""

BASELINE = r"""
import array, gc, time
gc.collect()
m0 = gc.mem_alloc()
import adafruit_mlx90640 as A
ee = array.array("H", open(%(ee)r, "rb").read())
fr = array.array("H", open(%(fr)r, "rb").read())
f0 = list(fr[0:834])
f1 = list(fr[834:1668])

class Bench(A.MLX90640):
    def __init__(self, words):
        for i in range(832):
            A.eeData[i] = words[i]
        self._ExtractParameters()

gc.collect()
m1 = gc.mem_alloc()
dev = Bench(ee)
gc.collect()
m2 = gc.mem_alloc()
out = [0.0] * 768

def full_frame():
    tr = dev._GetTa(f0) - A.OPENAIR_TA_SHIFT
    dev._CalculateTo(f0, 0.95, tr, out)
    tr = dev._GetTa(f1) - A.OPENAIR_TA_SHIFT
    dev._CalculateTo(f1, 0.95, tr, out)

full_frame()
n = %(repeat)d
t = time.ticks_us()
for _ in range(n):
    full_frame()
ms = time.ticks_diff(time.ticks_us(), t) / n / 1000
print("RESULT", ms, m2 - m1, m2 - m0)
for x in out:
    print("TO", x)
"""


def run_script(source, path, heapsize):
    env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in path))
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    try:
        r = subprocess.run(
            [micropython_command(), "-X", "heapsize=" + heapsize, f.name],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        raise RuntimeError("MicroPython failed:\n" + r.stdout + r.stderr)
    result = None
    to = []
    for line in r.stdout.splitlines():
        if line.startswith("RESULT"):
            result = [float(x) for x in line.split()[1:]]
        elif line.startswith("TO"):
            to.append(float(line.split()[1]))
    return result, to


def run_bench(tmp):
    vector = json.loads((DATA / "mlx90640" / "melexis_example.json").read_text())
    (tmp / "ee.bin").write_bytes(array("H", vector["eeprom"]).tobytes())
    (tmp / "fr.bin").write_bytes(array("H", vector["frames"][0] + vector["frames"][1]).tobytes())
    files = {"ee": str(tmp / "ee.bin"), "fr": str(tmp / "fr.bin"), "repeat": REPEAT}

    # Baseline from PyPI, into the temp dir only.
    pkg = tmp / "pkg"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(pkg),
         "adafruit-circuitpython-mlx90640"],
        capture_output=True, text=True,
    )  # fmt: skip
    if pip.returncode != 0:
        raise RuntimeError("could not install the baseline adafruit-circuitpython-mlx90640:\n" + pip.stderr)
    stub = pkg / "adafruit_bus_device"
    stub.mkdir(exist_ok=True)
    (stub / "__init__.py").write_text("")
    (stub / "i2c_device.py").write_text(
        "class I2CDevice:\n    def __init__(self, *a, **k):\n        raise OSError('no bus in the benchmark')\n"
    )
    dist = next(pkg.glob("adafruit_circuitpython_mlx90640-*.dist-info")).name
    version = dist[: -len(".dist-info")].split("-")[1]
    base, base_to = run_script(BASELINE % files, [pkg], "2M")

    # Ours, imported as deployed (.mpy): viper fixed-point kernel, native float loop.
    deployed = build_host_mpy()
    fixed, fixed_to = run_script(OURS % dict(files, fixed="True"), [deployed], "100k")
    native, _ = run_script(OURS % dict(files, fixed="False"), [deployed], "2M")
    # The float loop without @micropython.native, from a patched source copy.
    plain_dir = tmp / "plain"
    plain_dir.mkdir()
    for src in [*(REPO / "firmware").glob("mlx90640*.py"), REPO / "firmware" / "buffers.py"]:
        text = src.read_text()
        if src.name == "mlx90640_float.py":
            text = text.replace("@micropython.native\n", "")
        (plain_dir / src.name).write_text(text)
    plain, _ = run_script(OURS % dict(files, fixed="False"), [plain_dir], "2M")
    return version, base, base_to, fixed, fixed_to, native, plain


def run(results_dir):
    with tempfile.TemporaryDirectory(prefix="mlx-bench-") as tmp:
        version, base, base_to, fixed, fixed_to, native, plain = run_bench(Path(tmp))
    diff = max(abs(a - b) for a, b in zip(fixed_to, base_to, strict=True))
    ratio = base[0] / fixed[0]
    data = {
        "interpreter": "MicroPython unix port (x64 native/viper emitters as the ESP32 proxy)",
        "frames": "Melexis example EEPROM and frames 0+1 (one full frame = two subpages), emissivity 0.95",
        "baseline_package": "adafruit-circuitpython-mlx90640 " + version,
        "ours_ms_per_frame": round(fixed[0], 4),
        "baseline_ms_per_frame": round(base[0], 4),
        "ratio": round(ratio, 1),
        "heap_after_init_bytes": int(fixed[2]),
        "heap_after_init_scope": "driver modules imported as .mpy + extract_parameters result, -X heapsize=100k, "
        "64-bit host (pointers and boxed floats take about half that on the 32-bit ESP32)",
        "params_bytes": int(fixed[1]),
        "baseline_heap_after_init_bytes": int(base[2]),
        "bytes_allocated_per_frame": int(fixed[3]),
        "gc_ms_per_frame": round(fixed[6], 4),
        "gc_scope": "time of a gc.collect() after each frame on the 100 KB heap: what reclaiming one frame's "
        "garbage costs (an upper bound; normally the GC runs only when the heap fills)",
        "allocation_free": bool(fixed[4]),
        "kernel_allocation_free": bool(fixed[5]),
        "allocation_scope": "allocation_free: a whole frame (get_ta + calculate_to, both subpages) ran under "
        "micropython.heap_lock; kernel_allocation_free: the per-pixel viper kernel did. The per-frame set-up "
        "computes Ta/Vdd/gain in floats, which are heap objects on MicroPython",
        "ours_float_native_ms_per_frame": round(native[0], 4),
        "ours_float_native_bytes_allocated_per_frame": int(native[3]),
        "ours_float_plain_ms_per_frame": round(plain[0], 4),
        "max_abs_difference_degC_vs_baseline": round(diff, 4),
    }
    rows = [
        ("ours: viper fixed point (default)", "%.3f" % fixed[0], "%.1fx" % ratio, int(fixed[2]), int(fixed[3])),
        ("ours: float loop, native", "%.3f" % native[0], "%.1fx" % (base[0] / native[0]), "-", int(native[3])),
        ("ours: float loop, plain", "%.3f" % plain[0], "%.1fx" % (base[0] / plain[0]), "-", int(plain[3])),
        ("baseline: " + data["baseline_package"], "%.3f" % base[0], "1.0x", int(base[2]), "-"),
    ]
    targets = [
        ("at least %.0fx faster than the baseline (measured %.1fx)" % (TARGET_RATIO, ratio), ratio >= TARGET_RATIO),
        ("temperatures agree with the baseline within 0.005 degC (max %.4f)" % diff, diff <= 0.005),
        ("per-pixel kernel allocation-free under heap_lock", data["kernel_allocation_free"]),
    ]
    headers = ("driver", "ms per full frame", "speed-up", "heap after init (B)", "bytes allocated per frame")
    rows.append(("ours: GC time per frame (collect after each frame)", "%.3f" % fixed[6], "-", "-", "-"))
    return Report("driver", data, headers, rows, targets)
