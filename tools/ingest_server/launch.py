"""Start and stop the ingest server as a subprocess (tests and `make demo`).

with IngestServer(db, {"app": "secret"}, cert=(certfile, keyfile), cafile=ca) as srv:
    srv.url   # "https://127.0.0.1:PORT"
"""

import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

TOOLS = Path(__file__).resolve().parent.parent


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class IngestServer:
    def __init__(self, db, tokens, port=0, host="127.0.0.1", cert=None, cafile=None, start_timeout_s=20.0):
        self.db, self.tokens, self.host = str(db), dict(tokens), host
        self.port = port or free_port(host)
        self.cert, self.cafile, self.start_timeout_s = cert, cafile, start_timeout_s
        self.proc = None
        self.url = "%s://%s:%d" % ("https" if cert else "http", host, self.port)

    def start(self):
        cmd = [sys.executable, "-m", "ingest_server", "--host", self.host, "--port", str(self.port), "--db", self.db]
        for device, token in self.tokens.items():
            cmd += ["--token", "%s=%s" % (device, token)]
        if self.cert:
            cmd += ["--certfile", str(self.cert[0]), "--keyfile", str(self.cert[1])]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TOOLS), env.get("PYTHONPATH", "")) if p)
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read() if self.proc.stdout else ""
                raise RuntimeError("ingest server exited with %s:\n%s" % (self.proc.returncode, out))
            try:
                self.health()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("ingest server did not answer /health within %.0f s" % self.start_timeout_s)

    def _conn(self, timeout=2.0):
        if self.cert:
            ctx = ssl.create_default_context(cafile=self.cafile)
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None):
        """-> (status, headers dict, body bytes)."""
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def health(self):
        status, _, body = self.request("GET", "/health")
        if status != 200:
            raise OSError("health: HTTP %d" % status)
        return json.loads(body)

    def observations(self, token):
        """Every stored Observation (the GET /Observation Bundle's resources)."""
        status, _, body = self.request("GET", "/Observation?_count=1000", headers={"Authorization": "Bearer " + token})
        if status != 200:
            raise RuntimeError("GET /Observation: HTTP %d %s" % (status, body[:200]))
        return [e["resource"] for e in json.loads(body).get("entry", [])]

    def stop(self):
        """Terminate (then kill) the process; safe to call twice."""
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if p.stdout:
            p.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def tls_test_files(directory, hosts=("127.0.0.1", "localhost", "::1")):
    """A throw-away CA and a server certificate for `hosts` (PyPI trustme),
    written as PEM files: -> (cafile, certfile, keyfile).  For tests and the
    demo only: a real deployment uses a certificate from a real CA."""
    import trustme

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert(*hosts)
    cafile, certfile, keyfile = d / "ca.pem", d / "server.pem", d / "server.key"
    ca.cert_pem.write_to_path(str(cafile))
    cert.private_key_pem.write_to_path(str(keyfile))
    with open(certfile, "wb") as f:
        for blob in cert.cert_chain_pems:
            f.write(blob.bytes())
    return str(cafile), str(certfile), str(keyfile)
