"""The JSON-lines bridge protocol between the simulated `bluetooth` module
(MicroPython) and the host bridge: one JSON object per line, bytes as hex.

MicroPython -> host: register, advertise, notify, indicate, value, disconnect.
Host -> MicroPython: connect, disconnect, write, mtu, encryption, indicate_done.
"""

import json

# MicroPython bluetooth FLAG_* bits (docs of bluetooth.BLE.gatts_register_services).
FLAG_READ = 0x0002
FLAG_WRITE_NO_RESPONSE = 0x0004
FLAG_WRITE = 0x0008
FLAG_NOTIFY = 0x0010
FLAG_INDICATE = 0x0020
FLAG_READ_ENCRYPTED = 0x0200
FLAG_READ_AUTHENTICATED = 0x0400
FLAG_WRITE_ENCRYPTED = 0x1000
FLAG_WRITE_AUTHENTICATED = 0x2000

# MicroPython bit -> BlueZ GattCharacteristic1 "Flags" string.
_BLUEZ_FLAGS = (
    (FLAG_READ, "read"),
    (FLAG_WRITE_NO_RESPONSE, "write-without-response"),
    (FLAG_WRITE, "write"),
    (FLAG_NOTIFY, "notify"),
    (FLAG_INDICATE, "indicate"),
    (FLAG_READ_ENCRYPTED, "encrypt-read"),
    (FLAG_READ_AUTHENTICATED, "encrypt-authenticated-read"),
    (FLAG_WRITE_ENCRYPTED, "encrypt-write"),
    (FLAG_WRITE_AUTHENTICATED, "encrypt-authenticated-write"),
)

_BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"

HOST_MESSAGES = ("connect", "disconnect", "write", "mtu", "encryption", "indicate_done")
HELMET_MESSAGES = ("register", "advertise", "notify", "indicate", "value", "disconnect")


class BridgeProtocolError(ValueError):
    """A line from the helmet that is not a valid bridge message."""


def bluez_flags(mp_flags):
    return [name for bit, name in _BLUEZ_FLAGS if mp_flags & bit]


def normalize_uuid(text):
    """'0x2a1c' / '2A1C' / 32-bit / canonical 128-bit -> canonical lowercase 128-bit."""
    u = str(text).strip().lower()
    if u.startswith("0x"):
        u = u[2:]
    if len(u) in (4, 8) and all(c in "0123456789abcdef" for c in u):
        return u.zfill(8) + _BASE_UUID_TAIL
    parts = u.split("-")
    if [len(p) for p in parts] == [8, 4, 4, 4, 12] and all(c in "0123456789abcdef" for c in "".join(parts)):
        return u
    raise BridgeProtocolError("not a UUID: %r" % (text,))


def encode(msg):
    """dict -> one line (bytes); bytes values become hex."""
    out = {k: (v.hex() if isinstance(v, (bytes, bytearray, memoryview)) else v) for k, v in msg.items()}
    return (json.dumps(out, separators=(",", ":")) + "\n").encode()


def decode(line):
    """One line from the helmet -> dict with 'data'/'adv'/'resp' as bytes."""
    try:
        msg = json.loads(line)
    except ValueError as e:
        raise BridgeProtocolError("not JSON: %s" % e) from None
    if not isinstance(msg, dict) or msg.get("t") not in HELMET_MESSAGES:
        raise BridgeProtocolError("unknown message: %r" % (line[:80],))
    for key in ("data", "adv", "resp"):
        if msg.get(key) is not None:
            try:
                msg[key] = bytes.fromhex(msg[key])
            except (TypeError, ValueError):
                raise BridgeProtocolError("%s is not hex in %r" % (key, line[:80])) from None
    return msg
