"""companion_app.link through the real chain: fake helmet -> bridge -> bluezoo
-> bleak (BlueZ backend) -> HelmetLink.  Each test starts and stops its own
dbus-daemon and bluezoo (tools/ble_host), bounded by a timeout."""

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "tools", ROOT / "shared", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import protocol as P  # noqa: E402
from ble_host.environment import unavailable_reason  # noqa: E402

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")


def run(coro, timeout):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def take(agen, n, timeout):
    out = []
    async with asyncio.timeout(timeout):
        async for item in agen:
            out.append(item)
            if len(out) == n:
                break
    return out


async def wait_for(pred, timeout, what):
    async with asyncio.timeout(timeout):
        while not pred():
            await asyncio.sleep(0.01)


async def wait_state(link, state, timeout):
    from companion_app.link_state import LinkState

    await wait_for(lambda: link.state == getattr(LinkState, state), timeout, state)


def chain(**kw):
    from ble_host.chain import simulated_link

    return simulated_link(**kw)


def test_events_arrive_decoded_in_order_and_are_acknowledged():
    async def scenario():
        async with chain(link_kwargs={}) as c:
            await c.link.start()
            await wait_state(c.link, "CONNECTED", 15)
            sent = [
                c.helmet.emit(outcome=[P.CLEAR, P.RECHECK, P.FEVER][i % 3], core_c=36.0 + i / 10) for i in range(30)
            ]
            items = await take(c.link.events(), 30, 10)
            assert [i.event.seq for i in items] == sent
            assert [i.event.outcome for i in items[:3]] == [P.CLEAR, P.RECHECK, P.FEVER]
            assert items[5].event.core_c == pytest.approx(36.5)
            assert {i.helmet_id for i in items} == {c.env.peripheral_address}
            # Acknowledged up to the last one: the helmet's journal empties.
            await wait_for(lambda: c.helmet.acked == sent[-1], 5, "ack")
            assert c.helmet.journal == {}
            assert c.link.stats.events == 30  # (duplicates possible: live events racing the first replay)

    run(scenario(), 60)


@pytest.mark.parametrize("mtu", [23, 247])
def test_live_frames_are_reassembled(mtu):
    async def scenario():
        async with chain(mtu=mtu, link_kwargs={}) as c:
            await c.link.start()
            await wait_state(c.link, "CONNECTED", 15)
            await c.link.set_live_view(True)
            assert c.helmet.live and c.helmet.mtu == mtu
            pixels = [20.0 + i / 100 for i in range(32 * 24)]
            for _ in range(3):
                c.helmet.send_frame(pixels=pixels, ta_c=24.5)
            frames = await take(c.link.frames(), 3, 15)
            f = frames[-1]
            assert (f.width, f.height, f.ambient_c) == (32, 24, 24.5)
            assert list(f.pixels_centi) == [round(p * 100) for p in pixels]
            await c.link.set_live_view(False)
            assert not c.helmet.live

    run(scenario(), 60)


def test_reconnects_with_backoff_and_replays_from_next_expected():
    async def scenario():
        from companion_app.link_state import LinkState

        async with chain(link_kwargs={}) as c:
            c.helmet.replay_overlap = 3  # the helmet replays 3 already-delivered events too
            states = []

            async def watch():
                async for change in c.link.states():
                    states.append(change)

            watcher = asyncio.create_task(watch())
            await c.link.start()
            await wait_state(c.link, "CONNECTED", 15)
            first = [c.helmet.emit() for _ in range(5)]
            assert [i.event.seq for i in await take(c.link.events(), 5, 10)] == first
            await wait_for(lambda: c.helmet.acked == 5, 5, "ack")

            await c.bridge.drop_connection()  # out of range
            await wait_for(lambda: c.link.state != LinkState.CONNECTED, 5, "drop noticed")
            missed = [c.helmet.emit() for _ in range(5)]  # journaled while away
            await wait_state(c.link, "CONNECTED", 15)
            try:
                got = await take(c.link.events(), 5, 10)
            except TimeoutError:
                raise AssertionError(
                    "stats %s replays %s bridge %s" % (c.link.stats, c.helmet.replays, c.bridge.stats)
                ) from None
            assert [i.event.seq for i in got] == missed
            assert c.helmet.replays[-1] == 6  # from the next expected sequence
            await wait_for(lambda: c.link.stats.duplicates >= 3, 5, "duplicates counted")
            assert c.link.stats.connects == 2 and c.link.stats.disconnects == 1

        await asyncio.wait_for(watcher, 5)  # ends when the link stops
        assert states[-1].state == LinkState.STOPPED
        backoff = [x for x in states if x.state == LinkState.BACKOFF]
        assert backoff and 0 < backoff[0].delay_s <= 0.05  # Backoff(0.05, 1.0) from the chain
        states = [x.state for x in states]
        # connected -> disconnected -> backoff -> connecting -> connected
        i = states.index(LinkState.DISCONNECTED)
        assert states[i : i + 4] == [
            LinkState.DISCONNECTED,
            LinkState.BACKOFF,
            LinkState.CONNECTING,
            LinkState.CONNECTED,
        ]

    run(scenario(), 60)


def test_thousand_events_with_disconnects_none_lost_none_duplicated():
    async def scenario():
        async with chain(link_kwargs={}) as c:
            c.helmet.replay_overlap = 2
            await c.link.start()
            await wait_state(c.link, "CONNECTED", 15)
            received = []

            async def consume():
                async for item in c.link.events():
                    received.append(item.event.seq)
                    if len(received) >= 1000:
                        return

            consumer = asyncio.create_task(consume())
            for i in range(1000):
                c.helmet.emit(track_id=i)
                if i % 10 == 9:
                    await c.helmet.drain()
                    await asyncio.sleep(0.005)
                if i % 200 == 150:
                    await c.bridge.drop_connection()
            try:
                await asyncio.wait_for(consumer, 60)
            except TimeoutError:
                raise AssertionError(
                    "got %d (last %s) state %s stats %s next %s; helmet acked %s replays %s journal %d; bridge %s"
                    % (
                        len(received),
                        received[-3:],
                        c.link.state,
                        c.link.stats,
                        c.link.next_seq(),
                        c.helmet.acked,
                        c.helmet.replays,
                        len(c.helmet.journal),
                        c.bridge.stats,
                    )
                ) from None
            assert received == list(range(1, 1001)), "lost or reordered"
            assert len(set(received)) == 1000
            await wait_for(lambda: c.helmet.acked == 1000, 10, "final ack")
            assert c.link.stats.disconnects >= 5
            print(
                "\n1000 events: %d disconnects, %d duplicates dropped, %d replays"
                % (c.link.stats.disconnects, c.link.stats.duplicates, c.link.stats.replays_requested)
            )

    run(scenario(), 120)


def test_malformed_notifications_are_counted_and_do_not_crash():
    async def scenario():
        from ble_host.fake_helmet import H_CONTROL, H_EVENTS, H_FRAMES

        async with chain(link_kwargs={}) as c:
            await c.link.start()
            await wait_state(c.link, "CONNECTED", 15)
            good = P.encode_event(P.ScreeningEvent(seq=1, outcome=P.CLEAR, core_c=36.6, skin_c=35.0))
            c.helmet.emit()  # seq 1
            await take(c.link.events(), 1, 10)
            bad_events = [b"", b"\x01", good[:19], good + b"\x00", b"\x02" + good[1:], good[:19] + b"\xe0"]
            for b in bad_events:
                c.helmet.notify(H_EVENTS, b)
            # too short, unknown version, index >= count, then a well-formed chunk joining mid-frame
            bad_chunks = [
                b"\x01",
                b"\x09\x00\x00\x00\x01\xff",
                b"\x01\x01\x00\x05\x02\xaa",
                b"\x01\x02\x00\x01\x02\xaa",
            ]
            for b in bad_chunks:
                c.helmet.notify(H_FRAMES, b)
            c.helmet.notify(H_CONTROL, b"\x01\x80\x01")  # short response
            c.helmet.notify(H_CONTROL, b"\x01\x80\x01\x09\x00\x00\x00\x00")  # result 9 unknown
            c.helmet.emit()  # seq 2 still arrives
            items = await take(c.link.events(), 1, 10)
            assert items[0].event.seq == 2
            s = c.link.stats
            assert s.malformed_events == len(bad_events)
            assert s.chunks_rejected == 3
            assert s.frames_dropped == 1 and s.frames == 0
            assert s.malformed_responses == 2
            assert c.link.state.name == "CONNECTED"

    run(scenario(), 60)


def test_helmet_reboot_mid_stream_loses_nothing():
    async def scenario():
        from ble_host.fake_helmet import FakeHelmet

        async with chain(link_kwargs={}) as c:
            await c.link.start()
            await wait_state(c.link, "CONNECTED", 15)
            received = []

            async def consume():
                async for item in c.link.events():
                    received.append(item.event.seq)

            consumer = asyncio.create_task(consume())
            for _ in range(50):
                c.helmet.emit()
            await c.helmet.drain()
            # Power cut: the process dies (socket closes); the journal survives in flash.
            old = c.helmet
            journal, sent_log, next_seq = dict(old.journal), dict(old._sent_log), old.next_seq
            await old.stop()
            await wait_for(lambda: c.link.state.name != "CONNECTED", 10, "link noticed")
            async with FakeHelmet(c.bridge.address, first_seq=next_seq) as rebooted:
                rebooted.journal, rebooted._sent_log = journal, sent_log
                for _ in range(50):
                    rebooted.emit()  # decisions made before the phone is back
                await wait_for(lambda: len(received) >= 100, 30, "all 100 events")
                assert received == list(range(1, 101))
                await wait_for(lambda: rebooted.acked == 100, 10, "ack after reboot")
            consumer.cancel()

    run(scenario(), 90)


def test_pairing_reaches_the_helmet_and_survives_reconnect():
    async def scenario():
        async with chain(link_kwargs={"pair": True}) as c:
            await c.link.start()
            await wait_state(c.link, "CONNECTED", 15)
            await wait_for(lambda: len(c.helmet.encryption) == 1, 5, "encryption event")
            e = c.helmet.encryption[0]
            assert (e["encrypted"], e["bonded"], e["authenticated"], e["key_size"]) == (True, True, False, 16)
            await c.bridge.drop_connection()
            await wait_for(lambda: c.link.stats.connects == 2 and c.link.state.name == "CONNECTED", 15, "reconnect")
            # Bonded: the link is encrypted again without a new pairing.
            await wait_for(lambda: len(c.helmet.encryption) == 2, 5, "re-encryption")

    run(scenario(), 60)
