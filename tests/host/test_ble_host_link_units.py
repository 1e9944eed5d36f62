"""The link layer's pure parts, without BLE: backoff, the sequencer, and the
notification handlers fed arbitrary bytes (they count, never raise)."""

import random
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "shared", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import protocol as P  # noqa: E402
import protocol_control as control  # noqa: E402
from companion_app.backoff import Backoff  # noqa: E402
from companion_app.link import HelmetLink  # noqa: E402
from companion_app.sequencer import Sequencer  # noqa: E402


def test_backoff_grows_caps_jitters_and_resets():
    b = Backoff(initial_s=0.1, maximum_s=2.0, factor=2.0, jitter=0.5, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(10)]
    bases = [min(2.0, 0.1 * 2**i) for i in range(10)]
    assert all(base * 0.5 <= d <= base for d, base in zip(delays, bases, strict=True))
    assert len({round(d, 6) for d in delays}) == 10  # jittered, not lock-step
    b.reset()
    assert b.next_delay() <= 0.1


def test_link_module_imports_neither_kivy_nor_bleak_eagerly():
    import subprocess

    code = "import sys; import companion_app.link; print('kivy' in sys.modules, 'bleak' in sys.modules)"
    env_path = "%s:%s" % (ROOT / "shared", ROOT)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": env_path}, check=True
    )
    assert out.stdout.split() == ["False", "False"]


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 1000), st.lists(st.integers(0, 60), max_size=200), st.randoms(use_true_random=False))
def test_sequencer_releases_each_sequence_once_in_order(start, offsets, rnd):
    seqs = [start + o for o in offsets]
    rnd.shuffle(seqs)
    s = Sequencer(start)
    out = []
    for q in seqs:
        out += s.offer(q, q)
    # Exactly the contiguous run from `start` that arrived, in order, once each.
    expect, n = [], start
    while n in set(seqs):
        expect.append(n)
        n += 1
    assert out == expect
    assert s.next_seq == n
    assert s.ack_seq == (n - 1 if n > 0 else None)
    assert s.duplicates == len(seqs) - len(set(seqs))


def test_sequencer_without_known_start_takes_the_first():
    s = Sequencer()
    assert s.offer(7, "a") == ["a"] and s.offer(7, "a") == [] and s.offer(9, "c") == []
    assert s.has_gap and s.offer(8, "b") == ["b", "c"] and not s.has_gap


def _link():
    link = HelmetLink()
    link.helmet_id = "AA:BB"
    link._sequencers["AA:BB"] = Sequencer(1)
    return link


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=20))
def test_handlers_never_raise_on_arbitrary_bytes(blobs):
    link = _link()
    for b in blobs:
        link._on_event(None, bytearray(b))
        link._on_chunk(None, bytearray(b))
        link._on_response(None, bytearray(b))
    s = link.stats
    decodable = 0
    for b in blobs:
        try:
            P.decode_event(b)
            decodable += 1
        except P.ProtocolError:
            pass
    assert s.malformed_events == len(blobs) - decodable
    assert (
        s.events + s.duplicates + len(link._sequencers["AA:BB"]._pending) + link._sequencers["AA:BB"].overflow
        == decodable
    )


def test_handlers_count_each_kind_of_malformed_input():
    link = _link()
    good = P.encode_event(P.ScreeningEvent(seq=1, outcome=P.FEVER, core_c=38.6, skin_c=36.9))
    for bad in (b"", good[:10], b"\x07" + good[1:], good[:19] + b"\x80"):
        link._on_event(None, bad)
    link._on_event(None, good)
    link._on_event(None, good)  # duplicate
    link._on_response(None, b"\x01\x81\x01\x01\x00\x00\x00\x00")  # not a response code
    assert link.stats.malformed_events == 4
    assert (link.stats.events, link.stats.duplicates) == (1, 1)
    assert link.stats.malformed_responses == 1
    assert link._events.get_nowait().event.outcome == P.FEVER


def _acks_after(link, stored_upto):
    """Let the ack loop run for a few rounds with events 1..5 delivered and the
    consumer having stored up to ``stored_upto`` (None: nothing); -> the OP_ACK
    values sent."""
    import asyncio

    sent = []

    async def command(opcode, arg=None, wait=False):
        if opcode == control.OP_ACK:
            sent.append(arg)

    for s in range(1, 6):
        link._on_event(None, bytearray(P.encode_event(P.ScreeningEvent(seq=s, kind=P.EVENT_SCREENING))))
    if stored_upto is not None:
        link.confirm_stored("AA:BB", stored_upto)
    link._command = command

    async def a_few_rounds():
        try:
            await asyncio.wait_for(link._ack_loop(link._sequencers["AA:BB"]), 10 * link.ack_delay_s)
        except asyncio.TimeoutError:
            pass

    asyncio.run(a_few_rounds())
    return sent


def test_acknowledges_only_what_the_consumer_has_stored():
    # The helmet forgets acknowledged events: an app killed between receiving
    # and storing must find them still on the helmet.
    link = _link()
    link.ack_when_stored = True
    assert _acks_after(link, None) == []  # received, nothing stored: no ACK
    link = _link()
    link.ack_when_stored = True
    assert _acks_after(link, 3) == [3]  # stored 1..3: ACK 3, not 5
    link = _link()
    assert _acks_after(link, None) == [5]  # without the policy: everything received
