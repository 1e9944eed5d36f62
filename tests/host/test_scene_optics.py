"""Lens geometry: footprints, projection, outlines and face size vs distance."""

import math

import numpy as np
import pytest

from scene import Scenario, Scene
from scene.builders import person, scenario
from scene.geometry import Box, Ellipsoid, yaw_frame
from scene.optics import Camera, pixel_footprint_m
from scene.people import HEAD_SEMI


def test_pixel_footprints_match_design_notes():
    # design.md: 3.3 cm at 1 m, 6.5 at 2 m, 9.8 at 3 m, 16 at 5 m (55 deg lens)
    for d, cm in [(1, 3.3), (2, 6.5), (3, 9.8), (5, 16.0)]:
        assert pixel_footprint_m("BAB", d)[0] * 100 == pytest.approx(cm, rel=0.02)  # notes round


def test_field_of_view_edges_project_to_image_edges():
    for lens, (h, v) in [("BAB", (55, 35)), ("BAA", (110, 75))]:
        cam = Camera(lens, height_m=1.0)
        col, _ = cam.project([math.tan(math.radians(h / 2)), 0.0, 1.0])
        _, row = cam.project([0.0, math.tan(math.radians(v / 2)), 1.0])
        assert col == pytest.approx(32.0) and row == pytest.approx(0.0)


def test_rays_are_unit_and_cover_the_image_centre_symmetrically():
    cam = Camera("BAB", supersample=4)
    n = np.sqrt(cam.dx**2 + cam.dy**2 + cam.dz**2)
    assert np.allclose(n, 1.0)
    assert np.allclose(cam.dx, -cam.dx[:, ::-1]) and np.allclose(cam.dy, -cam.dy[::-1, :])


def test_pitch_moves_the_horizon_down_when_looking_up():
    level, up = Camera("BAB", pitch_deg=0.0), Camera("BAB", pitch_deg=10.0)
    far_ahead = [0.0, 0.0, 100.0]
    assert level.project(far_ahead)[1] == pytest.approx(12.0)
    assert up.project(far_ahead)[1] == pytest.approx(12.0 + up.fy * math.tan(math.radians(10)))


@pytest.mark.parametrize("yaw", [0.0, 30.0, 90.0])
def test_ellipsoid_outline_bbox_is_exact(yaw):
    cam = Camera("BAB", pitch_deg=-7.0)
    a = math.radians(yaw)
    e = Ellipsoid([0.3, -0.1, 1.2], HEAD_SEMI, yaw_frame((math.sin(a), -math.cos(a))))
    # densely sampled surface points: their projections fill the exact bbox
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 721), np.linspace(0, np.pi, 361))
    unit = np.stack([np.sin(v) * np.cos(u), np.cos(v), np.sin(v) * np.sin(u)], axis=-1)
    pts = e.center + (unit * e.semi) @ e.frame.T
    cols, rows = cam.project(pts)
    x0, y0, x1, y1 = e.bbox_px(cam)
    assert (x0, y0, x1, y1) == pytest.approx((cols.min(), rows.min(), cols.max(), rows.max()), abs=2e-3)


def test_ray_hits_agree_with_inside_tests():
    cam = Camera("BAB", supersample=2)
    e = Ellipsoid([0.1, 0.05, 0.8], (0.1, 0.15, 0.12), yaw_frame((0.3, -1.0)))
    b = Box([-0.2, -0.1, 1.0], (0.2, 0.3, 0.25), yaw_frame((1.0, -1.0)))
    for prim in (e, b):
        t = prim.intersect(cam.dx, cam.dy, cam.dz)
        hit = np.isfinite(t)
        assert hit.any()
        # the hit point lies on the surface: just inside at t + eps along the ray
        p_in = np.stack([cam.dx[hit], cam.dy[hit], cam.dz[hit]], -1) * (t[hit] + 1e-6)[:, None]
        p_out = np.stack([cam.dx[hit], cam.dy[hit], cam.dz[hit]], -1) * (t[hit] - 1e-6)[:, None]
        assert inside(prim, p_in).all() and not inside(prim, p_out).any()


def inside(prim, p):
    local = (p - prim.center) @ prim.frame
    if isinstance(prim, Ellipsoid):
        return ((local / prim.semi) ** 2).sum(-1) <= 1.0
    return (np.abs(local) <= prim.half).all(-1)


def bald_head_area(lens, z):
    sc = Scene(Scenario.from_dict(scenario([person(z_m=z, hair="none")], noise=False, lens=lens)))
    return sc.render(0.0).people[0].skin_area_px


@pytest.mark.parametrize("z", [1.0, 2.0, 3.0, 5.0])
def test_face_area_in_pixels_follows_footprint(z):
    # A bald head facing the sensor shows its 15.6 x 23 cm elliptical outline:
    # pi*a*b / (pixel footprint area).  For the design notes' 15 x 20 cm face
    # that formula gives their "35 px at 1 m, 9 at 2 m, 4 at 3 m, 1.4 at 5 m":
    # those are pixel COUNTS (areas), not widths (a face is ~4.6 px wide at 1 m).
    fw, fh = pixel_footprint_m("BAB", z)
    expect = math.pi * HEAD_SEMI[0] * HEAD_SEMI[1] / (fw * fh)
    assert bald_head_area("BAB", z) == pytest.approx(expect, rel=0.03)


def test_design_note_face_counts_are_areas():
    for z, count in [(1, 35), (2, 9), (3, 4), (5, 1.4)]:
        fw, fh = pixel_footprint_m("BAB", z)
        assert 0.15 * 0.20 / (fw * fh) == pytest.approx(count, rel=0.12)
    fw, fh = pixel_footprint_m("BAB", 1.0)
    assert 0.15 / fw == pytest.approx(4.6, abs=0.1)  # width at 1 m: 4.6 px, not 35


def test_wide_lens_makes_faces_smaller():
    narrow, wide = bald_head_area("BAB", 1.0), bald_head_area("BAA", 1.0)
    ratio = (math.tan(math.radians(27.5)) * math.tan(math.radians(17.5))) / (
        math.tan(math.radians(55)) * math.tan(math.radians(37.5))
    )
    assert wide / narrow == pytest.approx(ratio, rel=0.05)  # about 0.15
    # design.md: "about 5 px at 1 m and under 1 px at 3 m" with the 110 deg lens
    assert 4.0 < wide < 6.0
    assert bald_head_area("BAA", 3.0) < 1.0


def test_face_bbox_width_shrinks_as_one_over_distance():
    widths = []
    for z in (1.0, 2.0, 4.0):
        sc = Scene(Scenario.from_dict(scenario([person(z_m=z)], noise=False)))
        x0, _, x1, _ = sc.render(0.0).people[0].head_bbox_px
        widths.append(x1 - x0)
    assert widths[0] / widths[1] == pytest.approx(2.0, rel=0.02)
    assert widths[0] / widths[2] == pytest.approx(4.0, rel=0.02)
    assert widths[0] == pytest.approx(2 * HEAD_SEMI[0] / pixel_footprint_m("BAB", 1.0)[0], rel=0.02)


def test_box_bbox_from_corners():
    cam = Camera("BAB")
    b = Box([0.0, 0.0, 2.0], (0.2, 0.2, 0.01), yaw_frame((0.0, 1.0)))
    x0, y0, x1, y1 = b.bbox_px(cam)
    fw, fh = pixel_footprint_m("BAB", 2.0)
    assert x1 - x0 == pytest.approx(0.2 / fw, rel=0.01) and y1 - y0 == pytest.approx(0.2 / fh, rel=0.01)
    assert (x0 + x1) / 2 == pytest.approx(16.0) and (y0 + y1) / 2 == pytest.approx(12.0)
