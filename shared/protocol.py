"""BLE wire formats shared by the helmet firmware and the companion app:
the records the helmet itself makes (screening event, device configuration,
live frame body) and the errors every decoder raises.

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

The radio's and the app's formats live in their own modules, so that the
helmet without the radio does not hold them in RAM:
  protocol_gatt     GATT service and characteristic UUIDs
  protocol_hts      IEEE-11073 FLOAT and the Health Thermometer measurement
  protocol_frames   live-view frame chunks and their reassembly
  protocol_control  control point commands and responses

Screening event record v1 (events characteristic, notify).  Exactly 20 bytes
so that one event fits one notification at the default ATT MTU of 23.
  off size field        units / meaning
  0   1    version      1
  1   1    kind<<4|out  kind: 1 screening, 2 fault, 3 boot; out: outcome
                        (CLEAR/RECHECK/FEVER), fault code (FAULT_*, 1..6;
                        decoders accept 7..15 from newer firmware), or 0
                        for boot
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
  Fault codes (FAULT_NAMES[code] names each for the officer):
    1 SENSOR_BUS        the thermal sensor does not answer on the bus
    2 SENSOR_DATA       the thermal sensor answers with implausible data
    3 SENSOR_REINIT     the thermal sensor was re-initialised
    4 WATCHDOG_RESET    the watchdog reset the helmet
    5 JOURNAL_OVERFLOW  the journal dropped events (count in track)
    6 DISTANCE_SENSOR   the optional distance (time-of-flight) sensor stopped
                        answering or reports a hardware failure; screening
                        goes on with head-size distance (once per episode)

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

VERSION = 1
_INF = float("inf")


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
FAULT_DISTANCE_SENSOR = 6
# What the app tells the officer, indexed by fault code (0 is not a fault).
# Short on purpose: the helmet imports this module too.
FAULT_NAMES = (
    "",
    "thermal sensor not answering",
    "thermal sensor gave bad data",
    "thermal sensor restarted",
    "helmet restarted by watchdog",
    "event log full, events lost",
    "distance sensor failed, using head size",
)

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


def _check_kind(what, kind, outcome, core_na, skin_na, decoding=False):
    if kind == EVENT_SCREENING:
        if not CLEAR <= outcome <= FEVER:  # RECHECK is 1, between them
            raise OutOfRange("%s: screening outcome %r outside 0..2" % (what, outcome))
        return
    if kind == EVENT_FAULT:
        # a decoder takes any code 1..15: a newer helmet's fault is still a
        # fault (kept, acknowledged, named "unknown"), not a malformed record
        # that would stall the event sequence; an encoder only known codes
        top = 15 if decoding else FAULT_DISTANCE_SENSOR
        if not FAULT_SENSOR_BUS <= outcome <= top:
            raise OutOfRange("%s: fault code %r outside 1..%d" % (what, outcome, top))
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
    _check_kind(what, kind, outcome, core == TEMP_NA, skin == TEMP_NA, decoding=True)
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


# --- live frame body -----------------------------------------------------------------
FRAME_HEADER_SIZE = 5
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
