"""Retried transfers to I2C parts with 16-bit register addresses.

The MLX90640 and the VL53L1X share the helmet's bus and the same framing
(16-bit register address, then data).  A glitch on a helmet's long cable is
common and brief, so a transfer is retried with short pauses before the
driver gives up with its own error, naming what the bus said.
"""

import time

ENODEV = 19  # errno of a NACK on MicroPython's machine.I2C
ETIMEDOUT = 110


def transfer(i2c, address, write, reg, buf, retries):
    """Write ``buf`` to register ``reg`` (or read into it), retried with 1, 2,
    4, ... ms pauses.  Returns None, or why the last attempt failed."""
    code = None
    for attempt in range(retries + 1):
        try:
            if write:
                i2c.writeto_mem(address, reg, buf, addrsize=16)
            else:
                i2c.readfrom_mem_into(address, reg, buf, addrsize=16)
            return None
        except OSError as e:
            code = e.args[0] if e.args else None
            time.sleep_ms(1 << attempt)  # let the bus settle
    if code == ENODEV:
        return "NACK (sensor absent or not answering)"
    if code == ETIMEDOUT:
        return "bus timeout (SCL held low?)"
    return "error %r" % (code,)
