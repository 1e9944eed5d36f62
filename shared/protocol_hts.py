"""Health Thermometer formats: the IEEE-11073 32-bit FLOAT and the
Temperature Measurement characteristic (radio and app only).

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
"""

import struct

from protocol import _INF, OutOfRange, ShortRecord, _check_len, _int_in, _is_number, _Record

_NAN = float("nan")


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
