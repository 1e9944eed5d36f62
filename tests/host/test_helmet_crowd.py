"""The helmet's main loop on the simulated board through a rendered crowd.

tools/scene renders crowd_walk at 8 Hz; tools/simboard/run_crowd.py boots the
firmware under MicroPython and runs firmware/helmet.py with the virtual
MLX90640 showing one recording frame per frame the driver reads.  Events are
attributed to people with the scene's ground truth (bench_screening's track
matching), per pass of the recording.

The code runs from the ROMFS image as on the helmet and the board's flash
holds a bench calibration record.  Without the radio the firmware gets the
free heap of the issue's 100 KB board (-X heapsize=100k): these runs fail
with a MemoryError if the firmware outgrows it.  With the radio it gets
RADIO_RAM (the radio's share is measured, not yet cut to fit: make bench's
soak searches the smallest heap for both).  The assertions here are no
MemoryError and no heap growth after warm-up.
"""

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "bench"))

import bench_screening  # noqa: E402
import bench_soak  # noqa: E402

from scene import Scenario, Scene, read_truth, write_recording  # noqa: E402

CLEAR, RECHECK, FEVER = 0, 1, 2
PASS_FRAMES = 160  # 20 s at 8 Hz
RAM = "100k"  # the target
RADIO_RAM = "160k"
RADIO_IN_FLIGHT_B = 1024  # events on their way to the phone when the heap is sampled
SAMPLE_JITTER_B = 256  # 8 GC blocks: what the other tasks hold when the heap is sampled


def _check_run(res):
    assert res["returncode"] == 0, res["stderr"][-3000:]
    assert not res["memory_errors"]
    assert res["done"] is not None and res["done"]["resets"] == 0  # the watchdog was fed throughout
    assert res["done"]["read_errors"] == 0
    kinds = [e["kind"] for e in res["events"]]
    assert kinds[0] == 3  # the boot event first
    assert 2 not in kinds  # no fault events from a healthy sensor


def _people(res, truth, n):
    return bench_screening.person_results(bench_soak.per_pass(res, n), truth)


@pytest.fixture(scope="module")
def queue(tmp_path_factory):
    """checkpoint_queue, the issue's scripted crowd: five people come up one
    after another, the third febrile (39.4), a hot drink on a table."""
    path = tmp_path_factory.mktemp("queue") / "queue.htrs"
    scenario = json.loads((REPO / "tools" / "scene" / "scenarios" / "checkpoint_queue.json").read_text())
    seconds = scenario["duration_s"]
    write_recording(Scene(Scenario.from_dict(scenario), seed=7), str(path), rate_hz=8, duration_s=seconds)
    frames = int(seconds * 8)
    return path, bench_soak.run_crowd(path, frames, ram=RAM, tracks=True)


def test_scripted_crowd_one_fever_alarm_recheck_while_far_clear_for_the_others(queue):
    """The issue's done-when, on the simulated board with a calibrated helmet."""
    path, res = queue
    _check_run(res)
    people, stray = _people(res, read_truth(str(path)), 0)
    # RECHECK while too far to tell, then one FEVER, nothing after it (no
    # trailing report from a chin or a shoulder as they leave)
    assert people["febrile"]["outcomes"] == [RECHECK, FEVER], people["febrile"]
    fevers = [e for e in res["events"] if e["kind"] == 1 and e["outcome"] == FEVER]
    assert len(fevers) == 1  # exactly one alarm, for the febrile walker
    # the others CLEAR, each on a track of their own: the hat wearer steps
    # into the place the first person just left while that track is alive
    # (the screening's takeover rule)
    for pid in ("first", "hat", "glasses", "last"):
        assert people[pid]["outcomes"][-1] == CLEAR and FEVER not in people[pid]["outcomes"], (pid, people[pid])
    assert all(ev["outcome"] != FEVER for ev in stray)  # the hot drink
    assert res["done"]["pwm_changes"] > 0  # the buzzer sounded


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """crowd_walk as it ships (febrile walker at core 38.8), one pass."""
    path = bench_soak.render(tmp_path_factory.mktemp("crowd") / "crowd.htrs")
    return path, bench_soak.run_crowd(path, PASS_FRAMES, ram=RAM, tracks=True)


@pytest.fixture(scope="module")
def clearly_febrile(tmp_path_factory):
    """The same crowd with the febrile walker at 39.6, three passes (60 s)."""
    path = bench_soak.render(tmp_path_factory.mktemp("crowd39") / "crowd.htrs", febrile_core_c=39.6)
    return path, bench_soak.run_crowd(path, 3 * PASS_FRAMES, ram=RAM, tracks=True)


def test_shipped_crowd_febrile_walker_never_clear_and_no_false_fever(shipped):
    """Core 38.8 with the default offset uncertainty is usually RECHECK
    (tests/host/test_screening_scenes.py explains why): never CLEAR."""
    path, res = shipped
    _check_run(res)
    people, stray = _people(res, read_truth(str(path)), 0)
    feb = people["febrile"]["outcomes"]
    assert feb and feb[0] == RECHECK  # first report while far away
    assert CLEAR not in feb
    assert feb.count(FEVER) <= 1
    for pid, p in people.items():
        if pid != "febrile":
            assert FEVER not in p["outcomes"], (pid, p["outcomes"])
    # walker1 comes to 0.5 m bare-faced: cleared through the whole chain; the
    # others end CLEAR or RECHECK (mask: CLEAR in the screening-only scene
    # test, here it can stay RECHECK by a few hundredths: sensor quantisation)
    assert people["walker1"]["outcomes"][-1] == CLEAR, people["walker1"]["outcomes"]
    for pid in ("mask", "glasses", "crosser", "bald"):
        assert people[pid]["outcomes"] and people[pid]["outcomes"][-1] in (CLEAR, RECHECK), (pid, people[pid])
    assert all(ev["outcome"] != FEVER for ev in stray)  # the hot drink and the lamp


def test_clearly_febrile_walker_one_fever_alarm_per_pass(clearly_febrile):
    path, res = clearly_febrile
    _check_run(res)
    truth = read_truth(str(path))
    for n in range(3):
        people, stray = _people(res, truth, n)
        feb = people["febrile"]["outcomes"]
        assert feb.count(FEVER) == 1, (n, feb)
        assert CLEAR not in feb, (n, feb)
        others = [ev for pid, p in people.items() if pid != "febrile" for ev in p["outcomes"] if ev == FEVER]
        assert not others and all(ev["outcome"] != FEVER for ev in stray), n
    fevers = [e for e in res["events"] if e["kind"] == 1 and e["outcome"] == FEVER]
    assert len(fevers) == 3  # one alarm per person, not per frame
    assert res["done"]["pwm_changes"] > 0  # the buzzer sounded


def test_no_heap_growth_after_warm_up(clearly_febrile):
    """60 s of 8 Hz frames: the firmware's heap (sampled every second) after
    the first pass never exceeds its peak during the first pass."""
    path, res = clearly_febrile
    _check_run(res)
    assert res["done"]["frames"] == 3 * PASS_FRAMES
    # A sample catches what the loop's other tasks hold at that moment (they
    # run while it waits for the sensor): a pass's peak sits up to about
    # 130 B above another's with no trend (make bench: 30 passes).  This
    # catches a leak of an object per screening event (about 13 a pass); a
    # slower one is the soak's to find (the first and last third of 30).
    warm, after, end = bench_soak.heap_growth(res["heap"], PASS_FRAMES)
    assert after <= warm + SAMPLE_JITTER_B and end <= warm, res["heap"]
    assert res["sim"] > 0 and res["boot"] > 0


def test_with_radio_every_event_reaches_the_phone_and_heap_holds(clearly_febrile):
    """The same crowd with the GATT server and a bonded phone that takes every
    event and acknowledges it: nothing left pending, heap flat over 2 passes."""
    path, _ = clearly_febrile
    res = bench_soak.run_crowd(path, 2 * PASS_FRAMES, ram=RADIO_RAM, ble=True)
    _check_run(res)
    phone = res["phone"]
    assert phone["received"] == phone["journaled"] == len(res["events"]) and phone["pending"] == 0, phone
    assert sum(e["kind"] == 1 and e["outcome"] == FEVER for e in res["events"]) == 2
    # The radio works while the helmet waits for the sensor, so a heap sample
    # can catch indications and notifications in flight: a pass's peak
    # varies by some hundred bytes, with no trend over five passes.  This
    # catches a leak of a kilobyte a pass; a slower one is the soak's to find
    # (make bench: 30 passes, growth after warm-up reported).
    warm, after, end = bench_soak.heap_growth(res["heap"], PASS_FRAMES)
    assert after <= warm + RADIO_IN_FLIGHT_B and end <= warm, res["heap"]
