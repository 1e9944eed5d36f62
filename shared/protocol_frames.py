"""Live-view transport: a frame body (protocol.py) cut into chunks that fit
one notification, and their reassembly (radio and app only).

Frame chunk v1
  off size field
  0   1    version 1
  1   2    frame_id u16
  3   1    index (< count)
  4   1    count (>= 1)
  5   n    payload, 1..507 bytes: a chunk never exceeds the 512-byte
           attribute value limit, and fits mtu - 3 (ATT notify header).
"""

import struct

from protocol import VERSION, LongRecord, OutOfRange, ProtocolError, ShortRecord, _check_room, _check_version, _int_in

CHUNK_HEADER_SIZE = 5
CHUNK_MAX = 512  # ATT attribute value limit


def chunk_payload_size(mtu):
    """Payload bytes per chunk at this ATT MTU (23..517)."""
    _int_in("chunk", "mtu", mtu, 23, 517)
    return min(mtu - 3, CHUNK_MAX) - CHUNK_HEADER_SIZE


def encode_chunk_into(buf, offset, frame_id, index, count, payload):
    """Pack one chunk at buf[offset:]; returns the number of bytes written.
    Allocation-free for small ints and a bytes/memoryview payload."""
    what = "frame chunk"
    _int_in(what, "frame id", frame_id, 0, 0xFFFF)
    _int_in(what, "count", count, 1, 255)
    _int_in(what, "index", index, 0, count - 1)
    n = len(payload)
    if not 1 <= n <= CHUNK_MAX - CHUNK_HEADER_SIZE:
        raise OutOfRange("%s: payload of %d bytes outside 1..%d" % (what, n, CHUNK_MAX - CHUNK_HEADER_SIZE))
    _check_room(buf, offset, CHUNK_HEADER_SIZE + n, what)
    struct.pack_into("<BHBB", buf, offset, VERSION, frame_id, index, count)
    o = offset + CHUNK_HEADER_SIZE
    buf[o : o + n] = payload
    return CHUNK_HEADER_SIZE + n


def frame_chunks(body, frame_id, mtu):
    """A generator of the chunks (bytes) that carry `body` at this MTU.
    Arguments are checked at once, not on first iteration."""
    size = chunk_payload_size(mtu)
    _int_in("frame chunk", "frame id", frame_id, 0, 0xFFFF)
    n = len(body)
    count = (n + size - 1) // size
    if not 1 <= count <= 255:
        raise OutOfRange("frame chunk: body of %d bytes needs %d chunks at mtu %d (allowed 1..255)" % (n, count, mtu))
    return _chunks(memoryview(body), frame_id, size, count)


def _chunks(mv, frame_id, size, count):
    for i in range(count):
        part = mv[i * size : (i + 1) * size]
        buf = bytearray(CHUNK_HEADER_SIZE + len(part))
        encode_chunk_into(buf, 0, frame_id, i, count, part)
        yield bytes(buf)


def decode_chunk(b):
    """-> (frame_id, index, count, payload bytes)."""
    what = "frame chunk"
    _check_version(b, what, "at least 6")
    n = len(b)
    if n < CHUNK_HEADER_SIZE + 1:
        raise ShortRecord("%s: expected at least %d bytes, got %d" % (what, CHUNK_HEADER_SIZE + 1, n))
    if n > CHUNK_MAX:
        raise LongRecord("%s: expected at most %d bytes, got %d" % (what, CHUNK_MAX, n))
    _, frame_id, index, count = struct.unpack_from("<BHBB", b, 0)
    if count == 0 or index >= count:
        raise OutOfRange("%s: index %d with count %d (need index < count, count >= 1)" % (what, index, count))
    return frame_id, index, count, bytes(b[CHUNK_HEADER_SIZE:])


class FrameAssembler:
    """Reassembles in-order chunks into frame bodies.  Any gap, duplicate,
    reordering, count change, malformed chunk or new frame id abandons the
    frame in progress; the rest of an abandoned frame is ignored.  A body is
    returned only when chunks 0..count-1 all arrived in order."""

    def __init__(self):
        self.frames_completed = 0
        self.frames_dropped = 0
        self.chunks_rejected = 0
        self.reset()

    def reset(self):
        """Forget any frame in progress (e.g. on disconnect) without counting it."""
        self._parts = None  # payloads of the frame in progress, or None
        self._id = None
        self._count = 0
        self._skip = None  # id of a frame already finished or abandoned

    def _abandon(self):
        if self._parts is not None:
            self.frames_dropped += 1
            self._skip = self._id
            self._parts = None

    def feed(self, chunk):
        try:
            fid, index, count, payload = decode_chunk(chunk)
        except ProtocolError:
            self.chunks_rejected += 1
            self._abandon()
            return None
        if self._parts is not None and (fid != self._id or index != len(self._parts) or count != self._count):
            self._abandon()
        if fid == self._skip:
            return None
        if self._parts is None:
            if index != 0:  # joined mid-frame: that frame is lost
                self.frames_dropped += 1
                self._skip = fid
                return None
            self._id, self._count, self._parts, self._skip = fid, count, [], None
        self._parts.append(payload)
        if len(self._parts) < count:
            return None
        body = b"".join(self._parts)
        self._parts = None
        self._skip = fid
        self.frames_completed += 1
        return body
