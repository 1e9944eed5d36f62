"""Blackbody calibration on the simulated bench (real mpremote, socat,
loopback): the sensor reports GAIN_ERROR * T + OFFSET_ERROR (+ noise) for a
source whose ideal reading is T; the fit must undo it within 0.05 degC over
30..45 degC, the range of skin and fever readings, and refuse bad fits."""

import json

import numpy as np
import pytest

import calibration
from bench_tools import calibrate, mpr, simulated_board
from bench_tools.simulated_board import SimulatedBoard

pytestmark = pytest.mark.skipif(simulated_board.socat_path() is None, reason="socat is missing: apt-get install socat")

GAIN_ERROR = 1.03
OFFSET_ERROR = -0.8
DISTANCE_M = 0.3
APERTURE_M = 0.1
SET_POINTS = (33.0, 36.0, 39.0, 42.0)
CHECK_RANGE_C = np.linspace(30.0, 45.0, 61)


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def board():
    with SimulatedBoard(
        preload=True,
        gain_error=GAIN_ERROR,
        offset_error=OFFSET_ERROR,
        noise_k=0.1,
        blackbody_distance_m=DISTANCE_M,
        blackbody_aperture_m=APERTURE_M,
    ) as b:
        yield b


def run(board, tmp_path, points=SET_POINTS, set_blackbody=None, **kw):
    return calibrate.calibrate(
        board.url,
        points,
        set_blackbody or board.set_blackbody,
        DISTANCE_M,
        APERTURE_M,
        frames_per_point=8,
        rate_hz=16,
        out_dir=tmp_path,
        log=quiet,
        **kw,
    )


def test_calibration_recovers_the_injected_error_and_the_firmware_reads_it(board, tmp_path):
    rec = run(board, tmp_path)
    cal = calibration.Calibration.from_json(json.dumps(rec["calibration"]))
    reading = GAIN_ERROR * CHECK_RANGE_C + OFFSET_ERROR
    error = cal.gain * reading + cal.offset_c - CHECK_RANGE_C
    print(
        "max corrected error over 30..45 degC: %.4f degC; gain %.5f (1/%.2f = %.5f), offset %.4f (%.4f)"
        % (np.abs(error).max(), cal.gain, GAIN_ERROR, 1 / GAIN_ERROR, cal.offset_c, -OFFSET_ERROR / GAIN_ERROR)
    )
    assert np.abs(error).max() < 0.05
    assert rec["written_to_device"]
    # The firmware's reading side gives back the very record.
    ans = mpr.exec_json(board.url, "import bench\nbench.read_calibration()")
    assert ans["reason"] is None
    assert calibration.Calibration.from_json(ans["record"]) == cal
    # Export for the app (the shared format, nothing else), full record, plot.
    export, full, png = rec["files"]
    assert calibration.Calibration.from_json(open(export).read()) == cal
    full = json.load(open(full))
    assert len(full["points"]) == 4 and full["fit"]["uncertainty_c"] == cal.uncertainty_c
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_one_set_point_is_refused(board, tmp_path):
    with pytest.raises(calibrate.CalibrationRefused, match="at least 2 distinct set points"):
        run(board, tmp_path, points=(36.0, 36.0))


def test_a_point_taken_before_the_blackbody_settled_is_refused_for_its_residual(board, tmp_path):
    def lagging(t):  # the source is still 0.6 degC short at 39 degC
        board.set_blackbody(t - 0.6 if t == 39.0 else t)

    with pytest.raises(calibrate.CalibrationRefused, match="residual .* exceeds 0.200 degC"):
        run(board, tmp_path, set_blackbody=lagging, write=False)


def test_a_fit_outside_the_calibration_bounds_is_refused(board, tmp_path):
    board.set(gain_error=1.5)  # a wrong blackbody or a broken part: gain 0.67 < GAIN_MIN
    try:
        with pytest.raises(calibrate.CalibrationRefused, match="outside calibration's bounds .*gain must be in"):
            run(board, tmp_path, points=(33.0, 40.0), write=False)
    finally:
        board.set(gain_error=GAIN_ERROR)


def test_a_blackbody_too_small_for_its_distance_is_refused(board, tmp_path):
    with pytest.raises(calibrate.CalibrationRefused, match="covers only"):
        calibrate.calibrate(board.url, SET_POINTS, board.set_blackbody, 2.0, 0.05, out_dir=tmp_path, log=quiet)


def test_numpy_fit_is_the_shared_record():
    pts = [(33.0, 33.2), (36.0, 36.3), (39.0, 39.25), (42.0, 42.4)]
    cal, details = calibrate.fit(pts, "dev", "2026-01-01T00:00:00Z", max_residual_c=1.0)
    assert cal == calibration.fit_calibration(pts, "dev", "2026-01-01T00:00:00Z")
    assert details["gain"] == pytest.approx(cal.gain, abs=1e-12)
    assert details["u_gain"] > 0 and len(details["residuals_c"]) == 4


def test_the_command_line_refuses_a_single_set_point_before_any_prompt(board):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo / "tools"), str(repo / "shared")]))
    r = subprocess.run(
        [sys.executable, "-m", "bench_tools", "calibrate", "--port", board.url, "--points", "36"]
        + ["--distance", "0.3", "--aperture", "0.1"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert r.returncode == 1
    assert "CALIBRATION REFUSED: calibration needs at least 2 distinct set points" in r.stdout
