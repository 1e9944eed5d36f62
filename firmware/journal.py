"""Event journal on flash: every event the helmet emits, kept until the app acknowledges it.

Events get increasing sequence numbers (1, 2, ...) and live in a bounded ring
of fixed-size slots in ``journal.bin`` (the board's flash is the current
directory).  Each slot is self-checking, so a power loss while one slot is
written loses at most that record and never touches the others:

    slot (32 bytes)  off size field
                     0   4    seq u32 (0 = never written)
                     4   20   event record, shared/protocol layout (its own seq = slot seq)
                     24  4    0xFFFFFFFF (reserved)
                     28  4    CRC-32 of bytes 0..27

``journal.meta`` holds what is not in the ring (acknowledged-up-to seq, the
overflow counters) as two alternating 32-byte copies with a generation number
and a CRC: a torn meta write leaves the previous copy valid.

Overflow: when every slot holds an unacknowledged event, a new event evicts
the oldest unflagged one (CLEAR screening or boot), and only when every slot
is flagged (FEVER, RECHECK or a fault) the oldest flagged one.  Each eviction
is counted on flash; once a slot is free again the journal appends one
FAULT_JOURNAL_OVERFLOW event whose ``track_id`` carries how many events were
dropped since the last such report (saturating at 65535), so the loss itself
reaches the app, in order, and survives reboots.

Memory: the RAM index is one u32 and one byte per slot (1.25 KB for 256
slots) plus two small buffers, allocated once.
"""

import struct
from binascii import crc32

from micropython import const

import protocol
from buffers import zeros

SLOT_SIZE = 32
_EVENT_OFF = const(4)
_CRC_OFF = const(28)
_META_SIZE = const(32)
_META = const("<IIIIII")  # gen, ack, dropped_total, unreported, fault_seq, fault_count
_DEFAULT_CAPACITY = const(256)
_COUNT_MAX = const(0xFFFF)

# Priority of an event when the ring overflows: 1 survives over 0.
_LOW = const(0)
_HIGH = const(1)


def _priority(ev):
    if ev.kind == protocol.EVENT_FAULT:
        return _HIGH
    if ev.kind == protocol.EVENT_SCREENING and ev.outcome in (protocol.FEVER, protocol.RECHECK):
        return _HIGH
    return _LOW


def _priority_of_record(buf, off):
    # kind<<4|outcome byte of the protocol record (its offset 1).
    ko = buf[off + 1]
    kind, outcome = ko >> 4, ko & 0x0F
    if kind == protocol.EVENT_FAULT:
        return _HIGH
    if kind == protocol.EVENT_SCREENING and outcome in (protocol.FEVER, protocol.RECHECK):
        return _HIGH
    return _LOW


def _open_rw(path, size):
    """Open `path` for in-place updates, creating or extending it to `size`
    bytes of zeros (zero slots are invalid, so a short file reads as empty)."""
    try:
        f = open(path, "r+b")
    except OSError:
        f = open(path, "w+b")
    f.seek(0, 2)
    have = f.tell()
    if have < size:
        zeros = bytes(SLOT_SIZE)
        while have < size:
            f.write(zeros[: min(SLOT_SIZE, size - have)])
            have = f.tell()
        f.flush()
    return f


class Journal:
    def __init__(self, path="journal.bin", capacity=_DEFAULT_CAPACITY, meta_path="journal.meta", clock=None):
        if capacity < 2:
            raise ValueError("journal needs at least 2 slots")
        self.capacity = capacity
        self._meta_path = meta_path
        self._clock = clock  # () -> unix seconds (0 = unknown), stamps overflow faults
        self._seqs = zeros("I", capacity)
        self._prio = bytearray(capacity)
        self._slot = bytearray(SLOT_SIZE)
        self._meta = bytearray(_META_SIZE)
        self._fault = protocol.ScreeningEvent(kind=protocol.EVENT_FAULT, outcome=protocol.FAULT_JOURNAL_OVERFLOW)
        self._gen = 0
        self.acked = 0  # everything <= acked is delivered
        self.dropped_total = 0  # events evicted unacknowledged, ever
        self._unreported = 0  # evicted since the last overflow fault event
        self._fault_seq = 0  # seq of the last overflow fault event
        self._fault_count = 0
        self._head = capacity - 1  # slot of the newest record
        self._hint = 0  # where the last lookup found its record
        self._load_meta()
        self._f = _open_rw(path, capacity * SLOT_SIZE)
        self._scan()
        self._recover_fault()

    # ------------------------------------------------------------- recovery
    def _scan(self):
        f, buf, newest = self._f, self._slot, 0
        f.seek(0)
        for i in range(self.capacity):
            if f.readinto(buf) != SLOT_SIZE or not self._slot_valid(buf):
                self._seqs[i] = 0
                continue
            seq = struct.unpack_from("<I", buf, 0)[0]
            self._seqs[i] = seq
            self._prio[i] = _priority_of_record(buf, _EVENT_OFF)
            if seq > newest:
                newest, self._head = seq, i
        self.next_seq = max(newest, self.acked, self._fault_seq - 1) + 1

    @staticmethod
    def _slot_valid(buf):
        if struct.unpack_from("<I", buf, 0)[0] == 0:
            return False
        if crc32(memoryview(buf)[:_CRC_OFF]) != struct.unpack_from("<I", buf, _CRC_OFF)[0]:
            return False
        try:  # the record must also be one the protocol accepts, with the slot's seq
            ev = protocol.decode_event(memoryview(buf)[_EVENT_OFF : _CRC_OFF - 4])
        except protocol.ProtocolError:
            return False
        return ev.seq == struct.unpack_from("<I", buf, 0)[0]

    def _recover_fault(self):
        # The meta copy naming an overflow fault is written before the fault
        # record itself: a power loss between them is repaired here.
        if self._fault_seq and self._fault_seq >= self.next_seq - 1 and self._find(self._fault_seq) < 0:
            if self._fault_seq > self.acked:
                self.next_seq = self._fault_seq
                self._write_fault(self._fault_seq, self._fault_count)

    # ------------------------------------------------------------- meta
    def _load_meta(self):
        best = None
        try:
            with open(self._meta_path, "rb") as f:
                data = f.read(2 * _META_SIZE)
        except OSError:
            return
        for k in range(2):
            off = k * _META_SIZE
            if len(data) < off + _META_SIZE:
                break
            if crc32(memoryview(data)[off : off + _META_SIZE - 4]) != struct.unpack_from("<I", data, off + 28)[0]:
                continue
            fields = struct.unpack_from(_META, data, off)
            if best is None or fields[0] > best[0]:
                best = fields
        if best is not None:
            self._gen, self.acked, self.dropped_total, self._unreported, self._fault_seq, self._fault_count = best

    def _save_meta(self):
        self._gen += 1
        m = self._meta
        struct.pack_into(
            _META, m, 0, self._gen, self.acked, self.dropped_total, self._unreported, self._fault_seq, self._fault_count
        )
        struct.pack_into("<I", m, 24, 0xFFFFFFFF)
        struct.pack_into("<I", m, 28, crc32(memoryview(m)[:28]))
        try:
            f = open(self._meta_path, "r+b")
        except OSError:
            f = open(self._meta_path, "w+b")
        try:
            f.seek((self._gen & 1) * _META_SIZE)  # alternate copies: one always survives
            f.write(m)
            f.flush()
        finally:
            f.close()

    # ------------------------------------------------------------- slots
    def _find(self, seq):
        """Slot index holding `seq`, or -1."""
        seqs, n = self._seqs, self.capacity
        i = self._hint
        for _ in range(n):
            if seqs[i] == seq:
                self._hint = i
                return i
            i += 1
            if i == n:
                i = 0
        return -1

    def _free_slot(self):
        """A slot whose record is acknowledged or absent, searching forward
        from the newest record so the ring is written in order; -1 if none."""
        seqs, n, acked = self._seqs, self.capacity, self.acked
        i = self._head
        for _ in range(n):
            i += 1
            if i == n:
                i = 0
            if seqs[i] <= acked:
                return i
        return -1

    def _victim(self):
        """Oldest unacknowledged slot of the lowest priority present."""
        seqs, prio = self._seqs, self._prio
        best, best_seq, best_prio = -1, 0, 2
        for i in range(self.capacity):
            p, s = prio[i], seqs[i]
            if p < best_prio or (p == best_prio and s < best_seq):
                best, best_seq, best_prio = i, s, p
        return best

    def _write_slot(self, i, ev):
        buf = self._slot
        struct.pack_into("<I", buf, 0, ev.seq)
        protocol.encode_event_into(buf, _EVENT_OFF, ev)
        struct.pack_into("<I", buf, 24, 0xFFFFFFFF)
        struct.pack_into("<I", buf, _CRC_OFF, crc32(memoryview(buf)[:_CRC_OFF]))  # after the pad it covers
        f = self._f
        f.seek(i * SLOT_SIZE)
        f.write(buf)
        f.flush()
        self._seqs[i] = ev.seq
        self._prio[i] = _priority(ev)
        self._head = i

    def _write_fault(self, seq, count):
        ev = self._fault
        ev.seq = seq
        ev.time = self._clock() if self._clock is not None else 0
        ev.flags = protocol.FLAG_TIME_VALID if ev.time else 0
        ev.track_id = count
        i = self._free_slot()
        if i < 0:
            i = self._victim()
        self._write_slot(i, ev)
        self.next_seq = seq + 1

    def _report_overflow(self):
        """Append the overflow fault once a slot is free (never evicts for it)."""
        if not self._unreported or self._free_slot() < 0:
            return
        seq = self.next_seq
        self._fault_count = min(self._unreported, _COUNT_MAX)
        self._unreported = 0
        self._fault_seq = seq
        self._save_meta()  # first: a power loss before the record is repaired at boot
        self._write_fault(seq, self._fault_count)

    # ------------------------------------------------------------- API
    def append(self, ev):
        """Give `ev` the next sequence number (sets ev.seq), store it; returns the seq.
        Raises protocol.OutOfRange (nothing stored) if the event cannot be encoded."""
        self._report_overflow()
        seq = self.next_seq
        ev.seq = seq
        protocol.encode_event_into(self._slot, _EVENT_OFF, ev)  # validate before evicting anything
        i = self._free_slot()
        if i < 0:
            i = self._victim()
            self.dropped_total += 1
            self._unreported += 1
            self._save_meta()
        self._write_slot(i, ev)
        self.next_seq = seq + 1
        return seq

    def ack(self, seq):
        """Everything up to and including `seq` is delivered.  Returns False
        (changing nothing) for a seq that was never assigned."""
        if seq >= self.next_seq:
            return False
        if seq > self.acked:
            self.acked = seq
            self._save_meta()
            self._report_overflow()
        return True

    def next_from(self, seq):
        """The smallest retained seq >= `seq`, or 0 if none."""
        if seq >= self.next_seq:
            return 0
        if self._find(seq) >= 0:  # the common case: the ring is contiguous
            return seq
        seqs, best = self._seqs, 0
        for i in range(self.capacity):
            s = seqs[i]
            if s >= seq and (best == 0 or s < best):
                best = s
        return best

    def read_into(self, seq, buf, offset=0):
        """Copy the 20-byte record of `seq` into buf[offset:]; False if not retained."""
        i = self._find(seq)
        if i < 0:
            return False
        f = self._f
        f.seek(i * SLOT_SIZE)
        slot = self._slot
        if f.readinto(slot) != SLOT_SIZE or not self._slot_valid(slot):
            self._seqs[i] = 0  # flash went bad under us: never send garbage
            return False
        buf[offset : offset + protocol.EVENT_SIZE] = memoryview(slot)[_EVENT_OFF : _EVENT_OFF + protocol.EVENT_SIZE]
        return True

    def count_from(self, seq):
        """How many retained records have seq >= `seq`."""
        n = 0
        for s in self._seqs:
            if s and s >= seq:
                n += 1
        return n

    def pending(self):
        """Unacknowledged records still retained."""
        return self.count_from(self.acked + 1)

    def oldest_unacked(self):
        """Seq of the oldest unacknowledged retained record, or 0."""
        return self.next_from(self.acked + 1)

    def unreported_drops(self):
        return self._unreported

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None
