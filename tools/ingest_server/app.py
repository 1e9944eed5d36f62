"""The ingest server's HTTP application (Starlette)."""

import base64
import datetime
import hmac
import html
import json
import urllib.parse

from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .db import Duplicate, ObservationDB

FHIR_JSON = "application/fhir+json"
MAX_BODY = 256 * 1024  # an Observation is a few kB
# Required binding of Observation.status (fhir.resources checks types, not value sets).
OBSERVATION_STATUS = {
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
}


class FhirResponse(JSONResponse):
    media_type = FHIR_JSON


def outcome(status, code, diagnostics, severity="error", headers=None):
    """An OperationOutcome response (FHIR's way of explaining an error)."""
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    return FhirResponse(body, status_code=status, headers=headers)


def validate_observation(resource):
    """None if valid, else a short reason.  fhir.resources (R4B models: the
    package has no pure R4 set, and R4B's Observation matches R4's)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        return "expected a FHIR Observation (resourceType Observation)"
    try:
        Observation.model_validate(resource)
    except ValidationError as e:
        errs = e.errors()
        return "; ".join("%s: %s" % (".".join(map(str, x["loc"])) or "Observation", x["msg"]) for x in errs[:5])
    if resource.get("status") not in OBSERVATION_STATUS:
        return "status: %r is not an ObservationStatus code" % (resource.get("status"),)
    return None


def split_token(token):
    """FHIR token search "system|value" / "|value" / "value", with \\-escapes
    -> (system or None for any, value)."""
    parts, cur, i = [], [], 0
    while i < len(token):
        ch = token[i]
        if ch == "\\" and i + 1 < len(token):
            cur.append(token[i + 1])
            i += 2
            continue
        if ch == "|":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError("more than one unescaped '|' in %r" % token)


def parse_identifier_search(query):
    """The If-None-Exist header (a search query) -> (system, value); only the
    identifier parameter is supported.  Raises ValueError."""
    params = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    names = sorted({k for k, _ in params})
    if names != ["identifier"] or len(params) != 1:
        raise ValueError("If-None-Exist must be exactly one identifier=<system>|<value> parameter, got %r" % query)
    return split_token(params[0][1])


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


def create_app(db_path, tokens):
    """tokens: {device name: bearer token}."""
    if not tokens:
        raise ValueError("no device tokens configured")
    db = ObservationDB(db_path)

    def device_for(request, allow_basic=False):
        """The device whose token authorises this request, or None."""
        auth = request.headers.get("authorization", "")
        scheme, _, cred = auth.partition(" ")
        cred = cred.strip()
        if scheme.lower() == "basic" and allow_basic:
            # For the HTML page in a browser: user = device, password = token.
            try:
                user, _, cred = base64.b64decode(cred, validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return None
            tok = tokens.get(user)
            return user if tok is not None and hmac.compare_digest(tok.encode(), cred.encode()) else None
        if scheme.lower() != "bearer" or not cred:
            return None
        found = None
        for device, tok in tokens.items():  # compare against all: no timing hint
            if hmac.compare_digest(tok.encode(), cred.encode()):
                found = device
        return found

    def unauthorised(basic=False):
        challenge = 'Basic realm="ingest server"' if basic else 'Bearer realm="ingest server"'
        return outcome(401, "login", "missing or unknown bearer token", headers={"WWW-Authenticate": challenge})

    def base_url(request):
        return str(request.base_url).rstrip("/")

    def located(request, resource, status):
        rid, vid = resource["id"], resource["meta"]["versionId"]
        return FhirResponse(
            resource,
            status_code=status,
            headers={
                "Location": "%s/Observation/%s/_history/%s" % (base_url(request), rid, vid),
                "ETag": 'W/"%s"' % vid,
                "Last-Modified": resource["meta"]["lastUpdated"],
            },
        )

    async def post_observation(request: Request):
        device = device_for(request)
        if device is None:
            return unauthorised()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in (FHIR_JSON, "application/json"):
            return outcome(415, "not-supported", "Content-Type must be %s, got %r" % (FHIR_JSON, ctype))
        body = await request.body()
        if len(body) > MAX_BODY:
            return outcome(413, "too-costly", "body larger than %d bytes" % MAX_BODY)
        try:
            resource = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return outcome(400, "invalid", "body is not JSON: %s" % e)
        problem = validate_observation(resource)
        if problem:
            return outcome(400, "invalid", problem)
        condition = request.headers.get("if-none-exist")
        if condition is not None:
            try:
                system, value = parse_identifier_search(condition)
            except ValueError as e:
                return outcome(400, "invalid", str(e))
            found = db.find(system, value)
            if len(found) > 1:
                return outcome(412, "duplicate", "If-None-Exist matches %d resources" % len(found))
            if found:  # FHIR: 200 OK with the existing resource, nothing created
                return located(request, db.get(found[0]), 200)
        try:
            stored = db.create(resource, device, now_iso())
        except Duplicate:
            if condition is None:
                return outcome(
                    409, "duplicate", "an Observation with this identifier exists; use If-None-Exist to create once"
                )
            # Lost a race with a concurrent create of the same identifier.
            return located(request, db.get(db.find(system, value)[0]), 200)
        return located(request, stored, 201)

    async def search_observations(request: Request):
        if device_for(request) is None:
            return unauthorised()
        try:
            count = min(max(int(request.query_params.get("_count", "100")), 0), 1000)
        except ValueError:
            return outcome(400, "invalid", "_count must be an integer")
        ident = request.query_params.get("identifier")
        ids = None
        if ident is not None:
            try:
                ids = db.find(*split_token(ident))
            except ValueError as e:
                return outcome(400, "invalid", str(e))
        rows = db.listing(count, ids)
        total = db.count() if ids is None else len(ids)
        bundle = {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "entry": [
                {
                    "fullUrl": "%s/Observation/%s" % (base_url(request), r["id"]),
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r, _, _ in rows
            ],
        }
        return FhirResponse(bundle)

    async def read_observation(request: Request):
        if device_for(request) is None:
            return unauthorised()
        r = db.get(request.path_params["rid"])
        if r is None:
            return outcome(404, "not-found", "no Observation %s" % request.path_params["rid"])
        return FhirResponse(r, headers={"ETag": 'W/"%s"' % r["meta"]["versionId"]})

    async def index(request: Request):
        if device_for(request, allow_basic=True) is None:
            return Response(
                "login required", status_code=401, headers={"WWW-Authenticate": 'Basic realm="ingest server"'}
            )
        return HTMLResponse(render_listing(db.listing(200), db.count()))

    async def health(request: Request):
        return JSONResponse({"status": "ok", "observations": db.count()})

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/", index, methods=["GET"]),
            Route("/Observation", post_observation, methods=["POST"]),
            Route("/Observation", search_observations, methods=["GET"]),
            Route("/Observation/{rid}", read_observation, methods=["GET"]),
        ]
    )
    app.state.db = db
    return app


def _component(resource, code):
    for c in resource.get("component", []):
        if any(x.get("code") == code for x in c.get("code", {}).get("coding", [])):
            q = c.get("valueQuantity")
            if q is not None:
                return "%s%s %s" % (q.get("comparator", ""), q.get("value"), q.get("unit", ""))
            cc = c.get("valueCodeableConcept")
            if cc is not None:
                return cc.get("text", "")
    return ""


def render_listing(rows, total):
    """A small HTML table of the newest Observations (every value escaped)."""
    e = html.escape
    lines = []
    for r, by, at in rows:
        q = r.get("valueQuantity")
        value = "%s %s" % (q.get("value"), q.get("unit", "")) if q else "(no value)"
        interp = ", ".join(i.get("text", "") for i in r.get("interpretation", []))
        ident = ", ".join(i.get("value", "") for i in r.get("identifier", []))
        cells = (
            ident,
            r.get("effectiveDateTime", ""),
            value,
            _component(r, "core-temperature-expanded-uncertainty"),
            _component(r, "distance"),
            interp,
            by,
            at,
        )
        lines.append("<tr>%s</tr>" % "".join("<td>%s</td>" % e(str(c)) for c in cells))
    head = "".join(
        "<th>%s</th>" % h
        for h in (
            "identifier",
            "effective",
            "body temperature",
            "uncertainty",
            "distance",
            "result",
            "device",
            "received",
        )
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Ingest server</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ccc}</style></head>"
        "<body><h1>Observations received</h1><p>%d in total; newest %d shown.</p>"
        "<table><tr>%s</tr>%s</table></body></html>" % (total, len(rows), head, "".join(lines))
    )
