"""The store-and-forward uploader: answers classified, backoff and Retry-After, outage, TLS, malformed servers."""

import asyncio
import email.utils
import json
import random
import socket
import threading
import time

import pytest

import protocol as P
from companion_app import fhir
from companion_app import uploader as U
from companion_app.store import Store
from ingest_server.launch import IngestServer, tls_test_files

H = "AA:BB:CC:DD:EE:01"
TOKEN = "tok-123"


def flagged(seq, outcome=P.FEVER):
    return P.ScreeningEvent(seq=seq, time=1_790_000_000 + seq, outcome=outcome, core_c=38.7, core_u_c=0.5, flags=1)


def reply(status, body=b"", ctype="application/fhir+json", headers=(), reason="X"):
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    head = "HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n" % (status, reason, len(body))
    if ctype:
        head += "Content-Type: %s\r\n" % ctype
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    return head.encode() + b"\r\n" + body


class FakeServer:
    """A loopback TCP server answering the i-th request with replies[i] (the
    last one repeats): raw bytes, so it can send anything, or (delay_s, bytes)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []  # (request line, {header: value}, body, time)
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d/fhir" % self.port
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self._answer(conn)
                except OSError:
                    pass

    def _answer(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        i = len(self.requests)
        self.requests.append((lines[0], headers, body, time.monotonic()))
        r = self.replies[min(i, len(self.replies) - 1)]
        if isinstance(r, tuple):
            if self._stop.wait(r[0]):
                return
            r = r[1]
        conn.sendall(r)

    def close(self):
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


@pytest.fixture
def fake():
    servers = []

    def make(replies):
        s = FakeServer(replies)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def store(tmp_path):
    s = Store(str(tmp_path / "app.db"))
    yield s
    s.close()


def cfg(url, **kw):
    kw.setdefault("allow_http_loopback", True)
    kw.setdefault("timeout_s", 5.0)
    return U.UploadConfig(url, TOKEN, **kw)


def obs_for(seq=1):
    with Store(":memory:") as s:
        s.add_event(H, flagged(seq))
        return fhir.build_observation(s.event(H, seq))


OBS = obs_for(1)
ECHO = dict(OBS, id="abc", meta={"versionId": "1"})
OTHER = dict(ECHO, identifier=[{"system": fhir.IDENTIFIER_SYSTEM, "value": "someone-else-9"}])
OUTCOME_400 = {
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "error", "code": "invalid", "diagnostics": "code: Field required"}],
}
TRUNCATED = b'HTTP/1.1 201 Created\r\nContent-Type: application/fhir+json\r\nContent-Length: 500\r\n\r\n{"resourceType"'
HTTP_DATE_IN_1H = email.utils.formatdate(time.time() + 3600, usegmt=True)  # at import: leave slack

CASES = [
    (
        "created",
        reply(201, ECHO, headers=[("Location", "http://x/Observation/abc/_history/1")]),
        U.SENT_OK,
        "created (HTTP 201)",
    ),
    ("exists", reply(200, ECHO), U.SENT_OK, "already on the server (HTTP 200)"),
    ("minimal", reply(201, b"", ctype=None, headers=[("Location", "http://x/Observation/abc")]), U.SENT_OK, "created"),
    ("plain json", reply(201, ECHO, ctype="application/json"), U.SENT_OK, "created"),
    ("captive portal", reply(200, b"<html><body>Log in to Wi-Fi</body></html>", "text/html"), U.RETRY, "HTML page"),
    (
        "invalid json",
        reply(
            201,
            b'{"resourceType": "Obs',
        ),
        U.RETRY,
        "malformed response: invalid JSON",
    ),
    ("truncated", TRUNCATED, U.RETRY, "truncated body"),
    ("not http", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", U.RETRY, "malformed response"),
    ("silent close", b"", U.RETRY, "closed the connection without answering"),
    ("wrong type", reply(200, b"OK", "text/plain"), U.RETRY, "'text/plain' instead of FHIR JSON"),
    ("no type", reply(200, b"OK", None), U.RETRY, "'no content type' instead of FHIR JSON"),
    ("not an observation", reply(200, OUTCOME_400), U.RETRY, "expected an Observation, got 'OperationOutcome'"),
    ("json array", reply(200, [1, 2]), U.RETRY, "expected an Observation"),
    ("other observation", reply(200, OTHER), U.FAILED, "different Observation"),
    ("400", reply(400, OUTCOME_400), U.FAILED, "rejected by the server (HTTP 400): code: Field required"),
    ("404 html", reply(404, b"<html>nope</html>", "text/html"), U.FAILED, "(HTTP 404): an HTML page"),
    ("401", reply(401, b"", None), U.FAILED, "not authorised (HTTP 401): check the upload token"),
    ("403", reply(403, b"", None), U.FAILED, "not authorised (HTTP 403)"),
    ("412", reply(412, OUTCOME_400), U.FAILED, "HTTP 412"),
    ("301", reply(301, b"", None, headers=[("Location", "https://elsewhere/")]), U.FAILED, "redirected"),
    ("204", reply(204, b"", None), U.FAILED, "unexpected answer HTTP 204"),
    ("408", reply(408, b"", None), U.RETRY, "request timeout at the server (HTTP 408)"),
    ("429", reply(429, b"", None, headers=[("Retry-After", "7")]), U.RETRY, "server busy (HTTP 429)"),
    (
        "503",
        reply(503, b"<html>down</html>", "text/html", headers=[("Retry-After", HTTP_DATE_IN_1H)]),
        U.RETRY,
        "server error (HTTP 503)",
    ),
    ("500", reply(500, b"", None), U.RETRY, "server error (HTTP 500)"),
]


@pytest.mark.parametrize("name, raw, outcome, reason", CASES, ids=[c[0] for c in CASES])
def test_answers_are_classified(fake, name, raw, outcome, reason):
    srv = fake([raw])
    r = U.post_observation(cfg(srv.url), OBS, time.time())
    assert r.outcome == outcome, r
    assert reason in r.reason
    line, headers, body, _ = srv.requests[0]
    assert line == "POST /fhir/Observation HTTP/1.1"
    assert headers["authorization"] == "Bearer " + TOKEN
    assert headers["if-none-exist"] == "identifier=%s|%s-1" % (fhir.IDENTIFIER_SYSTEM, H)
    assert headers["content-type"].startswith("application/fhir+json")
    assert json.loads(body) == OBS
    if name == "429":
        assert r.retry_after_s == 7
    if name == "503":
        assert 3000 <= r.retry_after_s <= 3601
    if name == "created":
        assert r.server_ref == "http://x/Observation/abc/_history/1"


def test_unreachable_and_timeout(fake):
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = U.post_observation(cfg("http://127.0.0.1:%d" % port), OBS, time.time())
    assert (r.outcome, r.reason) == (U.RETRY, "server unreachable (connection refused)")
    slow = fake([(3.0, reply(201, ECHO))])
    r = U.post_observation(cfg(slow.url, timeout_s=0.3), OBS, time.time())
    assert (r.outcome, r.reason) == (U.RETRY, "no answer within 0.3 s")


def test_full_jitter_and_retry_after_parsing():
    rng = random.Random(3)
    for n in range(1, 15):
        ceiling = min(10.0, 0.5 * 2 ** (n - 1))
        samples = [U.full_jitter(n, 0.5, 10.0, rng) for _ in range(200)]
        assert all(0 <= x <= ceiling for x in samples)
        assert max(samples) > 0.8 * ceiling  # the whole interval is used: FULL jitter
    now = time.time()
    assert U.parse_retry_after("120", now) == 120
    assert U.parse_retry_after(email.utils.formatdate(now + 60, usegmt=True), now) == pytest.approx(60, abs=1.5)
    assert U.parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now) == 0
    assert U.parse_retry_after("soon", now) is None
    assert U.parse_retry_after(None, now) is None


def test_endpoint_must_be_https():
    U.UploadConfig("https://fhir.example/base", "t").check()
    U.UploadConfig("http://127.0.0.1:8088", "t", allow_http_loopback=True).check()
    for bad in (
        U.UploadConfig("http://fhir.example/", "t", allow_http_loopback=True),
        U.UploadConfig("http://127.0.0.1:8088", "t"),
        U.UploadConfig("ftp://fhir.example/", "t"),
        U.UploadConfig("https://fhir.example/", ""),
        U.UploadConfig("https://fhir.example/", "t", backoff_base_s=5, backoff_cap_s=1),
    ):
        with pytest.raises(ValueError):
            bad.check()


def run(up, timeout=20.0):
    asyncio.run(asyncio.wait_for(up.run(stop_when_idle=True), timeout))


class MaxRng(random.Random):
    """Full jitter at its ceiling: makes "the backoff was not used" visible."""

    def uniform(self, a, b):
        return b


def test_4xx_is_not_retried(fake, store):
    srv = fake([reply(400, OUTCOME_400)])
    store.add_events(H, [flagged(1), flagged(2, P.RECHECK)])
    statuses = []
    up = U.Uploader(store, cfg(srv.url, backoff_base_s=30, backoff_cap_s=30), on_status=statuses.append)
    run(up)
    assert len(srv.requests) == 2  # one each, never again
    for row in store.outbox():
        assert (row.state, row.attempts, row.http_status) == ("failed", 1, 400)
        assert row.last_error == "rejected by the server (HTTP 400): code: Field required"
        assert row.status == "failed: rejected by the server (HTTP 400): code: Field required"
    assert up.status == "idle: nothing waiting to upload (2 failed: see uploads)"
    # "Retry now" sends them again.
    srv.replies = [reply(201, b"", None, headers=[("Location", "http://x/Observation/1")])]
    assert up.retry_now() == 2
    run(up)
    assert store.outbox_counts()["sent"] == 2


def test_429_retry_after_is_honoured(fake, store):
    srv = fake([reply(429, b"", None, headers=[("Retry-After", "1")]), reply(201, ECHO)])
    store.add_event(H, flagged(1))
    statuses = []
    up = U.Uploader(store, cfg(srv.url, backoff_base_s=30, backoff_cap_s=30), rng=MaxRng(), on_status=statuses.append)
    t0 = time.monotonic()
    run(up)
    assert time.monotonic() - t0 < 10  # not the 30 s backoff
    (first, second) = srv.requests
    assert 0.9 <= second[3] - first[3] <= 5
    assert any(s.startswith("waiting 1 s") and "server busy (HTTP 429)" in s for s in statuses), statuses
    row = store.outbox()[0]
    assert (row.state, row.attempts, row.http_status) == ("sent", 2, 201)


@pytest.mark.parametrize(
    "bad", [c for c in CASES if c[2] == U.RETRY and c[0] not in ("429", "503", "408")][:6], ids=lambda c: c[0]
)
def test_malformed_answer_is_retried_with_a_clear_status(fake, store, bad):
    name, raw, _, reason = bad
    srv = fake([raw, reply(201, ECHO)])
    store.add_event(H, flagged(1))
    statuses = []
    up = U.Uploader(store, cfg(srv.url, backoff_base_s=0.01, backoff_cap_s=0.05), on_status=statuses.append)
    run(up)
    assert any(reason in s and s.startswith("waiting") for s in statuses), statuses
    row = store.outbox()[0]
    assert (row.state, row.attempts) == ("sent", 2)
    assert len(srv.requests) == 2


def test_outage_then_recovery_drains_the_outbox(tmp_path, store):
    srv = IngestServer(tmp_path / "obs.db", {"phone": TOKEN})
    store.add_events(H, [flagged(i) for i in range(1, 6)] + [flagged(6, P.CLEAR)])
    up = U.Uploader(store, cfg(srv.url, backoff_base_s=0.05, backoff_cap_s=0.4))
    seen = {}  # (id, attempts) -> (updated_at, next_attempt_at, last_error)

    async def scenario():
        task = asyncio.create_task(up.run(stop_when_idle=True))
        try:
            t_end = time.monotonic() + 2.0  # the server is down for 2 s
            while time.monotonic() < t_end:
                for r in store.outbox():
                    if r.state == "pending" and r.attempts:
                        seen[(r.id, r.attempts)] = (r.updated_at, r.next_attempt_at, r.last_error)
                await asyncio.sleep(0.02)
            assert not task.done()
            await asyncio.to_thread(srv.start)
            await asyncio.wait_for(task, 20)
        finally:
            task.cancel()

    try:
        asyncio.run(scenario())
        assert len(srv.observations(TOKEN)) == 5
    finally:
        srv.stop()
    assert store.outbox_counts() == {"pending": 0, "sending": 0, "sent": 5, "failed": 0}
    assert len(seen) >= 4  # several failed attempts, each with its own next_attempt_at
    delays = [nxt - upd for upd, nxt, _ in seen.values()]
    assert all(0 <= d <= 0.4 + 1e-6 for d in delays)
    assert len(set(delays)) > 1  # jittered
    assert {err for _, _, err in seen.values()} == {"server unreachable (connection refused)"}
    assert max(r.attempts for r in store.outbox()) >= 2
    assert up.failures_in_a_row == 0


def test_https_upload_with_test_ca(tmp_path, store):
    cafile, certfile, keyfile = tls_test_files(tmp_path / "tls")
    store.add_events(H, [flagged(1), flagged(2, P.RECHECK)])
    with IngestServer(tmp_path / "obs.db", {"phone": TOKEN}, cert=(certfile, keyfile), cafile=cafile) as srv:
        # Without the test CA: the certificate is refused, and said so.
        r = U.post_observation(U.UploadConfig(srv.url, TOKEN), obs_for(1), time.time())
        assert r.outcome == U.RETRY and r.reason.startswith("TLS certificate not trusted")
        up = U.Uploader(store, U.UploadConfig(srv.url, TOKEN, cafile=cafile))
        run(up)
        assert store.outbox_counts()["sent"] == 2
        assert sorted(o["identifier"][0]["value"] for o in srv.observations(TOKEN)) == [H + "-1", H + "-2"]
        assert {r.http_status for r in store.outbox()} == {201}
        # Sent again (as after a crash): the server answers 200, nothing new is created.
        store._db.execute("UPDATE outbox SET state = 'sending'")
        run(up)
        assert {r.http_status for r in store.outbox()} == {200}
        assert len(srv.observations(TOKEN)) == 2


def test_cancelled_upload_goes_back_to_pending(fake, store):
    srv = fake([(2.0, reply(201, ECHO))])
    store.add_event(H, flagged(1))
    up = U.Uploader(store, cfg(srv.url))

    async def scenario():
        task = asyncio.create_task(up.run())
        while not srv.requests:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 10))
    row = store.outbox()[0]
    assert (row.state, row.last_error) == ("pending", "upload interrupted")
