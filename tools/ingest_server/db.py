"""SQLite persistence of the ingest server: Observations and their identifiers.

An identifier (system, value) names at most one Observation (UNIQUE): a
conditional create racing another for the same identifier cannot store a
duplicate, it finds the winner instead."""

import json
import sqlite3
import threading
import uuid

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observations (
    id            TEXT PRIMARY KEY,
    resource      TEXT NOT NULL,     -- JSON as stored (with id and meta)
    submitted_by  TEXT NOT NULL,     -- the device whose token posted it
    received_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS identifiers (
    observation_id TEXT NOT NULL REFERENCES observations (id),
    system         TEXT NOT NULL,    -- '' when the identifier has none
    value          TEXT NOT NULL,
    UNIQUE (system, value)
);
CREATE INDEX IF NOT EXISTS identifiers_value ON identifiers (value);
"""


class Duplicate(Exception):
    """An identifier of the new resource already names another."""


class ObservationDB:
    def __init__(self, path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: once the server answers 201 the client forgets the reading.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    def find(self, system, value):
        """Ids of Observations with this identifier; system None = any system."""
        with self._lock:
            if system is None:
                rows = self._db.execute("SELECT observation_id FROM identifiers WHERE value = ?", (value,))
            else:
                rows = self._db.execute(
                    "SELECT observation_id FROM identifiers WHERE system = ? AND value = ?", (system, value)
                )
            return [r[0] for r in rows]

    def create(self, resource, submitted_by, now_iso):
        """Store a new resource (gets id and meta); raises Duplicate."""
        rid = uuid.uuid4().hex
        resource = dict(resource, id=rid, meta={"versionId": "1", "lastUpdated": now_iso})
        idents = [(i.get("system", ""), i["value"]) for i in resource.get("identifier", []) if "value" in i]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO observations (id, resource, submitted_by, received_at) VALUES (?, ?, ?, ?)",
                    (rid, json.dumps(resource), submitted_by, now_iso),
                )
                self._db.executemany(
                    "INSERT INTO identifiers (observation_id, system, value) VALUES (?, ?, ?)",
                    [(rid, s, v) for s, v in idents],
                )
            except sqlite3.IntegrityError as e:
                self._db.execute("ROLLBACK")
                raise Duplicate(str(e)) from None
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return resource

    def get(self, rid):
        with self._lock:
            row = self._db.execute("SELECT resource FROM observations WHERE id = ?", (rid,)).fetchone()
        return json.loads(row[0]) if row else None

    def listing(self, limit=100, ids=None):
        """(resource, submitted_by, received_at), newest first."""
        sql = "SELECT resource, submitted_by, received_at FROM observations"
        args = []
        if ids is not None:
            sql += " WHERE id IN (%s)" % ",".join("?" * len(ids))
            args = list(ids)
        sql += " ORDER BY received_at DESC, rowid DESC LIMIT %d" % int(limit)
        with self._lock:
            return [(json.loads(r), by, at) for r, by, at in self._db.execute(sql, args)]

    def count(self):
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM observations").fetchone()[0]
