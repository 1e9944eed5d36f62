"""tools/ble_host/environment.py: the private bus and bluezoo start, stop
(also when the body fails) and leave no process, socket or variable behind."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))

from ble_host import environment  # noqa: E402

needs_dbus = pytest.mark.skipif(
    environment.unavailable_reason() is not None,
    reason=environment.unavailable_reason() or "",
)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes once reaped.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_missing_dbus_daemon_names_the_debian_package(monkeypatch):
    monkeypatch.setattr(environment, "find_dbus_daemon", lambda: None)
    with pytest.raises(environment.DbusDaemonMissing, match="Debian package 'dbus'"):
        environment.BleEnvironment().start()


@needs_dbus
def test_start_stop_leaves_nothing_behind_even_on_failure():
    before = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")

    async def scenario():
        env = environment.BleEnvironment()
        with pytest.raises(RuntimeError, match="boom"):
            async with env:
                pids = (env._dbus.pid, env._bluezoo.pid)
                tmp = env._tmp.name
                assert os.environ["DBUS_SYSTEM_BUS_ADDRESS"] == env.bus_address
                raise RuntimeError("boom")
        return pids, tmp

    pids, tmp = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert not any(_alive(p) for p in pids)
    assert not os.path.exists(tmp)
    assert os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") == before


@needs_dbus
def test_bluezoo_failing_to_start_is_reported(monkeypatch):
    monkeypatch.setattr(environment, "_bluezoo_command", lambda: [sys.executable, "-c", "raise SystemExit(3)"])

    env = environment.BleEnvironment(start_timeout_s=5)
    started = []
    real_start_dbus = env._start_dbus
    env._start_dbus = lambda daemon: (real_start_dbus(daemon), started.append(env._dbus.pid))

    async def scenario():
        async with env:
            pass

    with pytest.raises(environment.EnvironmentError_, match="bluezoo exited"):
        asyncio.run(asyncio.wait_for(scenario(), 30))
    assert started and not _alive(started[0]), "dbus-daemon left running"
    assert env._tmp is None and env.bus_address is None
