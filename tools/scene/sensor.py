"""The MLX90640 as a measuring instrument: optical blur, self-heating,
To errors and noise, applied to the pixel radiance the optics deliver.

- PSF: Gaussian, psf_sigma_px (default 0.4 px), applied to pixel-integrated
  radiance.  0.4 px sends about 16 % of a pixel's signal to its neighbours:
  a mild optical crosstalk assumption (no published PSF for the BAB lens).
- Reported To is at emissivity 1: the temperature of the blackbody with the
  same radiance (the sensor's T**4 model).  Emissivity and reflections are
  already in the radiance (radiometry.apparent_radiance).
- Ta (the sensor's own temperature, from its PTAT) = ambient +
  self_heating_k * (1 - exp(-(t - power_on_s) / warmup_tau_s)): it starts at
  air temperature at power-on and settles a few degrees above it (default
  +6 K, tau 300 s).  The sensor compensates its own Ta, so To is unbiased
  unless warmup_bias_c is set (a transient error that decays with Ta's rise).
- Noise: Gaussian, independent per pixel and per frame, RMS =
  netd_1hz_k * sqrt(subpage_rate_hz) in degC (0.1 K at 1 Hz, 0.4 K at 16 Hz),
  the same at every scene temperature.  The generator for a frame is seeded
  from (scene seed, t_s), so a frame is reproducible in any call order.
"""

import math

import numpy as np

from . import radiometry
from .optics import HEIGHT, WIDTH, blur_valid, gaussian_taps


class Sensor:
    def __init__(self, spec, ambient_c, seed):
        self.spec = spec
        self.ambient_c = ambient_c
        self.seed = seed
        self.taps = gaussian_taps(spec["psf_sigma_px"])
        fp = spec["fixed_pattern_c"]
        rng = np.random.default_rng([seed, 2])
        self.fixed_pattern = rng.normal(0.0, fp, (HEIGHT, WIDTH)) if fp > 0 else None

    def warmup(self, t_s):
        """0 at power-on, rising to 1 as the sensor settles."""
        dt = t_s - self.spec["power_on_s"]
        return 0.0 if dt <= 0 else 1.0 - math.exp(-dt / self.spec["warmup_tau_s"])

    def ta_c(self, t_s):
        return self.ambient_c + self.spec["self_heating_k"] * self.warmup(t_s)

    def noise_rms_k(self, subpage_rate_hz):
        return self.spec["netd_1hz_k"] * math.sqrt(subpage_rate_hz)

    def frame_rng(self, t_s):
        us = int(round(t_s * 1e6))
        return np.random.default_rng([self.seed, 1, abs(us), 1 if us < 0 else 0])

    def read(self, pixel_radiance, t_s, subpage_rate_hz, noise=True):
        """Pixel radiance with margin -> reported To (float32, HEIGHT x WIDTH)."""
        r = blur_valid(pixel_radiance, self.taps)
        to = radiometry.temperature_from_radiance(r)
        bias = self.spec["offset_c"] + self.spec["warmup_bias_c"] * (1.0 - self.warmup(t_s))
        if bias:
            to += bias
        if self.fixed_pattern is not None:
            to += self.fixed_pattern
        if noise:
            sigma = self.noise_rms_k(subpage_rate_hz)
            if sigma > 0:
                to += self.frame_rng(t_s).normal(0.0, sigma, to.shape)
        return to.astype(np.float32)
