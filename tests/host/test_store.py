"""The companion app's local store: WAL, idempotent replays, outbox atomicity, retention, CSV, queries."""

import csv
import datetime
import io
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import protocol as P
from companion_app import store as S

REPO = Path(__file__).resolve().parents[2]
H = "AA:BB:CC:DD:EE:01"
T0 = 1_790_000_000.0  # the app's clock in these tests


def ev(seq, outcome=P.FEVER, kind=P.EVENT_SCREENING, time_valid=True, **kw):
    if kind != P.EVENT_SCREENING:
        return P.ScreeningEvent(seq=seq, time=int(T0) - 60, kind=kind, outcome=outcome, flags=P.FLAG_TIME_VALID)
    args = dict(core_c=38.6, core_u_c=0.5, skin_c=37.2, skin_u_c=0.4, distance_m=1.5, track_id=7)
    args.update(kw)
    return P.ScreeningEvent(
        seq=seq, time=int(T0) - 60, outcome=outcome, flags=P.FLAG_TIME_VALID if time_valid else 0, **args
    )


@pytest.fixture
def clock():
    class Clock:
        t = T0

        def __call__(self):
            return self.t

    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = S.Store(str(tmp_path / "app.db"), clock=clock)
    yield s
    s.close()


def test_wal_mode_and_synchronous(tmp_path):
    with S.Store(str(tmp_path / "a.db")) as s:
        assert s.pragma("journal_mode") == "wal"
        assert s.pragma("synchronous") == 2  # FULL
        assert s.pragma("foreign_keys") == 1
    with S.Store(str(tmp_path / "b.db"), synchronous="NORMAL") as s:
        assert s.pragma("synchronous") == 1
    with pytest.raises(ValueError):
        S.Store(str(tmp_path / "c.db"), synchronous="OFF")


def test_schema_version_and_migration_from_v1(tmp_path):
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.executescript(S._MIGRATIONS[0] + "; PRAGMA user_version=1;")
    db.execute(
        "INSERT INTO events (helmet_id, seq, kind, outcome, received_at, event_time, track_id, flags)"
        " VALUES ('h', 5, 1, 2, 1.0, 1.0, 0, 0)"
    )
    db.commit()
    db.close()
    with S.Store(path) as s:
        assert s.schema_version() == S.SCHEMA_VERSION
        row = s.event("h", 5)
        assert row is not None and row.coverage_k == 2.0  # the v2 column, defaulted
    with S.Store(path) as s:  # opening again is a no-op
        assert s.schema_version() == S.SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    path = str(tmp_path / "new.db")
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=%d" % (S.SCHEMA_VERSION + 1))
    db.close()
    with pytest.raises(S.StoreError, match="newer than this app"):
        S.Store(path)


def test_replay_is_idempotent(store):
    assert store.add_event(H, ev(1)) is True
    assert store.add_event(H, ev(1)) is False
    assert store.add_events(H, [ev(1), ev(2), ev(2), ev(3, P.CLEAR)]) == [False, True, False, True]
    assert store.count_events() == 3
    assert [(r.seq, r.state) for r in store.outbox()] == [(1, "pending"), (2, "pending")]
    # Another helmet may use the same sequence numbers.
    assert store.add_event("other", ev(1)) is True
    assert store.next_seqs() == {H: 4, "other": 2}


def test_only_flagged_screening_events_enter_the_outbox(store):
    store.add_events(
        H,
        [
            ev(1, P.FEVER),
            ev(2, P.RECHECK, core_c=None, core_u_c=float("inf")),
            ev(3, P.CLEAR),
            ev(4, P.FAULT_SENSOR_BUS, kind=P.EVENT_FAULT),
            ev(5, 0, kind=P.EVENT_BOOT),
        ],
    )
    assert store.count_events() == 5
    assert [r.seq for r in store.outbox()] == [1, 2]


class CrashingStore(S.Store):
    """Fails between the event INSERT and the outbox INSERT."""

    def _insert_outbox(self, db, helmet_id, seq, now):
        raise RuntimeError("simulated crash between the two writes")


def test_event_and_outbox_row_are_one_transaction(tmp_path, clock):
    path = str(tmp_path / "app.db")
    with CrashingStore(path, clock=clock) as s:
        with pytest.raises(RuntimeError, match="simulated crash"):
            s.add_event(H, ev(1))
        # A CLEAR event needs no outbox row and is stored.
        assert s.add_event(H, ev(2, P.CLEAR)) is True
    with S.Store(path, clock=clock) as s:
        assert s.event(H, 1) is None
        assert s.outbox() == []
        # The replayed event is new (nothing half-written) and gets both rows.
        assert s.add_event(H, ev(1)) is True
        assert [r.seq for r in s.outbox()] == [1]


_INGEST_CHILD = textwrap.dedent(
    """
    import sys
    import protocol as P
    from companion_app.store import Store
    s = Store(sys.argv[1])
    seq = s.next_seqs().get("h", 0)
    print("ready", flush=True)
    while True:
        s.add_event("h", P.ScreeningEvent(seq=seq, outcome=(P.FEVER, P.CLEAR, P.RECHECK)[seq % 3], core_c=38.0))
        seq += 1
    """
)


def test_sigkill_during_ingest_never_leaves_a_flagged_event_without_outbox_row(tmp_path):
    path = str(tmp_path / "app.db")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "shared"), str(REPO)]))
    for delay in (0.05, 0.2, 0.35):
        p = subprocess.Popen([sys.executable, "-c", _INGEST_CHILD, path], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert p.stdout.readline().strip() == "ready"
            time.sleep(delay)
        finally:
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            p.stdout.close()
    with S.Store(path) as s:
        flagged = [r for r in s.events(limit=None) if S.is_flagged(r.kind, r.outcome)]
        assert len(flagged) > 0
        assert {(r.helmet_id, r.seq) for r in flagged} == {(r.helmet_id, r.seq) for r in s.outbox(limit=None)}
        seqs = sorted(r.seq for r in s.events(limit=None))
        assert seqs == list(range(len(seqs)))  # every run resumed where the last one stopped


def test_time_source(store, clock):
    store.add_event(H, ev(1), received_at=T0)
    store.add_event(H, ev(2, time_valid=False), received_at=T0 + 5)
    a, b = store.event(H, 1), store.event(H, 2)
    assert a.time_from_helmet and a.event_time == T0 - 60
    assert not b.time_from_helmet and b.helmet_time is None and b.event_time == T0 + 5


def test_queries_filter_by_outcome_time_and_helmet(store):
    store.add_events(H, [ev(1, P.FEVER), ev(2, P.CLEAR), ev(3, P.RECHECK)], received_at=T0)
    store.add_events(
        "other",
        [ev(1, P.FEVER, time_valid=False), ev(2, P.FAULT_SENSOR_DATA, kind=P.EVENT_FAULT)],
        received_at=T0 + 100,
    )
    assert [(r.helmet_id, r.seq) for r in store.events(outcomes=[P.FEVER])] == [("other", 1), (H, 1)]
    assert [r.seq for r in store.events(outcomes=[P.FEVER, P.RECHECK], helmet_id=H, newest_first=False)] == [1, 3]
    # Filters use the event time: the helmet's clock when valid, else the time received.
    assert [(r.helmet_id, r.seq) for r in store.events(since=T0 + 50)] == [("other", 1)]
    assert len(store.events(until=T0)) == 4
    assert len(store.events(screening_only=True)) == 4
    assert store.events(outcomes=[]) == []
    assert len(store.events(limit=2)) == 2
    assert store.events(outcomes=[P.FEVER])[0].outcome_name == "FEVER"


def test_retention_purge_keeps_unacknowledged_outbox_rows(store, clock):
    old = T0 - 10 * 86400
    store.add_events(H, [ev(i, P.FEVER) for i in range(1, 5)] + [ev(5, P.CLEAR)], received_at=old)
    store.add_event(H, ev(6, P.CLEAR), received_at=T0 - 3600)  # recent: kept
    rows = {r.seq: r for r in store.outbox()}
    store.mark_sent(rows[1].id, "Observation/x", 201, "created")
    store.mark_failed(rows[2].id, "rejected (HTTP 400)", 400)
    store.claim_next(T0)  # the oldest due pending row: seq 3 (1 is sent, 2 failed)
    assert store.outbox_row(rows[3].id).state == "sending"  # and seq 4 stays pending
    deleted = store.purge(days=S.DEFAULT_RETENTION_DAYS)
    assert deleted == 2  # seq 1 (acknowledged) and seq 5 (CLEAR)
    assert store.event(H, 1) is None and store.event(H, 5) is None
    assert [r.seq for r in store.outbox()] == [2, 3, 4]  # failed, sending, pending: all kept
    assert all(store.event(H, s) is not None for s in (2, 3, 4, 6))
    assert store.purge(days=0, now=T0) == 1  # only seq 6 can go now
    with pytest.raises(ValueError):
        store.purge(days=-1)


def test_csv_export(store):
    store.add_event(H, ev(1, P.FEVER), received_at=T0)
    store.add_event(H, ev(2, P.RECHECK, core_c=None, skin_u_c=float("inf"), distance_m=None), received_at=T0 + 1)
    store.add_event(H, ev(3, P.CLEAR, time_valid=False, distance_m=float("inf")), received_at=T0 + 2)
    store.add_event(H, ev(4, P.FAULT_SENSOR_BUS, kind=P.EVENT_FAULT), received_at=T0 + 3)
    out = io.StringIO()
    assert store.export_csv(out) == 4
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(S.Store.CSV_HEADER)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["seq"] for r in rows] == ["1", "2", "4", "3"]  # oldest event time first (3: app's clock)
    by = {r["seq"]: r for r in rows}
    for r in rows:
        for col in ("event_time", "received_at"):
            t = datetime.datetime.fromisoformat(r[col])
            assert t.utcoffset() == datetime.timedelta(0)
    assert by["1"]["event_time"] == "2026-09-21T14:12:20+00:00"
    assert by["1"]["time_source"] == "helmet" and by["3"]["time_source"] == "app"
    assert by["3"]["event_time"] == by["3"]["received_at"]
    assert by["1"]["outcome"] == "FEVER" and by["1"]["core_c"] == "38.60" and by["1"]["core_expanded_u_c"] == "0.50"
    assert by["1"]["upload_state"] == "pending" and by["3"]["upload_state"] == ""
    assert by["2"]["core_c"] == "" and by["2"]["core_expanded_u_c"] == "" and by["2"]["skin_expanded_u_c"] == "inf"
    assert by["2"]["distance_m"] == "" and by["3"]["distance_m"] == "inf"
    assert by["4"]["kind"] == "fault" and by["4"]["outcome"] == "FAULT 1"
    only = io.StringIO()
    assert store.export_csv(only, outcomes=[P.FEVER]) == 1


def test_outbox_states(store, clock):
    store.add_events(H, [ev(1), ev(2), ev(3)])
    first, event = store.claim_next()
    assert (first.seq, first.state, first.attempts, event.seq) == (1, "sending", 1, 1)
    store.mark_retry(first.id, T0 + 30, "server unreachable (connection refused)")
    row = store.outbox_row(first.id)
    assert (row.state, row.next_attempt_at, row.last_error) == (
        "pending",
        T0 + 30,
        "server unreachable (connection refused)",
    )
    assert "retry at" in row.status
    assert store.claim_next()[0].seq == 2  # seq 1 is not due yet
    assert store.claim_next()[0].seq == 3
    assert store.claim_next() is None
    assert store.next_due_at() == T0 + 30
    # A killed process left 2 and 3 in "sending": they come back, due now.
    assert store.recover_interrupted() == 2
    assert store.outbox_counts() == {"pending": 3, "sending": 0, "sent": 0, "failed": 0}
    row = store.claim_next()[0]
    store.mark_failed(row.id, "rejected by the server (HTTP 400): bad", 400)
    assert store.outbox_row(row.id).status == "failed: rejected by the server (HTTP 400): bad"
    row3 = store.claim_next()[0]
    store.mark_sent(row3.id, "Observation/abc", 201, "created (HTTP 201)")
    sent = store.outbox_row(row3.id)
    assert (sent.state, sent.server_ref, sent.http_status, sent.acked_at) == ("sent", "Observation/abc", 201, T0)
    assert store.retry_now() == 2  # the failed one and the waiting one
    assert store.outbox_counts() == {"pending": 2, "sending": 0, "sent": 1, "failed": 0}
    assert store.next_due_at() == T0


def test_bench_ingest(tmp_path):
    rate = S.bench_ingest(str(tmp_path / "bench.db"), n=300)
    print("store ingest: %.0f events/s (synchronous=FULL, one transaction per event)" % rate)
    assert rate > 20
