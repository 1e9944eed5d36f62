"""Memory and allocation of the MLX90640 driver on a 100 KB MicroPython heap.
(Speed is make bench's job: tools/bench/bench_driver.py.)

Runs the real MicroPython unix port (tests/support/mpharness.py) with
``-X heapsize=100k``; the example EEPROM and frames are handed over as raw
binary files so that no JSON parsing pollutes the figures.  The device class
reads them through a minimal bus that allocates nothing itself (the simulated
board's virtual sensor computes its frames in floats), so the figure is the
driver's own."""

import json
from array import array

import pytest

from mpharness import DATA, run_micropython

VECTOR = json.loads((DATA / "mlx90640" / "melexis_example.json").read_text())

# Budgets on the 64-bit host (objects and GC blocks are about twice the
# ESP32's 32-bit sizes, so these are generous for the device).
# Parameters measure 10,464 B: a float alpha table kept beside the 1/alpha
# mantissas would add 3 KB, mantissas in array('i') instead of 3 bytes 768 B.
PARAMS_BUDGET = 10752
IMPORT_BUDGET = 24 * 1024
# Per full frame (two subpages), O(1) float set-up only: get_ta +
# calculate_to measure 5,536 B, the device's read_frame 4,704 B (it reuses
# the Vdd/Ta of its frame check).  Boxing one float per pixel would add
# 24 KB (768 objects of 32 B).
FRAME_ALLOC_BUDGET = 6 * 1024
READ_FRAME_ALLOC_BUDGET = 6 * 1024

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

# The device class: both subpages read, checked, converted and repaired.
def be(words, n):
    b = bytearray(2 * n)
    for i in range(n):
        b[2 * i] = words[i] >> 8
        b[2 * i + 1] = words[i] & 255
    return b

class Bus:
    # machine.I2C's two calls; data ready alternates subpages 0 and 1.
    def __init__(self):
        self.mem = {0x2400: be(ee, 832), 0: be(f0, 832), 1: be(f1, 832)}
        self.ctrl = f0[832]
        self.subpage = 0
        self.ready = 1

    def readfrom_mem_into(self, addr, reg, buf, addrsize=16):
        if reg == 0x8000:
            v = (self.ready << 3) | self.subpage
            if not self.ready:  # the next subpage arrives
                self.ready = 1
                self.subpage ^= 1
        elif reg == 0x800D:
            v = self.ctrl
        else:
            src = self.mem[self.subpage if reg == 0x0400 else reg]
            for i in range(len(buf)):
                buf[i] = src[i]
            return
        buf[0] = v >> 8
        buf[1] = v & 255

    def writeto_mem(self, addr, reg, buf, addrsize=16):
        if reg == 0x800D:
            self.ctrl = (buf[0] << 8) | buf[1]
        else:
            self.ready = 0

cam = mlx90640.MLX90640(Bus(), refresh_rate=mlx90640.RATE_64HZ)
image = array.array("f", bytes(3072))
cam.read_frame(image)
gc.collect()
gc.disable()
a0 = gc.mem_alloc()
cam.read_frame(image)
a1 = gc.mem_alloc()
gc.enable()
print("read_frame_alloc_bytes", a1 - a0)
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


def test_device_read_frame_allocation_is_small(figures):
    assert figures["read_frame_alloc_bytes"] <= READ_FRAME_ALLOC_BUDGET
