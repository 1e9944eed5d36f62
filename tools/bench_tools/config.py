"""Read and write the helmet's configuration (firmware/config.py on flash,
protocol.DeviceConfig's 13-byte record, validated on both sides)."""

import binascii

import protocol
from bench_tools import mpr

FIELDS = protocol.DeviceConfig._FIELDS


def read(port):
    """(DeviceConfig, reason): reason None = read from flash, else why the
    helmet uses defaults ("missing", "corrupt: ...")."""
    ans = mpr.exec_json(port, "import bench\nbench.read_config()")
    return protocol.decode_config(binascii.unhexlify(ans["record"])), ans["reason"]


def write(port, **changes):
    """Change some fields (validated here first: OutOfRange names the bad one),
    store, and return what the helmet reads back."""
    cfg, _ = read(port)
    for k, v in changes.items():
        if k not in FIELDS:
            raise ValueError("unknown configuration field %r (fields: %s)" % (k, ", ".join(FIELDS)))
        setattr(cfg, k, v)
    rec = binascii.hexlify(protocol.encode_config(cfg)).decode()
    ans = mpr.exec_json(port, "import bench\nbench.write_config(%r)" % rec)
    back = protocol.decode_config(binascii.unhexlify(ans["record"]))
    if ans["reason"] is not None or protocol.encode_config(back) != protocol.encode_config(cfg):
        raise mpr.DeviceError("the helmet did not keep the configuration: %s" % ans)
    return back


def as_dict(cfg):
    return {k: getattr(cfg, k) for k in FIELDS}


def parse_value(field, text):
    """A command-line value for ``field`` in its Python type."""
    current = getattr(protocol.DeviceConfig(), field)
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0", "on", "off"):
            raise ValueError("%s must be true or false" % field)
        return text.lower() in ("true", "1", "on")
    return type(current)(text)
