"""The one door to the device: the real mpremote command line.

Every call is ``mpremote connect PORT resume ...``: ``resume`` keeps the
session from soft-resetting the board (a soft reset ends the simulated
board's process and would restart a real helmet's firmware mid-test).
Device code prints one ``BENCH <json>`` line per result; everything else it
prints is kept for the error message.
"""

import json
import subprocess
import sys

MARK = "BENCH "


class DeviceError(RuntimeError):
    """mpremote failed or the device raised; the message says which and why."""


def command(port, *args):
    return [sys.executable, "-m", "mpremote", "connect", port, "resume", *args]


def run(port, *args, timeout=60.0):
    """Run one mpremote session; returns its stdout.  Raises DeviceError
    with the device's traceback (or mpremote's complaint) on failure."""
    try:
        r = subprocess.run(command(port, *args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError("mpremote on %s did not finish within %.0f s" % (port, timeout)) from None
    if r.returncode != 0:
        detail = (r.stdout + r.stderr).strip().splitlines()
        raise DeviceError("mpremote on %s failed: %s" % (port, " | ".join(detail[-6:]) or "exit %d" % r.returncode))
    return r.stdout


def results(text):
    """The JSON objects of the ``BENCH`` lines of device output."""
    out = []
    for line in text.splitlines():
        if line.startswith(MARK):
            out.append(json.loads(line[len(MARK) :]))
    return out


def exec_json(port, code, timeout=60.0):
    """Run ``code`` on the device; return the last BENCH object it printed."""
    text = run(port, "exec", code, timeout=timeout)
    found = results(text)
    if not found:
        raise DeviceError("the device printed no result:\n" + text.strip())
    return found[-1]


def stream(port, code, timeout=600.0):
    """Run ``code`` on the device and yield its output lines as they come
    (live view, frame collection).  The session is closed on exit."""
    proc = subprocess.Popen(
        command(port, "exec", code), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    try:
        assert proc.stdout is not None
        yield from proc.stdout
        proc.wait(timeout=timeout)
        if proc.returncode != 0:
            raise DeviceError("mpremote on %s failed: %s" % (port, (proc.stderr.read() if proc.stderr else "").strip()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
