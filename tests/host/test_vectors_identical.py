"""The shared test vectors give identical results on MicroPython and CPython.

Each vectors module in tests/shared/ exposes ``load_cases()`` and
``evaluate(case)``.  Both interpreters evaluate every case; floats are
compared bit for bit (as IEEE-754 doubles: the unix port's float type), so
"identical" means identical, not merely close.
"""

import importlib
import json
import math
import struct
from pathlib import Path

import pytest

from mpharness import run_micropython

SHARED_TESTS = Path(__file__).resolve().parents[1] / "shared"
VECTOR_MODULES = sorted(p.stem for p in SHARED_TESTS.glob("test_*_vectors.py"))

CANONICAL = r"""
import json, struct

def canonical(value):
    if isinstance(value, float):
        return "f:" + "".join("%02x" % b for b in struct.pack("<d", value))
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    return value
"""


def canonical(value):
    if isinstance(value, float):
        return "f:" + struct.pack("<d", value).hex()
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    return value


def test_there_are_vector_modules_for_both_shared_modules():
    assert "test_calibration_vectors" in VECTOR_MODULES
    assert "test_protocol_vectors" in VECTOR_MODULES


@pytest.mark.parametrize("module_name", VECTOR_MODULES)
def test_vectors_evaluate_identically_on_both_interpreters(module_name):
    module = importlib.import_module(module_name)
    cases = module.load_cases()
    assert len(cases) >= 20, "too few vectors to mean anything"
    on_cpython = [canonical(module.evaluate(case)) for case in cases]
    source = CANONICAL + (
        "import %s as m\n"
        "for case in m.load_cases():\n"
        "    print(json.dumps(canonical(m.evaluate(case))))\n" % module_name
    )
    output = run_micropython(source, heapsize="1m", extra_path=(SHARED_TESTS,))
    on_micropython = [json.loads(line) for line in output.splitlines()]
    assert len(on_micropython) == len(cases)
    differing = [
        (case.get("name"), cp, mp) for case, cp, mp in zip(cases, on_cpython, on_micropython, strict=True) if cp != mp
    ]
    assert not differing, "results differ between CPython and MicroPython: %s" % differing[:5]


def test_canonical_form_tells_floats_apart_bit_for_bit():
    assert canonical(0.1 + 0.2) != canonical(0.3)
    assert canonical([math.inf, 1]) == canonical([math.inf, 1])
