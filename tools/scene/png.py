"""False-colour PNG of a frame, written with zlib only (no matplotlib)."""

import struct
import zlib

import numpy as np

# "iron" palette control points (position, r, g, b): cold black/blue to hot white
_IRON = np.array(
    [
        (0.00, 0, 0, 0),
        (0.15, 32, 0, 96),
        (0.35, 140, 0, 150),
        (0.55, 225, 60, 40),
        (0.75, 250, 160, 0),
        (0.90, 255, 230, 80),
        (1.00, 255, 255, 255),
    ],
    dtype=np.float64,
)


def colorize(img, lo=None, hi=None):
    """float (h, w) -> uint8 (h, w, 3) with the iron palette over [lo, hi]."""
    lo = float(np.min(img)) if lo is None else lo
    hi = float(np.max(img)) if hi is None else hi
    x = np.clip((img - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return np.stack([np.interp(x, _IRON[:, 0], _IRON[:, c]) for c in (1, 2, 3)], axis=-1).astype(np.uint8)


def upscale(rgb, factor):
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def draw_box(rgb, bbox, factor, color=(0, 255, 0)):
    """Outline a pixel-coordinate bbox (x0, y0, x1, y1) on an upscaled image."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (int(round(v * factor)) for v in bbox)
    x0, x1 = max(0, x0), min(w - 1, x1)
    y0, y1 = max(0, y0), min(h - 1, y1)
    if x0 >= x1 or y0 >= y1:
        return
    rgb[y0, x0 : x1 + 1] = rgb[y1, x0 : x1 + 1] = color
    rgb[y0 : y1 + 1, x0] = rgb[y0 : y1 + 1, x1] = color


def write_png(path, rgb):
    """8-bit RGB PNG: signature, IHDR, one IDAT, IEND."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))  # filter 0 per row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))
