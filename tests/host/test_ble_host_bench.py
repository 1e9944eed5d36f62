"""The bench helpers (tools/ble_host/bench.py) on short runs: latency from
decision to app, live-frame rate at MTU 23 and 247, and the percentile maths."""

import asyncio
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "tools", ROOT / "shared", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from ble_host import bench  # noqa: E402
from ble_host.environment import unavailable_reason  # noqa: E402

needs_dbus = pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")


def test_percentiles_and_recorder():
    assert bench.percentile([], 50) is None
    assert bench.percentile([1, 2, 3, 4], 50) == 2
    assert bench.percentile(list(range(1, 101)), 95) == 95
    rec = bench.LatencyRecorder()
    rec.decided(1, 1_000_000)
    rec.decided(2, 2_000_000)
    rec.received(1, 3_000_000)
    rec.received(1, 9_000_000)  # a duplicate does not count twice
    rec.received(3, 4_000_000)  # never decided: ignored
    assert rec.summary()["latency_samples"] == 1
    assert rec.summary()["latency_ms_p50"] == 2.0


@needs_dbus
def test_latency_and_frame_rates_short_run():
    async def scenario():
        lat = await bench.measure_latency(events=40, spacing_s=0.005)
        f23 = await bench.measure_frame_rate(23, seconds=1.0)
        f247 = await bench.measure_frame_rate(247, seconds=1.0)
        return lat, f23, f247

    lat, f23, f247 = asyncio.run(asyncio.wait_for(scenario(), 90))
    print("\nBLE (emulated): latency p50 %.2f ms p95 %.2f ms" % (lat["latency_ms_p50"], lat["latency_ms_p95"]))
    print("frames/s: MTU 23 %.1f, MTU 247 %.1f" % (f23["frames_per_s"], f247["frames_per_s"]))
    assert lat["latency_samples"] == 40
    assert 0 < lat["latency_ms_p50"] <= lat["latency_ms_p95"] < 1000
    assert f23["chunks_per_frame"] == 103 and f247["chunks_per_frame"] == 7
    assert f23["frames_received"] > 0 and f247["frames_received"] > 0
    # Bigger MTU, fewer notifications per frame: clearly faster.
    assert f247["frames_per_s"] > 2 * f23["frames_per_s"]
