"""The independent numpy implementation (tools/reference) reproduces the
Melexis example vector, in double and in single precision."""

import json

import numpy as np
import pytest

from mpharness import DATA
from reference import mlx90640_numpy as ref

VECTOR = json.loads((DATA / "mlx90640" / "melexis_example.json").read_text())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_to_after_each_frame(dtype):
    images = ref.compute_sequence(VECTOR["eeprom"], VECTOR["frames"], dtype=dtype)
    for k, image in enumerate(images):
        expected = np.array(VECTOR["expected"]["to"]["after_frame%d" % k])
        np.testing.assert_allclose(image, expected, rtol=0, atol=0.005)
    # Frame 0 is subpage 0 (chess): the other half of the image is untouched.
    assert np.count_nonzero(images[0] == 0.0) == 384


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_parameters(dtype):
    p = ref.extract(VECTOR["eeprom"], dtype)
    e = VECTOR["expected"]["params"]
    for name, value in e.items():
        assert p[name] == pytest.approx(value, abs=5e-7), name
    e = VECTOR["expected"]["pixel_params"]
    for name in ("ksTo", "ct", "cpOffset", "ilChessC", "offset", "kta", "kv"):
        np.testing.assert_allclose(p[name], e[name], rtol=0, atol=5e-7, err_msg=name)
    for name in ("alpha", "cpAlpha"):
        np.testing.assert_allclose(p[name], e[name], rtol=2e-7, atol=0, err_msg=name)
    assert len(p["brokenPixels"]) == 0 and len(p["outlierPixels"]) == 0
    assert all(v == 0xFFFF for v in e["brokenPixels"] + e["outlierPixels"])


def test_vdd_ta():
    p = ref.extract(VECTOR["eeprom"])
    f0 = VECTOR["frames"][0]
    assert ref.vdd(f0, p) == pytest.approx(3.304375)
    assert 30 < ref.ta(f0, p) < 40
