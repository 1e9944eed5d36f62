"""Pull the event journal (firmware/journal.py) over mpremote, read-only:
nothing is acknowledged, so the app still receives every event."""

import binascii

import protocol
from bench_tools import mpr

KINDS = {protocol.EVENT_SCREENING: "screening", protocol.EVENT_FAULT: "fault", protocol.EVENT_BOOT: "boot"}


def pull(port):
    """(events, counters): events as dicts in sequence order; counters None
    when the helmet has no journal yet."""
    found = mpr.results(mpr.run(port, "exec", "import bench\nbench.dump_journal()", timeout=120))
    counters = found[-1]
    if not counters.get("present"):
        return [], None
    events = []
    for rec in found[:-1]:
        ev = protocol.decode_event(binascii.unhexlify(rec["record"]))
        d = {k: getattr(ev, k) for k in ev._FIELDS}
        d["kind_name"] = KINDS.get(ev.kind, str(ev.kind))
        events.append(d)
    return events, counters
