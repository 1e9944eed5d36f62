"""The FHIR R4 Observation built for flagged readings validates with fhir.resources and says what it should."""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import protocol as P
from companion_app import fhir
from companion_app.store import Store
from ingest_server.app import parse_identifier_search, validate_observation

H = "AA:BB:CC:DD:EE:01"
T_HELMET = 1_790_000_000
T_RECEIVED = 1_790_000_123.4


def stored(tmp_path, e, helmet=H, k=2.0):
    with Store(str(tmp_path / "f.db")) as s:
        s.add_event(helmet, e, received_at=T_RECEIVED, coverage_k=k)
        return s.event(helmet, e.seq)


def comp(obs, code):
    (c,) = [c for c in obs["component"] if c["code"]["coding"][0]["code"] == code]
    assert c["code"]["coding"][0]["system"] == fhir.CODE_SYSTEM
    return c


def test_fever_observation(tmp_path):
    e = P.ScreeningEvent(
        seq=42,
        time=T_HELMET,
        outcome=P.FEVER,
        core_c=38.74,
        core_u_c=0.62,
        skin_c=37.31,
        skin_u_c=0.5,
        distance_m=1.25,
        track_id=3,
        flags=P.FLAG_TIME_VALID | P.FLAG_SKIN_OCCLUDED,
    )
    obs = fhir.build_observation(stored(tmp_path, e))
    model = fhir.validate(obs)
    assert model.status == "final"
    assert obs["resourceType"] == "Observation"
    assert obs["category"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
        "code": "vital-signs",
        "display": "Vital Signs",
    }
    assert obs["code"]["coding"][0]["system"] == "http://loinc.org"
    assert obs["code"]["coding"][0]["code"] == "8310-5"
    assert obs["valueQuantity"] == {"value": 38.74, "unit": "Cel", "system": "http://unitsofmeasure.org", "code": "Cel"}
    assert obs["effectiveDateTime"] == "2026-09-21T14:13:20+00:00"
    assert "subject" not in obs and "meta" not in obs  # no person, no profile claim
    assert obs["identifier"] == [{"system": fhir.IDENTIFIER_SYSTEM, "value": "AA:BB:CC:DD:EE:01-42"}]
    assert obs["device"]["identifier"] == {"system": fhir.DEVICE_SYSTEM, "value": H}
    interp = obs["interpretation"][0]["coding"][0]
    assert (interp["system"], interp["code"]) == (
        "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
        "H",
    )
    assert comp(obs, "skin-temperature")["valueQuantity"]["value"] == 37.31
    assert comp(obs, "skin-temperature")["valueQuantity"]["code"] == "Cel"
    u = comp(obs, "core-temperature-expanded-uncertainty")
    assert u["valueQuantity"] == {"value": 0.62, "unit": "K", "system": "http://unitsofmeasure.org", "code": "K"}
    assert "k=2" in u["code"]["text"]
    assert comp(obs, "coverage-factor")["valueQuantity"]["value"] == 2.0
    assert comp(obs, "distance")["valueQuantity"] == {
        "value": 1.25,
        "unit": "m",
        "system": "http://unitsofmeasure.org",
        "code": "m",
    }
    assert comp(obs, "screening-outcome")["valueCodeableConcept"]["coding"][0]["code"] == "fever"
    notes = " ".join(n["text"] for n in obs["note"])
    assert "helmet's clock" in notes and "not a diagnosis" in notes and "skin partly hidden" in notes


def test_recheck_without_estimate_and_unset_clock(tmp_path):
    e = P.ScreeningEvent(seq=7, time=0, outcome=P.RECHECK, distance_m=float("inf"), skin_c=30.0, skin_u_c=float("inf"))
    obs = fhir.build_observation(stored(tmp_path, e, k=2.5))
    fhir.validate(obs)
    assert "valueQuantity" not in obs
    assert obs["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert obs["interpretation"][0]["coding"][0]["code"] == "IND"
    assert obs["effectiveDateTime"] == "2026-09-21T14:15:23+00:00"  # the time received
    assert any("companion app received" in n["text"] for n in obs["note"])
    assert comp(obs, "distance")["valueQuantity"]["comparator"] == ">"
    assert comp(obs, "distance")["valueQuantity"]["value"] == 12.7
    su = comp(obs, "skin-temperature-expanded-uncertainty")["valueQuantity"]
    assert (su["comparator"], su["value"]) == (">=", 5.1)
    assert "dataAbsentReason" in comp(obs, "core-temperature-expanded-uncertainty")
    assert comp(obs, "coverage-factor")["valueQuantity"]["value"] == 2.5
    assert "k=2.5" in comp(obs, "skin-temperature-expanded-uncertainty")["code"]["text"]


def test_unknown_distance_is_data_absent(tmp_path):
    e = P.ScreeningEvent(seq=8, outcome=P.FEVER, core_c=39.0, core_u_c=0.4, distance_m=None)
    obs = fhir.build_observation(stored(tmp_path, e))
    fhir.validate(obs)
    assert "dataAbsentReason" in comp(obs, "distance")


def test_non_screening_events_are_not_observations(tmp_path):
    row = stored(tmp_path, P.ScreeningEvent(seq=1, kind=P.EVENT_FAULT, outcome=P.FAULT_SENSOR_BUS))
    with pytest.raises(ValueError):
        fhir.build_observation(row)


@pytest.mark.parametrize("helmet", ["AA:BB:CC:DD:EE:FF", "odd|id,with$chars\\and&more", "sp ace+plus#hash%pct"])
def test_if_none_exist_round_trips_through_the_server_parser(tmp_path, helmet):
    obs = fhir.build_observation(stored(tmp_path, P.ScreeningEvent(seq=9, outcome=P.FEVER, core_c=38.5), helmet))
    header = fhir.if_none_exist(obs)
    assert header.startswith("identifier=" + fhir.IDENTIFIER_SYSTEM + "|")
    assert parse_identifier_search(header) == (fhir.IDENTIFIER_SYSTEM, "%s-9" % helmet)


def test_invalid_observations_are_rejected():
    with pytest.raises(ValueError):
        fhir.validate({"resourceType": "Observation", "status": "final"})  # no code
    with pytest.raises(ValueError):
        fhir.validate({"resourceType": "Patient"})
    assert validate_observation({"resourceType": "Observation", "status": "bogus", "code": {"text": "x"}})


_temps = st.one_of(st.none(), st.floats(-50, 150))
_u = st.one_of(st.floats(0, 6), st.just(math.inf))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seq=st.integers(0, 2**32 - 1),
    t=st.integers(0, 2**32 - 1),
    outcome=st.sampled_from([P.FEVER, P.RECHECK]),
    core=_temps,
    core_u=_u,
    skin=_temps,
    skin_u=_u,
    dist=st.one_of(st.none(), st.floats(0, 20), st.just(math.inf)),
    flags=st.integers(0, P.EVENT_FLAGS_MASK),
    k=st.sampled_from([1.0, 2.0, 2.5, 4.0]),
    helmet=st.text(min_size=1, max_size=30),
)
def test_every_flagged_event_gives_a_valid_observation(
    tmp_path, seq, t, outcome, core, core_u, skin, skin_u, dist, flags, k, helmet
):
    # Through the wire format first: the app only ever sees decoded events.
    e = P.decode_event(
        P.encode_event(
            P.ScreeningEvent(
                seq=seq,
                time=t,
                outcome=outcome,
                core_c=core,
                core_u_c=core_u,
                skin_c=skin,
                skin_u_c=skin_u,
                distance_m=dist,
                flags=flags,
            )
        )
    )
    with Store(":memory:") as s:
        s.add_event(helmet, e, received_at=T_RECEIVED, coverage_k=k)
        obs = fhir.build_observation(s.event(helmet, seq))
    fhir.validate(obs)
    assert validate_observation(obs) is None  # and the ingest server accepts it
    assert parse_identifier_search(fhir.if_none_exist(obs)) == (fhir.IDENTIFIER_SYSTEM, "%s-%d" % (helmet, seq))
