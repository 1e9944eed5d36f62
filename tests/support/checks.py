"""Assertion helpers for test files that run under both MicroPython and CPython.

Test modules that declare ``INTERPRETERS`` containing ``"micropython"`` cannot
import pytest (it does not exist there); they use these helpers instead.
"""

import os


class raises:
    """Context manager: the block must raise ``exc_type``; ``match`` must be
    a substring of the message when given.  The caught exception is
    available as ``.value`` afterwards."""

    def __init__(self, exc_type, match=None):
        self.exc_type = exc_type
        self.match = match
        self.value = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            raise AssertionError("expected %s, nothing was raised" % self.exc_type.__name__)
        if not issubclass(exc_type, self.exc_type):
            return False  # let the unexpected exception propagate with its traceback
        if self.match is not None and self.match not in str(exc):
            raise AssertionError(
                "%s raised with message %r, expected it to contain %r" % (exc_type.__name__, str(exc), self.match)
            )
        self.value = exc
        return True


def near(actual, expected, tol):
    """Assert ``actual`` is within ``tol`` of ``expected``, saying both on failure."""
    if not abs(actual - expected) <= tol:
        raise AssertionError("%r is not within %r of %r" % (actual, tol, expected))


def heapsize(size):
    """Decorator: run this test under MicroPython with ``-X heapsize=size``
    instead of the default.  The pytest harness reads it from the source;
    at run time it changes nothing."""

    def mark(fn):
        return fn

    return mark


def data_path(relative):
    """Path of a file in the team's reference data (``../shared/data`` beside
    the repository, or ``$HELMET_DATA``)."""
    base = os.getenv("HELMET_DATA") or "../shared/data"
    return base + "/" + relative


def repo_path(relative):
    """Path of a file in this repository (``$HELMET_REPO``, set by the harness;
    tests under MicroPython run with the simulated board's flash as cwd)."""
    base = os.getenv("HELMET_REPO") or "."
    return base + "/" + relative


def iter_vectors(relative):
    """Test vectors of a JSON file in the repository, one case at a time.

    The file is a JSON list written one case per line, so it streams: parsing
    a 40 KB file at once does not fit a 100 KB heap."""
    import json

    with open(repo_path(relative)) as f:
        assert f.readline().strip() == "[", relative + " must start with a line holding ["
        for line in f:
            line = line.strip()
            if line == "]":
                return
            yield json.loads(line[:-1] if line.endswith(",") else line)
    raise AssertionError(relative + " does not end with ]")
