"""Journal helpers shared by the firmware tests (they run inside MicroPython):
a fresh journal on the board's flash, and the events it holds."""

import os

import protocol


def fresh_journal(capacity=32):
    """A journal with nothing in it (the files of an earlier test removed)."""
    from journal import Journal

    for name in ("journal.bin", "journal.meta"):
        try:
            os.remove(name)
        except OSError:
            pass
    return Journal(capacity=capacity)


def journal_events(journal, kind=None):
    """Every event the journal holds, in order; only ``kind`` when given."""
    buf = bytearray(protocol.EVENT_SIZE)
    out = []
    for seq in range(1, journal.next_seq):
        assert journal.read_into(seq, buf)
        ev = protocol.decode_event(buf)
        if kind is None or ev.kind == kind:
            out.append(ev)
    return out
