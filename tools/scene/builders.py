"""Small scenario builders for tests and experiments (plain dicts that
Scenario.from_dict validates like a file)."""

import copy


def person(id="p", core_c=37.0, x_m=0.0, z_m=1.0, **extra):
    """A person standing still at (x_m, z_m), facing the sensor."""
    p = {
        "id": id,
        "core_c": core_c,
        "facing": "camera",
        "skin_variation_c": 0.0,
        "path": {"waypoints": [{"x_m": x_m, "z_m": z_m}]},
    }
    p.update(extra)
    return p


def scenario(people=(), distractors=(), ambient_c=23.0, noise=True, psf_sigma_px=None, **extra):
    """A scenario dict: camera at the head height of a 1.755 m person
    (so a standing person's head is centred vertically), sensor warm."""
    d = {
        "version": 1,
        "name": "built",
        "ambient_c": ambient_c,
        "camera": {"height_m": 1.64, "pitch_deg": 0.0},
        "sensor": {"power_on_s": -86400.0},
        "people": [copy.deepcopy(p) for p in people],
        "distractors": [copy.deepcopy(x) for x in distractors],
    }
    for p in d["people"]:
        p.setdefault("height_m", 1.755)
    if not noise:
        d["sensor"]["netd_1hz_k"] = 0.0
    if psf_sigma_px is not None:
        d["sensor"]["psf_sigma_px"] = psf_sigma_px
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(d.get(k), dict):
            d[k].update(v)
        else:
            d[k] = v
    return d
