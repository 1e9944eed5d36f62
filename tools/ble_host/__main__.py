"""`python -m ble_host` (tools/ and shared/ on sys.path): a short show of the
simulated BLE link for `make demo`.  Starts a private bus + bluezoo, the
bridge, the CPython fake helmet and the companion app's link; the helmet
decides a few screenings, the link drops once, and the app still gets every
event once, in order."""

import asyncio
import sys

import protocol as P

from .chain import simulated_link

_NAMES = {P.CLEAR: "CLEAR", P.RECHECK: "RECHECK", P.FEVER: "FEVER"}


async def demo(out=print):
    async with simulated_link(link_kwargs={"pair": True}) as c:
        states = []

        async def watch():
            async for change in c.link.states():
                states.append(change.state.value)

        watcher = asyncio.create_task(watch())
        await c.link.start()
        async with asyncio.timeout(20):
            while c.link.state.name != "CONNECTED":
                await asyncio.sleep(0.01)
        out("phone connected to %s (bonded: %s)" % (c.link.helmet_id, bool(c.helmet.encryption)))
        plan = [(P.CLEAR, 36.7), (P.RECHECK, 37.4), (P.FEVER, 38.6), (P.CLEAR, 36.5), (P.FEVER, 39.1)]
        for i, (outcome, core) in enumerate(plan):
            c.helmet.emit(outcome=outcome, core_c=core, core_u_c=0.4, track_id=i + 1)
            if i == 2:
                await c.helmet.drain()
                await c.bridge.drop_connection()  # the officer walks out of range
                out("link dropped; the helmet keeps journaling")
        got = []
        async with asyncio.timeout(20):
            async for item in c.link.events():
                ev = item.event
                got.append(ev.seq)
                out("  app got #%d %-7s core %.1f +/- %.1f degC" % (ev.seq, _NAMES[ev.outcome], ev.core_c, ev.core_u_c))
                if len(got) == len(plan):
                    break
        out("link states: %s" % " -> ".join(states))
        out("link stats: %s" % c.link.stats)
        watcher.cancel()
        return got


def main():
    got = asyncio.run(asyncio.wait_for(demo(), 60))
    return 0 if got == sorted(set(got)) else 1


if __name__ == "__main__":
    sys.exit(main())
