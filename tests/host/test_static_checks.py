"""Planted bugs make the static checks fail, with a message that says why.

The checks run on copies of firmware/ and shared/ with one bug planted, so
the suite proves that `make test` would catch it, not merely that today's
code is clean.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def tree(tmp_path):
    for name in ("firmware", "shared"):
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def check_micropython(tree):
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "check_micropython.py"), "--out", str(tree / "build"),
         str(tree / "firmware"), str(tree / "shared")],
        capture_output=True, text=True,
    )  # fmt: skip


def mypy(tree):
    # The project's mypy configuration, on the copy; the stubs as `make` installed them.
    (tree / "typings").symlink_to(REPO / "typings")
    shutil.copy(REPO / "pyproject.toml", tree / "pyproject.toml")
    return subprocess.run([str(BIN / "mypy")], cwd=tree, capture_output=True, text=True)


def plant(path, code):
    path.write_text(path.read_text() + "\n" + code + "\n")


def test_clean_tree_passes_both_checks(tree):
    result = check_micropython(tree)
    assert result.returncode == 0, result.stdout
    assert "compile for xtensawin" in result.stdout
    typed = mypy(tree)
    assert typed.returncode == 0, typed.stdout


def test_cpython_only_import_in_shared_is_caught(tree):
    plant(tree / "shared" / "protocol.py", "import dataclasses")
    result = check_micropython(tree)
    assert result.returncode == 1
    assert "shared/protocol.py" in result.stdout
    assert "imports 'dataclasses': use a plain class" in result.stdout


def test_typing_outside_type_checking_block_is_caught_but_inside_is_fine(tree):
    plant(tree / "shared" / "calibration.py", "if TYPE_CHECKING:\n    from typing import Optional")
    assert check_micropython(tree).returncode == 0
    plant(tree / "shared" / "calibration.py", "from typing import List")
    result = check_micropython(tree)
    assert result.returncode == 1
    assert "imports 'typing'" in result.stdout


def test_code_mpy_cross_cannot_compile_is_caught(tree):
    # MicroPython's compiler has no `match` statement.
    plant(tree / "firmware" / "buzzer.py", "match 1:\n    case 1:\n        pass")
    result = check_micropython(tree)
    assert result.returncode == 1
    assert "mpy-cross -march=xtensawin failed" in result.stdout


def test_type_error_in_firmware_is_caught_by_mypy_against_esp32_stubs(tree):
    buzzer = tree / "firmware" / "buzzer.py"
    # The ESP32 stubs know PWM.duty_u16 takes an int.
    planted = "\ndef _planted(pwm: PWM) -> None:\n    pwm.duty_u16('loud')\n"
    buzzer.write_text("from machine import PWM\n" + buzzer.read_text() + planted)
    result = mypy(tree)
    assert result.returncode == 1
    assert "buzzer.py" in result.stdout and "duty_u16" in result.stdout
