"""The event journal keeps every event until acknowledged, across reboots and power loss."""

INTERPRETERS = ("micropython",)

import gc  # noqa: E402
import os  # noqa: E402

import protocol  # noqa: E402
from checks import raises  # noqa: E402
from journal import SLOT_SIZE, Journal  # noqa: E402

PATH = "journal.bin"
META = "journal.meta"


def screening(outcome=protocol.CLEAR, track=0, time=0):
    return protocol.ScreeningEvent(
        time=time,
        kind=protocol.EVENT_SCREENING,
        outcome=outcome,
        core_c=38.6 if outcome == protocol.FEVER else 36.9,
        core_u_c=0.42,
        skin_c=35.1,
        skin_u_c=0.3,
        distance_m=1.25,
        track_id=track,
        flags=protocol.FLAG_CALIBRATED | (protocol.FLAG_TIME_VALID if time else 0),
    )


def fresh(capacity=8):
    for name in (PATH, META):
        try:
            os.remove(name)
        except OSError:
            pass
    return Journal(capacity=capacity)


def read(j, seq):
    buf = bytearray(protocol.EVENT_SIZE)
    if not j.read_into(seq, buf):
        return None
    return protocol.decode_event(buf)


def file_bytes(name=PATH):
    with open(name, "rb") as f:
        return f.read()


def put_file(data, name=PATH):
    with open(name, "wb") as f:
        f.write(data)


def test_sequence_numbers_start_at_one_increase_and_survive_reboot():
    j = fresh()
    assert j.next_seq == 1
    assert [j.append(screening(track=i)) for i in range(5)] == [1, 2, 3, 4, 5]
    j.close()
    j = Journal(capacity=8)
    assert j.next_seq == 6
    assert j.append(screening()) == 6
    # Even when every record was acknowledged and overwritten, numbers never go back.
    for _ in range(20):
        j.ack(j.append(screening()))
    last = j.next_seq - 1
    j.close()
    j = Journal(capacity=8)
    assert j.next_seq == last + 1 and j.acked == last


def test_records_read_back_exactly_as_the_protocol_encodes_them():
    j = fresh()
    ev = screening(protocol.FEVER, track=77, time=1767225600)
    seq = j.append(ev)
    assert ev.seq == seq  # the journal numbers the caller's event
    got = read(j, seq)
    assert got == protocol.decode_event(protocol.encode_event(ev))
    j.close()
    assert read(Journal(capacity=8), seq) == got


def test_an_event_the_wire_cannot_carry_is_refused_and_stores_nothing():
    j = fresh()
    j.append(screening())
    bad = screening()
    bad.core_c = 400.0  # outside -50..150 degC
    with raises(protocol.OutOfRange):
        j.append(bad)
    assert j.next_seq == 2 and j.pending() == 1
    assert j.append(screening()) == 2


def test_delivered_until_acknowledged_and_the_acknowledgement_survives_reboot():
    j = fresh()
    for _ in range(6):
        j.append(screening())
    assert j.pending() == 6 and j.oldest_unacked() == 1
    assert j.ack(4)
    assert j.pending() == 2 and j.oldest_unacked() == 5
    assert j.ack(2)  # an older acknowledgement changes nothing
    assert j.acked == 4
    assert not j.ack(7)  # never assigned: refused, nothing changes
    assert j.acked == 4
    j.close()
    j = Journal(capacity=8)
    assert j.acked == 4 and j.oldest_unacked() == 5 and j.pending() == 2


def test_replay_finds_retained_records_from_any_sequence_number():
    j = fresh()
    for _ in range(12):  # capacity 8, acking as we go: 1..4 are overwritten
        j.ack(j.append(screening()) - 1)
    assert j.next_from(1) == 5  # oldest retained
    assert j.next_from(9) == 9
    assert j.next_from(13) == 0
    assert j.count_from(1) == 8 and j.count_from(10) == 3
    assert read(j, 3) is None and read(j, 12).seq == 12


def _torn_variants(before, after, start):
    """Every way a write of one slot at `start` can be cut short: the first
    k bytes written and the rest old, or the rest erased (0xFF) or zero."""
    for k in range(SLOT_SIZE + 1):
        head = after[start : start + k]
        for filler in (None, 0xFF, 0x00):
            if filler is None:
                tail = before[start + k : start + SLOT_SIZE]
            else:
                tail = bytes([filler]) * (SLOT_SIZE - k)
            yield k, before[:start] + head + tail + before[start + SLOT_SIZE :]


def test_power_loss_mid_write_at_every_byte_loses_at_most_that_record():
    # Two situations: the ring's first pass (the slot held nothing) and a later
    # pass where the slot held an older, acknowledged record.
    for warmup in (5, 13):
        j = fresh()
        originals = {}
        for i in range(warmup):
            ev = screening(protocol.FEVER if i % 3 == 0 else protocol.CLEAR, track=i)
            seq = j.append(ev)
            originals[seq] = protocol.encode_event(ev)
        if warmup > 8:
            j.ack(warmup - 6)  # keep the ring free for the next write
        kept = [s for s in originals if j.next_from(s) == s]
        before = file_bytes()
        new_ev = screening(protocol.RECHECK, track=999)
        new_seq = j.append(new_ev)
        after = file_bytes()
        j.close()
        start = [i for i in range(0, len(after), SLOT_SIZE) if after[i : i + SLOT_SIZE] != before[i : i + SLOT_SIZE]]
        assert len(start) == 1
        start = start[0]
        meta = file_bytes(META) if warmup > 8 else None
        for k, image in _torn_variants(before, after, start):
            put_file(image)
            j = Journal(capacity=8)
            replaced = int.from_bytes(before[start : start + 4], "little")  # acknowledged, overwritten
            for s in kept:
                if s == replaced:
                    continue
                got = bytearray(protocol.EVENT_SIZE)
                assert j.read_into(s, got), (warmup, k, s)
                assert bytes(got) == originals[s], (warmup, k, s)
            complete = k == SLOT_SIZE
            assert (read(j, new_seq) is not None) == complete, (warmup, k)
            assert j.next_seq == (new_seq + 1 if complete else new_seq)
            assert j.append(screening()) == j.next_seq - 1  # the journal carries on
            j.close()
            if meta is not None:
                put_file(meta, META)


def test_file_cut_short_inside_the_last_slot_keeps_every_earlier_record():
    j = fresh(capacity=4)
    for i in range(4):
        j.append(screening(track=i))
    whole = file_bytes()
    j.close()
    for cut in range(3 * SLOT_SIZE, 4 * SLOT_SIZE):
        put_file(whole[:cut])
        j = Journal(capacity=4)
        assert [j.next_from(s) for s in (1, 2, 3)] == [1, 2, 3]
        assert read(j, 4) is None and j.next_seq == 4
        assert j.append(screening()) == 4
        j.close()


def test_torn_meta_write_keeps_the_previous_acknowledgement():
    j = fresh()
    for _ in range(6):
        j.append(screening())
    j.ack(3)
    before = file_bytes(META)
    j.ack(5)
    after = file_bytes(META)
    j.close()
    changed = [i for i in range(len(after)) if i >= len(before) or after[i] != before[i]]
    start = changed[0] - changed[0] % 32
    for k in range(33):
        image = after[: start + k] + before[start + k : start + 32] + after[start + 32 :]
        if len(before) < start + 32:  # first write of the second copy
            image = after[: start + k]
        put_file(image, META)
        j = Journal(capacity=8)
        assert j.acked == (5 if k == 32 else 3), (k, j.acked)
        j.close()


def test_overflow_keeps_flagged_events_and_counts_what_it_dropped():
    j = fresh()
    seqs = {}
    for i in range(8):  # full: 4 FEVER/RECHECK interleaved with 4 CLEAR, none acknowledged
        outcome = (protocol.FEVER, protocol.CLEAR, protocol.RECHECK, protocol.CLEAR)[i % 4]
        seqs[j.append(screening(outcome, track=i))] = outcome
    for i in range(3):
        seqs[j.append(screening(protocol.CLEAR, track=100 + i))] = protocol.CLEAR
    assert j.dropped_total == 3
    retained = [s for s in seqs if j.next_from(s) == s]
    flagged = [s for s in seqs if seqs[s] != protocol.CLEAR]
    assert all(s in retained for s in flagged)  # every flagged event survived
    assert len(retained) == 8
    assert sorted(set(seqs) - set(retained)) == [2, 4, 6]  # the oldest CLEAR ones went
    # When everything left is flagged, the oldest flagged one gives way.
    j2_seq = None
    for _ in range(8):
        j2_seq = j.append(screening(protocol.FEVER))
    assert j.next_from(j2_seq) == j2_seq and j.dropped_total == 11
    j.close()
    # The count survives a reboot and reaches the app as a fault event once there is room.
    j = Journal(capacity=8)
    assert j.dropped_total == 11 and j.unreported_drops() == 11
    last = j.next_seq - 1
    j.ack(last)
    fault = read(j, last + 1)
    assert fault.kind == protocol.EVENT_FAULT and fault.outcome == protocol.FAULT_JOURNAL_OVERFLOW
    assert fault.track_id == 11  # events dropped since the last report
    assert j.unreported_drops() == 0 and j.pending() == 1
    j.close()
    j = Journal(capacity=8)  # reported once, not again after a reboot
    assert j.next_seq == last + 2 and j.pending() == 1 and j.dropped_total == 11


def test_power_loss_between_the_overflow_count_and_its_fault_record_is_repaired():
    j = fresh(capacity=4)
    for _ in range(6):
        j.append(screening())
    assert j.dropped_total == 2
    j.ack(6)
    fault_seq = j.next_seq - 1
    slot = [i for i in range(4) if j._seqs[i] == fault_seq][0]
    j.close()
    image = bytearray(file_bytes())
    image[slot * SLOT_SIZE : (slot + 1) * SLOT_SIZE] = bytes(SLOT_SIZE)  # the record never landed
    put_file(image)
    j = Journal(capacity=4)
    fault = read(j, fault_seq)
    assert fault is not None and fault.track_id == 2 and j.next_seq == fault_seq + 1


def test_a_corrupted_older_record_is_skipped_never_sent_as_garbage():
    j = fresh()
    for i in range(5):
        j.append(screening(track=i))
    j.close()
    image = bytearray(file_bytes())
    image[2 * SLOT_SIZE + 10] ^= 0x40  # a bit flips in record 3
    put_file(image)
    j = Journal(capacity=8)
    assert read(j, 3) is None
    assert j.next_from(3) == 4
    assert [read(j, s).track_id for s in (1, 2, 4, 5)] == [0, 1, 3, 4]


def test_steady_state_appends_and_acks_do_not_grow_the_heap():
    j = fresh(capacity=64)
    ev = screening()
    buf = bytearray(protocol.EVENT_SIZE)
    for _ in range(100):  # warm up: every slot written once
        j.ack(j.append(ev))
    gc.collect()
    before = gc.mem_alloc()
    for _ in range(300):
        seq = j.append(ev)
        assert j.read_into(seq, buf)
        j.ack(seq)
    gc.collect()
    grown = gc.mem_alloc() - before
    assert grown < 256, grown


def test_journal_resident_memory_is_small():
    gc.collect()
    before = gc.mem_alloc()
    j = fresh(capacity=256)
    gc.collect()
    used = gc.mem_alloc() - before
    print("journal resident bytes (256 slots):", used)
    assert used < 3000, used
    j.close()
