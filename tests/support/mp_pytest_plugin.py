"""pytest plugin: run test modules inside the real MicroPython interpreter.

A test module declares where it runs with a module-level constant::

    INTERPRETERS = ("cpython", "micropython")   # shared/ code: both
    INTERPRETERS = ("micropython",)             # firmware: on the helmet's interpreter only

(no declaration = CPython only, the pytest default).  Each ``test_*``
function of a MicroPython module becomes an item ``test_x[micropython]``
that runs in its own ``micropython -X heapsize=100k`` process with the
helmet's import path (firmware/, shared/, the simulated board), and a fresh
temporary directory as the board's flash.  Firmware, shared and test modules
are imported precompiled to .mpy, as they are deployed.  ``@heapsize("256k")`` from
``checks`` overrides the heap for one test.  A failing assertion shows the
MicroPython traceback as the pytest failure.

The list of tests is read from the source with ``ast``, so collecting a
firmware test never imports it into CPython (where ``machine`` and friends
do not exist).
"""

import ast
import sys
from pathlib import Path

import pytest

from mpharness import DEFAULT_HEAPSIZE, REPO, build_test_mpy, run_micropython_file

RUNNER = Path(__file__).parent / "mp_runner.py"
PASSED_MARK = "MICROPYTHON-TEST-PASSED"


class ModuleDeclaration:
    """What a test module says about itself, read without importing it."""

    def __init__(self, path):
        tree = ast.parse(Path(path).read_text(), filename=str(path))
        self.interpreters = ("cpython",)
        self.tests = []  # (name, heapsize, line)
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "INTERPRETERS" for t in node.targets
            ):
                self.interpreters = tuple(ast.literal_eval(node.value))
                unknown = set(self.interpreters) - {"cpython", "micropython"}
                if unknown:
                    raise pytest.UsageError("%s: unknown INTERPRETERS %s" % (path, sorted(unknown)))
            elif isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                self.tests.append((node.name, _heapsize_of(node), node.lineno))

    @property
    def on_micropython(self):
        return "micropython" in self.interpreters


def _heapsize_of(func):
    for deco in func.decorator_list:
        if (
            isinstance(deco, ast.Call)
            and getattr(deco.func, "id", getattr(deco.func, "attr", None)) == "heapsize"
            and deco.args
        ):
            return ast.literal_eval(deco.args[0])
    return DEFAULT_HEAPSIZE


class MicroPythonFailure(Exception):
    pass


class MicroPythonItem(pytest.Item):
    def __init__(self, *, test_name, heapsize, lineno, **kwargs):
        super().__init__(**kwargs)
        self.test_name = test_name
        self.heapsize = heapsize
        self.lineno = lineno
        self.add_marker("micropython")

    def runtest(self):
        result = run_micropython_file(
            RUNNER,
            args=(self.path.stem, self.test_name),
            heapsize=self.heapsize,
            extra_path=(build_test_mpy(self.path.parent),),
        )
        if result.stdout.strip():
            sys.stdout.write(result.stdout)
        if result.returncode != 0 or PASSED_MARK not in result.stdout:
            raise MicroPythonFailure(result.stderr or "(no output; exit status %d)" % result.returncode)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonFailure):
            return "inside MicroPython (-X heapsize=%s):\n%s" % (self.heapsize, excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.lineno - 1, "%s[micropython]" % self.test_name


def _micropython_items(collector, declaration):
    for name, heapsize, lineno in declaration.tests:
        yield MicroPythonItem.from_parent(
            collector, name="%s[micropython]" % name, test_name=name, heapsize=heapsize, lineno=lineno
        )


class MicroPythonOnlyFile(pytest.File):
    def collect(self):
        yield from _micropython_items(self, ModuleDeclaration(self.path))


class BothInterpretersModule(pytest.Module):
    def collect(self):
        yield from super().collect()
        yield from _micropython_items(self, ModuleDeclaration(self.path))


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    declaration = ModuleDeclaration(module_path)
    if not declaration.on_micropython:
        return None
    if "cpython" in declaration.interpreters:
        return BothInterpretersModule.from_parent(parent, path=module_path)
    return MicroPythonOnlyFile.from_parent(parent, path=module_path)


def pytest_configure(config):
    config.addinivalue_line("markers", "micropython: runs inside the MicroPython unix port")


def pytest_terminal_summary(terminalreporter):
    ran = [
        r
        for key in ("passed", "failed")
        for r in terminalreporter.stats.get(key, [])
        if r.when == "call" and "[micropython]" in r.nodeid
    ]
    if ran:
        failed = sum(1 for r in ran if r.failed)
        terminalreporter.write_line(
            "MicroPython: %d tests ran inside the unix port (%d failed), heap %s unless a test asks for more; repo %s"
            % (len(ran), failed, DEFAULT_HEAPSIZE, REPO)
        )
