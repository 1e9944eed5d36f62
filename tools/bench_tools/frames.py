"""Thermal frames as they cross the serial link (firmware/bench.py's
encoding): base64 of 768 little-endian int16 centi-degC, -32768 = no value."""

import base64

import numpy as np

WIDTH = 32
HEIGHT = 24
PIXEL_NA = -32768


def decode(text):
    """(24, 32) float degC, NaN where the device had no value."""
    raw = np.frombuffer(base64.b64decode(text), dtype="<i2")
    if raw.size != WIDTH * HEIGHT:
        raise ValueError("frame has %d pixels, expected %d" % (raw.size, WIDTH * HEIGHT))
    img = raw.astype(np.float64) / 100.0
    img[raw == PIXEL_NA] = np.nan
    return img.reshape(HEIGHT, WIDTH)
