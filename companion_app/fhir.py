"""FHIR R4 Observation for a flagged screening event (plain dicts, standard library only).

    obs = build_observation(event_row)        # a store.EventRow (FEVER or RECHECK)
    header = if_none_exist(obs)               # "identifier=<system>|<value>" for conditional create

The builder needs nothing but the standard library, so it runs on Android
(python-for-android) without pydantic's native core; validate() checks a
resource with the PyPI package fhir.resources and is used by the tests and
the ingest server.  fhir.resources 8 ships R5 as its default models and R4B
and STU3 as subpackages, no pure R4: we validate with fhir.resources.R4B,
whose Observation has the same elements as R4's for everything used here.

Mapping, and why:
- status final, category vital-signs, code LOINC 8310-5 (body temperature),
  valueQuantity the CORE temperature estimate in UCUM Cel: what the design's
  upload format asks for.  A RECHECK may have no estimate (too far, too little
  skin): then dataAbsentReason "unknown" replaces the value.
- No subject: the screened person is not identified.  So the resource does
  not claim the vital-signs profile (meta.profile), whose subject is 1..1.
- device: a logical reference (identifier of the helmet), not Device/<id>:
  helmet ids are BLE addresses ("AA:BB:..") that are not valid resource ids,
  and the server need not hold a Device resource for each helmet.
- identifier: IDENTIFIER_SYSTEM + "<helmet id>-<seq>"; unique per reading, so
  a conditional create (If-None-Exist) makes every retry idempotent.
- effectiveDateTime: the helmet's clock when the event had FLAG_TIME_VALID,
  else the time the app received the event; a note says which.
- interpretation (v3-ObservationInterpretation): H (high) for FEVER; IND
  (indeterminate) for RECHECK, which is exactly "this reading cannot decide".
- components (codes of the project's own code system, CODE_SYSTEM): skin
  temperature (Cel), the expanded uncertainties of core and skin with the
  coverage factor k stated, distance (m) and the screening outcome.
  Uncertainties are temperature DIFFERENCES, so their unit is K (UCUM Cel is
  an offset scale and is not meant for differences; 1 K = 1 degC step).
  "inf" on the wire (unknown, or >= 5.10 degC) becomes ">= 5.1 K"; a distance
  beyond 12.70 m becomes "> 12.7 m"; an unknown one a dataAbsentReason.
"""

import datetime
import math
import urllib.parse

import protocol as P
from calibration import OUTCOME_NAMES

# The project's URIs.  URNs rather than URLs because the project owns no
# domain; a deployment that does may substitute its own.
IDENTIFIER_SYSTEM = "urn:fever-screening-helmet:screening-event"
DEVICE_SYSTEM = "urn:fever-screening-helmet:helmet"
CODE_SYSTEM = "urn:fever-screening-helmet:code"

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

U_SATURATED_C = 5.1  # the wire's largest uncertainty: 255 * 0.02 degC

_INTERPRETATION = {
    P.FEVER: ("H", "High"),
    P.RECHECK: ("IND", "Indeterminate"),
    P.CLEAR: ("N", "Normal"),
}

_FLAG_TEXT = (
    (P.FLAG_CALIBRATED, "device calibration applied"),
    (P.FLAG_SKIN_OCCLUDED, "skin partly hidden (mask, glasses or hat)"),
    (P.FLAG_DISTANCE_TOF, "distance from the time-of-flight sensor"),
    (P.FLAG_ALARM_SILENCED, "alarm silenced by the officer"),
)


def observation_identifier(helmet_id: str, seq: int) -> str:
    return "%s-%d" % (helmet_id, seq)


def _iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")


def _code(code: str, display: str, system: str = CODE_SYSTEM) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _absent(text: str) -> dict:
    return {"coding": [{"system": DATA_ABSENT, "code": "unknown", "display": "Unknown"}], "text": text}


def _qty(value: float, unit: str, code: str, comparator: str | None = None) -> dict:
    q = {"value": round(value, 2), "unit": unit, "system": UCUM, "code": code}
    if comparator:
        q["comparator"] = comparator
    return q


def _temperature(value: float | None) -> dict | None:
    return None if value is None else _qty(value, "Cel", "Cel")


def _uncertainty(u: float | None) -> dict | None:
    if u is None:
        return None
    if math.isinf(u) or u >= U_SATURATED_C:
        return _qty(U_SATURATED_C, "K", "K", ">=")
    return _qty(u, "K", "K")


def _component(code: str, display: str, quantity: dict | None, absent_text: str) -> dict:
    c = {"code": _code(code, display)}
    if quantity is None:
        c["dataAbsentReason"] = _absent(absent_text)
    else:
        c["valueQuantity"] = quantity
    return c


def build_observation(ev) -> dict:
    """The Observation (a JSON-ready dict) for one stored screening event:
    anything with store.EventRow's attributes."""
    if ev.kind != P.EVENT_SCREENING or ev.outcome not in _INTERPRETATION:
        raise ValueError("only screening results become Observations (kind %r, outcome %r)" % (ev.kind, ev.outcome))
    outcome = OUTCOME_NAMES[ev.outcome]
    k = ev.coverage_k
    interp_code, interp_display = _INTERPRETATION[ev.outcome]
    if ev.helmet_time is not None:
        effective = float(ev.helmet_time)
        time_note = "effectiveDateTime is the helmet's clock."
    else:
        effective = ev.received_at
        time_note = (
            "effectiveDateTime is the time the companion app received the reading (the helmet's clock was not set)."
        )
    if ev.distance_m is None:
        distance = None
    elif math.isinf(ev.distance_m):
        distance = _qty(12.7, "m", "m", ">")
    else:
        distance = _qty(ev.distance_m, "m", "m")
    flags = [text for bit, text in _FLAG_TEXT if ev.flags & bit]
    notes = [
        "Screening at a distance by a 32x24 thermal helmet: a prompt for a check with a clinical thermometer,"
        " not a diagnosis. Value: core temperature estimated from skin temperature; outcome %s." % outcome,
        time_note,
    ]
    if flags:
        notes.append("Flags: %s." % "; ".join(flags))
    obs = {
        "resourceType": "Observation",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": observation_identifier(ev.helmet_id, ev.seq)}],
        "status": "final",
        "category": [
            {
                "coding": [{"system": OBS_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}],
                "text": "Vital Signs",
            }
        ],
        "code": _code("8310-5", "Body temperature", LOINC),
        "effectiveDateTime": _iso(effective),
        "device": {
            "identifier": {"system": DEVICE_SYSTEM, "value": ev.helmet_id},
            "display": "Fever-screening helmet %s" % ev.helmet_id,
        },
        "interpretation": [
            {"coding": [{"system": INTERPRETATION, "code": interp_code, "display": interp_display}], "text": outcome}
        ],
        "note": [{"text": n} for n in notes],
        "component": [
            _component(
                "skin-temperature", "Skin temperature", _temperature(ev.skin_c), "skin temperature not available"
            ),
            _component(
                "core-temperature-expanded-uncertainty",
                "Expanded uncertainty of the core temperature estimate (k=%g)" % k,
                _uncertainty(ev.core_u_c if ev.core_c is not None else None),
                "no core temperature estimate",
            ),
            _component(
                "skin-temperature-expanded-uncertainty",
                "Expanded uncertainty of the skin temperature (k=%g)" % k,
                _uncertainty(ev.skin_u_c if ev.skin_c is not None else None),
                "skin temperature not available",
            ),
            _component("coverage-factor", "Coverage factor k of the expanded uncertainties", _qty(k, "1", "1"), ""),
            _component("distance", "Distance from the helmet to the person", distance, "distance unknown"),
            {
                "code": _code("screening-outcome", "Screening outcome"),
                "valueCodeableConcept": _code(outcome.lower(), outcome),
            },
        ],
    }
    temp = _temperature(ev.core_c)
    if temp is None:
        obs["dataAbsentReason"] = _absent("too far or too little skin visible to estimate a temperature")
    else:
        obs["valueQuantity"] = temp
    return obs


def identifier_of(obs: dict) -> tuple[str, str]:
    ident = obs["identifier"][0]
    return ident["system"], ident["value"]


def escape_token(s: str) -> str:
    """FHIR search escaping of a token part: \\ , $ | are escaped with \\."""
    for ch in ("\\", ",", "$", "|"):
        s = s.replace(ch, "\\" + ch)
    return s


def if_none_exist(obs: dict) -> str:
    """The If-None-Exist header: the search "identifier=<system>|<value>",
    FHIR-escaped and percent-encoded like a URL query (keeping : / | readable)."""
    system, value = identifier_of(obs)
    token = "%s|%s" % (escape_token(system), escape_token(value))
    return "identifier=" + urllib.parse.quote(token, safe=":/|\\-._~")


def validate(obs: dict):
    """Validate with fhir.resources (R4B models); returns the model, raises
    pydantic's ValidationError (a ValueError) when invalid.  Imported here so
    that the app never needs fhir.resources."""
    from fhir.resources.R4B.observation import Observation

    if obs.get("resourceType") != "Observation":
        raise ValueError("resourceType must be Observation, got %r" % (obs.get("resourceType"),))
    return Observation.model_validate(obs)
