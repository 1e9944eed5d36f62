"""Scenario files: bundled ones load, invalid ones fail with clear messages."""

import json
import os

import pytest

from scene import Scenario, ScenarioError
from scene.builders import person, scenario
from scene.scenario import SCENARIO_DIR, schema_text

BUNDLED = ["crowd_walk", "single_distance_sweep", "hot_objects"]


def problems(data):
    with pytest.raises(ScenarioError) as e:
        Scenario.from_dict(data)
    return e.value.problems


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenarios_load_by_name_and_path(name):
    a = Scenario.load(name)
    b = Scenario.load(os.path.join(SCENARIO_DIR, name + ".json"))
    assert a.name == b.name == name
    assert a.data == b.data


def test_crowd_walk_has_what_the_brief_asks_for():
    d = Scenario.load("crowd_walk").data
    cores = [p["core_c"] for p in d["people"]]
    assert 38.8 in cores
    assert all(36.4 <= c <= 37.0 for c in cores if c != 38.8)
    assert any(p["glasses"] for p in d["people"]) and any(p["mask"] for p in d["people"])
    kinds = {x["kind"] for x in d["distractors"]}
    assert {"cup", "lamp"} <= kinds
    starts = [p["path"]["waypoints"][0]["z_m"] for p in d["people"]]
    closest = [min(w["z_m"] for w in p["path"]["waypoints"]) for p in d["people"]]
    assert max(starts) == 8.0 and min(closest) == 0.5


def test_hot_objects_has_no_people():
    d = Scenario.load("hot_objects").data
    assert d["people"] == [] and len(d["distractors"]) >= 4


def test_defaults_are_filled():
    s = Scenario.from_dict({"version": 1, "name": "x", "ambient_c": 20.0})
    assert s.data["lens"] == "BAB" and s.data["sensor"]["netd_1hz_k"] == 0.1
    assert s.data["camera"]["height_m"] == 1.65 and s.data["people"] == []


def test_unknown_key_is_named_with_its_path():
    d = scenario([person(colour="red")])
    (msg,) = problems(d)
    assert msg.startswith("people[0].colour: unknown key")
    assert "core_c" in msg  # lists the allowed keys


def test_missing_field():
    d = scenario([person()])
    del d["people"][0]["core_c"]
    assert problems(d) == ["people[0].core_c: missing required field"]


def test_out_of_range_and_wrong_type_all_reported_at_once():
    d = scenario([person(core_c=45.0, z_m=12.0)], ambient_c="warm")
    d["lens"] = "fisheye"
    msgs = problems(d)
    assert "people[0].core_c: 45.0 is out of range [34.0, 43.0]" in msgs
    assert "people[0].path.waypoints[0].z_m: 12.0 is out of range [0.3, 8.0]" in msgs
    assert "ambient_c: expected a number, got 'warm' (str)" in msgs
    assert "lens: 'fisheye' is not one of 'BAB', 'BAA'" in msgs


def test_bool_is_not_a_number_and_vectors_are_checked():
    d = scenario(distractors=[{"kind": "cup", "center_m": [0, 1, 2], "size_m": [0.1, 0.1], "temperature_c": True}])
    msgs = problems(d)
    assert "distractors[0].size_m: expected a list of 3 numbers, got [0.1, 0.1] (list)" in msgs
    assert "distractors[0].temperature_c: expected a number, got True (bool)" in msgs


def test_cross_field_rules():
    d = scenario(
        [person(id="a"), person(id="a", start_s=5.0, end_s=2.0)],
        distractors=[{"kind": "lamp", "center_m": [0, 2, -1], "size_m": [0.1, 0.1, 0.1], "temperature_c": 90.0}],
    )
    msgs = problems(d)
    assert "people[1].id: duplicate id 'a'" in msgs
    assert "people[1].end_s: 2.0 must be after start_s 5.0" in msgs
    assert "distractors[0].center_m: z = -1.0 is behind the sensor (must be > 0)" in msgs


def test_facing_accepts_keyword_or_angle():
    Scenario.from_dict(scenario([person(facing=30.0)]))
    msgs = problems(scenario([person(facing="north")]))
    assert len(msgs) == 1 and "'north' is not one of 'travel', 'camera'" in msgs[0]


def test_load_reports_file_and_bad_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        Scenario.load(str(bad))
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"version": 2, "name": "w", "ambient_c": 20}))
    with pytest.raises(ScenarioError) as e:
        Scenario.load(str(wrong))
    assert str(wrong) in str(e.value) and "version: 2 is out of range [1, 1]" in str(e.value)


def test_schema_text_lists_every_field():
    text = schema_text()
    for key in ("ambient_c", "psf_sigma_px", "waypoints", "dwell_s", "temperature_c", "gradient_c"):
        assert key in text


def test_readme_schema_is_current():
    readme = open(os.path.join(os.path.dirname(SCENARIO_DIR), "README.md"), encoding="utf-8").read()
    assert "```\n" + schema_text() + "\n```" in readme, "regenerate with: python -m scene schema"
