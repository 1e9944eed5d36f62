"""The reference ingest server as a real process on loopback: auth, conditional create, validation, listing, TLS."""

import base64
import copy
import json
import ssl
import subprocess
import sys
import urllib.parse

import pytest

import protocol as P
from companion_app import fhir
from companion_app.store import Store
from ingest_server.launch import TOOLS, IngestServer, tls_test_files

TOKEN = "s3cret-token"
AUTH = {"Authorization": "Bearer " + TOKEN}
POST_HEADERS = dict(AUTH, **{"Content-Type": "application/fhir+json"})


def observation(seq, helmet="AA:BB:CC:DD:EE:01"):
    with Store(":memory:") as s:
        s.add_event(
            helmet,
            P.ScreeningEvent(seq=seq, time=1_790_000_000, outcome=P.FEVER, core_c=38.9, core_u_c=0.5, flags=1),
        )
        return fhir.build_observation(s.event(helmet, seq))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("ingest")
    with IngestServer(d / "obs.db", {"phone-1": TOKEN, "phone-2": "other-token"}) as srv:
        yield srv


def post(srv, obs, headers=POST_HEADERS, conditional=True):
    h = dict(headers)
    if conditional:
        h["If-None-Exist"] = fhir.if_none_exist(obs)
    status, rh, body = srv.request("POST", "/Observation", json.dumps(obs), h)
    return status, rh, json.loads(body) if body else None


def test_health_needs_no_token(server):
    assert server.health()["status"] == "ok"


@pytest.mark.parametrize(
    "auth", [None, "Bearer wrong", "Basic " + base64.b64encode(b"phone-1:" + TOKEN.encode()).decode()]
)
def test_post_needs_a_valid_bearer_token(server, auth):
    headers = {"Content-Type": "application/fhir+json"}
    if auth:
        headers["Authorization"] = auth
    status, rh, body = post(server, observation(1), headers)
    assert status == 401
    assert rh["www-authenticate"].startswith("Bearer")
    assert body["resourceType"] == "OperationOutcome"


def test_conditional_create_is_idempotent(server):
    obs = observation(100)
    status, rh, created = post(server, obs)
    assert status == 201
    assert rh["content-type"].startswith("application/fhir+json")
    assert rh["location"] == "%s/Observation/%s/_history/1" % (server.url, created["id"])
    assert created["identifier"] == obs["identifier"] and created["meta"]["versionId"] == "1"
    again, rh2, existing = post(server, obs)
    assert again == 200 and existing["id"] == created["id"]  # FHIR: the existing resource, nothing created
    # Another device's token sees the same resource (the identifier is the key).
    third, _, other = post(server, obs, dict(POST_HEADERS, Authorization="Bearer other-token"))
    assert third == 200 and other["id"] == created["id"]
    ident = urllib.parse.quote("%s|%s" % fhir.identifier_of(obs))
    status, _, body = server.request("GET", "/Observation?identifier=" + ident, headers=AUTH)
    bundle = json.loads(body)
    assert status == 200 and bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 1 and bundle["entry"][0]["resource"]["id"] == created["id"]
    status, _, body = server.request("GET", "/Observation/" + created["id"], headers=AUTH)
    assert status == 200 and json.loads(body)["id"] == created["id"]
    assert server.request("GET", "/Observation/nope", headers=AUTH)[0] == 404


def test_plain_create_of_a_known_identifier_conflicts(server):
    obs = observation(101)
    assert post(server, obs, conditional=False)[0] == 201
    status, _, body = post(server, obs, conditional=False)
    assert status == 409 and "If-None-Exist" in body["issue"][0]["diagnostics"]


def test_identifier_with_search_special_characters(server):
    obs = observation(5, helmet="weird|id,$x\\y & z")
    assert post(server, obs)[0] == 201
    assert post(server, obs)[0] == 200


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda o: o.pop("code"), "code"),
        (lambda o: o.update(status="bogus"), "status"),
        (lambda o: o.update(valueQuantity={"value": "warm"}), "valueQuantity"),
        (lambda o: o.update(unknownField=1), "unknownField"),
        (lambda o: o.update(resourceType="Patient"), "Observation"),
        (lambda o: o.update(effectiveDateTime="yesterday"), "effectiveDateTime"),
    ],
)
def test_invalid_observation_gets_400_with_operation_outcome(server, mutate, expect):
    obs = copy.deepcopy(observation(200))
    mutate(obs)
    status, rh, body = post(server, obs, conditional=False)
    assert status == 400
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "invalid" and expect in body["issue"][0]["diagnostics"]


def test_malformed_requests(server):
    status, _, body = server.request("POST", "/Observation", b"{not json", POST_HEADERS)
    assert status == 400 and "not JSON" in json.loads(body)["issue"][0]["diagnostics"]
    status, _, _ = server.request("POST", "/Observation", b"<xml/>", dict(AUTH, **{"Content-Type": "text/xml"}))
    assert status == 415
    obs = observation(300)
    bad = dict(POST_HEADERS, **{"If-None-Exist": "_id=abc"})
    assert server.request("POST", "/Observation", json.dumps(obs), bad)[0] == 400
    big = dict(obs, note=[{"text": "x" * 300_000}])
    assert server.request("POST", "/Observation", json.dumps(big), POST_HEADERS)[0] == 413


def test_html_listing(server):
    status, rh, _ = server.request("GET", "/")
    assert status == 401 and rh["www-authenticate"].startswith("Basic")
    obs = observation(400, helmet="<script>alert(1)</script>")
    assert post(server, obs)[0] == 201
    basic = "Basic " + base64.b64encode(b"phone-1:" + TOKEN.encode()).decode()
    status, rh, body = server.request("GET", "/", headers={"Authorization": basic})
    page = body.decode()
    assert status == 200 and rh["content-type"].startswith("text/html")
    assert "Observations received" in page and "38.9 Cel" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;-400" in page
    assert server.request("GET", "/", headers=AUTH)[0] == 200


def test_observations_persist_across_restart(tmp_path):
    db = tmp_path / "obs.db"
    obs = observation(1)
    with IngestServer(db, {"p": TOKEN}) as srv:
        assert post(srv, obs)[0] == 201
    with IngestServer(db, {"p": TOKEN}) as srv:
        assert post(srv, obs)[0] == 200
        assert len(srv.observations(TOKEN)) == 1


def test_refuses_to_start_without_a_token(tmp_path):
    env = {"PYTHONPATH": str(TOOLS), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "ingest_server", "--db", str(tmp_path / "x.db")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode != 0 and "no device token" in r.stderr


def test_https_with_a_test_ca(tmp_path):
    cafile, certfile, keyfile = tls_test_files(tmp_path / "tls")
    with IngestServer(tmp_path / "obs.db", {"p": TOKEN}, cert=(certfile, keyfile), cafile=cafile) as srv:
        assert srv.url.startswith("https://127.0.0.1:")
        assert post(srv, observation(1))[0] == 201
        # Without the test CA the certificate is not trusted.
        srv.cafile = None
        with pytest.raises(ssl.SSLCertVerificationError):
            srv.health()
