"""BLE wire formats shared by the helmet firmware and the companion app.

Runs unchanged on MicroPython (ESP32, single-precision floats) and CPython.
All multi-byte fields are little-endian.  Every decoder accepts bytes,
bytearray or memoryview and raises only ProtocolError subclasses.
Versioned decoders check the version byte before the length, so a record
from a newer firmware reports UnknownVersion rather than a length error.
Encoders raise OutOfRange for values the wire cannot carry.  The *_into
encoders pack into a caller's buffer at an offset: encode_chunk_into and
encode_response_into allocate nothing (tested with heap_lock); the event and
frame encoders allocate only float temporaries (floats are heap objects on
the ESP32 port).

IEEE-11073 32-bit FLOAT (Health Thermometer)
  bits 0-23 signed mantissa (valid -8388605..8388605), bits 24-31 signed
  exponent; value = mantissa * 10**exponent.  37.2 -> 74 01 00 FF.
  Specials: NaN 0x007FFFFF, NRes 0x00800000, +INF 0x007FFFFE,
  -INF 0x00800002, reserved 0x00800001 (NaN/NRes/reserved decode as nan).

Temperature Measurement 0x2A1C / Intermediate Temperature 0x2A1E
  off size field
  0   1    flags: bit0 Fahrenheit, bit1 timestamp present, bit2 type present
  1   4    temperature, FLOAT
  5   7    [bit1] year u16 (1582..9999, 0 unknown), month, day (0 unknown),
           hours, minutes, seconds
  -   1    [bit2] temperature type 1..9 (2 = body)

Screening event record v1 (events characteristic, notify).  Exactly 20 bytes
so that one event fits one notification at the default ATT MTU of 23.
  off size field        units / meaning
  0   1    version      1
  1   1    kind<<4|out  kind: 1 screening, 2 fault, 3 boot; out: outcome
                        (CLEAR/RECHECK/FEVER), fault code, or 0 for boot
  2   4    seq          u32 event sequence number
  6   4    time         u32 unix seconds, 0 if the clock is unset
  10  2    core         i16 centi-degC, -32768 = not available (None)
  12  1    core_u       expanded uncertainty, 0.02 degC steps rounded UP,
                        255 = 5.10 degC or more (decodes as inf)
  13  2    skin         i16 centi-degC as core
  15  1    skin_u       as core_u
  16  1    distance     5 cm steps rounded to nearest, 0 = unknown (None),
                        255 = beyond 12.70 m (decodes as inf)
  17  2    track        u16 track id
  19  1    flags        FLAG_* bits 0-4; bits 5-7 reserved (0)
  Temperatures must lie in -50.00..150.00 degC.  Fault and boot events
  carry no temperatures.  A FAULT_JOURNAL_OVERFLOW event carries in its
  track field the number of events the journal had to drop (saturating at
  65535).

Live frame body v1 (sent in chunks on the live-frames characteristic)
  off size     field
  0   1        version 1
  1   1        width (>= 1)
  2   1        height (>= 1)
  3   2        ambient (sensor Ta), i16 centi-degC
  5   2*w*h    pixels, i16 centi-degC, row-major; -32768 = not available
  32x24 -> 1541 bytes.  Pixels saturate at +-327.67 degC (display only).
  decode_frame_body returns pixels as array('h') of centi-degC (compact on
  both sides; divide by 100 to display).

Frame chunk v1
  off size field
  0   1    version 1
  1   2    frame_id u16
  3   1    index (< count)
  4   1    count (>= 1)
  5   n    payload, 1..507 bytes: a chunk never exceeds the 512-byte
           attribute value limit, and fits mtu - 3 (ATT notify header).

Control point request v1 (written by the app)
  off size field
  0   1    version 1
  1   1    opcode
  2   n    parameters: OP_ACK 0x01 u32 seq (everything up to and including
           seq is delivered); OP_REPLAY 0x02 u32 from_seq; OP_SET_TIME 0x03
           u32 unix seconds; OP_SET_CONFIG 0x04 configuration record (13);
           OP_LIVE_START 0x05, OP_LIVE_STOP 0x06, OP_SILENCE 0x07: none

Control point response v1 (notified by the helmet on the control point)
  off size field
  0   1    version 1
  1   1    0x80 (response code)
  2   1    request opcode, echoed even when unknown
  3   1    result RESULT_* (1 success .. 7 busy)
  4   4    value u32 (e.g. number of events queued for replay)

Device configuration record v1 (13 bytes; configuration characteristic and
OP_SET_CONFIG)
  off size field              units, valid range
  0   1    version            1
  1   2    threshold          i16 centi-degC, 35.00..40.00
  3   2    skin_to_core       i16 centi-degC, -1.00..5.00
  5   2    hysteresis         u16 centi-degC, 0..1.00
  7   1    confirm_frames     1..30
  8   1    coverage_k         tenths, 1.0..4.0
  9   2    emissivity         x10000, 0.9000..1.0000
  11  1    frame_rate_hz      1, 2, 4, 8 or 16
  12  1    flags              bit0 buzzer enabled; bits 1-7 reserved (0)
"""

import math
import struct
from array import array

from calibration import (  # noqa: F401  (RECHECK: re-exported, the third outcome code)
    CLEAR,
    DEFAULT_COVERAGE_K,
    DEFAULT_HYSTERESIS_C,
    DEFAULT_SKIN_TO_CORE_OFFSET_C,
    DEFAULT_THRESHOLD_C,
    FEVER,
    RECHECK,
    SKIN_EMISSIVITY,
)

# --- GATT UUIDs --------------------------------------------------------------
HEALTH_THERMOMETER_SERVICE = 0x1809
TEMPERATURE_MEASUREMENT = 0x2A1C  # indicate
TEMPERATURE_TYPE = 0x2A1D  # read
INTERMEDIATE_TEMPERATURE = 0x2A1E  # notify
DEVICE_INFORMATION_SERVICE = 0x180A
MANUFACTURER_NAME = 0x2A29
MODEL_NUMBER = 0x2A24
SERIAL_NUMBER = 0x2A25
FIRMWARE_REVISION = 0x2A26
BATTERY_SERVICE = 0x180F
BATTERY_LEVEL = 0x2A19

_UUID_SUFFIX = "-41a6-4357-aae4-276bb3e09524"
SCREENING_SERVICE = "1a980001" + _UUID_SUFFIX
EVENTS_CHAR = "1a980002" + _UUID_SUFFIX  # notify
LIVE_FRAMES_CHAR = "1a980003" + _UUID_SUFFIX  # notify
CONTROL_POINT_CHAR = "1a980004" + _UUID_SUFFIX  # write + notify responses
CONFIGURATION_CHAR = "1a980005" + _UUID_SUFFIX  # read

VERSION = 1
_INF = float("inf")
_NAN = float("nan")


# --- errors --------------------------------------------------------------------
class ProtocolError(ValueError):
    """Malformed or invalid wire data (or a value that cannot be encoded)."""


class ShortRecord(ProtocolError):
    """Fewer bytes than the record needs."""


class LongRecord(ProtocolError):
    """More bytes than the record holds."""


class UnknownVersion(ProtocolError):
    """Version byte this code does not know."""


class OutOfRange(ProtocolError):
    """A field (or encoder argument) outside its valid range."""


class UnknownOpcode(ProtocolError):
    """Control-point opcode (or response code) this code does not know."""


class _Record:
    """Plain value class: equality and repr over the names in _FIELDS."""

    _FIELDS = ()  # type: tuple[str, ...]

    def _key(self):
        return tuple(getattr(self, f) for f in self._FIELDS)

    def __eq__(self, other):
        return type(other) is type(self) and self._key() == other._key()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % (f, getattr(self, f)) for f in self._FIELDS))


def _check_len(b, what, size):
    n = len(b)
    if n < size:
        raise ShortRecord("%s: expected %d bytes, got %d" % (what, size, n))
    if n > size:
        raise LongRecord("%s: expected %d bytes, got %d" % (what, size, n))


def _check_version(b, what, expect):
    if len(b) == 0:
        raise ShortRecord("%s: expected %s bytes, got 0" % (what, expect))
    if b[0] != VERSION:
        raise UnknownVersion("%s: unknown version %d (expected %d)" % (what, b[0], VERSION))


def _check_room(buf, offset, size, what):
    # Encoders write into caller buffers; say plainly when one is too small.
    if offset < 0 or len(buf) - offset < size:
        raise ValueError("%s: buffer too small (need %d bytes at offset %d, have %d)" % (what, size, offset, len(buf)))


def _int_in(what, field, value, lo, hi):
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise OutOfRange("%s: %s must be an integer in %d..%d, got %r" % (what, field, lo, hi, value))
    return value


def _scaled(what, field, value, scale, lo, hi):
    """round(value * scale), range-checked as the integer that goes on the wire
    (so the encoder and the decoder agree exactly on the limits)."""
    if not _is_number(value) or value in (_INF, -_INF):
        raise OutOfRange("%s: %s must be a finite number, got %r" % (what, field, value))
    c = round(value * scale)
    if not lo <= c <= hi:
        raise OutOfRange("%s: %s %r outside %r..%r" % (what, field, value, lo / scale, hi / scale))
    return c


def _centi(what, field, value, lo, hi):
    return _scaled(what, field, value, 100, lo, hi)


# --- IEEE-11073 32-bit FLOAT ------------------------------------------------------
FLOAT_NAN = 0x007FFFFF
FLOAT_NRES = 0x00800000
FLOAT_PINF = 0x007FFFFE
FLOAT_NINF = 0x00800002
FLOAT_RESERVED = 0x00800001
FLOAT_MANTISSA_MAX = 8388605  # 2**23 - 3; the values above it are specials


def float_word(value, decimals=2):
    """The FLOAT as a u32 (for pack_into); see encode_float."""
    if value != value:
        return FLOAT_NAN
    if value == _INF:
        return FLOAT_PINF
    if value == -_INF:
        return FLOAT_NINF
    if not _is_number(value):
        raise OutOfRange("FLOAT: %r is not a number" % (value,))
    _int_in("FLOAT", "decimals", decimals, -127, 128)  # exponent is -decimals
    if value == 0:
        return 0
    exp = -decimals
    while True:
        # Recompute from the value at each precision (no double rounding).
        s = value / 10.0**exp if exp > 0 else value * 10.0**-exp
        if abs(s) < FLOAT_MANTISSA_MAX + 0.5:
            m = round(s)
            break
        exp += 1
        if exp > 127:
            raise OutOfRange("FLOAT: %r too large to encode" % (value,))
    if m == 0:
        return 0
    while m % 10 == 0 and exp < 127:  # 37.20 -> 372e-1: shortest exact form
        m //= 10
        exp += 1
    return ((exp & 0xFF) << 24) | (m & 0xFFFFFF)


def encode_float(value, decimals=2):
    """Round value to `decimals` places and encode as a 4-byte FLOAT."""
    return struct.pack("<I", float_word(value, decimals))


def float_from_word(word):
    """The value of a FLOAT given as a u32; NaN, NRes and reserved -> nan."""
    raw = word & 0xFFFFFF
    if FLOAT_PINF <= raw <= FLOAT_NINF:  # the five specials are contiguous
        return _INF if raw == FLOAT_PINF else -_INF if raw == FLOAT_NINF else _NAN
    m = raw - 0x1000000 if raw & 0x800000 else raw
    if m == 0:
        return 0.0
    exp = (word >> 24) & 0xFF
    if exp >= 128:
        exp -= 256
    # Divide by an exact power of ten so 372e-1 gives the float nearest 37.2.
    return m * 10.0**exp if exp >= 0 else m / 10.0**-exp


def decode_float(b):
    _check_len(b, "FLOAT", 4)
    return float_from_word(struct.unpack_from("<I", b, 0)[0])


# --- Temperature Measurement (0x2A1C / 0x2A1E) -----------------------------------------
TM_FAHRENHEIT = 0x01
TM_TIMESTAMP = 0x02
TM_TYPE = 0x04
TEMPERATURE_TYPE_BODY = 2
_DATE_LIMITS = (
    ("year", 1582, 9999),
    ("month", 1, 12),
    ("day", 1, 31),
    ("hours", 0, 23),
    ("minutes", 0, 59),
    ("seconds", 0, 59),
)


class TemperatureMeasurement(_Record):
    _FIELDS = ("value", "fahrenheit", "timestamp", "temperature_type")

    def __init__(self, value, fahrenheit=False, timestamp=None, temperature_type=None):
        self.value = value
        self.fahrenheit = fahrenheit
        self.timestamp = timestamp
        self.temperature_type = temperature_type


def _check_date(what, ts):
    for i in range(6):
        name, lo, hi = _DATE_LIMITS[i]
        v = ts[i]
        if i < 3 and v == 0:  # year, month, day: 0 = unknown (GATT Date Time)
            continue
        if not isinstance(v, int) or not lo <= v <= hi:
            raise OutOfRange("%s: %s %r outside %d..%d" % (what, name, v, lo, hi))


def encode_temperature_measurement(value, fahrenheit=False, timestamp=None, temperature_type=None, decimals=2):
    what = "temperature measurement"
    flags = TM_FAHRENHEIT if fahrenheit else 0
    out = bytearray([0])
    out += encode_float(value, decimals)
    if timestamp is not None:
        if len(timestamp) != 6:
            raise OutOfRange("%s: timestamp must have 6 fields, got %d" % (what, len(timestamp)))
        _check_date(what, timestamp)
        flags |= TM_TIMESTAMP
        out += struct.pack("<HBBBBB", *timestamp)
    if temperature_type is not None:
        flags |= TM_TYPE
        out.append(_int_in(what, "temperature type", temperature_type, 1, 9))
    out[0] = flags
    return bytes(out)


def decode_temperature_measurement(b):
    what = "temperature measurement"
    if len(b) == 0:
        raise ShortRecord("%s: expected at least 5 bytes, got 0" % what)
    flags = b[0]
    if flags & ~(TM_FAHRENHEIT | TM_TIMESTAMP | TM_TYPE):
        raise OutOfRange("%s: reserved flag bits set (flags 0x%02x)" % (what, flags))
    size = 5 + (7 if flags & TM_TIMESTAMP else 0) + (1 if flags & TM_TYPE else 0)
    _check_len(b, "%s (flags 0x%02x)" % (what, flags), size)
    value = float_from_word(struct.unpack_from("<I", b, 1)[0])
    ts = None
    if flags & TM_TIMESTAMP:
        ts = struct.unpack_from("<HBBBBB", b, 5)
        _check_date(what, ts)
    ttype = None
    if flags & TM_TYPE:
        ttype = b[size - 1]
        if not 1 <= ttype <= 9:
            raise OutOfRange("%s: temperature type %d outside 1..9" % (what, ttype))
    return TemperatureMeasurement(value, bool(flags & TM_FAHRENHEIT), ts, ttype)


# --- screening event record ---------------------------------------------------------
EVENT_SIZE = 20
_EVENT = "<BBIIhBhBBHB"

EVENT_SCREENING = 1
EVENT_FAULT = 2
EVENT_BOOT = 3

FAULT_SENSOR_BUS = 1
FAULT_SENSOR_DATA = 2
FAULT_SENSOR_REINIT = 3
FAULT_WATCHDOG_RESET = 4
FAULT_JOURNAL_OVERFLOW = 5

FLAG_TIME_VALID = 0x01
FLAG_DISTANCE_TOF = 0x02  # distance from the time-of-flight sensor, not head size
FLAG_CALIBRATED = 0x04  # device calibration applied
FLAG_SKIN_OCCLUDED = 0x08  # mask/glasses/hat reduced visible skin
FLAG_ALARM_SILENCED = 0x10
EVENT_FLAGS_MASK = 0x1F

TEMP_NA = -32768  # i16 "not available"
TEMP_MIN_CENTI = -5000
TEMP_MAX_CENTI = 15000
U_SATURATED = 255  # uncertainty >= 5.10 degC
DISTANCE_UNKNOWN = 0
DISTANCE_BEYOND = 255  # beyond 12.70 m


class ScreeningEvent(_Record):
    _FIELDS = (
        "seq",
        "time",
        "kind",
        "outcome",
        "core_c",
        "core_u_c",
        "skin_c",
        "skin_u_c",
        "distance_m",
        "track_id",
        "flags",
    )

    def __init__(
        self,
        seq=0,
        time=0,
        kind=EVENT_SCREENING,
        outcome=0,
        core_c=None,
        core_u_c=_INF,
        skin_c=None,
        skin_u_c=_INF,
        distance_m=None,
        track_id=0,
        flags=0,
    ):
        self.seq = seq
        self.time = time
        self.kind = kind
        self.outcome = outcome
        self.core_c = core_c  # degC or None
        self.core_u_c = core_u_c  # expanded uncertainty, degC (inf = unknown/>=5.10)
        self.skin_c = skin_c
        self.skin_u_c = skin_u_c
        self.distance_m = distance_m  # metres, None = unknown, inf = beyond 12.70 m
        self.track_id = track_id
        self.flags = flags


def _check_kind(what, kind, outcome, core_na, skin_na):
    if kind == EVENT_SCREENING:
        if not CLEAR <= outcome <= FEVER:  # RECHECK is 1, between them
            raise OutOfRange("%s: screening outcome %r outside 0..2" % (what, outcome))
        return
    if kind == EVENT_FAULT:
        if not FAULT_SENSOR_BUS <= outcome <= FAULT_JOURNAL_OVERFLOW:
            raise OutOfRange("%s: fault code %r outside 1..5" % (what, outcome))
    elif kind == EVENT_BOOT:
        if outcome != 0:
            raise OutOfRange("%s: boot event outcome must be 0, got %r" % (what, outcome))
    else:
        raise OutOfRange("%s: unknown kind %r" % (what, kind))
    if not (core_na and skin_na):
        raise OutOfRange("%s: kind %d carries no temperatures" % (what, kind))


def _temp_code(what, field, t):
    if t is None:
        return TEMP_NA
    return _centi(what, field, t, TEMP_MIN_CENTI, TEMP_MAX_CENTI)


def _is_number(x):
    return isinstance(x, (int, float)) and x == x  # NaN is not a number here


def _u_code(what, field, u):
    if not _is_number(u) or u < 0:
        raise OutOfRange("%s: %s must be >= 0, got %r" % (what, field, u))
    if u == _INF:
        return U_SATURATED
    # Round UP (never understate); the 1e-3 step slack absorbs float error so
    # that 0.10 stays 5 steps instead of becoming 6.
    steps = math.ceil(u * 50 - 1e-3)
    return U_SATURATED if steps >= U_SATURATED else max(steps, 0)


def _distance_code(what, d):
    if d is None:
        return DISTANCE_UNKNOWN
    if not _is_number(d) or d < 0:
        raise OutOfRange("%s: distance must be >= 0 or None, got %r" % (what, d))
    if d == _INF:
        return DISTANCE_BEYOND
    steps = round(d * 20)
    if steps > 254:
        return DISTANCE_BEYOND
    return max(steps, 1)  # a known distance never reads as "unknown"


def encode_event_into(buf, offset, ev):
    """Pack `ev` into buf[offset:offset + 20]; returns 20."""
    what = "event record"
    _check_room(buf, offset, EVENT_SIZE, what)
    _int_in(what, "kind", ev.kind, 0, 15)
    _int_in(what, "outcome", ev.outcome, 0, 15)
    _check_kind(what, ev.kind, ev.outcome, ev.core_c is None, ev.skin_c is None)
    _int_in(what, "seq", ev.seq, 0, 0xFFFFFFFF)
    _int_in(what, "time", ev.time, 0, 0xFFFFFFFF)
    _int_in(what, "track id", ev.track_id, 0, 0xFFFF)
    _int_in(what, "flags", ev.flags, 0, EVENT_FLAGS_MASK)
    struct.pack_into(
        _EVENT,
        buf,
        offset,
        VERSION,
        (ev.kind << 4) | ev.outcome,
        ev.seq,
        ev.time,
        _temp_code(what, "core", ev.core_c),
        _u_code(what, "core uncertainty", ev.core_u_c),
        _temp_code(what, "skin", ev.skin_c),
        _u_code(what, "skin uncertainty", ev.skin_u_c),
        _distance_code(what, ev.distance_m),
        ev.track_id,
        ev.flags,
    )
    return EVENT_SIZE


def encode_event(ev):
    buf = bytearray(EVENT_SIZE)
    encode_event_into(buf, 0, ev)
    return bytes(buf)


def _temp_value(what, field, c):
    if c == TEMP_NA:
        return None
    if not TEMP_MIN_CENTI <= c <= TEMP_MAX_CENTI:
        raise OutOfRange("%s: %s %.2f degC outside -50.00..150.00" % (what, field, c / 100))
    return c / 100


def decode_event(b):
    what = "event record"
    _check_version(b, what, "20")
    _check_len(b, what, EVENT_SIZE)
    (_, ko, seq, time, core, core_u, skin, skin_u, dist, track, flags) = struct.unpack_from(_EVENT, b, 0)
    if flags & ~EVENT_FLAGS_MASK:
        raise OutOfRange("%s: reserved flag bits set (flags 0x%02x)" % (what, flags))
    kind, outcome = ko >> 4, ko & 0x0F
    _check_kind(what, kind, outcome, core == TEMP_NA, skin == TEMP_NA)
    return ScreeningEvent(
        seq,
        time,
        kind,
        outcome,
        _temp_value(what, "core", core),
        _INF if core_u == U_SATURATED else core_u / 50,
        _temp_value(what, "skin", skin),
        _INF if skin_u == U_SATURATED else skin_u / 50,
        None if dist == DISTANCE_UNKNOWN else (_INF if dist == DISTANCE_BEYOND else dist / 20),
        track,
        flags,
    )


# --- live frames -----------------------------------------------------------------
FRAME_HEADER_SIZE = 5
CHUNK_HEADER_SIZE = 5
CHUNK_MAX = 512  # ATT attribute value limit
PIXEL_NA = -32768


def frame_body_size(width, height):
    return FRAME_HEADER_SIZE + 2 * width * height


def encode_frame_body_into(buf, offset, width, height, ta_c, pixels_c):
    """Pack a frame body at buf[offset:]; returns the number of bytes written.
    NaN pixels become PIXEL_NA; others saturate at +-327.67 degC."""
    what = "frame body"
    _int_in(what, "width", width, 1, 255)
    _int_in(what, "height", height, 1, 255)
    n = width * height
    if len(pixels_c) != n:
        raise OutOfRange("%s: expected %d pixels for %dx%d, got %d" % (what, n, width, height, len(pixels_c)))
    size = FRAME_HEADER_SIZE + 2 * n
    _check_room(buf, offset, size, what)
    struct.pack_into("<BBBh", buf, offset, VERSION, width, height, _centi(what, "ambient", ta_c, -32767, 32767))
    o = offset + FRAME_HEADER_SIZE
    for p in pixels_c:
        if p != p:
            c = PIXEL_NA
        elif p >= 327.67:
            c = 32767
        elif p <= -327.67:
            c = -32767
        else:
            c = round(p * 100)
        struct.pack_into("<h", buf, o, c)
        o += 2
    return size


def encode_frame_body(width, height, ta_c, pixels_c):
    n = len(pixels_c)
    buf = bytearray(FRAME_HEADER_SIZE + 2 * n)
    encode_frame_body_into(buf, 0, width, height, ta_c, pixels_c)
    return bytes(buf)


def decode_frame_body(b):
    """-> (width, height, ta_c float, pixels array('h') centi-degC)."""
    what = "frame body"
    _check_version(b, what, "at least 5")
    if len(b) < FRAME_HEADER_SIZE:
        raise ShortRecord("%s: expected at least %d bytes, got %d" % (what, FRAME_HEADER_SIZE, len(b)))
    _, w, h, ta = struct.unpack_from("<BBBh", b, 0)
    if w == 0 or h == 0:
        raise OutOfRange("%s: empty frame %dx%d" % (what, w, h))
    _check_len(b, "%s %dx%d" % (what, w, h), frame_body_size(w, h))
    return w, h, ta / 100, array("h", struct.unpack_from("<%dh" % (w * h), b, FRAME_HEADER_SIZE))


def chunk_payload_size(mtu):
    """Payload bytes per chunk at this ATT MTU (23..517)."""
    _int_in("chunk", "mtu", mtu, 23, 517)
    return min(mtu - 3, CHUNK_MAX) - CHUNK_HEADER_SIZE


def encode_chunk_into(buf, offset, frame_id, index, count, payload):
    """Pack one chunk at buf[offset:]; returns the number of bytes written.
    Allocation-free for small ints and a bytes/memoryview payload."""
    what = "frame chunk"
    _int_in(what, "frame id", frame_id, 0, 0xFFFF)
    _int_in(what, "count", count, 1, 255)
    _int_in(what, "index", index, 0, count - 1)
    n = len(payload)
    if not 1 <= n <= CHUNK_MAX - CHUNK_HEADER_SIZE:
        raise OutOfRange("%s: payload of %d bytes outside 1..%d" % (what, n, CHUNK_MAX - CHUNK_HEADER_SIZE))
    _check_room(buf, offset, CHUNK_HEADER_SIZE + n, what)
    struct.pack_into("<BHBB", buf, offset, VERSION, frame_id, index, count)
    o = offset + CHUNK_HEADER_SIZE
    buf[o : o + n] = payload
    return CHUNK_HEADER_SIZE + n


def frame_chunks(body, frame_id, mtu):
    """A generator of the chunks (bytes) that carry `body` at this MTU.
    Arguments are checked at once, not on first iteration."""
    size = chunk_payload_size(mtu)
    _int_in("frame chunk", "frame id", frame_id, 0, 0xFFFF)
    n = len(body)
    count = (n + size - 1) // size
    if not 1 <= count <= 255:
        raise OutOfRange("frame chunk: body of %d bytes needs %d chunks at mtu %d (allowed 1..255)" % (n, count, mtu))
    return _chunks(memoryview(body), frame_id, size, count)


def _chunks(mv, frame_id, size, count):
    for i in range(count):
        part = mv[i * size : (i + 1) * size]
        buf = bytearray(CHUNK_HEADER_SIZE + len(part))
        encode_chunk_into(buf, 0, frame_id, i, count, part)
        yield bytes(buf)


def decode_chunk(b):
    """-> (frame_id, index, count, payload bytes)."""
    what = "frame chunk"
    _check_version(b, what, "at least 6")
    n = len(b)
    if n < CHUNK_HEADER_SIZE + 1:
        raise ShortRecord("%s: expected at least %d bytes, got %d" % (what, CHUNK_HEADER_SIZE + 1, n))
    if n > CHUNK_MAX:
        raise LongRecord("%s: expected at most %d bytes, got %d" % (what, CHUNK_MAX, n))
    _, frame_id, index, count = struct.unpack_from("<BHBB", b, 0)
    if count == 0 or index >= count:
        raise OutOfRange("%s: index %d with count %d (need index < count, count >= 1)" % (what, index, count))
    return frame_id, index, count, bytes(b[CHUNK_HEADER_SIZE:])


class FrameAssembler:
    """Reassembles in-order chunks into frame bodies.  Any gap, duplicate,
    reordering, count change, malformed chunk or new frame id abandons the
    frame in progress; the rest of an abandoned frame is ignored.  A body is
    returned only when chunks 0..count-1 all arrived in order."""

    def __init__(self):
        self.frames_completed = 0
        self.frames_dropped = 0
        self.chunks_rejected = 0
        self.reset()

    def reset(self):
        """Forget any frame in progress (e.g. on disconnect) without counting it."""
        self._parts = None  # payloads of the frame in progress, or None
        self._id = None
        self._count = 0
        self._skip = None  # id of a frame already finished or abandoned

    def _abandon(self):
        if self._parts is not None:
            self.frames_dropped += 1
            self._skip = self._id
            self._parts = None

    def feed(self, chunk):
        try:
            fid, index, count, payload = decode_chunk(chunk)
        except ProtocolError:
            self.chunks_rejected += 1
            self._abandon()
            return None
        if self._parts is not None and (fid != self._id or index != len(self._parts) or count != self._count):
            self._abandon()
        if fid == self._skip:
            return None
        if self._parts is None:
            if index != 0:  # joined mid-frame: that frame is lost
                self.frames_dropped += 1
                self._skip = fid
                return None
            self._id, self._count, self._parts, self._skip = fid, count, [], None
        self._parts.append(payload)
        if len(self._parts) < count:
            return None
        body = b"".join(self._parts)
        self._parts = None
        self._skip = fid
        self.frames_completed += 1
        return body


# --- device configuration record -------------------------------------------------------
CONFIG_SIZE = 13
_CONFIG = "<BhhHBBHBB"
CONFIG_FLAG_BUZZER = 0x01
FRAME_RATES = (1, 2, 4, 8, 16)


class DeviceConfig(_Record):
    _FIELDS = (
        "threshold_c",
        "skin_to_core_offset_c",
        "hysteresis_c",
        "confirm_frames",
        "coverage_k",
        "emissivity",
        "frame_rate_hz",
        "buzzer",
    )

    def __init__(
        self,
        threshold_c=DEFAULT_THRESHOLD_C,
        skin_to_core_offset_c=DEFAULT_SKIN_TO_CORE_OFFSET_C,
        hysteresis_c=DEFAULT_HYSTERESIS_C,
        confirm_frames=3,
        coverage_k=DEFAULT_COVERAGE_K,
        emissivity=SKIN_EMISSIVITY,
        frame_rate_hz=8,
        buzzer=True,
    ):
        self.threshold_c = threshold_c
        self.skin_to_core_offset_c = skin_to_core_offset_c
        self.hysteresis_c = hysteresis_c
        self.confirm_frames = confirm_frames
        self.coverage_k = coverage_k
        self.emissivity = emissivity
        self.frame_rate_hz = frame_rate_hz
        self.buzzer = buzzer

    def _codes(self):
        """The wire integers, each rounded to nearest and range-checked."""
        what = "config record"
        if self.frame_rate_hz not in FRAME_RATES:
            raise OutOfRange("%s: frame rate %r not one of 1, 2, 4, 8, 16" % (what, self.frame_rate_hz))
        return (
            _centi(what, "threshold", self.threshold_c, 3500, 4000),
            _centi(what, "skin-to-core offset", self.skin_to_core_offset_c, -100, 500),
            _centi(what, "hysteresis", self.hysteresis_c, 0, 100),
            _int_in(what, "confirm frames", self.confirm_frames, 1, 30),
            _scaled(what, "coverage k", self.coverage_k, 10, 10, 40),
            _scaled(what, "emissivity", self.emissivity, 10000, 9000, 10000),
            self.frame_rate_hz,
            CONFIG_FLAG_BUZZER if self.buzzer else 0,
        )

    def validate(self):
        self._codes()
        return self


def encode_config(cfg):
    return struct.pack(_CONFIG, VERSION, *cfg._codes())


def decode_config(b):
    what = "config record"
    _check_version(b, what, "13")
    _check_len(b, what, CONFIG_SIZE)
    _, thr, off, hyst, confirm, k, emis, rate, flags = struct.unpack_from(_CONFIG, b, 0)
    if flags & ~CONFIG_FLAG_BUZZER:
        raise OutOfRange("%s: reserved flag bits set (flags 0x%02x)" % (what, flags))
    cfg = DeviceConfig(
        thr / 100, off / 100, hyst / 100, confirm, k / 10, emis / 10000, rate, bool(flags & CONFIG_FLAG_BUZZER)
    )
    cfg.validate()  # same ranges as the encoder
    return cfg


# --- control point ------------------------------------------------------------------
OP_ACK = 0x01
OP_REPLAY = 0x02
OP_SET_TIME = 0x03
OP_SET_CONFIG = 0x04
OP_LIVE_START = 0x05
OP_LIVE_STOP = 0x06
OP_SILENCE = 0x07
OP_RESPONSE = 0x80
_U32_OPS = (OP_ACK, OP_REPLAY, OP_SET_TIME)
_BARE_OPS = (OP_LIVE_START, OP_LIVE_STOP, OP_SILENCE)

RESULT_SUCCESS = 1
RESULT_NOT_SUPPORTED = 2
RESULT_INVALID_PARAMETER = 3
RESULT_INVALID_LENGTH = 4
RESULT_NOT_AUTHORIZED = 5
RESULT_FAILED = 6
RESULT_BUSY = 7
RESULT_NAMES = {
    RESULT_SUCCESS: "SUCCESS",
    RESULT_NOT_SUPPORTED: "NOT_SUPPORTED",
    RESULT_INVALID_PARAMETER: "INVALID_PARAMETER",
    RESULT_INVALID_LENGTH: "INVALID_LENGTH",
    RESULT_NOT_AUTHORIZED: "NOT_AUTHORIZED",
    RESULT_FAILED: "FAILED",
    RESULT_BUSY: "BUSY",
}
RESPONSE_SIZE = 8
_RESPONSE = "<BBBBI"


def encode_command(opcode, arg=None):
    what = "control command"
    if opcode in _U32_OPS:
        return struct.pack("<BBI", VERSION, opcode, _int_in(what, "argument", arg, 0, 0xFFFFFFFF))
    if opcode == OP_SET_CONFIG:
        if not isinstance(arg, DeviceConfig):
            raise OutOfRange("%s: OP_SET_CONFIG needs a DeviceConfig, got %r" % (what, arg))
        return bytes([VERSION, opcode]) + encode_config(arg)
    if opcode in _BARE_OPS:
        if arg is not None:
            raise OutOfRange("%s: opcode 0x%02x takes no argument, got %r" % (what, opcode, arg))
        return bytes([VERSION, opcode])
    raise UnknownOpcode("%s: unknown opcode %r" % (what, opcode))


def command_opcode(b):
    """The opcode byte of a (possibly malformed) request, 0 if absent: lets the
    firmware answer a write it could not decode."""
    return b[1] if len(b) >= 2 else 0


def decode_command(b):
    """-> (opcode, arg): arg is an int, a DeviceConfig or None."""
    what = "control command"
    _check_version(b, what, "at least 2")
    if len(b) < 2:
        raise ShortRecord("%s: expected at least 2 bytes, got %d" % (what, len(b)))
    op = b[1]
    if op in _U32_OPS:
        _check_len(b, "%s 0x%02x" % (what, op), 6)
        return op, struct.unpack_from("<I", b, 2)[0]
    if op == OP_SET_CONFIG:
        _check_len(b, "%s 0x%02x" % (what, op), 2 + CONFIG_SIZE)
        return op, decode_config(memoryview(b)[2:])
    if op in _BARE_OPS:
        _check_len(b, "%s 0x%02x" % (what, op), 2)
        return op, None
    raise UnknownOpcode("%s: unknown opcode 0x%02x" % (what, op))


def encode_response_into(buf, offset, opcode, result, value=0):
    """Pack a response at buf[offset:]; returns 8.  Allocation-free for
    small ints.  `opcode` may be any byte (echoes unknown requests too)."""
    what = "control response"
    _check_room(buf, offset, RESPONSE_SIZE, what)
    _int_in(what, "opcode", opcode, 0, 255)
    _int_in(what, "result", result, RESULT_SUCCESS, RESULT_BUSY)
    _int_in(what, "value", value, 0, 0xFFFFFFFF)
    struct.pack_into(_RESPONSE, buf, offset, VERSION, OP_RESPONSE, opcode, result, value)
    return RESPONSE_SIZE


def encode_response(opcode, result, value=0):
    buf = bytearray(RESPONSE_SIZE)
    encode_response_into(buf, 0, opcode, result, value)
    return bytes(buf)


def decode_response(b):
    """-> (request opcode, result, value)."""
    what = "control response"
    _check_version(b, what, "8")
    if len(b) >= 2 and b[1] != OP_RESPONSE:
        raise UnknownOpcode("%s: expected response code 0x80, got 0x%02x" % (what, b[1]))
    _check_len(b, what, RESPONSE_SIZE)
    _, _, op, result, value = struct.unpack_from(_RESPONSE, b, 0)
    if result not in RESULT_NAMES:
        raise OutOfRange("%s: result %d outside 1..7" % (what, result))
    return op, result, value


def result_for_error(exc):
    """Result code answering a request whose decoding raised `exc`."""
    if isinstance(exc, (ShortRecord, LongRecord)):
        return RESULT_INVALID_LENGTH
    if isinstance(exc, (UnknownOpcode, UnknownVersion)):
        return RESULT_NOT_SUPPORTED
    if isinstance(exc, ProtocolError):
        return RESULT_INVALID_PARAMETER
    return RESULT_FAILED
