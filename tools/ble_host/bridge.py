"""Host bridge: makes the MicroPython helmet a BLE peripheral on the emulated BlueZ.

The simulated `bluetooth` module inside MicroPython connects here over TCP
(127.0.0.1, JSON lines, see wire.py).  Its GATT services are exported on
adapter A as BlueZ GATT objects (gatt.py), its advertisement as an
LEAdvertisement1; centrals on adapter B (bleak) then connect through bluezoo.
Central activity (connect, disconnect, writes) goes to MicroPython; its
notify/indicate/value/disconnect requests go to the central.

    async with BleBridge(mtu=247) as bridge:        # needs the private bus (environment.py)
        env = {"HELMET_BLE_BRIDGE": bridge.address}  # for the MicroPython process
"""

import asyncio
import collections
import itertools
import logging

from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus

from . import advdata, wire
from .gatt import Advertisement, CharacteristicHooks, GattCharacteristic, GattService

log = logging.getLogger(__name__)

BLUEZ = "org.bluez"
INDICATE_TIMEOUT_STATUS = 13  # NimBLE BLE_HS_ETIMEOUT, what MicroPython reports on ESP32
_generation = itertools.count(1)


class BridgeError(RuntimeError):
    pass


class _InFlight:
    __slots__ = ("conn", "indicate", "timer")

    def __init__(self, conn, indicate, timer):
        self.conn, self.indicate, self.timer = conn, indicate, timer


class BleBridge(CharacteristicHooks):
    def __init__(self, adapter="hci0", host="127.0.0.1", port=0, mtu=247, indicate_timeout_s=2.0, window=8):
        if not 23 <= mtu <= 517:
            raise ValueError("ATT MTU must be 23..517, got %d" % mtu)
        self.adapter_path = "/org/bluez/" + adapter
        self.host, self.port = host, port
        self._mtu = mtu
        self.indicate_timeout_s = indicate_timeout_s
        self.bus = None
        self._server = None
        self._helmet = None  # StreamWriter of the connected MicroPython process
        self._helmet_task = None
        self._helmet_lock = asyncio.Lock()
        self._app_path = None
        self._adv = None
        self._objects = []
        self._chars = {}  # helmet handle -> GattCharacteristic
        self._conn_ids = itertools.count(1)
        self._conns = {}  # central's device path on our adapter -> conn id
        self._bonded = set()  # centrals' device paths that paired with us
        self._adapters = {}
        # Flow control: bluezoo confirms every value it forwards to a subscribed
        # central (Confirm).  At most `window` unconfirmed ones are in flight;
        # beyond that the bridge stops reading from the helmet, so TCP pushes
        # back on MicroPython the way a full radio queue would (and the D-Bus
        # socket never overflows: dbus-fast 5.2 drops the bus on EAGAIN).
        self.window = window
        self._inflight = collections.defaultdict(collections.deque)  # char -> deque[_InFlight]
        self._inflight_total = 0
        self._window_open = asyncio.Event()
        self._window_open.set()
        self.registered = asyncio.Event()
        self.helmet_connected = asyncio.Event()
        self.stats = collections.Counter()

    # --- lifecycle -------------------------------------------------------------------
    @property
    def address(self):
        """host:port for HELMET_BLE_BRIDGE."""
        return "%s:%d" % (self.host, self.port)

    async def start(self):
        try:
            return await self._start()
        except BaseException:
            await self.stop()  # nothing half-started stays behind
            raise

    async def _start(self):
        self.bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        self.bus.add_message_handler(self._on_dbus_message)
        await self._call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            "s",
            [
                "type='signal',sender='%s',path_namespace='/org/bluez',"
                "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',arg0='org.bluez.Device1'"
                % BLUEZ
            ],
        )
        # Adapter addresses, to tell which of our centrals paired (the pairing
        # state shows on the central's side of the emulated link).
        (objects,) = await self._call(BLUEZ, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
        self._adapters = {
            path: ifs["org.bluez.Adapter1"]["Address"].value
            for path, ifs in objects.items()
            if "org.bluez.Adapter1" in ifs
        }
        if self.adapter_path not in self._adapters:
            raise BridgeError("no adapter %s on the bus" % self.adapter_path)
        self._server = await asyncio.start_server(self._serve_helmet, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        server, self._server = self._server, None
        if server is not None:
            server.close()  # no new helmets
        if self._helmet_task is not None:
            # Closing the socket ends the helmet task, which then tears down its
            # GATT objects; cancel only if that hangs.
            if self._helmet is not None:
                self._helmet.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._helmet_task), 5)
            except (asyncio.TimeoutError, Exception):
                self._helmet_task.cancel()
            self._helmet_task = None
        if server is not None:
            # Since Python 3.12 this also waits for connection handlers: after the above.
            try:
                await asyncio.wait_for(server.wait_closed(), 5)
            except asyncio.TimeoutError:
                log.warning("bridge: TCP server did not close in time")
        if self.bus is not None:
            await self._teardown_helmet_state()
            self.bus.disconnect()
            self.bus = None

    async def __aenter__(self):
        return await self.start()

    async def __aexit__(self, *exc):
        await self.stop()

    # --- controls for tests and benches -----------------------------------------------
    def mtu(self):
        return self._mtu

    def set_mtu(self, mtu):
        """MTU for connections made from now on (as if negotiated to this value)."""
        if not 23 <= mtu <= 517:
            raise ValueError("ATT MTU must be 23..517, got %d" % mtu)
        self._mtu = mtu

    @property
    def connections(self):
        return dict((c, p) for p, c in self._conns.items())

    async def drop_connection(self, conn=None):
        """Drop the radio link (all links if conn is None), as walking out of range does."""
        for path, c in list(self._conns.items()):
            if conn is None or c == conn:
                await self._call(BLUEZ, path, "org.bluez.Device1", "Disconnect")

    # --- D-Bus helpers -----------------------------------------------------------------
    async def _call(self, dest, path, iface, member, signature="", body=()):
        reply = await self.bus.call(
            Message(destination=dest, path=path, interface=iface, member=member, signature=signature, body=list(body))
        )
        if reply.message_type == MessageType.ERROR:
            raise BridgeError("%s.%s on %s: %s %s" % (iface, member, path, reply.error_name, reply.body))
        return reply.body

    def _on_dbus_message(self, msg):
        # Central connect/disconnect appear as Device1.Connected changes on our adapter.
        if msg.message_type != MessageType.SIGNAL or msg.member != "PropertiesChanged":
            return
        if msg.body[0] != "org.bluez.Device1" or "/dev_" not in msg.path:
            return
        changed = msg.body[1]
        if not msg.path.startswith(self.adapter_path + "/dev_"):
            if changed.get("Paired") is not None and changed["Paired"].value:
                self._central_paired(msg.path)
            return
        if "Connected" in changed:
            if changed["Connected"].value:
                self._central_connected(msg.path)
            else:
                self._central_disconnected(msg.path)

    # --- central events ------------------------------------------------------------------
    def _central_connected(self, path):
        if path in self._conns:
            return
        conn = next(self._conn_ids)
        self._conns[path] = conn
        self.stats["connects"] += 1
        addr = path.rsplit("dev_", 1)[1].replace("_", "")
        self._to_helmet({"t": "connect", "conn": conn, "addr": addr.lower()})
        # Centrals (BlueZ, Android) exchange the MTU right after connecting.
        self._to_helmet({"t": "mtu", "conn": conn, "mtu": self._mtu})
        if path in self._bonded:
            # A bonded central re-encrypts with its stored keys on reconnect.
            self._send_encryption(conn)

    def _central_paired(self, path):
        # `path` is us as seen by a central's adapter: /org/bluez/hciN/dev_<our address>.
        adapter, dev = path.rsplit("/dev_", 1)
        if dev.replace("_", ":") != self._adapters[self.adapter_path] or adapter not in self._adapters:
            return
        ours = "%s/dev_%s" % (self.adapter_path, self._adapters[adapter].replace(":", "_"))
        self._bonded.add(ours)
        if ours in self._conns:
            self._send_encryption(self._conns[ours])

    def _send_encryption(self, conn):
        # Just Works (NoInputNoOutput): encrypted and bonded, not authenticated.
        self.stats["encryptions"] += 1
        self._to_helmet(
            {"t": "encryption", "conn": conn, "encrypted": True, "authenticated": False, "bonded": True, "key_size": 16}
        )

    def _central_disconnected(self, path):
        conn = self._conns.pop(path, None)
        if conn is None:
            return
        self.stats["disconnects"] += 1
        if not self._conns:
            # A central's subscriptions end with its link (BlueZ keeps none for us).
            for char in self._chars.values():
                if char.notifying:
                    char.set_notifying(False)
        self._forget_inflight(conn, status=0x0E)  # BLE_HS_ENOTCONN: the link is gone
        self._to_helmet({"t": "disconnect", "conn": conn})

    async def on_write(self, char, device_path, data, with_response):
        conn = self._conns.get(device_path)
        if conn is None or self._helmet is None:
            raise DBusError("org.bluez.Error.NotConnected", "helmet not connected")
        self.stats["writes"] += 1
        char.value = data  # like the stack's attribute table: a read returns it
        self._to_helmet({"t": "write", "conn": conn, "handle": char.mp_handle, "data": data})
        if with_response:
            await self._helmet.drain()

    def check_access(self, char, device_path, op):
        # What the helmet's stack enforces for *_ENCRYPTED / *_AUTHENTICATED
        # flags: ATT "insufficient encryption/authentication" before pairing.
        # Just Works bonds are never authenticated, so *_AUTHENTICATED always fails.
        need_auth = "encrypt-authenticated-" + op in char.flags
        need_enc = need_auth or "encrypt-" + op in char.flags
        if need_auth or (need_enc and device_path not in self._bonded):
            self.stats["refused_" + op] += 1
            # What BlueZ answers for ATT insufficient encryption/authentication.
            raise DBusError("org.bluez.Error.NotPermitted", "Not paired")

    def on_subscribe(self, char, subscribed):
        # MicroPython has no IRQ for CCCD writes; kept for logs and tests.
        self.stats["subscribe" if subscribed else "unsubscribe"] += 1

    def on_confirm(self, char):
        pending = self._inflight.get(char)
        if pending:
            self._retire(char, pending.popleft(), 0)

    # --- helmet side ------------------------------------------------------------------------
    def _to_helmet(self, msg):
        if self._helmet is not None and not self._helmet.is_closing():
            self._helmet.write(wire.encode(msg))

    async def _serve_helmet(self, reader, writer):
        # One helmet at a time: a rebooted one (new process, new socket) waits
        # here until the old one's GATT objects are gone.
        async with self._helmet_lock:
            self._helmet = writer
            self._helmet_task = asyncio.current_task()
            self.helmet_connected.set()
            try:
                await self._read_helmet(reader)
            finally:
                self._helmet = None
                self.helmet_connected.clear()
                writer.close()
                if self.bus is not None:
                    await self._teardown_helmet_state()

    async def _read_helmet(self, reader):
        try:
            while line := await reader.readline():
                if not line.endswith(b"\n"):
                    return  # cut off by the socket closing: not a message
                try:
                    await self._handle(wire.decode(line))
                except (wire.BridgeProtocolError, KeyError, TypeError, ValueError) as e:
                    self.stats["bad_lines"] += 1
                    log.warning("bridge: ignoring bad line from helmet: %s", e)
                except BridgeError as e:
                    self.stats["bluez_errors"] += 1
                    log.error("bridge: BlueZ refused: %s", e)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass

    async def _handle(self, msg):
        t = msg["t"]
        if t in ("notify", "indicate"):
            await self._send(msg, t == "indicate")
        elif t == "value":
            self._chars[msg["handle"]].value = msg["data"]
        elif t == "register":
            await self._register(msg["services"])
        elif t == "advertise":
            await self._advertise(msg.get("adv"), msg.get("resp"), msg.get("interval_us"))
        elif t == "disconnect":
            await self.drop_connection(msg["conn"])

    async def _send(self, msg, indicate):
        char = self._chars[msg["handle"]]
        conn = msg["conn"]
        if conn not in self._conns.values():
            self.stats["dropped_not_connected"] += 1
            return
        # An ATT notification carries at most MTU-3 bytes; the stack truncates.
        data = msg["data"][: self._mtu - 3]
        self.stats["indications" if indicate else "notifications"] += 1
        if char.notifying:
            await self._wait_window()
            if conn not in self._conns.values() or not char.notifying:
                self.stats["dropped_not_connected"] += 1  # the link went while we waited
                if indicate:
                    self._to_helmet({"t": "indicate_done", "conn": conn, "handle": char.mp_handle, "status": 0x0E})
                return
            timer = None
            if indicate:
                timer = asyncio.get_running_loop().call_later(self.indicate_timeout_s, self._indicate_timeout, char)
            self._inflight[char].append(_InFlight(conn, indicate, timer))
            self._inflight_total += 1
            if self._inflight_total >= self.window:
                self._window_open.clear()
        elif indicate:
            # Nobody subscribed: no confirmation will come.
            asyncio.get_running_loop().call_later(
                self.indicate_timeout_s,
                self._to_helmet,
                {"t": "indicate_done", "conn": conn, "handle": char.mp_handle, "status": INDICATE_TIMEOUT_STATUS},
            )
        char.send(data)

    async def _wait_window(self):
        try:
            await asyncio.wait_for(self._window_open.wait(), self.indicate_timeout_s)
        except asyncio.TimeoutError:
            # Confirmations stopped (e.g. the central unsubscribed): start afresh.
            self.stats["window_resets"] += 1
            self._forget_inflight(None, status=INDICATE_TIMEOUT_STATUS)

    def _retire(self, char, item, status):
        self._inflight_total -= 1
        if self._inflight_total < self.window:
            self._window_open.set()
        if item.timer is not None:
            item.timer.cancel()
        if item.indicate:
            self._to_helmet({"t": "indicate_done", "conn": item.conn, "handle": char.mp_handle, "status": status})

    def _forget_inflight(self, conn, status):
        for char, pending in self._inflight.items():
            for item in [i for i in pending if conn is None or i.conn == conn]:
                pending.remove(item)
                self._retire(char, item, status)

    def _indicate_timeout(self, char):
        pending = self._inflight.get(char)
        for item in list(pending or ()):
            if item.indicate:
                pending.remove(item)
                self._retire(char, item, INDICATE_TIMEOUT_STATUS)
                return

    async def _register(self, services):
        await self._unregister_app()
        # Fresh object paths per registration: a rebooted helmet is a new GATT database.
        self._app_path = "/helmet/app%d" % next(_generation)
        for i, svc in enumerate(services):
            spath = "%s/service%d" % (self._app_path, i)
            service = GattService(spath, wire.normalize_uuid(svc["uuid"]))
            self._export(spath, service)
            for j, ch in enumerate(svc["chars"]):
                cpath = "%s/char%d" % (spath, j)
                char = GattCharacteristic(
                    cpath, wire.normalize_uuid(ch["uuid"]), spath, wire.bluez_flags(ch["flags"]), ch["handle"], self
                )
                self._export(cpath, char)
                self._chars[ch["handle"]] = char
        await self._call(
            BLUEZ, self.adapter_path, "org.bluez.GattManager1", "RegisterApplication", "oa{sv}", [self._app_path, {}]
        )
        self.registered.set()

    def _export(self, path, obj):
        self.bus.export(path, obj)
        self._objects.append((path, obj))

    async def _advertise(self, adv, resp, interval_us):
        await self._stop_advertising()
        if interval_us is None:
            return
        fields = advdata.parse(adv, resp)
        path = "/helmet/adv%d" % next(_generation)
        self._adv = Advertisement(path, fields["local_name"], fields["service_uuids"], fields["appearance"])
        self.bus.export(path, self._adv)
        await self._call(
            BLUEZ, self.adapter_path, "org.bluez.LEAdvertisingManager1", "RegisterAdvertisement", "oa{sv}", [path, {}]
        )

    async def _stop_advertising(self):
        if self._adv is None:
            return
        adv, self._adv = self._adv, None
        try:
            await self._call(
                BLUEZ, self.adapter_path, "org.bluez.LEAdvertisingManager1", "UnregisterAdvertisement", "o", [adv.path]
            )
        except BridgeError as e:
            log.debug("bridge: %s", e)
        self.bus.unexport(adv.path, adv)

    async def _unregister_app(self):
        if self._app_path is None:
            return
        path, self._app_path = self._app_path, None
        self.registered.clear()
        try:
            await self._call(BLUEZ, self.adapter_path, "org.bluez.GattManager1", "UnregisterApplication", "o", [path])
        except BridgeError as e:
            log.debug("bridge: %s", e)
        for p, obj in self._objects:
            self.bus.unexport(p, obj)
        self._objects.clear()
        self._chars.clear()
        self._forget_inflight(None, status=0x0E)
        self._inflight.clear()

    async def _teardown_helmet_state(self):
        # The helmet process went away (exit, crash, reboot): its radio goes quiet.
        await self._stop_advertising()
        try:
            await self.drop_connection()
        except BridgeError as e:
            log.debug("bridge: %s", e)
        await self._unregister_app()
