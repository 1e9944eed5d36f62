"""MLX90640 driver against Melexis' own example data, under MicroPython.

Every extracted parameter must match the vector to its printed precision, and
every To after frame 0 and after frame 1 within 0.005 degC (the vector is
rounded to 0.001 degC; pixels of the subpage not yet measured stay 0.0).
"""

import array
import json

import mlx90640
from checks import data_path, heapsize, near, raises

INTERPRETERS = ("micropython",)

TO_TOL = 0.005


def _vector():
    with open(data_path("mlx90640/melexis_example.json")) as f:
        return json.load(f)


def _rel(actual, expected, rel, what):
    if abs(actual - expected) > rel * abs(expected) + 1e-30:
        raise AssertionError("%s: %r vs expected %r" % (what, actual, expected))


# Vector name -> (Params attribute, tolerance).  Printed values have 4 significant
# decimals for the small slopes (0.002197 for 9/4096), exact integers elsewhere.
SCALARS = {
    "kVdd": ("k_vdd", 0),
    "vdd25": ("vdd25", 0),
    "KvPTAT": ("kv_ptat", 5e-7),
    "KtPTAT": ("kt_ptat", 0),
    "vPTAT25": ("vptat25", 0),
    "alphaPTAT": ("alpha_ptat", 0),
    "gainEE": ("gain_ee", 0),
    "tgc": ("tgc", 0),
    "cpKv": ("cp_kv", 5e-7),
    "cpKta": ("cp_kta", 5e-7),
    "resolutionEE": ("resolution_ee", 0),
    "calibrationModeEE": ("calibration_mode_ee", 0),
    "KsTa": ("ks_ta", 5e-7),
}


@heapsize("512k")
def test_scalar_parameters():
    v = _vector()
    p = mlx90640.extract_parameters(v["eeprom"])
    for name, (attr, tol) in SCALARS.items():
        near(getattr(p, attr), v["expected"]["params"][name], tol)


@heapsize("512k")
def test_pixel_parameters():
    v = _vector()
    p = mlx90640.extract_parameters(v["eeprom"])
    e = v["expected"]["pixel_params"]
    for i in range(4):
        near(p.ks_to[i], e["ksTo"][i], 5e-7)
        near(p.ct[i], e["ct"][i], 0)
    for i in range(2):
        _rel(p.cp_alpha[i], e["cpAlpha"][i], 1e-9, "cpAlpha[%d]" % i)
        near(p.cp_offset[i], e["cpOffset"][i], 0)
    for i in range(3):
        near(p.il_chess_c[i], e["ilChessC"][i], 0)
    for i in range(768):
        # alpha printed with 12 significant digits, stored single precision.
        _rel(p.alpha[i], e["alpha"][i], 2e-7, "alpha[%d]" % i)
        near(p.offset[i], e["offset"][i], 0)
        near(p.kta[i], e["kta"][i], 5e-9)  # printed to 1e-8
        near(p.kv[i], e["kv"][i], 0)
    assert list(p.broken_pixels) == [int(x) for x in e["brokenPixels"]]
    assert list(p.outlier_pixels) == [int(x) for x in e["outlierPixels"]]
    assert mlx90640.bad_pixels(p) == ()


@heapsize("512k")
def test_object_temperature_after_each_frame():
    v = _vector()
    p = mlx90640.extract_parameters(v["eeprom"])
    out = array.array("f", bytes(4 * 768))
    worst = 0.0
    for k, frame in enumerate(v["frames"]):
        ta = mlx90640.get_ta(frame, p)
        mlx90640.calculate_to(frame, p, 1.0, ta - 8, out)
        expected = v["expected"]["to"]["after_frame%d" % k]
        for i in range(768):
            if frame[833] == 0 and k == 0 and expected[i] == 0.0:
                assert out[i] == 0.0, "pixel %d of the other subpage was written" % i
            err = abs(out[i] - expected[i])
            worst = max(worst, err)
            assert err <= TO_TOL, "frame %d pixel %d: %r vs %r" % (k, i, out[i], expected[i])
    print("worst To error", worst)


@heapsize("512k")
def test_vdd_and_ta_are_plausible():
    v = _vector()
    p = mlx90640.extract_parameters(v["eeprom"])
    f0 = v["frames"][0]
    near(mlx90640.get_vdd(f0, p), 3.304375, 1e-5)
    near(mlx90640.get_ta(f0, p), 33.88, 0.01)


def test_blank_eeprom_is_rejected():
    with raises(mlx90640.SensorError, match="0xFFFF"):
        mlx90640.extract_parameters([0xFFFF] * 832)
    with raises(mlx90640.SensorError, match="0x0000"):
        mlx90640.extract_parameters([0] * 832)
    with raises(mlx90640.SensorError, match="832"):
        mlx90640.extract_parameters([1] * 100)


@heapsize("512k")
def test_implausible_eeprom_is_rejected():
    v = _vector()
    ee = v["eeprom"]
    bad = list(ee)
    bad[48] = 0  # gainEE
    with raises(mlx90640.SensorError, match="gainEE"):
        mlx90640.extract_parameters(bad)
    bad = list(ee)
    for i in (100, 200, 300, 400, 500):  # five broken pixels: more than the 4 allowed
        bad[64 + i] = 0
    with raises(mlx90640.SensorError, match="broken"):
        mlx90640.extract_parameters(bad)


@heapsize("512k")
def test_bad_pixels_are_listed_and_repaired():
    v = _vector()
    ee = list(v["eeprom"])
    ee[64 + 100] = 0  # broken
    ee[64 + 300] |= 1  # outlier
    p = mlx90640.extract_parameters(ee)
    assert mlx90640.bad_pixels(p) == (100, 300)
    assert p.broken_pixels[0] == 100 and p.outlier_pixels[0] == 300
    out = array.array("f", bytes(4 * 768))
    for i in range(768):
        out[i] = 20.0 + (i & 31) * 0.1
    out[100] = -273.0
    out[300] = 999.0
    mlx90640.repair_pixels(out, p, True)
    # Chess mode: mean of the four diagonal neighbours (same subpage).
    d = (out[100 - 33] + out[100 - 31] + out[100 + 31] + out[100 + 33]) / 4
    near(out[100], d, 1e-5)
    near(out[300], 20.0 + (300 & 31) * 0.1, 1e-4)
    # A bad neighbour is skipped; a corner pixel uses what exists.
    ee2 = list(v["eeprom"])
    ee2[64 + 0] = 0
    ee2[64 + 33] |= 1
    p2 = mlx90640.extract_parameters(ee2)
    out[0] = float("nan")
    out[33] = 500.0
    mlx90640.repair_pixels(out, p2, True)
    # Pixel 0's only diagonal neighbour (33) is bad itself: falls back to the
    # valid ones among its eight neighbours (1 and 32).
    near(out[0], (out[1] + out[32]) / 2, 1e-4)
    # Interleaved: left/right neighbours on the same row.
    out[300] = 999.0
    mlx90640.repair_pixels(out, p, False)
    near(out[300], (out[299] + out[301]) / 2, 1e-5)


@heapsize("512k")
def test_output_buffer_is_checked_and_list_frames_work():
    v = _vector()
    p = mlx90640.extract_parameters(v["eeprom"])
    frame = v["frames"][0]
    with raises(ValueError, match="768"):
        mlx90640.calculate_to(frame, p, 1.0, 25.0, array.array("f", bytes(4 * 100)))
    with raises(ValueError, match="768"):
        mlx90640.calculate_to(frame, p, 1.0, 25.0, [0.0] * 768)
    # The same frame as a list and as array('H') gives the same image.
    a = array.array("f", bytes(4 * 768))
    b = array.array("f", bytes(4 * 768))
    mlx90640.calculate_to(frame, p, 1.0, 25.0, a)
    mlx90640.calculate_to(array.array("H", frame), p, 1.0, 25.0, b)
    assert bytes(a) == bytes(b)
