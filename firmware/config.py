"""Device configuration persisted on the helmet's flash.

The values and their validation are protocol.DeviceConfig's (threshold,
skin-to-core offset, hysteresis, confirmation frames, coverage k, emissivity,
frame rate, buzzer).  On flash the file holds b"HCF1", then the 13-byte
configuration record (protocol.encode_config) and its CRC-32 (u32 LE), so a
torn write or a flipped bit is detected.  Saving writes a temporary file and
renames it over the old one (atomic on littlefs), so power loss leaves the
old or the new file, never half of one.

load() never raises for a bad file: a missing or corrupt file gives the
defaults and a reason (a string) the caller reports; None means loaded.
"""

import binascii
import os
import struct

import protocol

PATH = "helmet.cfg"
MAGIC = b"HCF1"
SIZE = 4 + protocol.CONFIG_SIZE + 4


def encode(cfg):
    """File bytes for cfg (validated; OutOfRange for bad values)."""
    rec = protocol.encode_config(cfg)
    return MAGIC + rec + struct.pack("<I", binascii.crc32(rec) & 0xFFFFFFFF)


def decode(data):
    """DeviceConfig from file bytes; ValueError naming what is wrong."""
    if len(data) != SIZE:
        raise ValueError("size %d, expected %d" % (len(data), SIZE))
    if data[:4] != MAGIC:
        raise ValueError("bad magic")
    rec = data[4 : 4 + protocol.CONFIG_SIZE]
    (crc,) = struct.unpack("<I", data[4 + protocol.CONFIG_SIZE :])
    if binascii.crc32(rec) & 0xFFFFFFFF != crc:
        raise ValueError("checksum mismatch")
    return protocol.decode_config(rec)  # ProtocolError is a ValueError


def load(path=PATH):
    """(DeviceConfig, reason): reason is None when the file was read, else
    why the defaults are used ("missing", "corrupt: ...")."""
    try:
        with open(path, "rb") as f:
            data = f.read(SIZE + 1)
    except OSError:
        return protocol.DeviceConfig(), "missing"
    try:
        return decode(data), None
    except ValueError as exc:
        return protocol.DeviceConfig(), "corrupt: %s" % exc


def save(cfg, path=PATH):
    """Validate and persist cfg atomically (write a temporary, then rename)."""
    data = encode(cfg)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    try:
        os.remove(path)  # FAT's rename does not replace an existing file
    except OSError:
        pass
    os.rename(tmp, path)
