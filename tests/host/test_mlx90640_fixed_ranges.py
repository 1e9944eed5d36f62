"""The viper fixed-point kernel (firmware/mlx90640_fixed.py) keeps every
integer intermediate inside signed 32 bits, as the ESP32 needs.

On the x64 host viper ints are 64-bit, so an overflow would go unnoticed under
MicroPython there.  This test runs the kernel's own source in CPython with
ptr8/ptr16/ptr32 shims whose loads return an int subclass that raises on any
result outside [-2**31, 2**31) (and on floor division of negative values,
where C and Python disagree).  Inputs: the Melexis example, its frames with
the control word edited, frames synthesised for -40..300 degC scenes, and
random/saturated pixel words.  Results are also compared with the numpy
reference (tools/reference)."""

import importlib
import json
import sys
import types
from array import array

import numpy as np
import pytest

from mpharness import DATA, REPO
from reference import mlx90640_numpy as ref

VECTOR = json.loads((DATA / "mlx90640" / "melexis_example.json").read_text())
LO, HI = -(1 << 31), 1 << 31


class I32(int):
    """An int that insists on staying a 32-bit signed machine word."""

    def _chk(self, v):
        if not LO <= v < HI:
            raise OverflowError("32-bit overflow: %d" % v)
        return I32(v)

    def __add__(self, o):
        return self._chk(int(self) + int(o))

    def __radd__(self, o):
        return self._chk(int(o) + int(self))

    def __sub__(self, o):
        return self._chk(int(self) - int(o))

    def __rsub__(self, o):
        return self._chk(int(o) - int(self))

    def __mul__(self, o):
        return self._chk(int(self) * int(o))

    def __rmul__(self, o):
        return self._chk(int(o) * int(self))

    def __lshift__(self, o):
        return self._chk(int(self) << int(o))

    def __rlshift__(self, o):
        return self._chk(int(o) << int(self))

    def __rshift__(self, o):
        return self._chk(int(self) >> int(o))

    def __rrshift__(self, o):
        return self._chk(int(o) >> int(self))

    def __and__(self, o):
        return self._chk(int(self) & int(o))

    def __rand__(self, o):
        return self._chk(int(o) & int(self))

    def __or__(self, o):
        return self._chk(int(self) | int(o))

    def __ror__(self, o):
        return self._chk(int(o) | int(self))

    def __neg__(self):
        return self._chk(-int(self))

    def __floordiv__(self, o):
        if int(self) < 0 or int(o) <= 0:
            raise AssertionError("floor division with a negative operand: %d // %d" % (self, o))
        return self._chk(int(self) // int(o))

    def __rfloordiv__(self, o):
        return I32(o).__floordiv__(self)


class Ptr:
    """viper ptr8/ptr16/ptr32: unsigned little-endian loads, truncating stores."""

    def __init__(self, buf, code):
        self.mv = memoryview(buf).cast("B").cast(code)
        self.mask = (1 << (8 * self.mv.itemsize)) - 1

    def __getitem__(self, i):
        return I32(self.mv[i])

    def __setitem__(self, i, v):
        self.mv[i] = int(v) & self.mask


@pytest.fixture(scope="module")
def fw():
    """firmware/mlx90640 imported into CPython with the kernel instrumented."""
    shim = types.ModuleType("micropython")
    shim.viper = shim.native = shim.const = lambda f: f
    names = ("micropython", "mlx90640", "mlx90640_fixed", "mlx90640_float", "mlx90640_device")
    saved = {k: sys.modules.pop(k) for k in names if k in sys.modules}
    sys.modules["micropython"] = shim
    sys.path.insert(0, str(REPO / "firmware"))
    try:
        fx = importlib.import_module("mlx90640_fixed")
        fx.ptr8 = lambda b: Ptr(b, "B")
        fx.ptr16 = lambda b: Ptr(b, "H")
        fx.ptr32 = lambda b: Ptr(b, "I")
        mod = importlib.import_module("mlx90640")
        yield mod
    finally:
        sys.path.remove(str(REPO / "firmware"))
        for k in names:
            sys.modules.pop(k, None)
        sys.modules.update(saved)


def _run(fw, eeprom, frames, emissivity=1.0):
    p = fw.extract_parameters(eeprom)
    assert p.fixed_point
    out = array("f", bytes(4 * 768))
    for f in frames:
        ta = fw.get_ta(f, p)
        fw.calculate_to(array("H", f), p, emissivity, ta - 8, out)
    return np.array(out)


def _reference(eeprom, frames, emissivity=1.0):
    p = ref.extract(eeprom)
    image = np.zeros(768)
    for f in frames:
        to = ref.object_temperature(f, p, emissivity, float(ref.ta(f, p)) - 8)
        m = ref.subpage_mask(f)
        image[m] = to[m]
    return image


def _edited(ctrl_and, ctrl_or):
    frames = [list(f) for f in VECTOR["frames"]]
    for f in frames:
        f[832] = (f[832] & ctrl_and) | ctrl_or
    return frames


@pytest.mark.parametrize(
    "emissivity,ctrl_and,ctrl_or",
    [
        (1.0, 0xFFFF, 0),
        (0.95, 0xFFFF, 0),
        (0.3, 0xFFFF, 0),
        (1.0, ~0x1000, 0),
        (1.0, ~0x0C00, 0x0000),
        (1.0, ~0x0C00, 0x0C00),
        (0.95, ~0x1C00, 0x0400),
    ],
)
def test_example_frames_within_32_bits_and_exact(fw, emissivity, ctrl_and, ctrl_or):
    frames = _edited(ctrl_and, ctrl_or)
    got = _run(fw, VECTOR["eeprom"], frames, emissivity)
    np.testing.assert_allclose(got, _reference(VECTOR["eeprom"], frames, emissivity), atol=0.002, rtol=0)


def test_synthetic_scenes_minus40_to_300(fw):
    """Frames whose pixels encode -40..300 degC objects (inverse model)."""
    p = ref.extract(VECTOR["eeprom"])
    targets = np.linspace(-40, 300, 768)
    for frame in VECTOR["frames"]:
        f = ref.frame_for_scene(frame, p, targets, emissivity=1.0)
        got = _run(fw, VECTOR["eeprom"], [f])
        m = ref.subpage_mask(f)
        # Integer pixel words quantise at up to ~0.5 degC per count at -40 degC.
        np.testing.assert_allclose(got[m], targets[m], atol=0.3, rtol=0)
        np.testing.assert_allclose(got[m], _reference(VECTOR["eeprom"], [f])[m], atol=0.002, rtol=0)


@pytest.mark.parametrize("seed", range(6))
def test_random_and_saturated_words_never_overflow(fw, seed):
    rng = np.random.default_rng(seed)
    frame = list(VECTOR["frames"][seed % 2])
    if seed < 4:
        frame[:768] = [int(x) for x in rng.integers(0, 65536, 768)]
    else:
        frame[:768] = [0x7FFF if seed == 4 else 0x8000] * 768
    got = _run(fw, VECTOR["eeprom"], [frame])
    want = _reference(VECTOR["eeprom"], [frame])
    m = ref.subpage_mask(frame)
    # Out-of-model pixels come out NaN (never wrapped); the others match
    # wherever the reference is within the kernel's range (-40..345 degC;
    # the sensor is specified to 300 degC).
    finite = np.isfinite(got[m])
    ok = np.isfinite(want[m]) & (want[m] < 340) & (want[m] > -60)
    assert np.all(finite[ok])
    # Whatever the kernel does output is right: no wrapped garbage.
    both = finite & np.isfinite(want[m])
    assert np.all(np.isfinite(want[m])[finite])
    np.testing.assert_allclose(got[m][both], want[m][both], atol=0.005, rtol=0)
