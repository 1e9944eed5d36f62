"""Radiometry, calibration, uncertainty and the FEVER/RECHECK/CLEAR decision.

Shared by the ESP32 firmware (MicroPython, single-precision floats) and the
companion app (CPython): one implementation of the numbers that matter.

Model (every temperature in the API is in degC):

    sensor reading --Calibration.apply--> apparent pixel temperature
      --skin_from_apparent (undo the skin/background radiance mix)--> skin
      --core_from_skin (add the skin-to-core offset)--> core
      --decide / Decider (compare the core interval with the threshold)--> outcome

Radiometry follows the MLX90640's own model: the band radiance of a surface is
taken as proportional to T**4 (T in kelvin), so a pixel only partly covered by
skin reads the temperature whose radiance is the area-weighted mean, and a
grey body of emissivity e reflects (1 - e) of its surroundings at Tr.

Uncertainty convention: every ``u_*`` value is a STANDARD (1-sigma)
uncertainty in degC (``u_fraction`` is dimensionless).  Independent
contributions add in quadrature.  ``float('inf')`` means "unknown"; it
propagates and always leads to RECHECK.  Decisions use an expanded interval
core +/- k*u with k = DEFAULT_COVERAGE_K (about 95 % coverage).

Invalid inputs (NaN, infinite or out-of-range temperatures, negative
uncertainties, fractions or emissivities outside (0, 1]) raise InvalidInput
(a ValueError) naming the parameter and the bad value.
"""

import json
import math

KELVIN = 273.15

CLEAR = 0
RECHECK = 1
FEVER = 2
OUTCOME_NAMES = ("CLEAR", "RECHECK", "FEVER")

# Core-temperature fever threshold.  38.0 degC is the most common guidance;
# China uses 37.3 degC.  Configuration, not a constant of nature.
DEFAULT_THRESHOLD_C = 38.0

# core ~= skin + offset, where "skin" is the hottest facial region (inner
# canthus / whole-face maximum) after fill-fraction compensation.  Basis: the
# FDA clinical study (Wang et al., Sensors 2022, 22(1):215, >1000 subjects)
# found that a constant offset from inner-canthus or face-maximum temperature
# to oral temperature calibrates best, leaving a spread of about 0.3 degC
# (1-sigma) with high-resolution thermographs.  Reported canthus-to-core
# differences lie roughly between 1 and 2 degC (e.g. 1.8 +/- 0.9 degC against
# oesophageal temperature, Teunissen & Daanen 2011; oral reads a few tenths
# below oesophageal).  A 32x24 pixel also averages the canthus with cooler
# skin around it.  Default 1.3 degC; uncertainty sqrt(0.3**2 + 0.25**2) ~= 0.4
# degC, the 0.25 for low resolution and field conditions.  Calibrate per site.
DEFAULT_SKIN_TO_CORE_OFFSET_C = 1.3
DEFAULT_OFFSET_UNCERTAINTY_C = 0.4

# Facial skin follows the air around it: cooler in cold air, warmer in heat,
# while the core does not.  Studies of inner-canthus and face-maximum
# temperature against air temperature put the slope at roughly 0.1-0.2 degC
# of skin per degC of air.  The offset above holds at the reference ambient;
# core_from_skin(..., ambient_c=t) corrects it with the middle slope and adds
# the spread of the literature (+/-0.05 per degC) as uncertainty, so readings
# far from the reference air temperature are honestly less certain.  Without
# the correction a feverish face in 15 degC air reads about 1 degC low.
OFFSET_REFERENCE_AMBIENT_C = 23.0
OFFSET_AMBIENT_SLOPE = 0.15
OFFSET_AMBIENT_SLOPE_UNCERTAINTY = 0.05
# The air correction stops at a minimum offset: in steady state heat flows
# from core to skin, so facial skin stays below core even in hot air, where
# the gradient shrinks to a few tenths of a degC.  Without this floor the
# slope would put the face above the core in air hotter than ~31.7 degC.
MIN_SKIN_TO_CORE_OFFSET_C = 0.3

DEFAULT_HYSTERESIS_C = 0.1
DEFAULT_COVERAGE_K = 2.0  # expanded uncertainty, ~95 % for a normal error
SKIN_EMISSIVITY = 0.98

# Valid input temperatures: the MLX90640's object range.
T_MIN_C = -40.0
T_MAX_C = 300.0

# Uncalibrated sensor: the MLX90640 is specified to about +/-1 degC; read as a
# uniform bound that is 1/sqrt(3) ~= 0.58, rounded up to 0.6 degC (1-sigma).
UNCALIBRATED_UNCERTAINTY_C = 0.6

# Floor for the scatter term of a blackbody fit: a two-point fit has zero
# residual, yet the blackbody (typ. +/-0.2 degC at k=2, i.e. 0.1) and the
# sensor noise (~0.1 K RMS at 1 Hz) remain: sqrt(0.1**2 + 0.1**2) -> 0.15.
FIT_UNCERTAINTY_FLOOR_C = 0.15

# Bounds that reject nonsense calibrations (a wrong blackbody or swapped
# columns), not real sensor drift: thermopiles are within a few % in gain
# and a few degC in offset.
GAIN_MIN = 0.8
GAIN_MAX = 1.2
OFFSET_MAX_C = 5.0

FORMAT = "helmet-calibration"
VERSION = 1

INF = float("inf")


class InvalidInput(ValueError):
    """An argument is NaN, out of range or of the wrong type."""


# --- validation helpers ------------------------------------------------------


def _number(name, v):
    if type(v) is bool or not isinstance(v, (int, float)):
        raise InvalidInput("%s must be a number, got %r" % (name, v))
    v = float(v)
    if math.isnan(v):
        raise InvalidInput("%s is NaN" % name)
    return v


def _finite(name, v):
    v = _number(name, v)
    if math.isinf(v):
        raise InvalidInput("%s must be finite, got %r" % (name, v))
    return v


def _temp(name, v):
    v = _finite(name, v)
    if not T_MIN_C <= v <= T_MAX_C:
        raise InvalidInput("%s must be in [%r, %r] degC, got %r" % (name, T_MIN_C, T_MAX_C, v))
    return v


def _unc(name, v):
    """A standard uncertainty: >= 0; inf allowed (unknown)."""
    v = _number(name, v)
    if v < 0:
        raise InvalidInput("%s must be >= 0, got %r" % (name, v))
    return v


def _unit(name, v):
    v = _finite(name, v)
    if not 0.0 < v <= 1.0:
        raise InvalidInput("%s must be in (0, 1], got %r" % (name, v))
    return v


def _quad(*terms):
    # Quadrature sum of (sensitivity, uncertainty) pairs; a zero sensitivity
    # ignores even an infinite uncertainty (avoids 0 * inf = NaN).  Scaled by
    # the largest term so squares neither underflow nor overflow (float32).
    xs = [abs(c * u) for c, u in terms if c != 0.0]
    m = max(xs) if xs else 0.0
    if m == 0.0 or math.isinf(m):
        return m
    return m * math.sqrt(sum((x / m) ** 2 for x in xs))


# --- radiometry ----------------------------------------------------------------


def radiance(t_c):
    """Relative band radiance (T in kelvin)**4 of a blackbody at t_c degC."""
    return (_temp("t_c", t_c) + KELVIN) ** 4


def temperature_from_radiance(r):
    """Inverse of radiance(): degC whose relative radiance is r (> 0)."""
    r = _finite("r", r)
    if r <= 0.0:
        raise InvalidInput("r must be > 0, got %r" % (r,))
    return math.sqrt(math.sqrt(r)) - KELVIN


def _rdiff(ta_c, tb_c):
    # R(a) - R(b) factored as (a - b)(a + b)(a^2 + b^2) with a - b taken from
    # the Celsius values: no cancellation between two ~1e10 radiances.
    # PRECISION: this matters in single precision (ESP32).  Subtracting the
    # float32 radiances directly loses a few 1e-5 K that 1/fraction then
    # amplifies: in a float32 emulation, skin_from_apparent erred by up to
    # 1.5e-3 degC at fraction 0.02 that way, 1.2e-4 degC with this form.
    a = ta_c + KELVIN
    b = tb_c + KELVIN
    return (ta_c - tb_c) * (a + b) * (a * a + b * b)


def _from_base(tb_c, d):
    # Temperature whose radiance is R(tb) + d, as tb_K * (1 + d/R(tb))**0.25:
    # the small ratio keeps full relative precision in float32.
    # Returns None when the implied radiance is not positive.
    b = tb_c + KELVIN
    x = 1.0 + d / (b * b * b * b)
    if x <= 0.0:
        return None
    return b * math.sqrt(math.sqrt(x)) - KELVIN


def mix_pixel(t_skin_c, t_background_c, fraction):
    """Apparent temperature of a pixel whose area is `fraction` skin at
    t_skin_c and the rest background at t_background_c (radiance-weighted)."""
    ts = _temp("t_skin_c", t_skin_c)
    tb = _temp("t_background_c", t_background_c)
    f = _unit("fraction", fraction)
    return _from_base(tb, f * _rdiff(ts, tb))


def apparent_from_object(t_object_c, emissivity, t_reflected_c):
    """Reading (computed at emissivity 1) of a grey body at t_object_c with
    the given emissivity reflecting surroundings at t_reflected_c."""
    to = _temp("t_object_c", t_object_c)
    e = _unit("emissivity", emissivity)
    tr = _temp("t_reflected_c", t_reflected_c)
    return _from_base(tr, e * _rdiff(to, tr))


def correct_emissivity(t_apparent_c, emissivity, t_reflected_c):
    """Object temperature from a reading computed at emissivity 1:
    R(obj) = R(tr) + (R(app) - R(tr)) / e.  Inverse of apparent_from_object."""
    ta = _temp("t_apparent_c", t_apparent_c)
    e = _unit("emissivity", emissivity)
    tr = _temp("t_reflected_c", t_reflected_c)
    t = _from_base(tr, _rdiff(ta, tr) / e)
    if t is None:
        raise InvalidInput("t_apparent_c %r is inconsistent with t_reflected_c %r at emissivity %r" % (ta, tr, e))
    return t


# --- fill-fraction compensation and core estimate ---------------------------


def _skin(ta, tb, f):
    return _from_base(tb, _rdiff(ta, tb) / f)


def skin_from_apparent(t_apparent_c, u_apparent_c, t_background_c, u_background_c, fraction, u_fraction):
    """Invert mix_pixel: (t_skin_c, u_skin_c) from a partly-filled pixel.

    u_skin combines in quadrature the apparent and background terms (analytic
    derivatives) and the fraction term evaluated non-linearly (skin at
    fraction -/+ u_fraction, clipped to (0, 1], larger deviation).  When
    fraction - u_fraction <= 0 the fraction is not known to be positive and
    u_skin is inf: a far-away febrile person must end as RECHECK, not CLEAR."""
    ta = _temp("t_apparent_c", t_apparent_c)
    ua = _unc("u_apparent_c", u_apparent_c)
    tb = _temp("t_background_c", t_background_c)
    ub = _unc("u_background_c", u_background_c)
    f = _unit("fraction", fraction)
    uf = _unc("u_fraction", u_fraction)
    ts = _skin(ta, tb, f)
    if ts is None:
        raise InvalidInput(
            "t_apparent_c %r below t_background_c %r implies negative skin radiance at fraction %r" % (ta, tb, f)
        )
    if f - uf <= 0.0:
        return ts, INF
    # d ts / d ta = R'(ta) / (f R'(ts)); d ts / d tb = -(1 - f) R'(tb) / (f R'(ts))
    # with R'(t) = 4 T^3, written as ratios cubed (no large intermediates).
    sk = ts + KELVIN
    ca = ((ta + KELVIN) / sk) ** 3 / f
    cb = ((tb + KELVIN) / sk) ** 3 * (1.0 - f) / f
    dev = 0.0
    for g in (f - uf, min(1.0, f + uf)):
        t = _skin(ta, tb, g)
        if t is None:  # fraction this small cannot explain the reading
            return ts, INF
        dev = max(dev, abs(t - ts))
    return ts, _quad((ca, ua), (cb, ub), (1.0, dev))


def core_from_skin(
    t_skin_c,
    u_skin_c,
    offset_c=DEFAULT_SKIN_TO_CORE_OFFSET_C,
    u_offset_c=DEFAULT_OFFSET_UNCERTAINTY_C,
    ambient_c=None,
):
    """(core_c, u_core_c): core = skin + offset, uncertainties in quadrature.

    With ``ambient_c`` (air temperature, degC) the offset is corrected for the
    air: offset + OFFSET_AMBIENT_SLOPE * (OFFSET_REFERENCE_AMBIENT_C - ambient),
    with OFFSET_AMBIENT_SLOPE_UNCERTAINTY * |reference - ambient| added to the
    offset's uncertainty.  The correction never takes the offset below
    MIN_SKIN_TO_CORE_OFFSET_C (skin stays below core in hot air), nor below
    offset_c when that calibrated value is itself smaller; the air term's
    uncertainty applies in full also when this floor is reached.  Without
    ``ambient_c`` the offset is taken as it is."""
    ts = _temp("t_skin_c", t_skin_c)
    us = _unc("u_skin_c", u_skin_c)
    off = _finite("offset_c", offset_c)
    if abs(off) > OFFSET_MAX_C:
        raise InvalidInput("offset_c must be in [-5, 5] degC, got %r" % (off,))
    uo = _unc("u_offset_c", u_offset_c)
    u_air = 0.0
    if ambient_c is not None:
        away = OFFSET_REFERENCE_AMBIENT_C - _temp("ambient_c", ambient_c)
        # A site calibration below the minimum is kept as it is at the
        # reference ambient; hot air just cannot lower it further.
        floor = MIN_SKIN_TO_CORE_OFFSET_C if off > MIN_SKIN_TO_CORE_OFFSET_C else off
        off += OFFSET_AMBIENT_SLOPE * away
        if off < floor:
            off = floor
        u_air = OFFSET_AMBIENT_SLOPE_UNCERTAINTY * abs(away)
    return ts + off, _quad((1.0, us), (1.0, uo), (1.0, u_air))


# --- decision ----------------------------------------------------------------


def _bounds(core_c, u_core_c, k):
    c = _temp("core_c", core_c)
    u = _unc("u_core_c", u_core_c)
    if math.isinf(u):
        return -INF, INF
    return c - k * u, c + k * u


def _k(k):
    k = _finite("k", k)
    if k <= 0.0:
        raise InvalidInput("k must be > 0, got %r" % (k,))
    return k


def decide(core_c, u_core_c, threshold_c=DEFAULT_THRESHOLD_C, k=DEFAULT_COVERAGE_K):
    """FEVER if core - k*u > threshold, CLEAR if core + k*u < threshold,
    else RECHECK (also for an infinite uncertainty)."""
    thr = _temp("threshold_c", threshold_c)
    lower, upper = _bounds(core_c, u_core_c, _k(k))
    if lower > thr:
        return FEVER
    if upper < thr:
        return CLEAR
    return RECHECK


class Decider:
    """decide() with hysteresis for a person followed across frames.

    The hysteresis stops flapping without ever weakening safety, so it is
    deliberately asymmetric:
    - FEVER is entered when lower > threshold and held until
      lower <= threshold - hysteresis (sticky in the safe direction: a
      borderline fever stays flagged for the secondary check);
    - CLEAR is entered only when upper < threshold - hysteresis and is left
      as soon as upper >= threshold, so CLEAR is never reported while the
      upper bound reaches the threshold;
    - RECHECK otherwise.
    """

    def __init__(self, threshold_c=DEFAULT_THRESHOLD_C, hysteresis_c=DEFAULT_HYSTERESIS_C, k=DEFAULT_COVERAGE_K):
        self.threshold_c = _temp("threshold_c", threshold_c)
        self.hysteresis_c = _finite("hysteresis_c", hysteresis_c)
        if self.hysteresis_c < 0.0:
            raise InvalidInput("hysteresis_c must be >= 0, got %r" % (self.hysteresis_c,))
        self.k = _k(k)
        self.outcome = RECHECK

    def reset(self):
        self.outcome = RECHECK

    def update(self, core_c, u_core_c):
        lower, upper = _bounds(core_c, u_core_c, self.k)
        thr = self.threshold_c
        low_thr = thr - self.hysteresis_c
        if lower > thr or (self.outcome == FEVER and lower > low_thr):
            self.outcome = FEVER
        elif upper < low_thr or (self.outcome == CLEAR and upper < thr):
            self.outcome = CLEAR
        else:
            self.outcome = RECHECK
        return self.outcome


# --- blackbody calibration ------------------------------------------------------

_FIELDS = ("gain", "offset_c", "residual_rms_c", "uncertainty_c", "points", "device_id", "created")


def _string(name, v):
    if not isinstance(v, str):
        raise InvalidInput("%s must be a string, got %r" % (name, v))
    return v


def _points(pts):
    if not isinstance(pts, (list, tuple)):
        raise InvalidInput("points must be a list of [reference_c, measured_c], got %r" % (pts,))
    out = []
    for i, p in enumerate(pts):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise InvalidInput("points[%d] must be [reference_c, measured_c], got %r" % (i, p))
        out.append((_temp("points[%d] reference_c" % i, p[0]), _temp("points[%d] measured_c" % i, p[1])))
    return tuple(out)


class Calibration:
    """Blackbody calibration: true = gain * measured + offset_c.

    residual_rms_c is the RMS of the fit residuals, uncertainty_c the standard
    uncertainty of a corrected reading within the calibrated range; points
    are the (reference_c, measured_c) set points it was fitted to."""

    def __init__(
        self,
        gain=1.0,
        offset_c=0.0,
        residual_rms_c=0.0,
        uncertainty_c=UNCALIBRATED_UNCERTAINTY_C,
        points=(),
        device_id="",
        created="",
    ):
        self.gain = _finite("gain", gain)
        if not GAIN_MIN <= self.gain <= GAIN_MAX:
            raise InvalidInput("gain must be in [%r, %r], got %r" % (GAIN_MIN, GAIN_MAX, self.gain))
        self.offset_c = _finite("offset_c", offset_c)
        if abs(self.offset_c) > OFFSET_MAX_C:
            raise InvalidInput("offset_c must be in [-5, 5] degC, got %r" % (self.offset_c,))
        self.residual_rms_c = _finite("residual_rms_c", residual_rms_c)
        if self.residual_rms_c < 0.0:
            raise InvalidInput("residual_rms_c must be >= 0, got %r" % (self.residual_rms_c,))
        self.uncertainty_c = _finite("uncertainty_c", uncertainty_c)
        if self.uncertainty_c < 0.0:
            raise InvalidInput("uncertainty_c must be >= 0, got %r" % (self.uncertainty_c,))
        self.points = _points(points)
        self.device_id = _string("device_id", device_id)
        self.created = _string("created", created)

    def apply(self, t_c):
        """Corrected temperature of a raw reading t_c.  Validates its input,
        so for a whole frame use gain and offset_c directly."""
        return self.gain * _temp("t_c", t_c) + self.offset_c

    def apply_with_uncertainty(self, t_c, u_c):
        """(corrected, u): the reading's own u scaled by gain, plus the
        calibration uncertainty, in quadrature."""
        return self.apply(t_c), _quad((self.gain, _unc("u_c", u_c)), (1.0, self.uncertainty_c))

    def to_json(self):
        """The calibration as a "helmet-calibration" version 1 JSON document."""
        # Written field by field so the key order is the same on both interpreters.
        vals = (
            self.gain,
            self.offset_c,
            self.residual_rms_c,
            self.uncertainty_c,
            [[r, m] for r, m in self.points],
            self.device_id,
            self.created,
        )
        parts = ['"format": "%s"' % FORMAT, '"version": %d' % VERSION]
        for name, v in zip(_FIELDS, vals):
            parts.append("%s: %s" % (json.dumps(name), json.dumps(v)))
        return "{" + ", ".join(parts) + "}"

    @classmethod
    def from_json(cls, text):
        """Parse to_json() output; anything else raises InvalidInput."""
        if not isinstance(text, str):
            raise InvalidInput("text must be a string, got %r" % (type(text).__name__,))
        try:
            doc = json.loads(text)
        except ValueError:
            # Not the parser's own text: it differs between interpreters.
            raise InvalidInput("text is not valid JSON") from None
        if not isinstance(doc, dict):
            raise InvalidInput("calibration document must be a JSON object")
        if doc.get("format") != FORMAT:
            raise InvalidInput("format must be %r, got %r" % (FORMAT, doc.get("format")))
        v = doc.get("version")
        if type(v) is not int or v != VERSION:
            raise InvalidInput("version must be %d, got %r" % (VERSION, v))
        for name in _FIELDS:
            if name not in doc:
                raise InvalidInput("missing field %r" % name)
        for name in doc:
            if name not in _FIELDS and name not in ("format", "version"):
                raise InvalidInput("unknown field %r" % name)
        return cls(**{name: doc[name] for name in _FIELDS})

    def __eq__(self, other):
        return isinstance(other, Calibration) and self.to_json() == other.to_json()

    def __repr__(self):
        return "Calibration(gain=%r, offset_c=%r, uncertainty_c=%r)" % (self.gain, self.offset_c, self.uncertainty_c)


IDENTITY = Calibration()


def fit_calibration(points, device_id="", created=""):
    """Ordinary least squares of reference on measured over >= 2 set points.

    uncertainty_c = s * sqrt(1 + 1/n + max (x_i - mean)^2 / Sxx): scatter of a
    new reading plus the fitted line's own uncertainty at the worst point of
    the calibrated range, with s = max(residual std (n - 2 dof),
    FIT_UNCERTAINTY_FLOOR_C) because two points always fit exactly."""
    pts = _points(points)
    n = len(pts)
    if n < 2:
        raise InvalidInput("points must hold at least 2 pairs, got %d" % n)
    # Centred sums: no large-number cancellation in single precision.
    xm = sum(m for _, m in pts) / n
    ym = sum(r for r, _ in pts) / n
    sxx = sum((m - xm) ** 2 for _, m in pts)
    if sxx <= 1e-6:
        raise InvalidInput("points: all measured_c values are equal, cannot fit a gain")
    gain = sum((m - xm) * (r - ym) for r, m in pts) / sxx
    offset = ym - gain * xm
    ssr = sum((r - (gain * m + offset)) ** 2 for r, m in pts)
    s = math.sqrt(ssr / (n - 2)) if n > 2 else 0.0
    s = max(s, FIT_UNCERTAINTY_FLOOR_C)
    lever = max((m - xm) ** 2 for _, m in pts) / sxx
    u = s * math.sqrt(1.0 + 1.0 / n + lever)
    return Calibration(gain, offset, math.sqrt(ssr / n), u, pts, device_id, created)
