"""Scenario files: the documented JSON schema and `Scenario.load`.

Coordinates (metres): the camera (the officer's helmet) stands at x = 0,
z = 0; x points to the right of the image, y up from the ground, z forward
(away from the officer).  People walk on the ground (y = 0) and are placed
by x_m, z_m; distractors by their centre [x, y, z].

Run `PYTHONPATH=tools:shared python -m scene schema` for the full field list.
"""

import json
import os

from .schema import REQUIRED, Bool, Either, Int, List, Num, Obj, ScenarioError, Str, Vec, describe

LENS_CHOICES = ("BAB", "BAA")
HAIR_CHOICES = ("none", "short", "long")
FACING_CHOICES = ("travel", "camera")
DISTRACTOR_KINDS = ("lamp", "cup", "engine", "exhaust", "wall", "blackbody", "generic")
SHAPES = ("box", "ellipsoid")

# MLX90640 object range: a scene outside it would not be what the sensor reports.
T_MIN_C, T_MAX_C = -40.0, 300.0

WAYPOINT = Obj(
    {
        "x_m": Num(-10.0, 10.0, doc="lateral position, + = right of the image"),
        "z_m": Num(0.3, 8.0, doc="forward distance from the officer (the brief's 0.3 to 8 m)"),
        "dwell_s": Num(0.0, 3600.0, default=0.0, doc="time spent standing here before moving on"),
    }
)

PATH = Obj(
    {
        "speed_mps": Num(0.05, 3.0, default=1.2, doc="walking speed between waypoints"),
        "waypoints": List(WAYPOINT, min_len=1, doc="visited in order; the person stays at the last one"),
    }
)

PERSON = Obj(
    {
        "id": Str(doc="unique name, reported in the ground truth"),
        "core_c": Num(34.0, 43.0, doc="core body temperature"),
        "height_m": Num(1.0, 2.1, default=1.72, doc="standing height; the head is the top 0.23 m"),
        "skin_variation_c": Num(
            -2.0,
            2.0,
            default=None,
            nullable=True,
            doc="this person's deviation from the skin model; null = drawn from the seed",
        ),
        "hair": Str(default="short", choices=HAIR_CHOICES, doc="hair hides skin on the top/sides/back"),
        "hat": Bool(default=False, doc="covers the head above the brow"),
        "glasses": Bool(default=False, doc="opaque to long-wave IR: hides the eye band"),
        "mask": Bool(default=False, doc="hides nose-to-chin; breath-warmed"),
        "clothing_c": Num(
            T_MIN_C,
            T_MAX_C,
            default=None,
            nullable=True,
            doc="clothing surface temperature; null = model (between skin and ambient)",
        ),
        "facing": Either(
            Str(choices=FACING_CHOICES),
            Num(-180.0, 180.0),
            default="travel",
            doc="'travel' (walking direction; the sensor when standing), 'camera', "
            "or yaw in degrees (0 = facing the camera)",
        ),
        "start_s": Num(0.0, 3600.0, default=0.0, doc="the person appears (at the first waypoint) at this time"),
        "end_s": Num(0.0, 7200.0, default=None, nullable=True, doc="the person disappears at this time"),
        "path": PATH,
    }
)

DISTRACTOR = Obj(
    {
        "id": Str(default=None, doc="optional name for the ground truth"),
        "kind": Str(choices=DISTRACTOR_KINDS, doc="sets the default shape and emissivity"),
        "shape": Str(default=None, choices=SHAPES, doc="null = the kind's default"),
        "center_m": Vec(3, -50.0, 50.0, doc="[x, y, z] of the centre; y above the ground"),
        "size_m": Vec(3, 0.005, 50.0, doc="[width, height, depth] (full extents)"),
        "yaw_deg": Num(-180.0, 180.0, default=0.0, doc="rotation about the vertical axis"),
        "temperature_c": Num(T_MIN_C, T_MAX_C, doc="true surface temperature"),
        "emissivity": Num(0.05, 1.0, default=None, nullable=True, doc="null = the kind's default"),
    }
)

CAMERA = Obj(
    {
        "height_m": Num(0.3, 2.5, default=1.65, doc="sensor height above the ground"),
        "pitch_deg": Num(-45.0, 45.0, default=0.0, doc="+ = looking up"),
    },
    default={},
)

SENSOR = Obj(
    {
        "netd_1hz_k": Num(0.0, 2.0, default=0.1, doc="noise RMS at 1 Hz subpage rate; scales with sqrt(rate)"),
        "psf_sigma_px": Num(0.0, 0.8, default=0.4, doc="Gaussian optical blur, in pixels"),
        "supersample": Int(1, 16, default=8, doc="sub-samples per pixel along each axis"),
        "self_heating_k": Num(0.0, 20.0, default=6.0, doc="sensor Ta plateau above ambient"),
        "warmup_tau_s": Num(1.0, 7200.0, default=300.0, doc="time constant of Ta's rise after power-on"),
        "power_on_s": Num(-86400.0, 3600.0, default=0.0, doc="scenario time of power-on (negative = already warm)"),
        "warmup_bias_c": Num(-5.0, 5.0, default=0.0, doc="To error at power-on, decaying with warmup_tau_s"),
        "offset_c": Num(-5.0, 5.0, default=0.0, doc="constant To error (an uncalibrated sensor)"),
        "fixed_pattern_c": Num(0.0, 2.0, default=0.0, doc="RMS of a static per-pixel To error drawn from the seed"),
    },
    default={},
)

BACKGROUND = Obj(
    {
        "gradient_c": Vec(
            2,
            -30.0,
            30.0,
            default=lambda: [0.0, 0.0],
            doc="[left-to-right, bottom-to-top] change across the field of view",
        ),
        "floor_c": Num(
            T_MIN_C,
            T_MAX_C,
            default=None,
            nullable=True,
            doc="ground plane temperature; null = no floor (background everywhere)",
        ),
    },
    default={},
)

SCENARIO = Obj(
    {
        "version": Int(1, 1, doc="schema version, 1"),
        "name": Str(doc="short name"),
        "description": Str(default="", doc="free text"),
        "ambient_c": Num(-20.0, 45.0, doc="air and background temperature"),
        "reflected_c": Num(
            T_MIN_C,
            T_MAX_C,
            default=None,
            nullable=True,
            doc="temperature of the surroundings reflected by grey bodies; null = ambient",
        ),
        "duration_s": Num(0.1, 3600.0, default=20.0, doc="default length of a recording"),
        "lens": Str(default="BAB", choices=LENS_CHOICES, doc="BAB = 55 x 35 deg, BAA = 110 x 75 deg"),
        "camera": CAMERA,
        "sensor": SENSOR,
        "background": BACKGROUND,
        "people": List(PERSON, default=lambda: [], max_len=50),
        "distractors": List(DISTRACTOR, default=lambda: [], max_len=100),
    }
)

SCENARIO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")


def _cross_checks(data, errors):
    """Rules that span fields (the per-field checks have already run)."""
    ids = [p.get("id") for p in data.get("people", [])]
    for i, pid in enumerate(ids):
        if pid is not None and pid in ids[:i]:
            errors.append("people[%d].id: duplicate id %r" % (i, pid))
    for i, p in enumerate(data.get("people", [])):
        if p.get("end_s") is not None and p.get("start_s") is not None and p["end_s"] <= p["start_s"]:
            errors.append("people[%d].end_s: %r must be after start_s %r" % (i, p["end_s"], p["start_s"]))
    for i, d in enumerate(data.get("distractors", [])):
        c = d.get("center_m")
        if c and c[2] is not None and c[2] <= 0.0:
            errors.append("distractors[%d].center_m: z = %r is behind the sensor (must be > 0)" % (i, c[2]))


class Scenario:
    """A validated scenario; `data` is the JSON with every default filled in."""

    def __init__(self, data, source="<dict>"):
        errors = []
        self.data = SCENARIO.check(data, "", errors)
        if not errors:
            _cross_checks(self.data, errors)
        if errors:
            raise ScenarioError(source, errors)
        self.source = source
        self.name = self.data["name"]

    @classmethod
    def load(cls, path):
        """Load and validate a scenario file.  A bare name ("crowd_walk")
        is looked up in tools/scene/scenarios/."""
        if not os.path.exists(path):
            candidate = os.path.join(SCENARIO_DIR, path if path.endswith(".json") else path + ".json")
            if os.path.exists(candidate):
                path = candidate
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ScenarioError(path, ["not valid JSON: %s" % e]) from None
        return cls(data, source=path)

    @classmethod
    def from_dict(cls, data):
        return cls(data)


def schema_text():
    return "\n".join(describe(SCENARIO))


__all__ = ["Scenario", "ScenarioError", "SCENARIO", "SCENARIO_DIR", "schema_text", "REQUIRED"]
