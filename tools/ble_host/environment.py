"""A private system bus with an emulated BlueZ: dbus-daemon + bluezoo, two adapters.

Why: bleak's BlueZ backend talks to org.bluez on the *system* bus.  Tests and
`make demo` get their own bus on a temporary socket and point
DBUS_SYSTEM_BUS_ADDRESS at it, so nothing touches the machine's real D-Bus and
parallel runs do not collide.  Adapter A (hci0) hosts the helmet's GATT server,
adapter B (hci1) is the phone the companion app uses.

    with BleEnvironment() as env:      # or: async with BleEnvironment() as env
        env.bus_address, env.peripheral_adapter, env.central_adapter
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

PERIPHERAL_ADDRESS = "C0:FE:00:00:00:01"  # hci0: the helmet
CENTRAL_ADDRESS = "C0:FE:00:00:00:02"  # hci1: the phone
DEBIAN_PACKAGE = "dbus"  # provides /usr/bin/dbus-daemon

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


class EnvironmentError_(RuntimeError):
    """The emulated Bluetooth environment could not start."""


class DbusDaemonMissing(EnvironmentError_):
    pass


def find_dbus_daemon() -> str | None:
    return shutil.which("dbus-daemon") or next(
        (p for p in ("/usr/bin/dbus-daemon", "/bin/dbus-daemon") if os.access(p, os.X_OK)), None
    )


def unavailable_reason() -> str | None:
    """Why the BLE emulation cannot run here (for test skips), or None."""
    if sys.version_info < (3, 11):
        return "the BLE emulation needs Python 3.11+ (bluezoo does); `make test` on 3.11+ runs it"
    if find_dbus_daemon() is None:
        return "dbus-daemon missing: install the Debian package 'dbus' (apt-get install dbus); make test does"
    if importlib.util.find_spec("bluezoo") is None:
        return "bluezoo missing: run `make test` (installs the dev extras) or pip install bluezoo==1.0.2"
    return None


def require_dbus_daemon() -> str:
    path = find_dbus_daemon()
    if path is None:
        raise DbusDaemonMissing(
            "dbus-daemon not found: install the Debian package '%s' (sudo apt-get install %s)"
            % (DEBIAN_PACKAGE, DEBIAN_PACKAGE)
        )
    return path


def _bluezoo_command() -> list[str]:
    # bluezoo with our reconnect fix (see bluezoo_launcher.py); -m needs tools/
    # on the child's import path, which _start_bluezoo provides.
    return [sys.executable, "-m", "ble_host.bluezoo_launcher"]


def die_with_parent():
    """preexec_fn for helper processes: runs in the child before exec, so that
    if the parent is killed outright (SIGKILL, a CI timeout) the kernel stops
    the child too (dbus-daemon, bluezoo, MicroPython)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


async def spawn(argv: list[str], cwd: str | Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    """A helper process of the radio chain (the MicroPython helmet) under
    asyncio: no stdin, stdout and stderr piped for the caller to read, its
    own session (stopped alone), and stopped with its parent."""
    return await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def _stop(proc: subprocess.Popen | None, timeout: float = 3.0) -> None:
    # SIGTERM, then SIGKILL: only this pid (each child runs in its own session).
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


class BleEnvironment:
    """Starts dbus-daemon and bluezoo; stops both (even half-started) on exit."""

    def __init__(
        self,
        peripheral_address: str = PERIPHERAL_ADDRESS,
        central_address: str = CENTRAL_ADDRESS,
        scan_interval_s: int = 1,
        start_timeout_s: float = 10.0,
        log_path: str | None = None,
    ):
        self.peripheral_address = peripheral_address
        self.central_address = central_address
        self.scan_interval_s = scan_interval_s
        self.start_timeout_s = start_timeout_s
        self.log_path = log_path
        self.peripheral_adapter = "hci0"
        self.central_adapter = "hci1"
        self.bus_address: str | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._dbus: subprocess.Popen | None = None
        self._bluezoo: subprocess.Popen | None = None
        self._log = None
        self._saved_env: str | None = None

    # --- lifecycle -------------------------------------------------------------
    def start(self) -> BleEnvironment:
        daemon = require_dbus_daemon()
        try:
            self._start_dbus(daemon)
            self._saved_env = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
            # bleak and our bridge read this when they open the "system" bus.
            os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
            self._start_bluezoo()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        _stop(self._bluezoo)
        _stop(self._dbus)
        self._bluezoo = self._dbus = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.bus_address is not None:
            if self._saved_env is None:
                os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
            else:
                os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = self._saved_env
            self.bus_address = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> BleEnvironment:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    async def __aenter__(self) -> BleEnvironment:
        # Starting blocks briefly (process spawn and a readiness poll); that is
        # fine in tests and the demo, and keeps one code path.
        self.start()
        try:
            await self.wait_ready()
        except BaseException:
            self.stop()  # __aexit__ does not run when __aenter__ fails
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.stop()

    # --- pieces --------------------------------------------------------------------
    def _start_dbus(self, daemon: str) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="helmet-ble-")
        sock = os.path.join(self._tmp.name, "system_bus_socket")
        conf = os.path.join(self._tmp.name, "bus.conf")
        with open(conf, "w") as f:
            f.write(_BUS_CONFIG.format(socket=sock))
        self._dbus = subprocess.Popen(
            [daemon, "--config-file=" + conf, "--nofork", "--nopidfile", "--print-address"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        line = self._dbus.stdout.readline().strip()
        if not line:
            err = self._dbus.stderr.read() if self._dbus.poll() is not None else ""
            raise EnvironmentError_("dbus-daemon did not start: %s" % (err.strip() or "no address printed"))
        self.bus_address = line

    def _start_bluezoo(self) -> None:
        cmd = _bluezoo_command() + ["--auto-enable", "--scan-interval", str(self.scan_interval_s)]
        cmd += ["-a", self.peripheral_address, "-a", self.central_address]
        tools = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (tools, os.environ.get("PYTHONPATH", "")) if p)
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.bus_address, PYTHONPATH=path)
        if self.log_path:
            self._log = open(self.log_path, "w")
        else:
            cmd.append("-q")
        self._bluezoo = subprocess.Popen(
            cmd,
            env=env,
            stdout=self._log or subprocess.DEVNULL,
            stderr=self._log or subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    async def wait_ready(self) -> None:
        """Wait until org.bluez exports both adapters, powered."""
        deadline = time.monotonic() + self.start_timeout_s
        bus = await MessageBus(bus_type=BusType.SYSTEM, bus_address=self.bus_address).connect()
        try:
            while True:
                if self._bluezoo is None or self._bluezoo.poll() is not None:
                    raise EnvironmentError_(
                        "bluezoo exited with status %s" % (self._bluezoo.returncode if self._bluezoo else "?")
                    )
                reply = await bus.call(
                    Message(
                        destination="org.bluez",
                        path="/",
                        interface="org.freedesktop.DBus.ObjectManager",
                        member="GetManagedObjects",
                    )
                )
                if reply.message_type == MessageType.METHOD_RETURN:
                    powered = [
                        p
                        for p, ifs in reply.body[0].items()
                        if "org.bluez.Adapter1" in ifs and ifs["org.bluez.Adapter1"]["Powered"].value
                    ]
                    if len(powered) >= 2:
                        return
                if time.monotonic() > deadline:
                    raise EnvironmentError_(
                        "bluezoo did not export two powered adapters within %.0f s" % self.start_timeout_s
                    )
                await asyncio.sleep(0.05)
        finally:
            bus.disconnect()
