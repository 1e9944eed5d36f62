"""The helmet's GATT server: standard health profile plus the screening service.

Services (UUIDs and every record layout come from shared/protocol):
  Health Thermometer 0x1809: Temperature Measurement (indicate), Temperature
    Type (read, body), Intermediate Temperature (notify), so generic health
    apps see FEVER/RECHECK readings;
  Device Information 0x180A and Battery 0x180F;
  screening service: events (notify), live frames (notify, chunked), control
    point (write; responses notified on it), configuration (read).
The screening characteristics need an encrypted link at the stack level
(encrypted-only flags) and this module additionally sends nothing on them and
obeys no command until the link is encrypted *and* bonded (LE Secure
Connections, just works: the helmet has no display or keyboard).

Delivery: events are read from the journal and notified in order, one per
notification, from a per-connection cursor.  On every bonded (re)connection
the cursor starts at the oldest unacknowledged event; OP_ACK moves the
journal's acknowledged point; OP_REPLAY moves the cursor back (or forward) to
any retained seq.  Nothing is dropped when the radio is busy: a notification
the stack refuses (OSError, e.g. ENOMEM) is retried on the next ``pump()``.

Threading: the IRQ handler only records state and copies the written
request; ``pump()`` does the work (flash, notifications).  ``run()`` is the
asyncio task that calls it; tests may call ``pump()`` directly.
"""

import struct

from bluetooth import UUID
from micropython import const

import protocol
import protocol_control
import protocol_frames
import protocol_gatt
import protocol_hts
import version

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)

# The ESP32 module exports only the basic flags; the security ones are NimBLE's values.
_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_FLAG_INDICATE = const(0x0020)
_FLAG_READ_ENCRYPTED = const(0x0200)
_FLAG_WRITE_ENCRYPTED = const(0x1000)

_IO_NO_INPUT_OUTPUT = const(3)
_ADDR_MODE_RPA = const(2)  # resolvable private address: the helmet cannot be tracked by its address
_PREFERRED_MTU = const(247)
_ADV_INTERVAL_US = const(100000)
_APPEARANCE_THERMOMETER = const(0x0300)
_BURST = const(16)  # notifications per pump() before yielding to the loop
_REQUEST_QUEUE = const(4)
_TM_QUEUE = const(4)
_NO_CONN = const(-1)


def adv_payload(uuid128=None, uuid16s=(), appearance=0, name=None):
    """GAP advertising data (at most 31 bytes): flags, then the given fields."""
    out = bytearray(b"\x02\x01\x06")  # LE general discoverable, BR/EDR not supported
    if uuid16s:
        out += bytes((1 + 2 * len(uuid16s), 0x03))
        for u in uuid16s:
            out += struct.pack("<H", u)
    if uuid128 is not None:
        out += b"\x11\x07" + uuid128_le(uuid128)
    if appearance:
        out += struct.pack("<BBH", 3, 0x19, appearance)
    if name is not None:
        out += bytes((1 + len(name), 0x09)) + name
    if len(out) > 31:
        raise ValueError("advertising payload of %d bytes (max 31)" % len(out))
    return bytes(out)


def uuid128_le(s):
    """A 128-bit UUID string as the 16 little-endian bytes it has on air."""
    h = s.replace("-", "")
    return bytes(int(h[i : i + 2], 16) for i in range(30, -2, -2))


def civil_from_unix(t):
    """(year, month, day, hours, minutes, seconds) UTC of unix time `t`
    (the port's own epoch may not be 1970, so no time.gmtime)."""
    days, rem = divmod(t, 86400)
    # Howard Hinnant's days-to-civil algorithm.
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return (year, month, day, rem // 3600, rem // 60 % 60, rem % 60)


class BondStore:
    """NimBLE's secrets (bond keys, our IRK) in one small file, rewritten
    atomically (temporary file, then rename) when a secret changes."""

    MAX_ENTRIES = 12  # our IRK plus a few bonded phones

    def __init__(self, path="ble_bonds.bin"):
        self.path = path
        self.entries = []  # [sec_type, key bytes, value bytes], oldest first
        self._load()

    def _load(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            return
        i, n = 0, len(data)
        while i + 3 <= n:
            t, kl, vl = data[i], data[i + 1], data[i + 2]
            if i + 3 + kl + vl > n:
                break  # a torn file: keep what is whole
            self.entries.append([t, bytes(data[i + 3 : i + 3 + kl]), bytes(data[i + 3 + kl : i + 3 + kl + vl])])
            i += 3 + kl + vl

    def _save(self):
        import os

        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            for t, k, v in self.entries:
                f.write(bytes((t, len(k), len(v))))
                f.write(k)
                f.write(v)
        try:
            os.rename(tmp, self.path)
        except OSError:  # a file system whose rename does not replace
            os.remove(self.path)
            os.rename(tmp, self.path)

    def get(self, sec_type, index, key):
        if key is None:
            for t, _, v in self.entries:
                if t == sec_type:
                    if index == 0:
                        return v
                    index -= 1
            return None
        for t, k, v in self.entries:
            if t == sec_type and k == key:
                return v
        return None

    def set(self, sec_type, key, value):
        key = bytes(key)  # IRQ memoryviews die when the handler returns
        found = False
        for e in self.entries:
            if e[0] == sec_type and e[1] == key:
                found = True
                self.entries.remove(e)
                break
        if value is None:
            if not found:
                return False
        else:
            self.entries.append([sec_type, key, bytes(value)])
            while len(self.entries) > self.MAX_ENTRIES:
                for e in self.entries:
                    if e[0] != 10:  # never evict our own IRK (type 10): the address would change
                        self.entries.remove(e)
                        break
        self._save()
        return True


class BleServer:
    def __init__(
        self,
        ble,
        journal,
        config=None,
        on_set_time=None,
        on_config=None,
        on_silence=None,
        serial="unknown",
        name=b"FSH-1",
        battery_percent=100,
        bonds_path="ble_bonds.bin",
    ):
        self._ble = ble
        self._journal = journal
        self._config = config if config is not None else protocol.DeviceConfig()
        self._on_set_time: "Callable[[int], Any] | None" = on_set_time
        self._on_config: "Callable[[Any], Any] | None" = on_config
        self._on_silence: "Callable[[], Any] | None" = on_silence
        self._bonds = BondStore(bonds_path)
        self._flag: "Any" = None
        # Preallocated buffers: the hot paths pack into these.
        self._evbuf = bytearray(protocol.EVENT_SIZE)
        self._rsp = bytearray(protocol_control.RESPONSE_SIZE)
        self._chunk: "Any" = None
        self._frame: "Any" = None
        self._requests = []  # (conn, request bytes) written, waiting for pump()
        self._tm = []  # Temperature Measurement indications waiting (bytes)
        self.frames_sent = 0
        self.frames_skipped = 0
        self._frame_id = 0
        self._reset_link()
        self._conn = _NO_CONN

        ble.irq(self._irq)  # before active(True): the stack asks the secret store at start
        ble.active(True)
        ble.config(gap_name=name, mtu=_PREFERRED_MTU, bond=True, le_secure=True, mitm=False, io=_IO_NO_INPUT_OUTPUT)
        ble.config(addr_mode=_ADDR_MODE_RPA)
        self._register(serial, battery_percent)
        self._adv = adv_payload(
            protocol_gatt.SCREENING_SERVICE, (protocol_gatt.HEALTH_THERMOMETER_SERVICE,), _APPEARANCE_THERMOMETER
        )
        self._resp = adv_payload(name=name)
        self._advertise()

    def _register(self, serial, battery_percent):
        hts = (
            UUID(protocol_gatt.HEALTH_THERMOMETER_SERVICE),
            (
                (UUID(protocol_gatt.TEMPERATURE_MEASUREMENT), _FLAG_INDICATE),
                (UUID(protocol_gatt.TEMPERATURE_TYPE), _FLAG_READ),
                (UUID(protocol_gatt.INTERMEDIATE_TEMPERATURE), _FLAG_NOTIFY),
            ),
        )
        dis = (
            UUID(protocol_gatt.DEVICE_INFORMATION_SERVICE),
            (
                (UUID(protocol_gatt.MANUFACTURER_NAME), _FLAG_READ),
                (UUID(protocol_gatt.MODEL_NUMBER), _FLAG_READ),
                (UUID(protocol_gatt.SERIAL_NUMBER), _FLAG_READ),
                (UUID(protocol_gatt.FIRMWARE_REVISION), _FLAG_READ),
            ),
        )
        bas = (UUID(protocol_gatt.BATTERY_SERVICE), ((UUID(protocol_gatt.BATTERY_LEVEL), _FLAG_READ | _FLAG_NOTIFY),))
        secured = _FLAG_READ_ENCRYPTED
        scr = (
            UUID(protocol_gatt.SCREENING_SERVICE),
            (
                (UUID(protocol_gatt.EVENTS_CHAR), _FLAG_NOTIFY | secured),
                (UUID(protocol_gatt.LIVE_FRAMES_CHAR), _FLAG_NOTIFY | secured),
                (UUID(protocol_gatt.CONTROL_POINT_CHAR), _FLAG_WRITE | _FLAG_WRITE_ENCRYPTED | _FLAG_NOTIFY | secured),
                (UUID(protocol_gatt.CONFIGURATION_CHAR), _FLAG_READ | secured),
            ),
        )
        ((self._h_tm, h_type, self._h_inter), (h_man, h_model, h_serial, h_fw), (self._h_batt,), handles) = (
            self._ble.gatts_register_services((hts, dis, bas, scr))
        )
        self._h_events, self._h_frames, self._h_control, self._h_config = handles
        w = self._ble.gatts_write
        w(h_type, bytes((protocol_hts.TEMPERATURE_TYPE_BODY,)))
        w(h_man, version.MANUFACTURER.encode())
        w(h_model, version.MODEL.encode())
        w(h_serial, serial.encode())
        w(h_fw, version.FIRMWARE_VERSION.encode())
        w(self._h_batt, bytes((max(0, min(100, battery_percent)),)))
        w(self._h_config, protocol.encode_config(self._config))
        # The longest request is 15 bytes; a bigger buffer lets an over-long
        # write arrive whole (and be refused as such) instead of cut to 20.
        self._ble.gatts_set_buffer(self._h_control, 32)

    # ------------------------------------------------------------ link state
    def _reset_link(self):
        self._mtu = 23
        self._secure = False  # encrypted and bonded
        self._cursor = 0  # next event seq to send; 0 = not streaming
        self._live = False
        self._indicating = False
        self._rsp_pending = False
        self._frame_count = 0  # chunks of the frame in flight (0 = none)
        self._requests.clear()

    def _advertise(self):
        self._ble.gap_advertise(_ADV_INTERVAL_US, adv_data=self._adv, resp_data=self._resp, connectable=True)

    def _wake(self):
        if self._flag is not None:
            self._flag.set()

    def connected(self):
        return self._conn != _NO_CONN

    def secure(self):
        """True when the link is encrypted and bonded (data flows)."""
        return self._conn != _NO_CONN and self._secure

    def mtu(self):
        return self._mtu

    def live(self):
        return self._live

    def config(self):
        return self._config

    # ------------------------------------------------------------ IRQ (copy, record, return)
    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            conn = data[0]
            if self._conn != _NO_CONN:
                self._ble.gap_disconnect(conn)  # one phone at a time
                return None
            self._reset_link()
            self._conn = conn
        elif event == _IRQ_CENTRAL_DISCONNECT:
            if data[0] == self._conn:
                self._conn = _NO_CONN
                self._reset_link()
                self._advertise()
        elif event == _IRQ_GATTS_WRITE:
            conn, handle = data
            if handle == self._h_control:
                request = self._ble.gatts_read(handle)  # a copy: the stack's buffer is reused
                if len(self._requests) < _REQUEST_QUEUE:
                    self._requests.append((conn, request))
                elif conn == self._conn and not self._rsp_pending:
                    self._respond(protocol_control.command_opcode(request), protocol_control.RESULT_BUSY)
        elif event == _IRQ_MTU_EXCHANGED:
            if data[0] == self._conn:
                self._mtu = data[1]
        elif event == _IRQ_ENCRYPTION_UPDATE:
            conn, encrypted, _authenticated, bonded, _key_size = data
            if conn == self._conn:
                secure = bool(encrypted and bonded)
                if secure and not self._secure:
                    # (Re)start delivery at the oldest event the app has not acknowledged.
                    self._cursor = self._journal.oldest_unacked() or self._journal.next_seq
                elif not secure:
                    self._cursor = 0
                    self._live = False
                self._secure = secure
        elif event == _IRQ_GATTS_INDICATE_DONE:
            conn, handle, status = data
            if conn == self._conn and handle == self._h_tm:
                self._indicating = False
                if status == 0 and self._tm:
                    self._tm.pop(0)  # confirmed; a failed one is sent again
        elif event == _IRQ_GET_SECRET:
            sec_type, index, key = data
            return self._bonds.get(sec_type, index, None if key is None else bytes(key))
        elif event == _IRQ_SET_SECRET:
            sec_type, key, value = data
            return self._bonds.set(sec_type, key, value)
        self._wake()
        return None

    # ------------------------------------------------------------ the firmware's API
    def record(self, ev):
        """Journal a new event (assigns ev.seq) and queue it for the app;
        FEVER/RECHECK screenings also go out as a standard Temperature
        Measurement indication.  Returns the seq."""
        seq = self._journal.append(ev)
        if ev.kind == protocol.EVENT_SCREENING and ev.outcome in (protocol.FEVER, protocol.RECHECK):
            self._tm.append(self._measurement(ev))
            if len(self._tm) > _TM_QUEUE:
                self._tm.pop(0)  # best effort for generic apps: the journal is the record
        self._wake()
        return seq

    @staticmethod
    def _measurement(ev):
        core = ev.core_c if ev.core_c is not None else float("nan")
        ts = None
        if ev.flags & protocol.FLAG_TIME_VALID and ev.time:
            ts = civil_from_unix(ev.time)
        return protocol_hts.encode_temperature_measurement(
            core, timestamp=ts, temperature_type=protocol_hts.TEMPERATURE_TYPE_BODY
        )

    def send_frame(self, body):
        """Queue one live frame body (protocol frame body bytes) for the app.
        False (dropped) when live view is off, the link is not secure, or the
        previous frame is still on its way: live view never holds up events."""
        if not (self._live and self.secure()):
            return False
        if self._frame_count:
            self.frames_skipped += 1
            return False
        n = len(body)
        size = protocol_frames.chunk_payload_size(self._mtu)
        count = (n + size - 1) // size
        if not 1 <= count <= 255:
            return False
        if self._frame is None or len(self._frame) < n:
            self._frame = bytearray(n)
        self._frame[:n] = body
        if self._chunk is None:
            self._chunk = bytearray(protocol_frames.CHUNK_MAX)
        self._frame_id = (self._frame_id + 1) & 0xFFFF
        self._frame_len, self._frame_size, self._frame_index, self._frame_count = n, size, 0, count
        self._wake()
        return True

    def intermediate(self, core_c):
        """Notify an Intermediate Temperature (best effort, not journaled)."""
        if self.secure():
            try:
                self._ble.gatts_notify(
                    self._conn,
                    self._h_inter,
                    protocol_hts.encode_temperature_measurement(
                        core_c, temperature_type=protocol_hts.TEMPERATURE_TYPE_BODY
                    ),
                )
            except OSError:
                pass

    def set_battery(self, percent):
        self._ble.gatts_write(self._h_batt, bytes((max(0, min(100, percent)),)))
        if self._conn != _NO_CONN:
            try:
                self._ble.gatts_notify(self._conn, self._h_batt)
            except OSError:
                pass

    def disconnect(self):
        if self._conn != _NO_CONN:
            self._ble.gap_disconnect(self._conn)

    # ------------------------------------------------------------ work
    def pump(self):
        """Handle written requests, then send responses, events, the
        measurement indication and live-frame chunks as far as the radio
        takes them.  Returns True when work is left (call again soon)."""
        if self._conn == _NO_CONN:
            return False
        while self._requests and not self._rsp_pending:
            conn, request = self._requests.pop(0)
            if conn == self._conn:
                self.handle_request(request)
        if self._rsp_pending:
            if not self._notify(self._h_control, self._rsp):
                return True
            self._rsp_pending = False
        if not self._secure:
            return bool(self._requests)
        if self._send_events():
            return True
        if self._tm and not self._indicating:
            try:
                self._ble.gatts_indicate(self._conn, self._h_tm, self._tm[0])
                self._indicating = True
            except OSError:
                return True
        if self._frame_count and self._send_chunks():
            return True
        return bool(self._requests)

    def _notify(self, handle, data):
        try:
            self._ble.gatts_notify(self._conn, handle, data)
            return True
        except OSError:
            return False  # no buffer now (or the link just dropped): retried later

    def _send_events(self):
        """True if events are left to send."""
        j, sent = self._journal, 0
        while self._cursor and self._cursor < j.next_seq:
            if sent == _BURST:
                return True
            seq = j.next_from(self._cursor)
            if seq == 0:
                self._cursor = j.next_seq
                break
            if not j.read_into(seq, self._evbuf):
                self._cursor = seq + 1
                continue
            if not self._notify(self._h_events, self._evbuf):
                return True
            self._cursor = seq + 1
            sent += 1
        return False

    def _send_chunks(self):
        """True if chunks of the current frame are left."""
        mv = memoryview(self._frame)
        size, n, count = self._frame_size, self._frame_len, self._frame_count
        while self._frame_index < count:
            i = self._frame_index
            a = i * size
            k = protocol_frames.encode_chunk_into(self._chunk, 0, self._frame_id, i, count, mv[a : min(a + size, n)])
            if not self._notify(self._h_frames, memoryview(self._chunk)[:k]):
                return True
            self._frame_index = i + 1
        self._frame_count = 0
        self.frames_sent += 1
        return False

    # ------------------------------------------------------------ control point
    def _respond(self, opcode, result, value=0):
        protocol_control.encode_response_into(self._rsp, 0, opcode & 0xFF, result, value)
        self._rsp_pending = True

    def handle_request(self, request):
        """Obey one control-point request from the current connection and
        queue its response.  Never raises: a malformed or unauthorised
        request gets its error result and changes nothing."""
        op = protocol_control.command_opcode(request)
        if not self._secure:
            self._respond(op, protocol_control.RESULT_NOT_AUTHORIZED)
            return
        try:
            op, arg = protocol_control.decode_command(request)
        except Exception as e:  # noqa: BLE001 - every malformed request gets an answer
            self._respond(op, protocol_control.result_for_error(e))
            return
        try:
            result, value = self._obey(op, arg)
        except Exception:  # noqa: BLE001 - a failing hook must not kill the radio
            result, value = protocol_control.RESULT_FAILED, 0
        self._respond(op, result, value)

    def _obey(self, op, arg):
        j = self._journal
        if op == protocol_control.OP_ACK:
            if not j.ack(arg):
                return protocol_control.RESULT_INVALID_PARAMETER, 0
            if self._cursor and self._cursor <= arg:
                self._cursor = arg + 1
            return protocol_control.RESULT_SUCCESS, j.pending()
        if op == protocol_control.OP_REPLAY:
            if arg > j.next_seq:
                return protocol_control.RESULT_INVALID_PARAMETER, 0
            self._cursor = max(arg, 1)
            return protocol_control.RESULT_SUCCESS, j.count_from(self._cursor)
        if op == protocol_control.OP_SET_TIME:
            if self._on_set_time is None:
                return protocol_control.RESULT_NOT_SUPPORTED, 0
            self._on_set_time(arg)
            return protocol_control.RESULT_SUCCESS, 0
        if op == protocol_control.OP_SET_CONFIG:
            if self._on_config is None:
                return protocol_control.RESULT_NOT_SUPPORTED, 0
            if self._on_config(arg) is False:
                return protocol_control.RESULT_FAILED, 0
            self._config = arg
            self._ble.gatts_write(self._h_config, protocol.encode_config(arg))
            return protocol_control.RESULT_SUCCESS, 0
        if op == protocol_control.OP_LIVE_START:
            self._live = True
            return protocol_control.RESULT_SUCCESS, 0
        if op == protocol_control.OP_LIVE_STOP:
            self._live = False
            self._frame_count = 0  # the app's assembler drops the partial frame
            return protocol_control.RESULT_SUCCESS, 0
        if op == protocol_control.OP_SILENCE:
            if self._on_silence is None:
                return protocol_control.RESULT_NOT_SUPPORTED, 0
            self._on_silence()
            return protocol_control.RESULT_SUCCESS, 0
        return protocol_control.RESULT_NOT_SUPPORTED, 0

    async def run(self):
        """The server's asyncio task: pump whenever the stack or the firmware
        has something for it; poll briefly while the radio is busy."""
        import asyncio

        self._flag = asyncio.ThreadSafeFlag()
        while True:
            if self.pump():
                await asyncio.sleep_ms(2)  # let the controller drain its buffers
            else:
                await self._flag.wait()
