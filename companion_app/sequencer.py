"""In-order, exactly-once delivery of journal events by sequence number.

The helmet numbers events; notifications can be lost (link drops) and replays
repeat what was already received.  The sequencer releases events strictly in
order, drops duplicates, holds early arrivals until the gap is filled (the
link then asks for a replay from `next_seq`), and says what to acknowledge:
everything up to the highest contiguous sequence received."""


class Sequencer:
    def __init__(self, next_seq=None, max_pending=4096):
        self.next_seq = next_seq  # None: take the first sequence seen as the start
        self.max_pending = max_pending
        self._pending = {}  # seq -> item, early arrivals
        self.duplicates = 0
        self.overflow = 0

    @property
    def ack_seq(self):
        """Highest contiguous sequence received, or None."""
        return None if self.next_seq is None or self.next_seq == 0 else self.next_seq - 1

    @property
    def has_gap(self):
        return bool(self._pending)

    def offer(self, seq, item):
        """-> list of items now deliverable, in order (possibly empty)."""
        if self.next_seq is None:
            self.next_seq = seq
        if seq < self.next_seq or seq in self._pending:
            self.duplicates += 1
            return []
        if seq > self.next_seq:
            if len(self._pending) >= self.max_pending:
                self.overflow += 1  # not acknowledged, so the helmet replays it later
            else:
                self._pending[seq] = item
            return []
        out = [item]
        self.next_seq += 1
        while self.next_seq in self._pending:
            out.append(self._pending.pop(self.next_seq))
            self.next_seq += 1
        return out
