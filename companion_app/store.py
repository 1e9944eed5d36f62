"""The companion app's local store: screening events and the upload outbox (SQLite).

    store = Store("app.db")
    is_new = store.add_event("AA:BB:CC:DD:EE:FF", event)   # decoded protocol.ScreeningEvent
    store.events(outcomes=[FEVER], since=t0)               # the log screen
    store.export_csv(fileobj)                               # CSV with a header, ISO-8601 times
    store.purge(days=3)                                     # retention (privacy stance)

Choices, and why:
- WAL mode: the UI reads while the link writes and the uploader updates the
  outbox, and readers never block the writer.
- synchronous=FULL (default): the app acknowledges events to the helmet once
  they are stored, and the helmet then forgets them.  With WAL + NORMAL a
  commit survives an app crash (SIGKILL) but not a power loss or kernel panic,
  so a phone dying at the wrong moment could lose an event the helmet already
  dropped.  FULL fsyncs the WAL at every commit; screening produces at most a
  few events a second, far below what FULL sustains (see bench_ingest).
- Events are keyed by (helmet_id, seq): a replayed event is ignored
  (INSERT OR IGNORE) and add_event says whether it was new.
- A flagged event (a screening event with outcome FEVER or RECHECK) gets its
  outbox row in the same transaction as the event: no flagged event without
  an outbox row, whatever the moment of a crash.  Fault and boot events are
  logged but never uploaded: the upload is a vital-signs Observation, and a
  sensor fault is not a vital sign.  CLEAR results stay local too.
- The outbox row holds no copy of the reading (the Observation is built from
  the event row when it is sent), so the event row is the only copy of the
  health data and retention applies to it alone.  An acknowledged ("sent")
  row keeps only its state and the server's reference, for the uploads screen.
- Retention purge deletes events received more than `days` ago, with their
  acknowledged outbox rows, but never an event whose outbox row is still
  pending, sending or failed: no flagged reading is lost unsent.
  secure_delete overwrites deleted content, and a WAL checkpoint after the
  purge leaves no old copy in the WAL file.
- Only what screening needs is stored: no frames, no images.
"""

import contextlib
import csv
import datetime
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import protocol as P
from calibration import DEFAULT_COVERAGE_K, OUTCOME_NAMES

DEFAULT_RETENTION_DAYS = 3  # "a few days" (design.md, privacy stance)
SCHEMA_VERSION = 2

PENDING = "pending"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
OUTBOX_STATES = (PENDING, SENDING, SENT, FAILED)
UNACKNOWLEDGED = (PENDING, SENDING, FAILED)

_KIND_NAMES = {P.EVENT_SCREENING: "screening", P.EVENT_FAULT: "fault", P.EVENT_BOOT: "boot"}

# Migrations: index i takes the schema from version i to i + 1.  Append only;
# each runs in its own transaction together with the user_version bump.
_MIGRATIONS = (
    """
    CREATE TABLE events (
        helmet_id   TEXT    NOT NULL,
        seq         INTEGER NOT NULL,
        kind        INTEGER NOT NULL,
        outcome     INTEGER NOT NULL,   -- outcome, fault code or 0 (boot)
        helmet_time INTEGER,            -- unix s from the helmet, NULL if its clock was unset
        received_at REAL    NOT NULL,   -- unix s, the app's clock
        event_time  REAL    NOT NULL,   -- helmet_time if valid, else received_at
        core_c      REAL,               -- degC, NULL = not available
        core_u_c    REAL,               -- expanded uncertainty, degC (inf = unknown)
        skin_c      REAL,
        skin_u_c    REAL,
        distance_m  REAL,               -- NULL = unknown, inf = beyond 12.70 m
        track_id    INTEGER NOT NULL,
        flags       INTEGER NOT NULL,
        PRIMARY KEY (helmet_id, seq)
    );
    CREATE INDEX events_time ON events (event_time);
    CREATE INDEX events_received ON events (received_at);
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        helmet_id       TEXT    NOT NULL,
        seq             INTEGER NOT NULL,
        state           TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL    NOT NULL,
        created_at      REAL    NOT NULL,
        updated_at      REAL    NOT NULL,
        status          TEXT    NOT NULL DEFAULT 'waiting to upload',
        last_error      TEXT,
        UNIQUE (helmet_id, seq),
        FOREIGN KEY (helmet_id, seq) REFERENCES events (helmet_id, seq)
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    """,
    # v2: what the server answered (its id for the resource, HTTP status) and
    # when, for the uploads screen; the coverage factor k of the expanded
    # uncertainties (a helmet setting the wire record does not carry).
    """
    ALTER TABLE outbox ADD COLUMN server_ref TEXT;
    ALTER TABLE outbox ADD COLUMN http_status INTEGER;
    ALTER TABLE outbox ADD COLUMN acked_at REAL;
    ALTER TABLE events ADD COLUMN coverage_k REAL NOT NULL DEFAULT 2.0;
    CREATE INDEX events_outcome_time ON events (outcome, event_time);
    """,
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


class StoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class EventRow:
    helmet_id: str
    seq: int
    kind: int
    outcome: int
    helmet_time: int | None
    received_at: float
    event_time: float
    core_c: float | None
    core_u_c: float | None
    skin_c: float | None
    skin_u_c: float | None
    distance_m: float | None
    track_id: int
    flags: int
    coverage_k: float

    @property
    def time_from_helmet(self) -> bool:
        return self.helmet_time is not None

    @property
    def outcome_name(self) -> str:
        if self.kind == P.EVENT_SCREENING and 0 <= self.outcome < len(OUTCOME_NAMES):
            return OUTCOME_NAMES[self.outcome]
        if self.kind == P.EVENT_FAULT:
            return "FAULT %d" % self.outcome
        return _KIND_NAMES.get(self.kind, "kind %d" % self.kind).upper()


@dataclass(frozen=True)
class OutboxRow:
    id: int
    helmet_id: str
    seq: int
    state: str
    attempts: int
    next_attempt_at: float
    created_at: float
    updated_at: float
    status: str
    last_error: str | None
    server_ref: str | None
    http_status: int | None
    acked_at: float | None


_EVENT_COLS = (
    "helmet_id, seq, kind, outcome, helmet_time, received_at, event_time, "
    "core_c, core_u_c, skin_c, skin_u_c, distance_m, track_id, flags, coverage_k"
)
_OUTBOX_COLS = (
    "id, helmet_id, seq, state, attempts, next_attempt_at, created_at, updated_at, "
    "status, last_error, server_ref, http_status, acked_at"
)


def is_flagged(kind: int, outcome: int) -> bool:
    """Uploaded: screening results that need a follow-up (FEVER, RECHECK)."""
    return kind == P.EVENT_SCREENING and outcome in (P.FEVER, P.RECHECK)


def iso_utc(t: float | None) -> str:
    """ISO-8601 with an explicit UTC offset ("+00:00": datetime.fromisoformat
    reads it back on Python 3.10, which "Z" would not)."""
    if t is None:
        return ""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


class Store:
    def __init__(self, path: str, synchronous: str = "FULL", clock=time.time):
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be FULL or NORMAL")
        self.path = str(path)
        self.clock = clock
        # One connection shared under a lock: the UI thread and the asyncio
        # loop may both use the store; sqlite3 objects are not thread-safe.
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=%s" % synchronous.upper())
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA secure_delete=ON")
        self._migrate()

    # --- plumbing ------------------------------------------------------------
    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: committed on success, rolled back on any
        exception (so a failure between two statements leaves neither)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._lock:
            version = self.schema_version()
            if version > SCHEMA_VERSION:
                raise StoreError(
                    "%s has schema version %d, newer than this app knows (%d): update the app"
                    % (self.path, version, SCHEMA_VERSION)
                )
            for v in range(version, SCHEMA_VERSION):
                with self._tx() as db:
                    for stmt in _MIGRATIONS[v].split(";"):
                        if stmt.strip():
                            db.execute(stmt)
                    db.execute("PRAGMA user_version=%d" % (v + 1))

    def schema_version(self) -> int:
        with self._lock:
            return self._db.execute("PRAGMA user_version").fetchone()[0]

    def pragma(self, name: str):
        with self._lock:
            return self._db.execute("PRAGMA %s" % name).fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- events --------------------------------------------------------------
    def add_event(
        self,
        helmet_id: str,
        ev: P.ScreeningEvent,
        received_at: float | None = None,
        coverage_k: float = DEFAULT_COVERAGE_K,
    ) -> bool:
        """Store one decoded event; True if new, False if (helmet_id, seq) was
        already stored (a replay).  A flagged event gets its outbox row in the
        same transaction.  coverage_k: the helmet's configured k (the wire
        record carries expanded uncertainties but not k)."""
        return self.add_events(helmet_id, [ev], received_at, coverage_k)[0]

    def add_events(
        self,
        helmet_id: str,
        events: Iterable[P.ScreeningEvent],
        received_at: float | None = None,
        coverage_k: float = DEFAULT_COVERAGE_K,
    ) -> list[bool]:
        """Several events in one transaction (a replayed journal); one bool each."""
        now = self.clock() if received_at is None else received_at
        out = []
        with self._tx() as db:
            for ev in events:
                new = self._insert_event(db, helmet_id, ev, now, coverage_k)
                if new and is_flagged(ev.kind, ev.outcome):
                    self._insert_outbox(db, helmet_id, ev.seq, now)
                out.append(new)
        return out

    def _insert_event(self, db: sqlite3.Connection, helmet_id: str, ev: P.ScreeningEvent, now: float, k: float) -> bool:
        helmet_time = ev.time if (ev.flags & P.FLAG_TIME_VALID and ev.time > 0) else None
        cur = db.execute(
            "INSERT OR IGNORE INTO events (%s) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)" % _EVENT_COLS,
            (
                helmet_id,
                ev.seq,
                ev.kind,
                ev.outcome,
                helmet_time,
                now,
                float(helmet_time) if helmet_time is not None else now,
                ev.core_c,
                ev.core_u_c if ev.core_c is not None else None,
                ev.skin_c,
                ev.skin_u_c if ev.skin_c is not None else None,
                ev.distance_m,
                ev.track_id,
                ev.flags,
                k,
            ),
        )
        return cur.rowcount == 1

    def _insert_outbox(self, db: sqlite3.Connection, helmet_id: str, seq: int, now: float) -> None:
        db.execute(
            "INSERT INTO outbox (helmet_id, seq, state, next_attempt_at, created_at, updated_at)"
            " VALUES (?, ?, 'pending', ?, ?, ?)",
            (helmet_id, seq, now, now, now),
        )

    def event(self, helmet_id: str, seq: int) -> EventRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT %s FROM events WHERE helmet_id = ? AND seq = ?" % _EVENT_COLS, (helmet_id, seq)
            ).fetchone()
        return EventRow(*row) if row else None

    def events(
        self,
        outcomes: Iterable[int] | None = None,
        since: float | None = None,
        until: float | None = None,
        helmet_id: str | None = None,
        screening_only: bool = False,
        limit: int | None = 500,
        newest_first: bool = True,
    ) -> list[EventRow]:
        """Events for the log screen.  `outcomes` filters screening results
        (and implies screening_only); times are unix seconds on event_time,
        since inclusive, until exclusive."""
        where, args = self._filters(outcomes, since, until, helmet_id, screening_only)
        sql = "SELECT %s FROM events%s ORDER BY event_time %s, seq %s" % (
            _EVENT_COLS,
            where,
            "DESC" if newest_first else "ASC",
            "DESC" if newest_first else "ASC",
        )
        if limit is not None:
            sql += " LIMIT %d" % int(limit)
        with self._lock:
            return [EventRow(*r) for r in self._db.execute(sql, args)]

    @staticmethod
    def _filters(outcomes, since, until, helmet_id, screening_only):
        clauses, args = [], []
        if outcomes is not None:
            outcomes = [int(o) for o in outcomes]
            screening_only = True
            clauses.append("outcome IN (%s)" % ",".join("?" * len(outcomes)) if outcomes else "0")
            args += outcomes
        if screening_only:
            clauses.append("kind = %d" % P.EVENT_SCREENING)
        if since is not None:
            clauses.append("event_time >= ?")
            args.append(since)
        if until is not None:
            clauses.append("event_time < ?")
            args.append(until)
        if helmet_id is not None:
            clauses.append("helmet_id = ?")
            args.append(helmet_id)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args

    def count_events(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def next_seqs(self) -> dict[str, int]:
        """Next expected sequence per helmet (for the link's resume point)."""
        with self._lock:
            return {h: s + 1 for h, s in self._db.execute("SELECT helmet_id, MAX(seq) FROM events GROUP BY helmet_id")}

    # --- CSV export ------------------------------------------------------------
    CSV_HEADER = (
        "helmet_id",
        "seq",
        "event_time",
        "time_source",
        "received_at",
        "kind",
        "outcome",
        "core_c",
        "core_expanded_u_c",
        "skin_c",
        "skin_expanded_u_c",
        "distance_m",
        "track_id",
        "flags",
        "upload_state",
    )

    def export_csv(self, fileobj, **filters) -> int:
        """Write the log (same filters as events(), oldest first) as CSV with a
        header; times ISO-8601 UTC, temperatures degC with 2 decimals, empty =
        not available, "inf" = unknown uncertainty or beyond 12.70 m.
        Returns the number of rows written."""
        filters.setdefault("limit", None)
        filters.setdefault("newest_first", False)
        rows = self.events(**filters)
        with self._lock:
            states = dict(((h, s), st) for h, s, st in self._db.execute("SELECT helmet_id, seq, state FROM outbox"))
        w = csv.writer(fileobj, lineterminator="\n")
        w.writerow(self.CSV_HEADER)
        for r in rows:
            w.writerow(
                (
                    r.helmet_id,
                    r.seq,
                    iso_utc(r.event_time),
                    "helmet" if r.time_from_helmet else "app",
                    iso_utc(r.received_at),
                    _KIND_NAMES.get(r.kind, str(r.kind)),
                    r.outcome_name,
                    _num(r.core_c),
                    _num(r.core_u_c),
                    _num(r.skin_c),
                    _num(r.skin_u_c),
                    _num(r.distance_m),
                    r.track_id,
                    r.flags,
                    states.get((r.helmet_id, r.seq), ""),
                )
            )
        return len(rows)

    # --- retention ---------------------------------------------------------------
    def purge(self, days: float = DEFAULT_RETENTION_DAYS, now: float | None = None) -> int:
        """Delete events received more than `days` ago, except those whose
        outbox row is not yet acknowledged; returns the number deleted."""
        if days < 0:
            raise ValueError("retention days must be >= 0")
        cutoff = (self.clock() if now is None else now) - days * 86400.0
        keep = "SELECT helmet_id, seq FROM outbox WHERE state IN ('pending', 'sending', 'failed')"
        with self._tx() as db:
            db.execute(
                "DELETE FROM outbox WHERE state = 'sent' AND (helmet_id, seq) IN"
                " (SELECT helmet_id, seq FROM events WHERE received_at < ?)",
                (cutoff,),
            )
            n = db.execute(
                "DELETE FROM events WHERE received_at < ? AND (helmet_id, seq) NOT IN (%s)" % keep, (cutoff,)
            ).rowcount
        with self._lock:
            # Leave no copy of the deleted pages in the WAL file.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return n

    # --- outbox ------------------------------------------------------------------
    def recover_interrupted(self, now: float | None = None) -> int:
        """At start-up: rows a killed process left in 'sending' go back to
        pending, due at once (the server's conditional create makes the
        repeated POST harmless).  Returns how many."""
        now = self.clock() if now is None else now
        with self._tx() as db:
            return db.execute(
                "UPDATE outbox SET state = 'pending', next_attempt_at = ?, updated_at = ?,"
                " status = 'interrupted upload: will resend' WHERE state = 'sending'",
                (now, now),
            ).rowcount

    def claim_next(self, now: float | None = None) -> tuple[OutboxRow, EventRow] | None:
        """The oldest due pending row, moved to 'sending' (attempts + 1) in one
        transaction, with its event; None when nothing is due."""
        now = self.clock() if now is None else now
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, id LIMIT 1",
                (now,),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?,"
                " status = 'uploading' WHERE id = ?",
                (now, row[0]),
            )
            ob = OutboxRow(*db.execute("SELECT %s FROM outbox WHERE id = ?" % _OUTBOX_COLS, row).fetchone())
            ev = EventRow(
                *db.execute(
                    "SELECT %s FROM events WHERE helmet_id = ? AND seq = ?" % _EVENT_COLS, (ob.helmet_id, ob.seq)
                ).fetchone()
            )
        return ob, ev

    def _set(self, outbox_id: int, **cols) -> None:
        cols["updated_at"] = self.clock()
        names = ", ".join("%s = ?" % k for k in cols)
        with self._tx() as db:
            db.execute("UPDATE outbox SET %s WHERE id = ?" % names, (*cols.values(), outbox_id))

    def mark_sent(self, outbox_id: int, server_ref: str | None, http_status: int, status: str) -> None:
        self._set(
            outbox_id,
            state=SENT,
            server_ref=server_ref,
            http_status=http_status,
            status=status,
            last_error=None,
            acked_at=self.clock(),
        )

    def mark_retry(self, outbox_id: int, next_attempt_at: float, reason: str, http_status: int | None = None) -> None:
        self._set(
            outbox_id,
            state=PENDING,
            next_attempt_at=next_attempt_at,
            last_error=reason,
            http_status=http_status,
            status="%s; retry at %s" % (reason, iso_utc(next_attempt_at)),
        )

    def mark_failed(self, outbox_id: int, reason: str, http_status: int | None = None) -> None:
        self._set(outbox_id, state=FAILED, last_error=reason, http_status=http_status, status="failed: %s" % reason)

    def retry_now(self, ids: Iterable[int] | None = None) -> int:
        """The "retry now" button: failed and waiting rows become due at once."""
        now = self.clock()
        sql = (
            "UPDATE outbox SET state = 'pending', next_attempt_at = ?, updated_at = ?,"
            " status = 'retry requested' WHERE state IN ('pending', 'failed')"
        )
        args: list = [now, now]
        if ids is not None:
            ids = [int(i) for i in ids]
            sql += " AND id IN (%s)" % ",".join("?" * len(ids)) if ids else " AND 0"
            args += ids
        with self._tx() as db:
            return db.execute(sql, args).rowcount

    def outbox(self, states: Iterable[str] | None = None, limit: int | None = 500) -> list[OutboxRow]:
        sql = "SELECT %s FROM outbox" % _OUTBOX_COLS
        args: list = []
        if states is not None:
            states = list(states)
            sql += " WHERE state IN (%s)" % ",".join("?" * len(states))
            args += states
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %d" % int(limit)
        with self._lock:
            return [OutboxRow(*r) for r in self._db.execute(sql, args)]

    def outbox_row(self, outbox_id: int) -> OutboxRow | None:
        with self._lock:
            r = self._db.execute("SELECT %s FROM outbox WHERE id = ?" % _OUTBOX_COLS, (outbox_id,)).fetchone()
        return OutboxRow(*r) if r else None

    def outbox_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTBOX_STATES, 0)
        with self._lock:
            counts.update(self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
        return counts

    def next_due_at(self) -> float | None:
        """When the earliest pending row is due (None: nothing pending)."""
        with self._lock:
            return self._db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'").fetchone()[0]


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if math.isinf(x):
        return "inf"
    return "%.2f" % x


def bench_ingest(path: str, n: int = 2000, synchronous: str = "FULL", batch: int = 1) -> float:
    """Events per second the store ingests into a new database at `path`:
    n screening events, one in three flagged (so with outbox rows), committed
    `batch` events per transaction (1 = as the live link stores them)."""
    import random

    rng = random.Random(1)
    evs = [
        P.ScreeningEvent(
            seq=i,
            time=1_700_000_000 + i,
            outcome=(P.CLEAR, P.CLEAR, rng.choice((P.FEVER, P.RECHECK)))[i % 3],
            core_c=36.5 + rng.random() * 2,
            core_u_c=0.8,
            skin_c=35.0,
            skin_u_c=0.6,
            distance_m=1.5,
            track_id=i % 100,
            flags=P.FLAG_TIME_VALID,
        )
        for i in range(n)
    ]
    with Store(path, synchronous=synchronous) as store:
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            store.add_events("AA:BB:CC:DD:EE:FF", evs[i : i + batch])
        dt = time.perf_counter() - t0
        assert store.count_events() == n
    return n / dt
