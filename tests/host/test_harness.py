"""The MicroPython harness itself: failures surface, the heap is really limited."""

from pathlib import Path

import pytest

from mpharness import run_micropython

pytest_plugins = ["pytester"]

SUPPORT = Path(__file__).resolve().parents[1] / "support"
REPO = SUPPORT.parents[1]

CONFTEST = """
import sys
sys.path.insert(0, %r)
pytest_plugins = ["mp_pytest_plugin"]
""" % str(SUPPORT)


@pytest.fixture
def inner(pytester):
    pytester.makeconftest(CONFTEST)
    return pytester


def test_failing_assertion_in_micropython_is_a_pytest_failure_with_its_traceback(inner):
    inner.makepyfile(
        test_planted="""
INTERPRETERS = ("micropython",)

def helper():
    assert 1 + 1 == 3, "planted failure"

def test_fails():
    helper()

def test_passes():
    import sys
    assert sys.implementation.name == "micropython"
"""
    )
    result = inner.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_fails?micropython? FAILED*",
            "*inside MicroPython (-X heapsize=100k)*",
            "*in helper*",
            "*AssertionError: planted failure*",
        ]
    )


def test_both_interpreters_module_runs_each_test_twice(inner):
    inner.makepyfile(
        test_both="""
INTERPRETERS = ("cpython", "micropython")
import sys

def test_where():
    assert sys.implementation.name in ("cpython", "micropython")
"""
    )
    result = inner.runpytest("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_both.py::test_where PASSED*", "*test_both.py::test_where?micropython? PASSED*"])


def test_cpython_only_construct_fails_under_micropython(inner):
    inner.makepyfile(
        test_cpython_only="""
INTERPRETERS = ("cpython", "micropython")

def test_dataclass():
    import dataclasses  # exists in CPython only
"""
    )
    result = inner.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*ImportError*dataclasses*"])


def test_default_heap_is_limited_like_an_esp32_and_a_test_can_ask_for_more(inner):
    inner.makepyfile(
        test_heap="""
INTERPRETERS = ("micropython",)
from checks import heapsize

def test_200k_does_not_fit_in_default_heap():
    buf = bytearray(200 * 1024)

@heapsize("512k")
def test_200k_fits_with_more_heap():
    buf = bytearray(200 * 1024)
"""
    )
    result = inner.runpytest("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_200k_does_not_fit_in_default_heap?micropython? FAILED*", "*MemoryError*"])


def test_firmware_module_is_never_imported_into_cpython(inner):
    # `machine` exists only on the simulated board: collecting must not import it.
    inner.makepyfile(
        test_fw="""
INTERPRETERS = ("micropython",)
import machine

def test_pin():
    machine.Pin(2, machine.Pin.OUT).on()
"""
    )
    inner.runpytest().assert_outcomes(passed=1)


def test_run_micropython_returns_output_and_reports_tracebacks():
    assert run_micropython("import sys; print(sys.implementation.name)").strip() == "micropython"
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        run_micropython("1 / 0")


ROM_PROBE = """
import gc
import sys

import rom_boot

rom = rom_boot.mount()
gc.collect()
before = gc.mem_alloc()
import screening

gc.collect()
print(rom, screening.__file__, gc.mem_alloc() - before)
"""


def _probe(romfs):
    import subprocess
    import sys

    import mpharness

    image = mpharness.build_romfs()
    command = [mpharness.micropython_command(), "-X", "heapsize=100k", "-c", ROM_PROBE]
    if romfs:
        command = [sys.executable, str(mpharness.ROMFS_LAUNCHER), str(image), *command[1:]]
    out = subprocess.run(command, env=mpharness.micropython_env(), capture_output=True, text=True, check=True)
    rom, path, held = out.stdout.split()
    return rom == "True", path, int(held)


def test_code_in_the_romfs_image_runs_in_place_and_costs_less_heap():
    """The helmet's code in a ROMFS image mapped like flash (romfs_launch.py,
    rom_boot.py) is imported from /rom, and its bytecode stays out of the heap."""
    rom, path, held_rom = _probe(romfs=True)
    assert rom and path == "/rom/screening.mpy"
    rom, path, held_file = _probe(romfs=False)
    assert not rom and path.endswith("build/mpy-x64/screening.mpy")
    assert held_rom < 0.75 * held_file, (held_rom, held_file)


def test_run_crowd_gives_the_firmware_exactly_the_boards_free_heap(tmp_path):
    """run_crowd.py --ram: the simulation is built first, then a ballast leaves
    the firmware exactly what a fresh board of that size has free."""
    import sys

    import mpharness

    sys.path.insert(0, str(REPO / "tools" / "bench"))
    import bench_soak

    free = mpharness.board_free_heap("400k")
    assert 0.97 * 400 * 1024 < free <= 400 * 1024  # less the collector's own tables
    res = bench_soak.run_crowd(bench_soak.render(tmp_path / "crowd.htrs", seconds=1.0), 8, ram="400k")
    assert res["returncode"] == 0, res["stderr"][-2000:]
    assert free - 64 <= res["ram"] <= free  # at most a few bytes less, never more
    assert res["done"]["frames"] == 8
