"""The helmet's BLE side on the simulated board, bridged to the host (MicroPython unix port).

Usage: HELMET_BLE_BRIDGE=host:port micropython run_ble_helmet.py
           [--events N] [--interval-ms MS] [--stop-after K] [--capacity SLOTS]
           [--wait-link MS] [--frames]

Builds the firmware's Journal and BleServer (firmware/journal.py,
firmware/ble_server.py) on the simulated ``bluetooth`` module, which connects
to the host bridge (tools/ble_host/bridge.py) when HELMET_BLE_BRIDGE is set,
and runs the server on asyncio.  A producer task records screening events at
a fixed rate until the journal's sequence reaches N (so a restarted process
on the same flash resumes the numbering from the journal instead of starting
again); ``--stop-after K`` stops producing after K events of this run and
keeps serving (the host kills the process there to simulate a reboot; the
current directory is the board's flash, so the journal survives).
``--wait-link MS`` starts producing only once a phone is bonded and MS more
have passed (latency without a backlog); ``--frames`` sends 32x24 live frames
as fast as the server takes them whenever the app has live view on.

Every event's content is a function of its sequence number (``screening``
below), so the host can check what the app decoded.  Output, one line each:
  READY <next_seq> <acked> <pending>        journal after boot (pending: unacknowledged, retained)
  EVENT <seq> <time_ns> <record hex>        an event decided and journaled (wall clock ns)
  PAUSED <produced>                         --stop-after reached, still serving
  DONE <produced>                           the last event (seq N) is journaled
  ACKED <seq>                               the app acknowledged up to seq (polled every 20 ms)
It never exits by itself: the host ends it (SIGTERM, or SIGKILL for a power cut).
"""

import asyncio
import sys
import time
from binascii import hexlify

import bluetooth

import protocol
from ble_server import BleServer
from journal import Journal

BASE_TIME = 1763800000  # 2025-11-22, unix seconds: events carry a valid time


def screening(seq):
    """The deterministic event for sequence number `seq`: one in ten FEVER,
    two in ten RECHECK, the rest CLEAR (the host test uses the same rule)."""
    r = seq % 10
    if r == 0:
        outcome, core = protocol.FEVER, 38.5 + (seq % 7) / 10
    elif r in (3, 7):
        outcome, core = protocol.RECHECK, 37.6 + (seq % 3) / 10
    else:
        outcome, core = protocol.CLEAR, 36.4 + (seq % 9) / 10
    return protocol.ScreeningEvent(
        time=BASE_TIME + seq,
        kind=protocol.EVENT_SCREENING,
        outcome=outcome,
        core_c=core,
        core_u_c=0.3,
        skin_c=core - 1.5,
        skin_u_c=0.2,
        distance_m=1.0 + (seq % 20) / 10,
        track_id=seq & 0xFFFF,
        flags=protocol.FLAG_TIME_VALID | protocol.FLAG_CALIBRATED,
    )


def option(args, name, default):
    if name in args:
        return int(args[args.index(name) + 1])
    return default


async def produce(server, journal, total, interval_ms, stop_after, wait_link_ms):
    if wait_link_ms:
        while not server.secure():
            await asyncio.sleep_ms(10)
        await asyncio.sleep_ms(wait_link_ms)
    produced = 0
    buf = bytearray(protocol.EVENT_SIZE)
    while journal.next_seq <= total:
        if stop_after and produced >= stop_after:
            print("PAUSED", produced)
            return
        ev = screening(journal.next_seq)
        t_ns = time.time_ns()
        seq = server.record(ev)
        produced += 1
        protocol.encode_event_into(buf, 0, ev)
        print("EVENT", seq, t_ns, hexlify(buf).decode())
        await asyncio.sleep_ms(interval_ms)
    print("DONE", produced)


async def live_frames(server):
    pixels = [30.0 + (i % 13) * 0.25 for i in range(32 * 24)]
    body = protocol.encode_frame_body(32, 24, 25.0, pixels)
    while True:
        if server.live():
            server.send_frame(body)  # False while the previous frame is on its way: fine
        await asyncio.sleep_ms(1)


async def watch_acks(journal):
    last = journal.acked
    while True:
        if journal.acked != last:
            last = journal.acked
            print("ACKED", last)
        await asyncio.sleep_ms(20)


async def main(args):
    total = option(args, "--events", 1000)
    interval_ms = option(args, "--interval-ms", 10)
    stop_after = option(args, "--stop-after", 0)
    capacity = option(args, "--capacity", 256)
    wait_link_ms = option(args, "--wait-link", 0)
    journal = Journal(capacity=capacity, clock=lambda: BASE_TIME)
    server = BleServer(bluetooth.BLE(), journal, serial="sim-ble-helmet")
    print("READY", journal.next_seq, journal.acked, journal.pending())
    asyncio.create_task(server.run())
    asyncio.create_task(watch_acks(journal))
    if "--frames" in args:
        asyncio.create_task(live_frames(server))
    await produce(server, journal, total, interval_ms, stop_after, wait_link_ms)
    while True:  # keep serving until the host stops us
        await asyncio.sleep_ms(1000)


asyncio.run(main(sys.argv[1:]))
