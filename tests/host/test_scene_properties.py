"""Property tests: radiance mixing bounds hold for any placement."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import calibration as cal
from scene import Scenario, Scene
from scene.builders import person, scenario


@settings(max_examples=40, deadline=None)
@given(
    x=st.floats(-1.5, 1.5),
    z=st.floats(0.3, 8.0),
    ambient=st.floats(0.0, 30.0),
    core=st.floats(35.0, 41.0),
    lens=st.sampled_from(["BAB", "BAA"]),
    psf=st.sampled_from([0.0, 0.25, 0.4, 0.8]),
    hair=st.sampled_from(["none", "short", "long"]),
    glasses=st.booleans(),
    mask=st.booleans(),
)
def test_readings_are_radiance_mixtures(x, z, ambient, core, lens, psf, hair, glasses, mask):
    p = person(x_m=x, z_m=z, core_c=core, hair=hair, glasses=glasses, mask=mask)
    sc = Scene(Scenario.from_dict(scenario([p], noise=False, ambient_c=ambient, lens=lens, psf_sigma_px=psf)))
    f = sc.render(0.0)
    truth = f.people[0]
    r = sc.people[0].radiance
    temps = cal.temperature_from_radiance(float(r[r > 0].min())), cal.temperature_from_radiance(float(r.max()))
    lo, hi = min(ambient, temps[0]), max(ambient, temps[1])
    # every pixel is a convex mix of the scene's radiances
    assert f.object_c.min() >= lo - 1e-3 and f.object_c.max() <= hi + 1e-3
    assert 0.0 <= truth.skin_fraction <= 1.0 and 0.0 <= truth.skin_fraction_psf <= 1.0 + 1e-12
    if truth.best_face_px is not None:
        reading = float(f.object_c[truth.best_face_px])
        # skin is the hottest surface here: the best pixel reads no more than
        # skin, and at least skin mixed with the coldest thing in the scene
        assert reading <= truth.skin_apparent_c + 1e-3
        floor = cal.mix_pixel(truth.skin_apparent_c, lo, min(truth.skin_fraction_psf, 1.0))
        assert reading >= floor - 1e-3
        x0, y0, x1, y1 = truth.head_bbox_px
        row, col = truth.best_face_px
        assert x0 - 1 <= col <= x1 and y0 - 1 <= row <= y1
    assert truth.skin_area_px == float(f.skin_maps.get("p", np.zeros(1)).sum())
