"""Recordings for the MicroPython side (which has no numpy).

Binary layout, all little-endian:
    header:    magic b"HTRS", u16 version = 1, u16 width = 32, u16 height = 24,
               f32 rate_hz, u32 frame_count                       (18 bytes)
    per frame: f32 t_s, f32 ta_c, 768 x f32 object temperature, row-major,
               row 0 = top of the image                           (3080 bytes)
Ground truth goes to a sidecar JSON file, path + ".truth.json".
"""

import json
import struct
from dataclasses import dataclass

import numpy as np

from .optics import HEIGHT, WIDTH

MAGIC = b"HTRS"
VERSION = 1
HEADER = struct.Struct("<4sHHHfI")
FRAME_HEAD = struct.Struct("<ff")
TRUTH_FORMAT = "helmet-scene-truth/1"


@dataclass
class Recording:
    rate_hz: float
    t_s: np.ndarray  # float32 (n,)
    ta_c: np.ndarray  # float32 (n,)
    object_c: np.ndarray  # float32 (n, 24, 32)


def frame_times(rate_hz, duration_s):
    n = int(np.floor(duration_s * rate_hz + 1e-9))
    return [k / rate_hz for k in range(n)]


def write_recording(scene, path, rate_hz, duration_s, subpage_rate_hz=None, noise=True, chess=False):
    """Render frames at t = k / rate_hz for k < duration_s * rate_hz.

    The noise corresponds to subpage_rate_hz (default: rate_hz, i.e. each
    recorded frame is one subpage read); chess: see Scene.render.
    Returns the number of frames."""
    sub = rate_hz if subpage_rate_hz is None else subpage_rate_hz
    times = frame_times(rate_hz, duration_s)
    truth = {
        "format": TRUTH_FORMAT,
        "scenario": scene.scenario.name,
        "seed": scene.seed,
        "rate_hz": rate_hz,
        "subpage_rate_hz": sub,
        "chess": chess,
        "width": WIDTH,
        "height": HEIGHT,
        "frames": [],
    }
    with open(path, "wb") as f:
        f.write(HEADER.pack(MAGIC, VERSION, WIDTH, HEIGHT, rate_hz, len(times)))
        for t in times:
            frame = scene.render(t, subpage_rate_hz=sub, noise=noise, chess=chess)
            f.write(FRAME_HEAD.pack(t, frame.ta_c))
            f.write(frame.object_c.astype("<f4").tobytes())
            truth["frames"].append(frame.truth_dict())
    with open(path + ".truth.json", "w", encoding="utf-8") as f:
        json.dump(truth, f, indent=None, separators=(",", ":"))
    return len(times)


def read_recording(path):
    """Parse a recording written by write_recording (checks magic and sizes)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise ValueError("%s: too short for a header" % path)
    magic, version, width, height, rate_hz, n = HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise ValueError("%s: not an HTRS v1 recording (magic %r, version %d)" % (path, magic, version))
    frame_size = FRAME_HEAD.size + 4 * width * height
    if len(data) != HEADER.size + n * frame_size:
        raise ValueError("%s: %d bytes, expected %d for %d frames" % (path, len(data), HEADER.size + n * frame_size, n))
    rec = np.frombuffer(
        data, dtype=np.dtype([("t", "<f4"), ("ta", "<f4"), ("to", "<f4", (height, width))]), count=n, offset=HEADER.size
    )
    return Recording(rate_hz, rec["t"].astype(np.float32), rec["ta"].astype(np.float32), rec["to"].astype(np.float32))


def read_truth(path):
    with open(path + ".truth.json", encoding="utf-8") as f:
        return json.load(f)
