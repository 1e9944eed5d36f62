"""Hot (or cold) objects that are not people: each kind has a default shape
and a long-wave emissivity (typical handbook values; a scenario can override):

    lamp       ellipsoid 0.90  glass bulb / lamp housing
    cup        box       0.92  glazed ceramic or paper cup of hot drink
    engine     box       0.85  painted, dirty engine block / bonnet
    exhaust    box       0.80  oxidised steel tail pipe
    wall       box       0.94  painted or masonry wall (sunlit: warmer than air)
    blackbody  box       0.99  reference source for calibration scenes
    generic    box       0.95
"""

import math

from . import radiometry
from .geometry import Box, Ellipsoid, yaw_deg_frame

KIND_DEFAULTS = {
    "lamp": ("ellipsoid", 0.90),
    "cup": ("box", 0.92),
    "engine": ("box", 0.85),
    "exhaust": ("box", 0.80),
    "wall": ("box", 0.94),
    "blackbody": ("box", 0.99),
    "generic": ("box", 0.95),
}


class Distractor:
    def __init__(self, spec, index, cam, reflected_c):
        self.index = index
        self.label = 1 + index
        self.kind = spec["kind"]
        self.id = spec["id"] or "%s%d" % (self.kind, index)
        shape, emissivity = KIND_DEFAULTS[self.kind]
        self.shape = spec["shape"] or shape
        self.emissivity = spec["emissivity"] if spec["emissivity"] is not None else emissivity
        self.temperature_c = spec["temperature_c"]
        x, y, z = spec["center_m"]
        frame = yaw_deg_frame(spec["yaw_deg"])
        center = cam.ground_point(x, y, z)
        if self.shape == "ellipsoid":
            self.primitive = Ellipsoid(center, [s / 2 for s in spec["size_m"]], frame)
        else:
            self.primitive = Box(center, spec["size_m"], frame)
        self.radiance = float(radiometry.apparent_radiance(self.temperature_c, self.emissivity, reflected_c))
        self.apparent_c = float(radiometry.temperature_from_radiance(self.radiance))
        self.distance_m = math.sqrt(float(center @ center))
