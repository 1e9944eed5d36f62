"""Advertising payload (AD structures, as MicroPython's gap_advertise takes
them) -> the properties of a BlueZ LEAdvertisement1 object."""

import struct

from .wire import normalize_uuid

_AD_NAME_SHORT, _AD_NAME_COMPLETE = 0x08, 0x09
_AD_UUID16 = (0x02, 0x03)
_AD_UUID32 = (0x04, 0x05)
_AD_UUID128 = (0x06, 0x07)
_AD_APPEARANCE = 0x19


def _uuid128(le):
    h = bytes(reversed(le)).hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def parse(*payloads):
    """-> dict(local_name, service_uuids, appearance); malformed tails are ignored
    (a radio would ignore them too)."""
    name, uuids, appearance = None, [], None
    for payload in payloads:
        b = bytes(payload or b"")
        i = 0
        while i + 1 < len(b):
            n = b[i]
            if n == 0 or i + 1 + n > len(b):
                break
            kind, body = b[i + 1], b[i + 2 : i + 1 + n]
            if kind in (_AD_NAME_SHORT, _AD_NAME_COMPLETE):
                name = body.decode("utf-8", "replace")
            elif kind in _AD_UUID16:
                uuids += [normalize_uuid("%04x" % u) for (u,) in struct.iter_unpack("<H", body[: len(body) // 2 * 2])]
            elif kind in _AD_UUID32:
                uuids += [normalize_uuid("%08x" % u) for (u,) in struct.iter_unpack("<I", body[: len(body) // 4 * 4])]
            elif kind in _AD_UUID128:
                uuids += [_uuid128(body[j : j + 16]) for j in range(0, len(body) // 16 * 16, 16)]
            elif kind == _AD_APPEARANCE and len(body) == 2:
                appearance = struct.unpack("<H", body)[0]
            i += 1 + n
    return {"local_name": name, "service_uuids": uuids, "appearance": appearance}
