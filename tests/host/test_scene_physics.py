"""What a frame reads: skin, partial coverage, occlusion, distractors."""

import numpy as np
import pytest

import calibration as cal
from scene import Scenario, Scene
from scene.builders import person, scenario
from scene.people import SKIN_AMBIENT_SLOPE, SKIN_REFERENCE_AMBIENT_C, skin_temperature


def render(people=(), distractors=(), t=0.0, seed=0, **kw):
    sc = Scene(Scenario.from_dict(scenario(people, distractors, noise=False, **kw)), seed)
    return sc.render(t)


def interior(skin_map):
    """Pixels whose whole 3x3 neighbourhood is fully skin."""
    m = skin_map >= 1.0
    out = m.copy()
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            out[1:-1, 1:-1] &= m[1 + dr : 23 + dr, 1 + dc : 31 + dc]
    out[0, :] = out[-1, :] = out[:, 0] = out[:, -1] = False
    return out


def test_frame_format():
    f = render([person()])
    assert f.object_c.shape == (24, 32) and f.object_c.dtype == np.float32
    assert f.t_s == 0.0 and isinstance(f.ta_c, float)


@pytest.mark.parametrize("z", [0.5, 0.7, 1.0])
def test_close_face_reads_skin_on_central_pixels(z):
    f = render([person(z_m=z)])
    p = f.people[0]
    core = interior(f.skin_maps["p"])
    assert core.sum() >= 2
    readings = f.object_c[core]
    # the sensor reports at emissivity 1: skin at 0.98 reflecting 23 degC air
    assert np.abs(readings - p.skin_apparent_c).max() < 0.2
    corrected = [cal.correct_emissivity(float(r), cal.SKIN_EMISSIVITY, 23.0) for r in readings]
    assert np.abs(np.array(corrected) - p.skin_c).max() < 0.2
    assert p.skin_c - p.skin_apparent_c == pytest.approx(0.24, abs=0.03)  # reflection costs ~0.24 degC


def test_far_face_reads_low_as_radiance_mixing_predicts():
    # Bald, facing the sensor at 5 m: the best pixel holds skin and 23 degC
    # background only, so the reading is the radiance mix of the PSF-weighted
    # skin fraction (the neck, at skin temperature but not "face", adds <0.05).
    f = render([person(z_m=5.0, hair="none")])
    p = f.people[0]
    r, c = p.best_face_px
    reading = float(f.object_c[r, c])
    assert p.skin_apparent_c - reading > 3.0  # several degC low
    assert reading == pytest.approx(cal.mix_pixel(p.skin_apparent_c, 23.0, p.skin_fraction_psf), abs=0.05)
    assert p.skin_fraction < 0.5 and p.skin_pixels == 0


def test_far_face_with_hair_reads_a_little_above_the_skin_background_mix():
    f = render([person(z_m=5.0)])
    p = f.people[0]
    reading = float(f.object_c[p.best_face_px])
    low = cal.mix_pixel(p.skin_apparent_c, 23.0, p.skin_fraction_psf)
    assert low - 0.01 <= reading <= low + 1.0  # hair is warmer than the background


@pytest.mark.parametrize("psf", [0.0, 0.4])
def test_best_pixel_reading_falls_with_distance(psf):
    readings = []
    for z in (1.0, 2.0, 3.0, 4.0, 5.0):
        f = render([person(z_m=z, x_m=0.02)], psf_sigma_px=psf)
        readings.append(float(f.object_c[f.people[0].best_face_px]))
    assert readings[0] > readings[-1] + 3.0
    assert all(a >= b - 0.05 for a, b in zip(readings, readings[1:], strict=False))


def test_skin_model():
    off = cal.DEFAULT_SKIN_TO_CORE_OFFSET_C
    assert skin_temperature(37.0, SKIN_REFERENCE_AMBIENT_C) == pytest.approx(37.0 - off)
    # colder air, cooler face, by the documented slope
    assert skin_temperature(37.0, 13.0) == pytest.approx(37.0 - off - 10 * SKIN_AMBIENT_SLOPE)
    assert skin_temperature(38.8, 13.0) - skin_temperature(37.0, 13.0) == pytest.approx(1.8)
    assert skin_temperature(37.0, 45.0) < 37.0
    # core_from_skin inverts the model at the reference ambient
    core, _ = cal.core_from_skin(skin_temperature(37.3, SKIN_REFERENCE_AMBIENT_C), 0.1)
    assert core == pytest.approx(37.3)


def test_febrile_face_reads_hotter_by_the_core_difference():
    a = render([person(core_c=36.8, z_m=0.8)])
    b = render([person(core_c=38.8, z_m=0.8)])
    px = interior(a.skin_maps["p"])
    assert float(np.mean(b.object_c[px] - a.object_c[px])) == pytest.approx(2.0, abs=0.05)


def test_per_person_variation_drawn_from_the_seed():
    p = person()
    p["skin_variation_c"] = None
    s1 = [render([p], seed=s).people[0].skin_c for s in (1, 1, 2, 3)]
    assert s1[0] == s1[1] and len(set(s1[1:])) == 3
    assert all(abs(s - skin_temperature(37.0, 23.0)) <= 0.9 for s in s1)


@pytest.mark.parametrize("wear", [{"glasses": True}, {"mask": True}, {"hat": True}, {"hair": "long"}])
def test_occlusions_lower_visible_skin(wear):
    bare = render([person(z_m=1.0, hair="none")]).people[0]
    covered = render([person(z_m=1.0, **{"hair": "none", **wear})]).people[0]
    assert covered.skin_area_px < bare.skin_area_px * 0.9
    key = next(iter(wear))
    worn = key != "hair"  # hair hides skin but is not an occluder the firmware must report
    assert covered.occluded == worn and (key in covered.wearing) == worn


@pytest.mark.parametrize("item, lo, hi", [("glasses", 2.0, 6.0), ("mask", 5.0, 9.0)])
def test_glasses_read_cold_and_mask_between_air_and_skin(item, lo, hi):
    # lo/hi: degC above the 23 degC air (glasses 0.35, mask 0.55 of the way to skin)
    bare = render([person(z_m=0.6)])
    worn = render([person(z_m=0.6, **{item: True})])
    hidden = (bare.skin_maps["p"] - worn.skin_maps["p"]) > 0.99
    assert hidden.sum() >= 8
    readings = worn.object_c[hidden]
    assert (readings > 23.0 + lo).all() and (readings < 23.0 + hi).all()
    assert readings.max() < bare.people[0].skin_apparent_c - 3.0


def test_person_in_front_hides_the_one_behind():
    alone = render([person("back", z_m=3.0)]).people[0]
    both = render([person("back", z_m=3.0), person("front", z_m=1.5, x_m=0.05)])
    back = both.people[0]
    assert back.hidden_by == ["front"] and back.occluded
    assert back.skin_area_px < 0.2 * alone.skin_area_px
    assert both.people[1].hidden_by == [] and not both.people[1].occluded


def blackbody(x, y, z, size, t, e=1.0, kind="blackbody"):
    return {"kind": kind, "center_m": [x, y, z], "size_m": [size, size, 0.02], "temperature_c": t, "emissivity": e}


def test_large_distractor_reads_its_temperature():
    f = render(distractors=[blackbody(0.0, 1.64, 1.0, 0.3, 60.0)])
    d = f.distractors[0]
    assert d.in_fov and d.visible_area_px == pytest.approx(0.3 / 0.0325 * 0.3 / 0.0263, rel=0.03)
    assert float(f.object_c[12, 16]) == pytest.approx(60.0, abs=0.02)
    grey = render(distractors=[blackbody(0.0, 1.64, 1.0, 0.3, 60.0, e=0.9, kind="cup")])
    assert float(grey.object_c[12, 16]) == pytest.approx(grey.distractors[0].apparent_c, abs=0.02)
    assert grey.distractors[0].apparent_c == pytest.approx(cal.apparent_from_object(60.0, 0.9, 23.0), abs=1e-6)


def test_small_hot_distractor_is_diluted_but_conserves_radiance():
    # a 4 cm, 150 degC lamp at 4 m covers ~0.15 of a pixel: reads far lower,
    # and the blur spreads but does not create or destroy radiance
    sums = []
    for psf in (0.0, 0.4):
        f = render(distractors=[blackbody(0.0, 1.64, 4.0, 0.04, 150.0, kind="lamp")], psf_sigma_px=psf)
        assert f.object_c.max() < 80.0
        sums.append(float((cal_radiance(f.object_c) - cal_radiance(23.0)).sum()))
    assert sums[1] == pytest.approx(sums[0], rel=1e-3)


def cal_radiance(t):
    return (np.asarray(t, dtype=np.float64) + cal.KELVIN) ** 4


def test_image_orientation_row0_is_top_col0_is_left():
    up_right = render(distractors=[blackbody(0.6, 2.0, 2.0, 0.1, 80.0)])
    r, c = np.unravel_index(np.argmax(up_right.object_c), (24, 32))
    assert r < 12 and c > 16


def test_background_gradient_and_floor():
    f = render(background={"gradient_c": [4.0, 2.0], "floor_c": 15.0}, ambient_c=20.0)
    assert f.object_c[0, 31] > f.object_c[0, 0] + 3.0  # warmer to the right
    assert f.object_c[23, 16] < 17.0  # looking down at the cold floor
    flat = render(ambient_c=20.0)
    assert np.allclose(flat.object_c, 20.0, atol=1e-4)


def test_reflected_temperature_affects_low_emissivity_objects():
    cold = render(distractors=[blackbody(0.0, 1.64, 1.0, 0.3, 60.0, e=0.5, kind="engine")], reflected_c=-20.0)
    warm = render(distractors=[blackbody(0.0, 1.64, 1.0, 0.3, 60.0, e=0.5, kind="engine")], reflected_c=40.0)
    assert float(warm.object_c[12, 16]) > float(cold.object_c[12, 16]) + 15.0
