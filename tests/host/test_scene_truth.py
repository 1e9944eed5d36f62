"""Ground truth follows the scripted paths."""

import math

import pytest

from scene import Scenario, Scene
from scene.builders import person, scenario
from scene.paths import Path


def wp(x, z, dwell=0.0):
    return {"x_m": x, "z_m": z, "dwell_s": dwell}


def test_path_timeline():
    p = Path([wp(0, 8, 1.0), wp(0, 2), wp(3, 2, 2.0)], speed_mps=2.0, start_s=1.0)
    assert p.state(0.5)[:2] == (0, 8)  # before start: at the first waypoint
    assert p.state(1.5)[:2] == (0, 8)  # dwelling
    assert p.state(2.0 + 1.5)[:2] == pytest.approx((0, 5))
    x, z, heading, moving = p.state(5.0)  # arrives at (0, 2) at t = 5
    assert (x, z) == pytest.approx((0, 2)) and heading == pytest.approx((1.0, 0.0))
    assert p.state(6.0)[:2] == pytest.approx((2.0, 2.0)) and p.state(6.0)[3]
    assert p.state(100.0)[:2] == (3, 2) and not p.state(100.0)[3]
    assert p.finish_s == pytest.approx(1.0 + 1.0 + 3.0 + 1.5 + 2.0)


def test_crowd_truth_matches_the_path():
    sc = Scene(Scenario.load("crowd_walk"), seed=0)
    spec = {p["id"]: p for p in sc.scenario.data["people"]}
    for t in (0.0, 2.5, 6.26, 9.0, 15.0):
        f = sc.render(t, noise=False)
        for truth in f.people:
            s = spec[truth.id]
            w = s["path"]["waypoints"]
            if t < s["start_s"]:
                assert not truth.present and not truth.in_fov
                continue
            # walk the first leg at constant speed (every walker's first leg is straight)
            d0 = math.dist((w[0]["x_m"], w[0]["z_m"]), (w[1]["x_m"], w[1]["z_m"]))
            f_leg = (t - s["start_s"] - w[0]["dwell_s"]) * s["path"]["speed_mps"] / d0
            if 0 <= f_leg <= 1:
                x = w[0]["x_m"] + f_leg * (w[1]["x_m"] - w[0]["x_m"])
                z = w[0]["z_m"] + f_leg * (w[1]["z_m"] - w[0]["z_m"])
                assert truth.position_m == pytest.approx((x, z), abs=1e-9)
            head_y = s["height_m"] - 0.115 - sc.camera.height_m
            x, z = truth.position_m
            assert truth.distance_m == pytest.approx(math.sqrt(x * x + head_y * head_y + z * z))


def test_people_leave_the_field_of_view():
    sc = Scene(Scenario.load("crowd_walk"), seed=0)
    f = sc.render(19.5, noise=False)
    walker = next(p for p in f.people if p.id == "walker1")
    assert walker.present and not walker.in_fov and walker.best_face_px is None
    early = next(p for p in sc.render(3.0, noise=False).people if p.id == "walker1")
    assert early.in_fov and early.skin_fraction > 0


def test_end_s_removes_a_person():
    sc = Scene(Scenario.from_dict(scenario([person(end_s=2.0)])))
    assert sc.render(1.0).people[0].present and not sc.render(2.0).people[0].present


def test_head_bbox_contains_the_best_face_pixel_and_centres_on_the_person():
    for x in (-0.5, 0.0, 0.4):
        f = Scene(Scenario.from_dict(scenario([person(x_m=x, z_m=2.0)], noise=False))).render(0.0)
        p = f.people[0]
        x0, y0, x1, y1 = p.head_bbox_px
        r, c = p.best_face_px
        assert x0 - 1 <= c <= x1 and y0 - 1 <= r <= y1
        fx = 16 / math.tan(math.radians(27.5))
        assert (x0 + x1) / 2 == pytest.approx(16 + fx * x / 2.0, abs=0.05)


def test_facing_away_shows_no_face():
    def skin(**kw):
        sc = Scene(Scenario.from_dict(scenario([person(z_m=1.0, **kw)], noise=False)))
        return sc.render(0.0).people[0].skin_area_px

    front = skin()
    assert skin(facing=180.0, hair="long") < 0.05 * front  # long hair hides the whole back
    assert skin(facing=180.0) < 0.25 * front  # short hair: the nape shows
    assert 0.1 * front < skin(facing=90.0) < 0.8 * front  # profile


def test_distractor_truth():
    f = Scene(Scenario.load("hot_objects"), seed=0).render(1.0, noise=False)
    kinds = {d.kind for d in f.distractors}
    assert {"lamp", "cup", "engine", "exhaust", "wall", "blackbody"} <= kinds
    for d in f.distractors:
        assert d.in_fov and d.bbox_px is not None and d.visible_area_px > 0
    panel = next(d for d in f.distractors if d.id == "panel")
    x0, y0, x1, y1 = panel.bbox_px
    r, c = int((y0 + y1) / 2), int((x0 + x1) / 2)
    assert float(f.object_c[r, c]) == pytest.approx(panel.apparent_c, abs=0.05)
