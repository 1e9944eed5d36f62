"""Deploy with the real mpremote against the simulated board (socat, loopback):
idempotent, verified by hash on the device, rolled back when a copy or the
verification fails."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench_tools import build, deploy, simulated_board
from bench_tools.simulated_board import SimulatedBoard

pytestmark = pytest.mark.skipif(simulated_board.socat_path() is None, reason="socat is missing: apt-get install socat")

ARCH = "x64"
REPO = Path(__file__).resolve().parents[2]


def quiet(*_):
    pass


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """A board with an empty flash, brought up by THE documented command."""
    report = tmp_path_factory.mktemp("bring-up") / "selftest.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tools"), str(REPO / "shared")]))
    with SimulatedBoard() as b:
        start = time.monotonic()
        b.bring_up = subprocess.run(
            [sys.executable, "-m", "bench_tools", "bring-up", "--arch", ARCH, "--port", b.url, "--json", str(report)],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        b.bring_up_s = time.monotonic() - start
        b.report = json.loads(report.read_text()) if report.exists() else None
        yield b


def test_bring_up_of_an_empty_board_deploys_and_passes_the_self_test(board):
    r = board.bring_up
    assert r.returncode == 0, r.stdout + r.stderr
    assert "deploy: %d files, %d copied" % ((len(build.build_firmware(ARCH)),) * 2) in r.stdout
    assert r.stdout.rstrip().endswith("SELF-TEST PASSED")
    assert board.report["ok"]
    print("bring-up of an empty simulated board: %.1f s" % board.bring_up_s)


def flash_state(board):
    return {p.name: p.read_bytes() for p in board.flash.iterdir() if p.is_file()}


def test_the_flash_holds_exactly_the_build(board):
    files = build.build_firmware(ARCH)
    assert "main.py" in files and "main.mpy" not in files  # MicroPython runs main.py at boot
    assert all(n.endswith(".mpy") for n in files if n != "main.py")
    code = sorted(p.name for p in board.flash.iterdir() if p.suffix in (".py", ".mpy"))
    assert code == sorted(files)  # (the self-test's BLE server also made its bond store)
    for name, path in files.items():
        assert (board.flash / name).read_bytes() == path.read_bytes()
    assert not (board.flash / deploy.BACKUP_DIR).exists()


def test_second_deploy_copies_nothing(board):
    before = {p.name: p.stat().st_mtime_ns for p in board.flash.iterdir()}
    again = deploy.deploy(board.url, ARCH, log=quiet)
    assert again["copied"] == [] and again["removed"] == [] and again["verified"]
    assert {p.name: p.stat().st_mtime_ns for p in board.flash.iterdir()} == before


def test_only_changed_files_are_copied_and_a_shadowing_py_is_removed(board):
    (board.flash / "version.mpy").write_bytes(b"old build")
    (board.flash / "track.py").write_text("raise ImportError('stale source shadows track.mpy')\n")
    (board.flash / "retired.mpy").write_bytes(b"a module the build no longer has")
    s = deploy.deploy(board.url, ARCH, log=quiet)
    assert s["extra"] == ["retired.mpy"] and (board.flash / "retired.mpy").exists()  # reported, kept
    (board.flash / "retired.mpy").unlink()
    assert s["copied"] == ["version.mpy"]
    assert s["removed"] == ["track.py"]
    assert not (board.flash / "track.py").exists()
    assert (board.flash / "version.mpy").read_bytes() == build.build_firmware(ARCH)["version.mpy"].read_bytes()


def test_a_failed_copy_rolls_back_to_the_previous_files(board):
    (board.flash / "alarm.mpy").write_bytes(b"previous alarm")
    (board.flash / "version.mpy").write_bytes(b"previous version")
    before = flash_state(board)
    board.set(fail_write=["version.mpy"])  # flash full while writing the second file
    try:
        with pytest.raises(deploy.DeployError, match="copy failed.*rolled back \\(restored 2 previous files"):
            deploy.deploy(board.url, ARCH, log=quiet)
    finally:
        board.set(fail_write=[])
    assert flash_state(board) == before
    assert not (board.flash / deploy.BACKUP_DIR).exists()


def test_a_failed_verification_rolls_back(board):
    before = flash_state(board)  # still the previous alarm/version from the test above
    board.set(corrupt_write=["alarm.mpy"])  # a flipped bit: the copy "succeeds", the hash does not
    try:
        with pytest.raises(deploy.DeployError, match="verification failed: device hash differs for alarm.mpy"):
            deploy.deploy(board.url, ARCH, log=quiet)
    finally:
        board.set(corrupt_write=[])
    assert flash_state(board) == before
    s = deploy.deploy(board.url, ARCH, log=quiet)  # the fault gone, the deploy goes through
    assert {"alarm.mpy", "version.mpy"} <= set(s["copied"]) and s["verified"]


def test_an_interrupted_deploy_is_rolled_back_before_the_next(board):
    # What a pulled cable leaves behind: a backup directory with a plan and a
    # half-written new file.
    bak = board.flash / deploy.BACKUP_DIR
    bak.mkdir()
    shutil.copyfile(board.flash / "board.mpy", bak / "board.mpy")
    (bak / "plan.json").write_text('{"write": ["board.mpy"]}')
    (board.flash / "board.mpy").write_bytes(b"half")
    s = deploy.deploy(board.url, ARCH, log=quiet)
    assert s["recovered"] == {"removed": ["board.mpy"], "restored": ["board.mpy"]}
    assert s["copied"] == [] and not bak.exists()
