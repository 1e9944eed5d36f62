"""Play a scene recording (tools/scene write_recording) into the firmware.

Runs on MicroPython (and CPython).  Format, little-endian: b"HTRS", u16
version 1, u16 width, u16 height, f32 rate_hz, u32 frame_count (18 bytes);
then per frame f32 t_s, f32 ta_c and width*height f32 object temperatures
(degC, row-major, row 0 at the top).

    player = ScenePlayer("crowd.htrs")
    while player.next():
        screening.process(player.frame, player.ta_c)

next() reads straight into preallocated buffers (array('f')): no per-frame
allocation apart from the two floats t_s and ta_c.  Assumes a
little-endian host (ESP32, x86-64), like the MLX90640 driver's arrays.
"""

import struct
from array import array

MAGIC = b"HTRS"
VERSION = 1
HEADER_SIZE = 18


class RecordingError(ValueError):
    pass


class ScenePlayer:
    def __init__(self, path):
        self.f = open(path, "rb")
        head = self.f.read(HEADER_SIZE)
        if len(head) != HEADER_SIZE:
            self.f.close()
            raise RecordingError("%s: too short for a header" % path)
        magic, version, width, height, rate, count = struct.unpack("<4sHHHfI", head)
        if magic != MAGIC or version != VERSION:
            self.f.close()
            raise RecordingError("%s: not an HTRS v1 recording" % path)
        self.width = width
        self.height = height
        self.rate_hz = rate
        self.count = count
        self.index = -1  # index of the frame in `frame`
        self.t_s = 0.0
        self.ta_c = 0.0
        # array(tc, range(n)) is allocated once at its final size
        self.frame = array("f", range(width * height))
        self._head = array("f", range(2))
        self._frame_mv = memoryview(self.frame)
        self._head_mv = memoryview(self._head)

    def next(self):
        """Load the next frame; False at the end (or on a truncated file)."""
        if self.index + 1 >= self.count:
            return False
        if self.f.readinto(self._head_mv) != 8:
            return False
        want = 4 * self.width * self.height
        if self.f.readinto(self._frame_mv) != want:
            return False
        self.index += 1
        self.t_s = self._head[0]
        self.ta_c = self._head[1]
        return True

    def close(self):
        self.f.close()
