"""``bluetooth`` for the simulated board (MicroPython unix port only).

Follows MicroPython's ``bluetooth`` API (NimBLE on the ESP32) where the
firmware uses it: ``BLE()`` is a singleton; one IRQ handler; value handles
from ``gatts_register_services``; values default to 20 bytes (a remote write
is cut to the buffer, ``gatts_set_buffer`` enlarges it, a local
``gatts_write`` grows it); ``gatts_notify``/``gatts_indicate`` send whether or
not the peer subscribed, cut to MTU - 3, and raise OSError (ENOTCONN for an
unknown connection, ENOMEM when the connection's transmit queue is full,
EALREADY while an indication awaits its confirmation); the stack itself
rejects reads and writes that need an encrypted (or authenticated) link, so
they never reach the IRQ; bonding keys live only in the firmware's
_IRQ_GET_SECRET/_IRQ_SET_SECRET store, read again at ``active(True)``.

IRQ data: addresses, keys and values are memoryviews of one internal buffer
that is overwritten after the handler returns, as on the real port (firmware
that keeps one without copying sees garbage).  An exception in the handler is
printed and kept in ``sim_errors`` (the port prints it and carries on).

The "air" is pluggable (the stack's air side is ``ble_air``, kept out of this
module so that each compiles within the board's heap):
  * in-process: ``ble_central.Central`` (tools/simboard/ble_central.py) is a
    simulated phone for MicroPython tests;
  * host bridge (``ble_bridge``): with ``HELMET_BLE_BRIDGE=host:port`` set,
    ``active(True)`` connects to that TCP server and speaks JSON lines (see
    BRIDGE below).  The socket is serviced by an asyncio task that
    ``active(True)`` puts on the firmware's own loop (it runs once the
    firmware's ``asyncio.run`` does); asyncio is frozen into the port, so the
    import path must keep ".frozen" (a bare MICROPYPATH drops it), else code
    calls ``sim_poll()``.  The firmware never calls either.  Over the bridge
    the host paces the link: notifications never raise ENOMEM.

BRIDGE (one JSON object per line, binary as lowercase hex, UUIDs as 128-bit strings)
  helmet -> host: {"t":"register","services":[{"uuid":s,"chars":[{"uuid":s,"flags":n,"handle":n}]}]}
                  {"t":"advertise","adv":hex,"resp":hex,"interval_us":n|null}   (null = stopped)
                  {"t":"notify"|"indicate","conn":n,"handle":n,"data":hex}
                  {"t":"value","handle":n,"data":hex}          (every local gatts_write)
                  {"t":"disconnect","conn":n}                  (gap_disconnect; its IRQ follows from the loop)
  A "connect" stops advertising (the helmet then sends advertise with interval_us null);
  messages for a conn the helmet does not know are ignored.
  host -> helmet: {"t":"connect","conn":n,"addr":hex}  {"t":"disconnect","conn":n}
                  {"t":"write","conn":n,"handle":n,"data":hex}  {"t":"mtu","conn":n,"mtu":n}
                  {"t":"encryption","conn":n,"encrypted":b,"authenticated":b,"bonded":b,"key_size":n}
                  {"t":"indicate_done","conn":n,"handle":n,"status":n}
"""

import errno
import os
from binascii import hexlify, unhexlify

FLAG_BROADCAST = 0x0001
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020
FLAG_AUTHENTICATED_SIGNED_WRITE = 0x0040
FLAG_AUX_WRITE = 0x0100
FLAG_READ_ENCRYPTED = 0x0200
FLAG_READ_AUTHENTICATED = 0x0400
FLAG_READ_AUTHORIZED = 0x0800
FLAG_WRITE_ENCRYPTED = 0x1000
FLAG_WRITE_AUTHENTICATED = 0x2000
FLAG_WRITE_AUTHORIZED = 0x4000

# IRQ event codes (the real module leaves them to the program; named here for the sim and tests).
_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_GATTS_INDICATE_DONE = 20
_IRQ_MTU_EXCHANGED = 21
_IRQ_ENCRYPTION_UPDATE = 28
_IRQ_GET_SECRET = 29
_IRQ_SET_SECRET = 30

# ATT error codes the simulated stack answers with.
ATT_OK = 0
ATT_INVALID_HANDLE = 0x01
ATT_READ_NOT_PERMITTED = 0x02
ATT_WRITE_NOT_PERMITTED = 0x03
ATT_INSUFFICIENT_AUTHENTICATION = 0x05
ATT_INSUFFICIENT_ENCRYPTION = 0x0F

SEC_OUR_LTK = 1  # NimBLE store object types, as the ESP32 port passes them
SEC_PEER_LTK = 2
SEC_OUR_IRK = 10
_IRK_KEY = b"irk"

_DEFAULT_BUFFER = 20
_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"

sim_errors = []  # exceptions the IRQ handler raised
sim_tx_capacity = 8  # notifications/indications queued per connection before ENOMEM


class UUID:
    """16-bit (int) or 128-bit (str) UUID; also from 2/16 little-endian bytes."""

    def __init__(self, value):
        if isinstance(value, UUID):
            self._s = value._s
        elif isinstance(value, int):
            if not 0 <= value <= 0xFFFF:
                raise ValueError("invalid UUID")
            self._s = "%08x%s" % (value, _BASE_UUID_TAIL)
        elif isinstance(value, str):
            h = value.replace("-", "").lower()
            if len(h) == 4:
                h = "0000" + h + _BASE_UUID_TAIL.replace("-", "")
            if len(h) != 32:
                raise ValueError("invalid UUID")
            unhexlify(h)  # raises on non-hex
            self._s = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
        else:
            b = bytes(value)
            if len(b) == 2:
                self._s = "%08x%s" % (b[0] | b[1] << 8, _BASE_UUID_TAIL)
            elif len(b) == 16:
                self.__init__(hexlify(bytes(reversed(b))).decode())
            else:
                raise ValueError("invalid UUID")

    def full(self):
        """The 128-bit form, lowercase with dashes (the bridge's spelling)."""
        return self._s

    def short(self):
        """The 16-bit value for a SIG UUID, else None."""
        if self._s.endswith(_BASE_UUID_TAIL) and self._s.startswith("0000"):
            return int(self._s[:8], 16)
        return None

    def __eq__(self, other):
        return isinstance(other, UUID) and other._s == self._s

    def __hash__(self):
        return hash(self._s)

    def __str__(self):
        s = self.short()
        return "UUID(0x%04x)" % s if s is not None else "UUID('%s')" % self._s

    __repr__ = __str__


class _Attr:
    def __init__(self, uuid, flags):
        self.uuid = uuid
        self.flags = flags
        self.value = bytearray()
        self.alloc = _DEFAULT_BUFFER
        self.append = False


class _Conn:
    def __init__(self, handle, addr_type, addr):
        self.handle = handle
        self.addr_type = addr_type
        self.addr = bytes(addr)
        self.mtu = 23
        self.encrypted = False
        self.authenticated = False
        self.bonded = False
        self.key_size = 0
        self.cccd = {}  # value handle -> 1 notify / 2 indicate (the stack's, not visible to firmware)
        self.txq = []  # (kind "n"/"i", handle, bytes) waiting for the air
        self.indicating = None  # value handle of the unconfirmed indication


class BLE:
    _instance = None

    def __new__(cls):
        if BLE._instance is None:
            BLE._instance = object.__new__(cls)
            BLE._instance._init()
        return BLE._instance

    def __init__(self):
        pass

    def _init(self):
        self._active = False
        self._handler = None
        self._cfg = {
            "gap_name": b"MPY ESP32",
            "mtu": 256,
            "rxbuf": 1024,
            "addr_mode": 0,
            "bond": False,
            "le_secure": False,
            "mitm": False,
            "io": 3,
        }
        self._public = b"\x24\x0a\xc4\x5e\x1a\x9a"
        self._rpa = None
        self._attrs = {}
        self._registered = []  # [(uuid, [(uuid, flags, value handle)])] for the bridge
        self._conns = {}
        self._adv = None  # (interval_us, adv, resp, connectable) while advertising
        self._adv_data = b""
        self._resp_data = b""
        self._irk = None
        self._irqbuf = bytearray(64)  # what IRQ memoryviews point into
        self._pending = []  # stack events delivered at the next poll
        self._bridge = None

    # ------------------------------------------------------------ basics
    def active(self, value=None):
        if value is None:
            return self._active
        value = bool(value)
        if value and not self._active:
            self._active = True
            self._load_secrets()
            if os.getenv("HELMET_BLE_BRIDGE"):
                import ble_bridge

                ble_bridge.start(self)
        elif not value and self._active:
            self._conns = {}
            self._active = False
            self._attrs = {}
            self._registered = []
            self._adv = None
            self._irk = None
        return None

    def config(self, *args, **kwargs):
        if args:
            if len(args) != 1 or kwargs:
                raise TypeError("config takes one name or keyword arguments")
            name = args[0]
            if name == "mac":
                if self._cfg["addr_mode"] in (2, 3):
                    return (1, self._rpa_addr())
                return (0, self._public)
            if name == "gap_name":
                return bytes(self._cfg["gap_name"])
            if name in self._cfg:
                return self._cfg[name]
            raise ValueError("unknown config param")
        for k, v in kwargs.items():
            if k not in self._cfg:
                raise ValueError("unknown config param")
            if k == "mtu" and not 23 <= v <= 517:
                raise ValueError("invalid MTU")
            if k == "addr_mode" and v not in (0, 1, 2, 3):
                raise ValueError("invalid addr_mode")
            self._cfg[k] = v.encode() if k == "gap_name" and isinstance(v, str) else v
        return None

    def irq(self, handler):
        self._handler = handler

    def _rpa_addr(self):
        if self._rpa is None:
            # A resolvable private address: the two top bits are 0b01; the rest is
            # derived from the IRK (good enough for a simulation, not the AES hash).
            seed = self._irk or b"\x5a" * 16
            a = bytearray(6)
            for i in range(6):
                a[i] = seed[i] ^ seed[15 - i] ^ (0x3C + i)
            a[0] = (a[0] & 0x3F) | 0x40
            self._rpa = bytes(a)
        return self._rpa

    # ------------------------------------------------------------ IRQ plumbing
    def _irq(self, event, data):
        if self._handler is None:
            return None
        try:
            return self._handler(event, data)
        except Exception as e:  # noqa: BLE001 - the port prints handler errors and keeps running
            import sys

            sys.print_exception(e)
            sim_errors.append(e)
            return None
        finally:
            buf = self._irqbuf
            for i in range(len(buf)):
                buf[i] = 0xEE  # invalidate every memoryview the handler was given

    def _view(self, off, data):
        """A read-only-in-spirit memoryview of `data` placed in the IRQ buffer."""
        n = len(data)
        if off + n > len(self._irqbuf):
            self._irqbuf = bytearray(off + n + 32)
        self._irqbuf[off : off + n] = data
        return memoryview(self._irqbuf)[off : off + n]

    def _get_secret(self, sec_type, index, key):
        mv = None if key is None else self._view(0, key)
        v = self._irq(_IRQ_GET_SECRET, (sec_type, index, mv))
        return None if v is None else bytes(v)

    def _set_secret(self, sec_type, key, value):
        kv = self._view(0, key)
        vv = None if value is None else self._view(len(key), value)
        return bool(self._irq(_IRQ_SET_SECRET, (sec_type, kv, vv)))

    def _load_secrets(self):
        # NimBLE loads the local IRK at start (generating one if the store has none).
        irk = self._get_secret(SEC_OUR_IRK, 0, _IRK_KEY)
        if irk is None or len(irk) != 16:
            irk = bytes((7 * i + 0x21) & 0xFF for i in range(16)) if _urandom is None else _urandom(16)
            self._set_secret(SEC_OUR_IRK, _IRK_KEY, irk)
        self._irk = irk
        self._rpa = None

    # ------------------------------------------------------------ GAP
    def gap_advertise(self, interval_us, adv_data=None, resp_data=None, connectable=True):
        self._need_active()
        if adv_data is not None:
            if len(adv_data) > 31:
                raise OSError(errno.EINVAL)
            self._adv_data = bytes(adv_data)
        if resp_data is not None:
            if len(resp_data) > 31:
                raise OSError(errno.EINVAL)
            self._resp_data = bytes(resp_data)
        if interval_us is None:
            self._adv = None
        else:
            self._adv = (interval_us, self._adv_data, self._resp_data, connectable)
        if self._bridge is not None:
            self._tell(
                {
                    "t": "advertise",
                    "adv": hexlify(self._adv_data).decode(),
                    "resp": hexlify(self._resp_data).decode(),
                    "interval_us": interval_us,
                },
            )

    def gap_disconnect(self, conn_handle):
        self._need_active()
        c = self._conns.get(conn_handle)
        if c is None:
            return False
        if self._bridge is not None:
            self._tell({"t": "disconnect", "conn": conn_handle})
        self._pending.append(("drop", conn_handle))  # the IRQ comes later, as on the device
        if self._bridge is not None:
            import ble_bridge

            ble_bridge.deliver_soon(self)
        return True

    def gap_pair(self, conn_handle):
        self._conn(conn_handle)  # the simulated central decides when to pair

    def gap_passkey(self, conn_handle, action, passkey):
        self._conn(conn_handle)

    # ------------------------------------------------------------ GATT server
    def gatts_register_services(self, services):
        self._need_active()
        self._attrs = {}
        self._registered = []
        handle = 16  # the GAP/GATT services take the first handles
        result = []
        for svc_uuid, chars in services:
            handle += 1  # service declaration
            handles = []
            entry = []
            for ch in chars:
                uuid, flags = ch[0], ch[1]
                handle += 2  # characteristic declaration, then its value
                self._attrs[handle] = _Attr(UUID(uuid), flags)
                handles.append(handle)
                entry.append((UUID(uuid), flags, handle))
                if flags & (FLAG_NOTIFY | FLAG_INDICATE):
                    handle += 1  # CCCD, owned by the stack
                for d in ch[2] if len(ch) > 2 else ():
                    handle += 1
                    self._attrs[handle] = _Attr(UUID(d[0]), d[1])
                    handles.append(handle)
            result.append(tuple(handles))
            self._registered.append((UUID(svc_uuid), entry))
        if self._bridge is not None:
            self._tell(
                {
                    "t": "register",
                    "services": [
                        {"uuid": s.full(), "chars": [{"uuid": u.full(), "flags": f, "handle": h} for u, f, h in cs]}
                        for s, cs in self._registered
                    ],
                },
            )
        return tuple(result)

    def _attr(self, value_handle):
        a = self._attrs.get(value_handle)
        if a is None:
            raise OSError(errno.EINVAL)
        return a

    def gatts_read(self, value_handle):
        a = self._attr(value_handle)
        v = bytes(a.value)
        if a.append:
            a.value = bytearray()  # append buffers clear on read
        return v

    def gatts_write(self, value_handle, data, send_update=False):
        a = self._attr(value_handle)
        a.value = bytearray(data.encode() if isinstance(data, str) else data)  # str has the buffer protocol
        if len(a.value) > a.alloc:
            a.alloc = len(a.value)  # a local write grows the buffer
        if self._bridge is not None:
            self._tell({"t": "value", "handle": value_handle, "data": hexlify(a.value).decode()})
        if send_update:
            for c in self._conns.values():
                mode = c.cccd.get(value_handle, 0)
                if mode & 2:
                    self._send(c, "i", value_handle, None)
                elif mode & 1:
                    self._send(c, "n", value_handle, None)

    def gatts_set_buffer(self, value_handle, length, append=False):
        a = self._attr(value_handle)
        a.alloc = length
        a.append = bool(append)
        a.value = bytearray()  # the port's resize empties the value

    def gatts_notify(self, conn_handle, value_handle, data=None):
        self._send(self._conn(conn_handle), "n", value_handle, data)

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        c = self._conn(conn_handle)
        if c.indicating is not None:
            raise OSError(errno.EALREADY)  # one unconfirmed indication per connection (ATT)
        self._send(c, "i", value_handle, data)
        c.indicating = value_handle

    def _conn(self, conn_handle):
        self._need_active()
        c = self._conns.get(conn_handle)
        if c is None:
            raise OSError(errno.ENOTCONN)
        return c

    def _send(self, c, kind, value_handle, data):
        a = self._attr(value_handle)
        payload = bytes(a.value if data is None else data)[: c.mtu - 3]
        if self._bridge is not None:
            self._tell(
                {
                    "t": "notify" if kind == "n" else "indicate",
                    "conn": c.handle,
                    "handle": value_handle,
                    "data": hexlify(payload).decode(),
                },
            )
            return
        if len(c.txq) >= sim_tx_capacity:
            raise OSError(errno.ENOMEM)  # out of controller buffers: try again later
        c.txq.append((kind, value_handle, payload))

    def _tell(self, msg):
        """Send one message to the host bridge (when there is one)."""
        if self._bridge is not None:
            import ble_bridge

            ble_bridge.send(self, msg)

    def _need_active(self):
        if not self._active:
            raise OSError(errno.EPERM)


try:
    _urandom = os.urandom
except AttributeError:  # pragma: no cover
    _urandom = None


def sim_reset():
    """Power-cycle the radio: forget the stack's state (not the firmware's flash)."""
    if BLE._instance is not None:
        ble = BLE._instance
        if ble._bridge is not None:
            try:
                ble._bridge[0].close()
            except OSError:
                pass
        ble._init()
    del sim_errors[:]


def sim_poll():
    """Deliver pending stack events and service the bridge once, without blocking."""
    ble = BLE._instance
    if ble is None:
        return
    import ble_air

    ble_air.process(ble)
    if ble._bridge is not None:
        import ble_bridge

        ble_bridge.poll(ble)


async def sim_task():
    """The bridge's reader as an asyncio task (``active(True)`` creates it on the
    firmware's loop when HELMET_BLE_BRIDGE is set)."""
    import ble_bridge

    await ble_bridge.task()
