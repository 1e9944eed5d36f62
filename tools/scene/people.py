"""People: skin temperature model, clothing/hair/accessory temperatures and
the simple 3-D body (ellipsoid head and neck, box torso and legs).

Skin model (documented choice):
    offset(ambient) = calibration.DEFAULT_SKIN_TO_CORE_OFFSET_C
                      + SKIN_AMBIENT_SLOPE * (SKIN_REFERENCE_AMBIENT_C - ambient)
    face skin = core - max(MIN_OFFSET_C, offset(ambient)) + per-person variation
i.e. the calibrated offset holds at 23 degC air; facial skin (the warm
inner-canthus / face-maximum region the offset refers to) cools by 0.15 degC
per degC of colder air and warms in hotter air.  0.15 is a middle value: the
literature reports roughly 0.1-0.2 for the inner canthus and 0.2-0.3 for the
forehead.  Per-person variation: N(0, 0.3 degC) clipped to +/-0.9, drawn from
the scene seed unless the scenario fixes it (0.3 is the residual spread the
FDA study reports after a constant offset).

Other surfaces sit between skin and ambient: T = ambient + k * (skin - ambient)
with k from BLEND below (hair insulates, a mask is breath-warmed, glasses
are thin and cool, clothing in between).  Glasses are opaque to long-wave IR.
The face is uniform in temperature (no hot canthus or cold nose): the
simulator's "skin" is the region the calibration offset refers to.
"""

import math

import numpy as np

from . import radiometry
from .geometry import Box, Ellipsoid, yaw_frame
from .paths import Path

SKIN_AMBIENT_SLOPE = 0.15  # degC of face skin per degC of air
SKIN_REFERENCE_AMBIENT_C = 23.0  # air temperature at which the calibrated offset holds
MIN_OFFSET_C = 0.3  # skin stays below core even in hot air
VARIATION_SD_C = 0.3
VARIATION_CLIP_C = 0.9

# Materials: index into per-person temperature/emissivity/radiance tables.
SKIN, HAIR, HAT, GLASSES, MASK, NECK, TORSO, LEGS = range(1, 9)
MATERIAL_NAMES = {
    SKIN: "skin",
    HAIR: "hair",
    HAT: "hat",
    GLASSES: "glasses",
    MASK: "mask",
    NECK: "neck",
    TORSO: "clothing",
    LEGS: "trousers",
}
N_MATERIALS = 16  # label stride per person

# k in ambient + k * (skin - ambient)
BLEND = {HAIR: 0.6, HAT: 0.35, GLASSES: 0.35, MASK: 0.55, TORSO: 0.45, LEGS: 0.35}
# long-wave emissivities (skin from the calibration module)
EMISSIVITY = {
    SKIN: radiometry.SKIN_EMISSIVITY,
    NECK: radiometry.SKIN_EMISSIVITY,
    HAIR: 0.95,
    HAT: 0.95,
    GLASSES: 0.92,
    MASK: 0.95,
    TORSO: 0.95,
    LEGS: 0.95,
}

# Body dimensions (metres) for an adult; the head is scaled by nothing, the
# body by height.  Head semi-axes: 15.6 cm wide, 23 cm chin to crown, 19.6 deep.
HEAD_SEMI = (0.078, 0.115, 0.098)
NECK_SEMI = (0.055, 0.07, 0.055)
TORSO_SIZE = (0.42, 0.55, 0.22)
LEGS_SIZE = (0.34, None, 0.16)


def skin_temperature(core_c, ambient_c, variation_c=0.0):
    """Face skin temperature from core and ambient (model in the module doc)."""
    offset = radiometry.SKIN_TO_CORE_OFFSET_C + SKIN_AMBIENT_SLOPE * (SKIN_REFERENCE_AMBIENT_C - ambient_c)
    skin = core_c - max(MIN_OFFSET_C, offset) + variation_c
    return min(skin, core_c - 0.1)


def head_materials(px, py, pz, hair, hat, glasses, mask):
    """Material of each hit point on the unit head sphere (x right, y up,
    z forward = the face).  Angles: az from the nose (+ to the right),
    el from eye level (+ up).  Eyes sit at half the head height."""
    az = np.degrees(np.arctan2(px, pz))
    el = np.degrees(np.arcsin(np.clip(py, -1.0, 1.0)))
    aaz = np.abs(az)
    mat = np.full(px.shape, SKIN, dtype=np.int32)
    if hair != "none":
        covered = (el > 35.0) | ((aaz > 75.0) & (el > 10.0)) | ((aaz > 100.0) & (el > -30.0))
        if hair == "long":
            covered |= ((aaz > 75.0) & (el > -60.0)) | (aaz > 110.0)
        mat[covered] = HAIR
    if hat:
        mat[el > 28.0] = HAT
    if mask:
        mat[(aaz < 72.0) & (el > -75.0) & (el < -18.0)] = MASK
    if glasses:
        mat[(aaz < 60.0) & (el > -12.0) & (el < 14.0)] = GLASSES
    return mat


class Person:
    def __init__(self, spec, index, ambient_c, reflected_c, rng):
        self.spec = spec
        self.id = spec["id"]
        self.index = index
        self.label_base = 1000 + N_MATERIALS * index
        self.core_c = spec["core_c"]
        self.height_m = spec["height_m"]
        v = spec["skin_variation_c"]
        if v is None:
            v = float(np.clip(rng.normal(0.0, VARIATION_SD_C), -VARIATION_CLIP_C, VARIATION_CLIP_C))
        self.variation_c = v
        self.skin_c = skin_temperature(self.core_c, ambient_c, v)
        temps = {SKIN: self.skin_c, NECK: self.skin_c}
        for m, k in BLEND.items():
            temps[m] = ambient_c + k * (self.skin_c - ambient_c)
        if spec["clothing_c"] is not None:
            temps[TORSO] = temps[LEGS] = spec["clothing_c"]
        self.temperature = temps
        # apparent radiance per material, indexed by material id
        self.radiance = np.zeros(N_MATERIALS)
        for m, t in temps.items():
            self.radiance[m] = radiometry.apparent_radiance(t, EMISSIVITY[m], reflected_c)
        self.skin_apparent_c = float(radiometry.temperature_from_radiance(self.radiance[SKIN]))
        p = spec["path"]
        self.path = Path(p["waypoints"], p["speed_mps"], spec["start_s"], spec["end_s"])
        self.wearing = [name for name in ("glasses", "mask", "hat") if spec[name]]

    def facing(self, x, z, heading, moving):
        """Forward direction on the ground (toward the camera is (-x, -z)).
        'travel': the walking direction while walking; people who stop (to
        be screened, or queueing) turn to the sensor."""
        f = self.spec["facing"]
        to_cam = (-x, -z)
        if isinstance(f, float):
            a = math.atan2(to_cam[0], to_cam[1]) + math.radians(f)
            return (math.sin(a), math.cos(a))
        if f == "travel" and moving and heading is not None:
            return heading
        return to_cam

    def pose(self, t_s):
        """(present, x_m, z_m, forward) at time t_s."""
        x, z, heading, moving = self.path.state(t_s)
        return self.path.present(t_s), x, z, self.facing(x, z, heading, moving)

    def head_center(self, cam, x, z):
        return cam.ground_point(x, self.height_m - HEAD_SEMI[1], z)

    def parts(self, cam, x, z, forward):
        """(primitive, material) for everything but the head, plus the head."""
        frame = yaw_frame(forward)
        fwd = np.array([forward[0], 0.0, forward[1]])
        h = self.height_m
        head = Ellipsoid(self.head_center(cam, x, z), HEAD_SEMI, frame)
        # the neck sits a little behind the head centre so it never covers the chin
        neck = Ellipsoid(cam.ground_point(x, h - 0.27, z) - 0.02 * fwd, NECK_SEMI, frame)
        torso_top = h - 0.28
        torso = Box(cam.ground_point(x, torso_top - TORSO_SIZE[1] / 2, z), TORSO_SIZE, frame)
        legs_h = torso_top - TORSO_SIZE[1]
        legs = Box(cam.ground_point(x, legs_h / 2, z), (LEGS_SIZE[0], legs_h, LEGS_SIZE[2]), frame)
        return head, [(neck, NECK), (torso, TORSO), (legs, LEGS)]

    def classify_head(self, px, py, pz):
        s = self.spec
        return head_materials(px, py, pz, s["hair"], s["hat"], s["glasses"], s["mask"])
