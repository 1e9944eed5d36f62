"""The uploader killed (SIGKILL) in the middle of uploads and restarted: no loss, no duplicate at the server.

The uploader runs as its own process (python -m companion_app.uploader
--drain) against the real ingest server over HTTPS on 127.0.0.1 and is killed
at random moments, a bounded number of times; a last run finishes the job.
"""

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import protocol as P
from companion_app import fhir
from companion_app import uploader as U
from companion_app.store import Store
from ingest_server.launch import IngestServer, tls_test_files

REPO = Path(__file__).resolve().parents[2]
TOKEN = "crash-test-token"
HELMETS = ("AA:BB:CC:DD:EE:01", "AA:BB:CC:DD:EE:02")
KILLS = 15
N_PER_HELMET = 120


def fill(path):
    """Two helmets' events; two thirds of them flagged.  -> expected identifiers."""
    expected = set()
    with Store(path) as s:
        for h in HELMETS:
            evs = []
            for i in range(N_PER_HELMET):
                outcome = (P.FEVER, P.RECHECK, P.CLEAR)[i % 3]
                evs.append(P.ScreeningEvent(seq=i, time=0, outcome=outcome, core_c=38.2, core_u_c=0.6))
                if outcome != P.CLEAR:
                    expected.add(fhir.observation_identifier(h, i))
            s.add_events(h, evs)
    return expected


def uploader_cmd(db, srv, cafile):
    return [
        sys.executable,
        "-m",
        "companion_app.uploader",
        "--db",
        db,
        "--endpoint",
        srv.url,
        "--token",
        TOKEN,
        "--cafile",
        cafile,
        "--backoff-base",
        "0.05",
        "--backoff-cap",
        "0.2",
        "--drain",
    ]


@pytest.fixture
def tls(tmp_path):
    return tls_test_files(tmp_path / "tls")


@pytest.fixture
def env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "shared"), str(REPO)]))


def server_ids(srv):
    obs = srv.observations(TOKEN)
    return collections.Counter(o["identifier"][0]["value"] for o in obs)


def test_sigkill_mid_upload_loses_nothing_and_duplicates_nothing(tmp_path, tls, env):
    cafile, certfile, keyfile = tls
    db = str(tmp_path / "app.db")
    expected = fill(db)
    rng = random.Random(int(os.environ.get("CRASH_SEED", "20261122")))
    with IngestServer(tmp_path / "obs.db", {"phone": TOKEN}, cert=(certfile, keyfile), cafile=cafile) as srv:
        progress = []
        for _ in range(KILLS):
            p = subprocess.Popen(uploader_cmd(db, srv, cafile), env=env, cwd=REPO, stdout=subprocess.DEVNULL)
            try:
                # Start-up takes a few hundred ms; then uploads go at tens per second.
                time.sleep(rng.uniform(0.3, 0.8))
            finally:
                p.send_signal(signal.SIGKILL)
                p.wait(10)
            progress.append(sum(server_ids(srv).values()))
            if progress[-1] == len(expected):
                break
        # The last run, not killed, finishes the job.
        r = subprocess.run(uploader_cmd(db, srv, cafile), env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        ids = server_ids(srv)
    assert set(ids) == expected  # no loss
    assert max(ids.values()) == 1  # no duplicate
    with Store(db) as s:
        assert s.outbox_counts() == {"pending": 0, "sending": 0, "sent": len(expected), "failed": 0}
        rows = s.outbox(limit=None)
    # Rows whose POST was interrupted or whose answer was lost (the server
    # already had them: 200).
    print(
        "server count after each kill: %s; rows sent more than once: %d, answered 200 (already there): %d"
        % (progress, sum(r.attempts > 1 for r in rows), sum(r.http_status == 200 for r in rows))
    )
    assert len(progress) >= 2 and progress[0] < len(expected)  # the kills did land mid-drain


def test_kill_after_the_server_stored_it_but_before_sent_was_recorded(tmp_path, tls, env):
    """The exact window the conditional create is for, made deterministic:
    the POST reached the server, the process died before marking the row."""
    cafile, certfile, keyfile = tls
    db = str(tmp_path / "app.db")
    expected = fill(db)
    with IngestServer(tmp_path / "obs.db", {"phone": TOKEN}, cert=(certfile, keyfile), cafile=cafile) as srv:
        cfg = U.UploadConfig(srv.url, TOKEN, cafile=cafile)
        with Store(db) as s:
            for _ in range(5):
                row, ev = s.claim_next()
                r = U.post_observation(cfg, fhir.build_observation(ev), time.time())
                assert r.http_status == 201
                # ...and here the process "dies": the rows stay in "sending".
            assert s.outbox_counts()["sending"] == 5
        r = subprocess.run(uploader_cmd(db, srv, cafile), env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        ids = server_ids(srv)
    assert set(ids) == expected and max(ids.values()) == 1
    with Store(db) as s:
        statuses = collections.Counter(row.http_status for row in s.outbox(limit=None))
    assert statuses == {200: 5, 201: len(expected) - 5}
