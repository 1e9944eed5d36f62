"""Memory and allocation of the MLX90640 driver on a 100 KB MicroPython heap.
(Speed is make bench's job: tools/bench/bench_driver.py.)

Runs the real MicroPython unix port (tests/support/mpharness.py) with
``-X heapsize=100k``; the example EEPROM and frames are handed over as raw
binary files so that no JSON parsing pollutes the figures."""

import json
from array import array

import pytest

from mpharness import DATA, run_micropython

VECTOR = json.loads((DATA / "mlx90640" / "melexis_example.json").read_text())

# Budgets on the 64-bit host (objects and GC blocks are about twice the
# ESP32's 32-bit sizes, so these are generous for the device).
PARAMS_BUDGET = 16 * 1024
IMPORT_BUDGET = 24 * 1024
FRAME_ALLOC_BUDGET = 8 * 1024  # per full frame (two subpages), O(1) set-up only

SOURCE = """
import array, gc, micropython
gc.collect()
m0 = gc.mem_alloc()
import mlx90640
gc.collect()
m1 = gc.mem_alloc()
ee = array.array("H", open(%(ee)r, "rb").read())
fr = array.array("H", open(%(fr)r, "rb").read())
f0 = fr[0:834]
f1 = fr[834:1668]
del fr
gc.collect()
m2 = gc.mem_alloc()
p = mlx90640.extract_parameters(ee)
gc.collect()
m3 = gc.mem_alloc()
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
# The per-pixel kernel itself, with the heap locked: any allocation raises.
import mlx90640_fixed as fx
tab = fx.root_table()
mlx90640.calculate_to(f0, p, 0.95, 25.0, out)
micropython.heap_lock()
try:
    fx.to_kernel(f0, out, p.offset, p.ktan, p.amant, p._fc, tab, fx.QUARTER_POW)
    locked_ok = 1
except MemoryError:
    locked_ok = 0
micropython.heap_unlock()
print("import_bytes", m1 - m0)
print("params_bytes", m3 - m2)
print("frame_alloc_bytes", a1 - a0)
print("kernel_allocation_free", locked_ok)
print("fixed_point", 1 if p.fixed_point else 0)
"""


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    d = tmp_path_factory.mktemp("mlx")
    (d / "ee.bin").write_bytes(array("H", VECTOR["eeprom"]).tobytes())
    (d / "fr.bin").write_bytes(array("H", VECTOR["frames"][0] + VECTOR["frames"][1]).tobytes())
    out = run_micropython(SOURCE % {"ee": str(d / "ee.bin"), "fr": str(d / "fr.bin")}, heapsize="100k")
    values = {}
    for line in out.split("\n"):
        if line.strip():
            k, v = line.split()
            values[k] = float(v)
    print(values)
    return values


def test_fixed_point_kernel_is_used(figures):
    assert figures["fixed_point"] == 1


def test_parameters_fit_the_budget(figures):
    assert 0 < figures["params_bytes"] <= PARAMS_BUDGET


def test_import_fits_the_budget(figures):
    assert figures["import_bytes"] <= IMPORT_BUDGET


def test_kernel_allocates_nothing(figures):
    assert figures["kernel_allocation_free"] == 1


def test_per_frame_allocation_is_small_and_constant(figures):
    assert figures["frame_alloc_bytes"] <= FRAME_ALLOC_BUDGET
