"""Bring-up (deploy + bench self-test) with the real mpremote against the
simulated board: passes on a healthy board, fails with the right reason when
a fault is injected."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench_tools import selftest, simulated_board
from bench_tools.simulated_board import SimulatedBoard

pytestmark = pytest.mark.skipif(simulated_board.socat_path() is None, reason="socat is missing: apt-get install socat")

REPO = Path(__file__).resolve().parents[2]


def cli(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tools"), str(REPO / "shared")]))
    return subprocess.run(
        [sys.executable, "-m", "bench_tools", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="module")
def board():
    with SimulatedBoard(preload=True) as b:
        yield b


@pytest.fixture
def healthy(board):
    board.set(sensor="present", dead_pixels=[])
    yield board
    board.set(sensor="present", dead_pixels=[])


def test_bring_up_passes_on_a_healthy_board(healthy, tmp_path):
    r = cli("bring-up", "--arch", "x64", "--port", healthy.url, "--json", str(tmp_path / "st.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SELF-TEST PASSED" in r.stdout
    rep = json.loads((tmp_path / "st.json").read_text())
    assert rep["ok"] and rep["reason"] is None
    names = [c["name"] for c in rep["checks"]]
    assert names == [
        "firmware",
        "i2c_scan",
        "sensor_eeprom",
        "frame",
        "dead_pixels",
        "buzzer",
        "led",
        "ble",
        "free_heap",
    ]
    assert rep["device"]["firmware"] == "0.1.0"


def test_a_board_without_firmware_fails_naming_deploy():
    with SimulatedBoard() as b:
        rep = selftest.run(b.url)
    assert not rep["ok"] and "firmware not deployed" in rep["reason"]


def test_sensor_unplugged_fails_the_i2c_scan(healthy):
    healthy.set(sensor="absent")
    r = cli("selftest", "--port", healthy.url)
    assert r.returncode == 1
    assert "SELF-TEST FAILED: i2c_scan: found nothing; MLX90640 expected at 0x33" in r.stdout


def test_a_blank_eeprom_fails_the_eeprom_check(healthy):
    healthy.set(sensor="blank")
    rep = selftest.run(healthy.url)
    assert rep["failed"] == ["sensor_eeprom"]
    assert "EEPROM reads all 0x0000" in rep["reason"]


def test_dead_pixels_beyond_the_repair_list_fail_with_their_indices(healthy):
    # one saturated word (NaN), one stuck at zero (reads as a hot spike)
    healthy.set(dead_pixels=[[300, 0x7FFF], [301, 0]])
    rep = selftest.run(healthy.url)
    assert rep["failed"] == ["dead_pixels"]
    assert rep["reason"].startswith("dead_pixels: 2 dead pixel(s) beyond the EEPROM repair list")
    assert "300 (row 9, col 12)" in rep["reason"] and "301 (row 9, col 13)" in rep["reason"]


def test_dead_pixel_rules():
    img = np.full((24, 32), 22.0)
    assert selftest.dead_pixels(img) == []
    img[0, 0] = np.nan
    img[5, 5] = 45.0  # spike
    img[10, 10:13] = 36.0  # a thin warm object: every pixel of it has a warm neighbour
    img[20, 20] = 400.0
    assert selftest.dead_pixels(img) == [0, 5 * 32 + 5, 20 * 32 + 20]
    assert selftest.dead_pixels(img, repair_list=[0, 5 * 32 + 5]) == [20 * 32 + 20]
