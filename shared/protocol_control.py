"""Control point: the app's commands and the helmet's responses (radio and
app only).

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
"""

import struct

from protocol import (
    CONFIG_SIZE,
    VERSION,
    DeviceConfig,
    LongRecord,
    OutOfRange,
    ProtocolError,
    ShortRecord,
    UnknownOpcode,
    UnknownVersion,
    _check_len,
    _check_room,
    _check_version,
    _int_in,
    decode_config,
    encode_config,
)

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
