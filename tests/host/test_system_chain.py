"""The whole chain of `make demo` (issue 6, item 7) as a system test.

tools/demo_chain.py runs crowd_walk (febrile walker at core 39.6) through the
helmet firmware under MicroPython, the emulated radio (bridge, bluezoo on a
private dbus-daemon, bleak), the companion app's controller, store and
uploader, and the ingest server over HTTPS with a throw-away CA.  The
assertions read the server's Observation listing (GET /Observation, as the
health authority would), the helmet's journal and the scene's ground truth.

One run for the module (about 5 s; bounded by demo_chain.TIMEOUT_S); every
process it starts is stopped when it ends, also on failure.
"""

import asyncio
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT / "tools", ROOT / "shared", ROOT):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import protocol as P  # noqa: E402
from ble_host.environment import unavailable_reason  # noqa: E402

_reason = unavailable_reason()
if _reason is not None:
    pytest.skip(_reason, allow_module_level=True)

import demo_chain  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chain")
    return asyncio.run(demo_chain.run_chain(workdir, ui="none", say=lambda _line: None))


def _seq(obs):
    return int(obs["identifier"][0]["value"].rsplit("-", 1)[1])


def _outcome(obs):
    """The screening outcome the Observation states (its own component)."""
    for c in obs["component"]:
        if c["code"]["coding"][0]["code"] == "screening-outcome":
            return c["valueCodeableConcept"]["coding"][0]["code"].upper()
    raise AssertionError("no screening-outcome component: %r" % obs)


def _journal(run):
    """seq -> event, screening events the helmet journaled."""
    return {seq: ev for seq, _, _, ev in run.journal if ev.kind == P.EVENT_SCREENING}


def test_the_febrile_walkers_fever_reaches_the_server_exactly_once(run):
    journal = _journal(run)
    febrile = demo_chain.expected(run)["febrile"]
    assert febrile == ["febrile"]  # the scene has one febrile walker
    fever_obs = [o for o in run.observations if _outcome(o) == "FEVER"]
    assert len(fever_obs) == 1, [o["identifier"] for o in fever_obs]
    (obs,) = fever_obs
    seq = _seq(obs)
    # It is the helmet's FEVER decision, and the ground truth puts it on the febrile walker.
    assert journal[seq].outcome == P.FEVER
    assert run.owner[seq] == "febrile"
    assert obs["interpretation"][0]["coding"][0]["code"] == "H"
    assert obs["valueQuantity"]["unit"] == "Cel" and obs["valueQuantity"]["value"] >= 38.0
    assert obs["code"]["coding"][0]["code"] == "8310-5"
    assert "subject" not in obs  # the screened person is not identified
    # The helmet raised exactly one FEVER in the whole crowd, and the app alarmed for it.
    assert [s for s, ev in journal.items() if ev.outcome == P.FEVER] == [seq]
    assert (P.FEVER, seq) in run.alarms


def test_uploaded_counts_match_the_flagged_events(run):
    journal = _journal(run)
    flagged = sorted(s for s, ev in journal.items() if ev.outcome in (P.FEVER, P.RECHECK))
    counts = {name: sum(ev.outcome == code for ev in journal.values()) for code, name in demo_chain.OUTCOMES.items()}
    m = re.fullmatch(r"uploaded=(\d+) fever=(\d+) recheck=(\d+) clear=(\d+)", run.summary)
    assert m, run.summary
    uploaded, fever, recheck, clear = map(int, m.groups())
    # The app's summary is the helmet's decisions, and what it uploaded is the flagged ones.
    assert (fever, recheck, clear) == (counts["fever"], counts["recheck"], counts["clear"])
    assert uploaded == fever + recheck == len(flagged) == len(run.observations)
    assert sorted(_seq(o) for o in run.observations) == flagged
    # Every journaled event reached the app and was acknowledged back to the helmet.
    assert run.app_events == len(run.journal) == run.acked


def test_no_observation_for_clear_readings(run):
    journal = _journal(run)
    clear = {s for s, ev in journal.items() if ev.outcome == P.CLEAR}
    assert clear, "the scene has people the helmet clears (walker1 at 0.5 m)"
    assert not clear & {_seq(o) for o in run.observations}
    assert {_outcome(o) for o in run.observations} <= {"FEVER", "RECHECK"}


def test_nothing_uploaded_twice(run):
    idents = [o["identifier"][0]["value"] for o in run.observations]
    assert len(idents) == len(set(idents))
    assert all(v.startswith(run.helmet_id + "-") for v in idents)
    # Each outbox row was sent once and the server created it (201): no repeat
    # that the conditional create had to absorb.
    assert [r.state for r in run.outbox] == ["sent"] * len(run.outbox)
    assert all(r.http_status == 201 for r in run.outbox), run.outbox


def test_every_check_of_the_demo_holds(run):
    failed = [what for what, ok in demo_chain.checks(run) if not ok]
    assert not failed, failed
