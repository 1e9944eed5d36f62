"""The firmware screening pipeline, run inside MicroPython (100 KB heap) on
rendered scenes, against the scenes' ground truth."""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "bench"))

import bench_screening as bench  # noqa: E402

from scene import Scenario, Scene, builders, read_truth, write_recording  # noqa: E402

CLEAR, RECHECK, FEVER = 0, 1, 2


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return bench.build_runner(tmp_path_factory.mktemp("runner"))


def screen(runner, tmp_path, scenario_dict_or_name, seconds, seed=0, name="scene"):
    sc = (
        Scenario.load(scenario_dict_or_name)
        if isinstance(scenario_dict_or_name, str)
        else Scenario.from_dict(scenario_dict_or_name)
    )
    path = str(tmp_path / (name + ".htrs"))
    write_recording(Scene(sc, seed=seed), path, rate_hz=8, duration_s=seconds)
    res = bench.run_recordings([path], runner)[path]
    people, stray = bench.person_results(res, read_truth(path))
    return people, stray, res


def crowd_walk_dict():
    return json.loads((REPO / "tools" / "scene" / "scenarios" / "crowd_walk.json").read_text())


def test_crowd_walk(runner, tmp_path):
    """The scripted crowd as it ships.  The febrile walker (core 38.8) reads
    about 38.65 (the scene's face model puts skin 0.15 degC lower at 22 degC
    air than the calibrated offset assumes), and calibration's offset
    uncertainty (0.4, k = 2) alone needs a core estimate above 38.8 for
    FEVER: the honest outcome is RECHECK (secondary check), never CLEAR."""
    people, stray, res = screen(runner, tmp_path, "crowd_walk", 20.0)
    feb = people["febrile"]["outcomes"]
    assert feb and feb[0] == RECHECK  # first report while far away
    assert CLEAR not in feb
    assert feb[-1] in (RECHECK, FEVER)
    assert feb.count(FEVER) <= 1
    for pid, p in people.items():
        if pid != "febrile":
            assert FEVER not in p["outcomes"], (pid, p["outcomes"])
    _others_as_expected(people)
    assert all(ev["outcome"] != FEVER for ev in stray)  # the hot drink and the lamp


def _others_as_expected(people):
    # walker1 (36.6) and mask (36.4) come to ~0.5 m and are cleared; glasses
    # (36.9) reads about 36.9-37.1 there, and CLEAR needs core + 2u < 37.9
    # with u >= 0.5: RECHECK is the honest answer, CLEAR only by luck;
    # crosser (hat) and bald never come closer than ~1.5 m: not resolved,
    # RECHECK.  Nobody afebrile is ever FEVER.
    for pid in ("walker1", "mask"):
        assert people[pid]["outcomes"][-1] == CLEAR, (pid, people[pid]["outcomes"])
    for pid in ("glasses", "crosser", "bald"):
        assert people[pid]["outcomes"] and people[pid]["outcomes"][-1] in (CLEAR, RECHECK), (pid, people[pid])
        assert FEVER not in people[pid]["outcomes"]


def test_crowd_walk_clearly_febrile_walker_one_fever_alarm(runner, tmp_path):
    """The same crowd with the febrile walker at core 39.6: exactly one FEVER
    event for them (their track breaks at the closest point; the re-found
    track does not alarm again), RECHECK while too far."""
    d = crowd_walk_dict()
    for p in d["people"]:
        if p["id"] == "febrile":
            p["core_c"] = 39.6
    people, stray, res = screen(runner, tmp_path, d, 20.0)
    feb = people["febrile"]["outcomes"]
    assert feb[0] == RECHECK
    assert feb.count(FEVER) == 1, feb
    assert CLEAR not in feb  # a later fragment of their track may say RECHECK, never CLEAR
    assert sum(ev["outcome"] == FEVER for ev in res["events"]) == 1  # one alarm in the whole crowd
    _others_as_expected(people)


def test_hot_objects_raise_no_fever(runner, tmp_path):
    people, stray, res = screen(runner, tmp_path, "hot_objects", 10.0)
    assert all(ev["outcome"] != FEVER for ev in res["events"])


@pytest.mark.parametrize("distance", [0.5, 1.0])
def test_close_person_core_estimate_matches_truth(runner, tmp_path, distance):
    # at the calibrated ambient (23 degC) the scene's skin-to-core offset is the default 1.3
    p = builders.person(id="p", core_c=37.0, z_m=distance)
    people, stray, res = screen(runner, tmp_path, builders.scenario([p], ambient_c=23.0), 3.0, seed=5)
    r = people["p"]
    assert r["detected"] >= 0.9 * r["visible"]
    assert abs(r["core_est"] - 37.0) < 0.3
    assert r["outcomes"][-1] in (CLEAR, RECHECK)


@pytest.mark.parametrize("distance", [3.0, 5.0])
def test_far_febrile_person_is_recheck_not_clear(runner, tmp_path, distance):
    p = builders.person(id="p", core_c=38.6, z_m=distance)
    people, stray, res = screen(runner, tmp_path, builders.scenario([p], ambient_c=23.0), 3.0, seed=6)
    assert people["p"]["outcomes"] and CLEAR not in people["p"]["outcomes"]
    assert people["p"]["outcomes"][-1] == RECHECK


def test_heap_does_not_grow_over_a_long_crowd(runner, tmp_path):
    people, stray, res = screen(runner, tmp_path, "crowd_walk", 20.0)
    warm, end = res["mem"]
    assert warm > 0 and end <= warm, res["mem"]


def _dump(people):
    return {pid: p["outcomes"] for pid, p in people.items()}


def test_queue_each_person_their_own_outcome_and_no_trailing_reports(runner, tmp_path):
    """checkpoint_queue: five people come up one after another, each into
    the place the last one just left.  Everyone is screened on a track of
    their own (the hat wearer once inherited the first person's CLEAR) and
    nobody gets a trailing RECHECK from a chin or a shoulder found as a
    second head as they leave at arm's length."""
    people, stray, res = screen(
        runner, tmp_path, str(REPO / "tools" / "scene" / "scenarios" / "checkpoint_queue.json"), 21.0, seed=7
    )
    assert people["febrile"]["outcomes"] == [RECHECK, FEVER], _dump(people)
    for pid in ("first", "hat", "glasses", "last"):
        assert people[pid]["outcomes"][-1] == CLEAR, (pid, _dump(people))
        assert FEVER not in people[pid]["outcomes"]
    assert all(ev["outcome"] != FEVER for ev in stray)  # the hot drink
