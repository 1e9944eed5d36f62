"""Store-and-forward upload of flagged readings: drains the store's outbox as FHIR R4 Observations.

    up = Uploader(store, UploadConfig("https://fhir.example/fhir", token="..."))
    task = asyncio.create_task(up.run())      # forever; up.status for the UI
    up.wake()                                 # new flagged event, or "retry now"

Protocol: POST <endpoint>/Observation with If-None-Exist: identifier=<system>|<value>
(conditional create: a repeated POST of the same reading creates nothing, the
server answers 200 with the existing resource), Authorization: Bearer <token>,
over HTTPS with certificate verification (cafile for a private CA).

Why the standard library (http.client in a worker thread via asyncio.to_thread):
it needs no native code, so it runs unchanged under python-for-android, and
one request at a time is all a phone uploading a few readings needs.

Crash safety: a row is moved to "sending" (committed) before the POST and to
"sent" after the answer.  A process killed in between leaves it in
"sending"; at the next start recover_interrupted() makes it pending again and
it is re-POSTed; the conditional create turns that into a 200, not a
duplicate.  Nothing is lost: the outbox row was written with the event.

Retries: transport errors, 408, 429, 5xx and malformed answers (not FHIR
JSON, invalid JSON, truncated bodies: a captive portal or a broken proxy)
are retried with exponential backoff and FULL jitter: delay = uniform(0,
min(cap, base * 2**(n-1))) after n failures in a row (defaults base 2 s, cap
600 s; configurable so tests stay short).  Failures in a row are counted for
the endpoint, not per reading, and the whole queue waits: when the server is
down, every reading would fail alike.  A Retry-After (seconds or HTTP-date)
replaces the backoff delay (capped at retry_after_max_s).  Other 4xx answers
are not retried: the row becomes "failed" with the reason, until "retry now".
"""

import argparse
import asyncio
import dataclasses
import email.utils
import http.client
import ipaddress
import json
import logging
import random
import socket
import ssl
import sys
import time
import urllib.parse

from . import fhir
from .store import PENDING, SENDING, Store, iso_utc

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
MAX_RESPONSE = 1 << 20  # bytes read from an answer; more is not a FHIR Observation
USER_AGENT = "fever-screening-helmet-companion/0.1"

SENT_OK = "sent"
RETRY = "retry"
FAILED = "failed"


@dataclasses.dataclass
class UploadConfig:
    endpoint: str  # FHIR base URL, e.g. https://host/fhir (POST goes to <endpoint>/Observation)
    token: str
    cafile: str | None = None  # CA bundle to trust instead of the system's (tests, private CAs)
    timeout_s: float = 20.0
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 600.0
    retry_after_max_s: float = 86400.0  # a broken server asking for a year is not obeyed
    idle_poll_s: float = 30.0  # look at the outbox this often even without wake()
    allow_http_loopback: bool = False  # plain http, to 127.0.0.1/::1/localhost only (demo, tests)

    def check(self) -> None:
        u = urllib.parse.urlsplit(self.endpoint)
        if u.scheme == "http":
            if not (self.allow_http_loopback and _is_loopback(u.hostname or "")):
                raise ValueError("upload endpoint must be https:// (plain http only to loopback, when allowed)")
        elif u.scheme != "https":
            raise ValueError("upload endpoint must be an https:// URL, got %r" % self.endpoint)
        if not u.hostname:
            raise ValueError("upload endpoint has no host: %r" % self.endpoint)
        if not self.token:
            raise ValueError("no upload token configured")
        if not 0 < self.backoff_base_s <= self.backoff_cap_s:
            raise ValueError("need 0 < backoff_base_s <= backoff_cap_s")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass
class Result:
    outcome: str  # SENT_OK, RETRY or FAILED
    reason: str  # for people: the uploads screen shows it
    http_status: int | None = None
    retry_after_s: float | None = None
    server_ref: str | None = None


def full_jitter(failures: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """AWS "full jitter": uniform over [0, min(cap, base * 2**(failures-1))]."""
    ceiling = min(cap_s, base_s * 2.0 ** min(max(failures - 1, 0), 60))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date);
    None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _diagnostics(body: bytes, ctype: str) -> str:
    """A short reason from an error body: OperationOutcome diagnostics if any."""
    try:
        doc = json.loads(body)
        issues = doc.get("issue", []) if isinstance(doc, dict) else []
        text = "; ".join(str(i.get("diagnostics") or i.get("code", "")) for i in issues if isinstance(i, dict))
        if text:
            return text[:300]
    except ValueError:
        pass
    if "html" in ctype:
        return "an HTML page"
    snippet = body[:120].decode("utf-8", "replace").strip()
    return snippet or "no details"


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """Certificate and host-name verification on.  Android has no CA bundle
    where OpenSSL looks: there, without a cafile, use certifi's if present
    (pure Python; add it to the buildozer requirements)."""
    ctx = ssl.create_default_context(cafile=cafile)
    if cafile is None and ctx.cert_store_stats()["x509_ca"] == 0:
        try:
            import certifi
        except ImportError:
            return ctx  # every HTTPS upload will then say "TLS certificate not trusted"
        ctx.load_verify_locations(certifi.where())
    return ctx


def post_observation(cfg: UploadConfig, obs: dict, now: float) -> Result:
    """One conditional create (blocking; run it in a thread).  Never raises
    for network or server trouble: every case becomes a Result."""
    u = urllib.parse.urlsplit(cfg.endpoint)
    path = u.path.rstrip("/") + "/Observation"
    if u.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            u.hostname, u.port, timeout=cfg.timeout_s, context=tls_context(cfg.cafile)
        )
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=cfg.timeout_s)
    body = json.dumps(obs, separators=(",", ":")).encode()
    headers = {
        "Content-Type": FHIR_JSON + "; charset=utf-8",
        "Accept": FHIR_JSON,
        "Authorization": "Bearer " + cfg.token,
        "If-None-Exist": fhir.if_none_exist(obs),
        "User-Agent": USER_AGENT,
    }
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read(MAX_RESPONSE)
        status = resp.status
        rh = {k.lower(): v for k, v in resp.getheaders()}
        # read(amt) returns short data when the connection drops early;
        # resp.length is what Content-Length announced and did not arrive.
        if resp.length:
            if len(data) < MAX_RESPONSE:
                return Result(RETRY, "malformed response: truncated body (%d bytes received)" % len(data), status)
            return Result(RETRY, "malformed response: more than %d bytes" % MAX_RESPONSE, status)
    except ssl.SSLCertVerificationError as e:
        return Result(RETRY, "TLS certificate not trusted: %s" % (e.verify_message or e))
    except ssl.SSLError as e:
        return Result(RETRY, "TLS error: %s" % (e.reason or e))
    except ConnectionRefusedError:
        return Result(RETRY, "server unreachable (connection refused)")
    except TimeoutError:
        return Result(RETRY, "no answer within %g s" % cfg.timeout_s)
    except socket.gaierror as e:
        return Result(RETRY, "cannot resolve %s: %s" % (u.hostname, e.strerror or e))
    except http.client.IncompleteRead as e:
        return Result(RETRY, "malformed response: truncated body (%d bytes received)" % len(e.partial))
    except http.client.RemoteDisconnected:
        return Result(RETRY, "server closed the connection without answering")
    except http.client.HTTPException as e:
        return Result(RETRY, "malformed response: %s %s" % (type(e).__name__, str(e)[:100]))
    except OSError as e:
        return Result(RETRY, "network error: %s" % (e.strerror or e))
    finally:
        conn.close()
    return classify(status, rh, data, obs, now)


def classify(status: int, headers: dict, data: bytes, obs: dict, now: float) -> Result:
    """What an HTTP answer means for the outbox row (headers: lower-case names)."""
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    retry_after = parse_retry_after(headers.get("retry-after"), now)
    if status in (200, 201):
        return _accepted(status, headers, data, ctype, obs)
    if 200 <= status < 300:
        return Result(FAILED, "unexpected answer HTTP %d to a create" % status, status)
    if 300 <= status < 400:
        return Result(
            FAILED, "redirected (HTTP %d to %s): fix the endpoint" % (status, headers.get("location", "?")), status
        )
    if status in (408, 429):
        what = "server busy (HTTP 429)" if status == 429 else "request timeout at the server (HTTP 408)"
        return Result(RETRY, what, status, retry_after)
    if status in (401, 403):
        return Result(
            FAILED, "not authorised (HTTP %d): check the upload token: %s" % (status, _diagnostics(data, ctype)), status
        )
    if 400 <= status < 500:
        return Result(FAILED, "rejected by the server (HTTP %d): %s" % (status, _diagnostics(data, ctype)), status)
    if 500 <= status < 600:
        return Result(RETRY, "server error (HTTP %d)" % status, status, retry_after)
    return Result(RETRY, "malformed response: HTTP status %d" % status, status)


def _accepted(status: int, headers: dict, data: bytes, ctype: str, obs: dict) -> Result:
    """200/201: success only if it really is the server's FHIR answer (a captive
    portal or proxy also says 200, with an HTML page)."""
    location = headers.get("location")
    if not data and status == 201 and location:  # Prefer: return=minimal style
        return Result(SENT_OK, "created (HTTP 201)", status, server_ref=location)
    if ctype not in (FHIR_JSON, "application/json"):
        kind = "an HTML page (captive portal or proxy?)" if "html" in ctype else repr(ctype or "no content type")
        return Result(RETRY, "malformed response: HTTP %d with %s instead of FHIR JSON" % (status, kind), status)
    try:
        doc = json.loads(data)
    except ValueError as e:
        return Result(RETRY, "malformed response: invalid JSON (%s)" % str(e)[:80], status)
    if not isinstance(doc, dict) or doc.get("resourceType") != "Observation":
        got = doc.get("resourceType") if isinstance(doc, dict) else type(doc).__name__
        return Result(RETRY, "malformed response: expected an Observation, got %r" % (got,), status)
    ours = dict(zip(("system", "value"), fhir.identifier_of(obs), strict=True))
    idents = doc.get("identifier")
    if isinstance(idents, list) and not any(
        isinstance(i, dict) and i.get("system") == ours["system"] and i.get("value") == ours["value"] for i in idents
    ):
        return Result(FAILED, "the server answered with a different Observation", status)
    ref = location or ("Observation/%s" % doc["id"] if isinstance(doc.get("id"), str) else None)
    what = "created (HTTP 201)" if status == 201 else "already on the server (HTTP 200)"
    return Result(SENT_OK, what, status, server_ref=ref)


class Uploader:
    def __init__(
        self, store: Store, cfg: UploadConfig, clock=time.time, rng: random.Random | None = None, on_status=None
    ):
        cfg.check()
        self.store, self.cfg, self.clock = store, cfg, clock
        self.rng = rng or random.Random()
        self.on_status = on_status
        self.failures_in_a_row = 0
        self.paused_until = 0.0
        self.sent = 0
        self.status = "not started"
        self._wake = asyncio.Event()

    def _say(self, text: str) -> None:
        if text == self.status:
            return
        self.status = text
        log.info("uploader: %s", text)
        if self.on_status is not None:
            self.on_status(text)

    def retry_now(self) -> int:
        """The uploads screen's button: failed and waiting rows are due now."""
        n = self.store.retry_now()
        self.failures_in_a_row = 0
        self.wake()
        return n

    def wake(self) -> None:
        """New work or "retry now": stop waiting (also ends a backoff pause)."""
        self.paused_until = 0.0
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))
        except asyncio.TimeoutError:
            pass
        self._wake.clear()

    async def run(self, stop_when_idle: bool = False) -> None:
        """Drain the outbox; forever, or until nothing is pending or sending
        (stop_when_idle; failed rows wait for "retry now")."""
        n = self.store.recover_interrupted(self.clock())
        if n:
            self._say("resuming %d interrupted upload(s)" % n)
        while True:
            now = self.clock()
            if now < self.paused_until:
                await self._sleep(self.paused_until - now)
                continue
            item = self.store.claim_next(now)
            if item is None:
                counts = self.store.outbox_counts()
                if counts[PENDING] == 0 and counts[SENDING] == 0:
                    self._say("idle: nothing waiting to upload" + self._failed_note(counts))
                    if stop_when_idle:
                        return
                due = self.store.next_due_at()
                await self._sleep(self.cfg.idle_poll_s if due is None else min(self.cfg.idle_poll_s, due - now))
                continue
            await self._send(*item)

    @staticmethod
    def _failed_note(counts: dict) -> str:
        return " (%d failed: see uploads)" % counts["failed"] if counts["failed"] else ""

    async def _send(self, row, ev) -> None:
        name = fhir.observation_identifier(ev.helmet_id, ev.seq)
        self._say("uploading %s (attempt %d)" % (name, row.attempts))
        try:
            obs = fhir.build_observation(ev)
            result = await asyncio.to_thread(post_observation, self.cfg, obs, self.clock())
        except asyncio.CancelledError:
            # Stopped mid-request: back to pending (a kill would leave it in
            # "sending", which recover_interrupted handles the same way).
            self.store.mark_retry(row.id, self.clock(), "upload interrupted")
            raise
        except Exception as e:  # a bug, not the network: keep the row, say what happened
            log.exception("uploader: building or sending %s", name)
            result = Result(RETRY, "internal error: %s" % e)
        now = self.clock()
        if result.outcome == SENT_OK:
            self.failures_in_a_row = 0
            self.sent += 1
            self.store.mark_sent(row.id, result.server_ref, result.http_status or 0, result.reason)
            self._say("%s: %s" % (name, result.reason))
        elif result.outcome == FAILED:
            self.store.mark_failed(row.id, result.reason, result.http_status)
            self._say("%s failed: %s" % (name, result.reason))
        else:
            self.failures_in_a_row += 1
            if result.retry_after_s is not None:
                delay = min(result.retry_after_s, self.cfg.retry_after_max_s)
            else:
                delay = full_jitter(self.failures_in_a_row, self.cfg.backoff_base_s, self.cfg.backoff_cap_s, self.rng)
            self.paused_until = now + delay
            self.store.mark_retry(row.id, now + delay, result.reason, result.http_status)
            self._say(
                "waiting %.0f s (until %s): %s (%d failure(s) in a row)"
                % (delay, iso_utc(now + delay), result.reason, self.failures_in_a_row)
            )


def main(argv=None) -> int:
    """python -m companion_app.uploader --db app.db --endpoint URL --token T [--drain]"""
    ap = argparse.ArgumentParser(prog="companion_app.uploader", description=main.__doc__)
    ap.add_argument("--db", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--cafile")
    ap.add_argument("--backoff-base", type=float, default=2.0)
    ap.add_argument("--backoff-cap", type=float, default=600.0)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--allow-http-loopback", action="store_true")
    ap.add_argument("--drain", action="store_true", help="exit once nothing is pending")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    cfg = UploadConfig(
        args.endpoint,
        args.token,
        cafile=args.cafile,
        timeout_s=args.timeout,
        backoff_base_s=args.backoff_base,
        backoff_cap_s=args.backoff_cap,
        allow_http_loopback=args.allow_http_loopback,
    )
    with Store(args.db) as store:
        up = Uploader(store, cfg)
        asyncio.run(up.run(stop_when_idle=args.drain))
        counts = store.outbox_counts()
    print("uploader: sent=%d %s" % (up.sent, " ".join("%s=%d" % kv for kv in counts.items())))
    return 0 if counts["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
