"""The MicroPython driver against the independent numpy implementation on
variants the vector does not cover: emissivity 0.95, interleaved mode and
all four ADC resolutions (the example frames with the control word edited),
for both the viper fixed-point kernel and the float loop.

The firmware runs inside the real MicroPython interpreter (tests/support/
mpharness.py); both must agree within 0.005 degC on every pixel."""

import json

import numpy as np
import pytest

from mpharness import DATA, run_micropython
from reference import mlx90640_numpy as ref

VECTOR = json.loads((DATA / "mlx90640" / "melexis_example.json").read_text())
TOL = 0.005

CHESS = 0x1000
RES_MASK = 0x0C00


def variants():
    ctrl = VECTOR["frames"][0][832]
    out = [("emissivity 0.95", 0.95, ctrl)]
    out.append(("interleaved", 1.0, ctrl & ~CHESS))
    out.append(("interleaved e=0.95 16-bit", 0.95, ctrl & ~CHESS & ~RES_MASK))
    for res in range(4):
        out.append(("%d-bit" % (16 + res), 1.0, (ctrl & ~RES_MASK) | (res << 10)))
    return out


MP_SOURCE = """
import array, json, mlx90640
with open(%(path)r) as f:
    v = json.load(f)
p = mlx90640.extract_parameters(v["eeprom"])
frames = v["frames"]
del v
for fixed in (True, False):
    p.fixed_point = fixed  # viper fixed-point kernel, then the float loop
    for emissivity, ctrl in %(cases)r:
        out = array.array("f", bytes(4 * 768))
        for frame in frames:
            frame[832] = ctrl
            ta = mlx90640.get_ta(frame, p)
            mlx90640.calculate_to(frame, p, emissivity, ta - 8, out)
            print("vdd_ta", repr(mlx90640.get_vdd(frame, p)), repr(ta))
        print("to", " ".join(repr(x) for x in out))
"""


@pytest.fixture(scope="module")
def micropython_results():
    cases = [(e, c) for _, e, c in variants()]
    src = MP_SOURCE % {"path": str(DATA / "mlx90640" / "melexis_example.json"), "cases": cases}
    stdout = run_micropython(src, heapsize="512k", timeout=120)
    lines = stdout.split("\n")
    results = []
    vt = []
    for line in lines:
        if line.startswith("vdd_ta"):
            vt.append(tuple(float(x) for x in line.split()[1:]))
        elif line.startswith("to"):
            results.append((vt, np.array([float(x) for x in line.split()[1:]])))
            vt = []
    assert len(results) == 2 * len(cases)
    return results


@pytest.mark.parametrize("kernel", ["fixed", "float"])
@pytest.mark.parametrize("index", range(len(variants())), ids=[v[0] for v in variants()])
def test_firmware_matches_numpy(micropython_results, index, kernel):
    _, emissivity, ctrl = variants()[index]
    vt, image = micropython_results[index + (0 if kernel == "fixed" else len(variants()))]
    frames = [list(f) for f in VECTOR["frames"]]
    for f in frames:
        f[832] = ctrl
    p = ref.extract(VECTOR["eeprom"])
    expected = np.zeros(768)
    for k, f in enumerate(frames):
        assert vt[k][0] == pytest.approx(float(ref.vdd(f, p)), abs=1e-5)
        assert vt[k][1] == pytest.approx(float(ref.ta(f, p)), abs=1e-4)
        to = ref.object_temperature(f, p, emissivity, float(ref.ta(f, p)) - 8)
        m = ref.subpage_mask(f)
        expected[m] = to[m]
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(image, expected, rtol=0, atol=TOL)
    # Single precision (ESP32 floats) changes nothing that matters either.
    p32 = ref.extract(VECTOR["eeprom"], np.float32)
    exp32 = np.zeros(768)
    for f in frames:
        to = ref.object_temperature(f, p32, emissivity, float(ref.ta(f, p32)) - 8)
        m = ref.subpage_mask(f)
        exp32[m] = to[m]
    np.testing.assert_allclose(exp32, expected, rtol=0, atol=TOL / 5)


def test_variants_change_the_result(micropython_results):
    """The edits matter: otherwise the cross-check would prove little."""
    base = micropython_results[3][1]  # 16-bit
    for index in (0, 1, 4, 5, 6):
        assert np.max(np.abs(micropython_results[index][1] - base)) > 0.05


def test_fixed_and_float_kernels_agree(micropython_results):
    n = len(variants())
    for index in range(n):
        np.testing.assert_allclose(micropython_results[index][1], micropython_results[n + index][1], atol=0.001, rtol=0)
