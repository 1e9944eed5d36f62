"""Live bench view: frames streamed over the serial link (bench.frames) to
a terminal heat map and PNG snapshots (tools/scene/png.py's iron palette).

Raw frames leave the helmet only in this bench mode."""

import sys
from pathlib import Path

import numpy as np

from bench_tools import frames, mpr

# Coldest to hottest for terminals without colour.
_RAMP = " .:-=+*#%@"


def terminal_map(img, lo=None, hi=None, color=True):
    """The frame as text: two characters per pixel, 24-bit colour blocks
    (iron palette) or an ASCII ramp; NaN pixels show as '??'."""
    from scene.png import colorize

    lo = float(np.nanmin(img)) if lo is None else lo
    hi = float(np.nanmax(img)) if hi is None else hi
    rgb = colorize(np.nan_to_num(img, nan=lo), lo, hi)
    rows = []
    for y in range(img.shape[0]):
        cells = []
        for x in range(img.shape[1]):
            if not np.isfinite(img[y, x]):
                cells.append("??")
            elif color:
                r, g, b = rgb[y, x]
                cells.append("\x1b[48;2;%d;%d;%dm  " % (r, g, b))
            else:
                k = int((img[y, x] - lo) / max(hi - lo, 1e-9) * (len(_RAMP) - 1))
                cells.append(_RAMP[max(0, min(len(_RAMP) - 1, k))] * 2)
        rows.append("".join(cells) + ("\x1b[0m" if color else ""))
    return "\n".join(rows)


def snapshot(img, path, scale=10):
    from scene.png import colorize, upscale, write_png

    lo = float(np.nanmin(img))
    write_png(path, upscale(colorize(np.nan_to_num(img, nan=lo)), scale))


def run(port, count=0, rate_hz=4, png_dir=None, png_every=1, color=None, out=None, timeout=3600.0):
    """Stream ``count`` frames (0 = until Ctrl-C); returns the number shown
    and the PNG files written."""
    out = out or sys.stdout
    color = out.isatty() if color is None else color
    written, shown = [], 0
    if png_dir is not None:
        Path(png_dir).mkdir(parents=True, exist_ok=True)
    code = "import bench\nbench.frames(%d, %d)" % (count, rate_hz)
    if color:
        out.write("\x1b[2J")  # clear once; each frame then redraws from the top
    try:
        for line in mpr.stream(port, code, timeout=timeout):
            found = mpr.results(line)
            if not found:
                continue
            f = found[0]
            img = frames.decode(f["px"])
            if color:
                out.write("\x1b[H")  # redraw in place
            out.write(terminal_map(img, color=color) + "\n")
            out.write(
                "frame %d  Ta %.2f degC  min %.2f  max %.2f  degC\n" % (f["n"], f["ta"], np.nanmin(img), np.nanmax(img))
            )
            out.flush()
            if png_dir is not None and shown % png_every == 0:
                path = Path(png_dir) / ("frame-%05d.png" % f["n"])
                snapshot(img, path)
                written.append(str(path))
            shown += 1
    except KeyboardInterrupt:
        pass
    return shown, written
