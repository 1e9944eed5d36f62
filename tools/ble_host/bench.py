"""BLE link figures over the simulated link (bluezoo): event latency from the
helmet's decision to the app, live-frame rate at a given MTU, and a soak run
(events lost/duplicated across forced disconnects).

    python -m ble_host.bench [--out bench/results/ble.json]   (tools/ and shared/ on sys.path)

Latency uses wall-clock nanoseconds on both sides (time.time_ns() exists in
MicroPython's unix port too), so the real firmware can stamp its decisions the
same way.  The figures measure the emulation (D-Bus round trips through
bluezoo), not a radio: compare runs with each other, not with phones.
"""

import argparse
import asyncio
import json
import math
import sys
import time

from .chain import simulated_link


class LatencyRecorder:
    """Pairs decision and reception times by sequence number."""

    def __init__(self):
        self.decided_ns, self.received_ns = {}, {}

    def decided(self, seq, t_ns=None):
        self.decided_ns[seq] = time.time_ns() if t_ns is None else t_ns

    def received(self, seq, t_ns=None):
        self.received_ns.setdefault(seq, time.time_ns() if t_ns is None else t_ns)

    def latencies_ms(self):
        return sorted(
            (self.received_ns[s] - self.decided_ns[s]) / 1e6 for s in self.received_ns if s in self.decided_ns
        )

    def summary(self):
        lat = self.latencies_ms()
        return {
            "latency_samples": len(lat),
            "latency_ms_p50": percentile(lat, 50),
            "latency_ms_p95": percentile(lat, 95),
            "latency_ms_max": lat[-1] if lat else None,
        }


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (None if empty)."""
    if not sorted_values:
        return None
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


async def _connected(link, timeout=20):
    async with asyncio.timeout(timeout):
        while link.state.name != "CONNECTED":
            await asyncio.sleep(0.01)


async def measure_latency(events=200, spacing_s=0.01, mtu=247):
    """Events spaced like a busy entrance (not a burst): latency, not queueing."""
    rec = LatencyRecorder()
    async with simulated_link(mtu=mtu, link_kwargs={}) as c:
        await c.link.start()
        await _connected(c.link)
        await asyncio.sleep(0.3)  # let the first replay settle

        async def consume():
            async for item in c.link.events():
                rec.received(item.event.seq)
                if len(rec.received_ns) >= events:
                    return

        consumer = asyncio.create_task(consume())
        for _ in range(events):
            seq = c.helmet.emit()
            rec.decided(seq, c.helmet.decided_at_ns[seq])
            await asyncio.sleep(spacing_s)
        await asyncio.wait_for(consumer, 30)
    return rec.summary()


async def measure_frame_rate(mtu, seconds=3.0, width=32, height=24):
    """Live frames/s the app completes when the helmet sends as fast as the link takes."""
    async with simulated_link(mtu=mtu, link_kwargs={"frame_queue": 1000}) as c:
        await c.link.start()
        await _connected(c.link)
        await c.link.set_live_view(True)
        got = 0

        async def consume():
            nonlocal got
            async for _ in c.link.frames():
                got += 1

        consumer = asyncio.create_task(consume())
        pixels = [30.0 + (i % 13) * 0.25 for i in range(width * height)]
        t0 = time.perf_counter()
        sent = 0
        while time.perf_counter() - t0 < seconds:
            c.helmet.send_frame(width, height, 25.0, pixels)
            sent += 1
            await c.helmet.drain()  # TCP backpressure from the bridge's flow control
        await asyncio.sleep(0.5)
        elapsed = time.perf_counter() - t0
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        return {
            "mtu": mtu,
            "chunks_per_frame": math.ceil((5 + 2 * width * height) / (min(mtu - 3, 512) - 5)),
            "frames_sent": sent,
            "frames_received": got,
            "frames_per_s": got / elapsed,
            "frames_dropped": c.link.stats.frames_dropped,
        }


async def soak(events=1000, drop_every=200, replay_overlap=2, timeout_s=90):
    """Events with forced disconnects: counts lost and duplicated at the app."""
    async with simulated_link(link_kwargs={}) as c:
        c.helmet.replay_overlap = replay_overlap
        await c.link.start()
        await _connected(c.link)
        received = []

        async def consume():
            async for item in c.link.events():
                received.append(item.event.seq)
                if len(set(received)) >= events:
                    return

        consumer = asyncio.create_task(consume())
        sent = []
        for i in range(events):
            sent.append(c.helmet.emit(track_id=i % 65536))
            if i % 10 == 9:
                await c.helmet.drain()
                await asyncio.sleep(0.005)
            if i % drop_every == drop_every // 2:
                await c.bridge.drop_connection()
        try:
            await asyncio.wait_for(consumer, timeout_s)
        except asyncio.TimeoutError:
            consumer.cancel()
        s = c.link.stats
        return {
            "events_sent": len(sent),
            "events_received": len(received),
            "events_lost": len(set(sent) - set(received)),
            "events_duplicated": len(received) - len(set(received)),
            "in_order": received == sorted(received),
            "disconnects": s.disconnects,
            "duplicates_dropped_by_link": s.duplicates,
            "replays_requested": s.replays_requested,
        }


async def run_all():
    out = {}
    out.update(await measure_latency())
    for mtu in (23, 247):
        fr = await measure_frame_rate(mtu)
        out["frames_per_s_mtu%d" % mtu] = fr["frames_per_s"]
        out["frame_detail_mtu%d" % mtu] = fr
    out.update(await soak())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write the JSON here as well")
    args = ap.parse_args(argv)
    result = asyncio.run(asyncio.wait_for(run_all(), 300))
    text = json.dumps(result, indent=2, sort_keys=True)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
