"""Thermal scene simulator for the fever-screening helmet (CPython + numpy).

Renders what an MLX90640 (32x24, BAB 55x35 deg or BAA 110x75 deg lens) would
report for a scripted scene of walking people and hot objects, with ground
truth, for testing the firmware's detection, tracking and decision logic.
It never runs on the helmet.  Run with PYTHONPATH=tools:shared.

API
---
    from scene import Scenario, Scene, write_recording, read_recording

    scenario = Scenario.load("crowd_walk")        # path, or a name in scene/scenarios/
    scene = Scene(scenario, seed=0)               # seed: noise and per-person skin variation
    frame = scene.render(3.0, subpage_rate_hz=8)  # -> Frame
    frame.object_c   # float32 (24, 32), degC at emissivity 1, row 0 = top of the image
    frame.ta_c       # sensor's own temperature (self-heated)
    frame.t_s, frame.subpage_rate_hz
    frame.people     # [PersonTruth]: id, present, in_fov, distance_m, position_m, core_c,
                     #   skin_c, skin_apparent_c, head_bbox_px (x0, y0, x1, y1), best_face_px
                     #   (row, col), skin_fraction (geometric) and skin_fraction_psf (after
                     #   blur) of that pixel, skin_pixels, skin_area_px, wearing, hidden_by,
                     #   occluded (field comments in render.py)
    frame.distractors  # [DistractorTruth]: id, kind, temperature_c, emissivity, apparent_c,
                       #   distance_m, bbox_px, in_fov, visible_area_px
    frame.skin_maps    # {person id: float32 (24, 32) visible-skin fraction per pixel}
    scene.render(t, noise=False)                  # noise-free frame (for physics tests)
    scene.render(t, chess=True)                   # half the pixels one subpage older (sensor's
                                                  #   chess-mode read-out; moving edges show it)

    write_recording(scene, "out.htrs", rate_hz=8, duration_s=20)  # + out.htrs.truth.json
                     # optional: subpage_rate_hz (noise; default rate_hz), noise, chess
    rec = read_recording("out.htrs")              # Recording(rate_hz, t_s, ta_c, object_c)

Binary recording format (little-endian): b"HTRS", u16 version 1, u16 width 32,
u16 height 24, f32 rate_hz, u32 frame_count; then per frame f32 t_s, f32 ta_c
and 768 f32 object temperatures, row-major.  See recording.py.

CLI: python -m scene render SCENARIO --t 3.0 --png out.png [--boxes]
     python -m scene record SCENARIO OUT --rate 8 --duration 20
     python -m scene schema          (every scenario field, its range and default)

Helpers: scene.builders.person() / scenario() build small scenario dicts for
tests (Scenario.from_dict validates them like files).

Scenario files (JSON, validated on load; errors list every problem with its
path, e.g. "people[1].core_c: 45.0 is out of range [34.0, 43.0]"):
    version 1, name, ambient_c, [description, reflected_c, duration_s, lens,
    camera {height_m, pitch_deg}, sensor {netd_1hz_k, psf_sigma_px, supersample,
    self_heating_k, warmup_tau_s, power_on_s, warmup_bias_c, offset_c,
    fixed_pattern_c}, background {gradient_c, floor_c}, people [...],
    distractors [...]].  Person: id, core_c, path {speed_mps, waypoints
    [{x_m, z_m, dwell_s}]}, [height_m, skin_variation_c, hair, hat, glasses,
    mask, clothing_c, facing, start_s, end_s].  Distractor: kind, center_m,
    size_m, temperature_c, [id, shape, yaw_deg, emissivity].

Coordinates: metres; the lens at x = z = 0, height camera.height_m; x to the
right of the image, y up from the ground, z away from the officer.

Models (details and reasons in each module's docstring):
    radiometry.py  T**4 radiance (same as shared/calibration.py), emissivity with
                   reflected surroundings (reflected_c, default ambient)
    people.py      skin = core - (offset + 0.15*(23 - ambient)) + variation;
                   hair/hat/mask/glasses/clothing between skin and ambient
    optics.py      pinhole lens, supersampled rays, Gaussian PSF (0.4 px)
    sensor.py      self-heating Ta, NETD 0.1 K * sqrt(rate), seeded per frame
    render.py      ray casting, radiance mixing, ground truth
"""

from .recording import Recording, read_recording, read_truth, write_recording
from .render import DistractorTruth, Frame, PersonTruth, Scene
from .scenario import Scenario, ScenarioError

__all__ = [
    "Scenario",
    "ScenarioError",
    "Scene",
    "Frame",
    "PersonTruth",
    "DistractorTruth",
    "write_recording",
    "read_recording",
    "read_truth",
    "Recording",
]
