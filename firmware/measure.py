"""One reading of a detected head: distance, skin temperature, uncertainty.

All radiometry and uncertainty propagation is shared/calibration's; this
module only chooses its inputs (degC, metres; u_* are 1-sigma):

- apparent: the head's hottest pixel, minus the expected maximum of the n
  pixels that could have been the maximum (order statistics of Gaussian
  noise, _MAX_BIAS): the interior pixels when the reading is interior (only
  they competed), else the skin-like ones; its noise is the spread of that
  maximum (_MAX_SD).
  Both through the device Calibration (adds its uncertainty).
- background: the adaptive background behind the head; u_background
  covers hair/ears warmer than the background in a mixed pixel.
- distance: d = HEAD_WIDTH_M / (equivalent head width px * pixel pitch),
  u from head-size spread (HEAD_WIDTH_REL_U) and half a pixel of width.
- fill fraction of the peak pixel = its geometric skin cover c times what
  the PSF keeps of it.  The PSF (documented assumption: Gaussian, sigma
  0.4 px, like tools/scene's optics; 1-D taps 0.919 / 0.040) mixes in each
  side neighbour with weight PSF_NB_W and the diagonals with PSF_DIAG_W:
  f = c * (1 - PSF_NB_W * sum(1 - e_n) - PSF_DIAG_W / 4 * sum(1 - e_d)),
  e_n the 4 side neighbours' excess radiance relative to the reading
  (measured, clipped to [0, 1]); the diagonals are not read: a face's cover
  is about separable per axis (as in _axis_cov), so a diagonal's e_d is the
  product of its two side neighbours' e_n (all skin next to all-skin sides);
  * interior peak (its 4 neighbours read within noise of it): c = 1,
    u_f = 0.012 (the whole PSF allowance: neighbours >= 90 % skin, a wider
    real PSF).  Its neighbours are skin: one reading above it is noise, and
    e_n is not clipped at 1 (clipping only the low side of symmetric noise
    would bias f low, the skin high); f is at most 1;
  * otherwise c is the EXPECTED best-pixel cover of a face FACE_W_M x
    FACE_H_M at the estimated distance (face edge at a uniformly random
    sub-pixel phase, per axis, closed form in _axis_cov), and u_f spans the
    geometric bounds: per axis the best pixel's coverage lies between w/2
    (face split over two pixels) and min(1, w); the PSF takes up to 15 %
    more; bounds over the distance interval, and a peak not verified all
    skin may be on the face's edge (UNRESOLVED_MAX_LO).  The centre is the
    best point estimate, the interval is at least as wide as the bounds (a
    bound used as 1-sigma: conservative).  Far away f - u_f approaches 0
    and the skin uncertainty explodes: RECHECK, never CLEAR.
- occlusion (glasses, mask, hat): fewer skin-like pixels than the face
  size implies (_OCCLUSION_RATIO); the fraction's lower bound is halved.
- emissivity: calibration.correct_emissivity with the configured skin
  emissivity and reflected temperature = ambient (from the background).
"""

from micropython import const

import calibration

# Lens (MLX90640 BAB, 55 x 35 deg, 32 x 24): metres per pixel per metre of distance.
PX_M = 0.032537  # 2 * tan(27.5 deg) / 32
_PY_M = const(0.026265)  # 2 * tan(17.5 deg) / 24
HEAD_WIDTH_M = 0.135  # effective warm width of an adult head (face row, ears/hair partly warm)
HEAD_WIDTH_REL_U = 0.10  # adult head width spread (about 14-17 cm)
WIDTH_PX_U = 0.7  # scatter of the measured width in pixels (sub-pixel phase, hair, PSF), from scene renders
FACE_W_M = 0.13  # visible face skin, width and height
FACE_H_M = 0.18
_PSF_SIDE_LOSS = const(0.04)  # share of a pixel's signal the PSF (sigma 0.4 px) trades with one side neighbour
PSF_NB_W = 0.0371  # 2-D weight of one side neighbour in a pixel's signal (0.919 * 0.0404)
PSF_DIAG_W = 0.0065  # the 4 diagonal neighbours together (4 * 0.0404 ** 2)
_OCCLUDED_FACE_H_M = const(0.09)  # skin band a mask or glasses leave (about half the face)
_INTERIOR_U_FRACTION = const(0.012)
UNRESOLVED_MAX_LO = 0.85  # lower fraction bound for a peak pixel not verified all skin
_OCCLUSION_RATIO = const(0.4)  # skin-like pixels below this share of the face area: occluded
_MIN_FACE_PX_FOR_OCCLUSION = const(2.5)
FRAGMENT_WIDTH_RATIO = 0.7  # a head narrower than this share of its track's width is a fragment
_PLAUSIBLE_SKIN_MAX_C = const(43.0)
_PLAUSIBLE_SKIN_MIN_C = const(31.5)  # colder than any face even in cold air: not a face
# E[max of n standard normals] and its standard deviation for n = 1..16, then
# n = 20, 25, 30, 40 (Monte Carlo, 200 000 draws)
# fmt: off
_MAX_N = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20, 25, 30, 40)
_MAX_BIAS = (0.0, 0.568, 0.845, 1.029, 1.161, 1.266, 1.353, 1.421, 1.482, 1.539, 1.587, 1.629, 1.667, 1.704, 1.735,
             1.767, 1.867, 1.965, 2.043, 2.161)
_MAX_SD = (1.0, 0.826, 0.749, 0.701, 0.668, 0.646, 0.626, 0.612, 0.598, 0.587, 0.578, 0.568, 0.562, 0.554, 0.55,
           0.546, 0.525, 0.506, 0.492, 0.47)
# fmt: on


def _axis_lo(w):
    """Worst-case best-pixel coverage along one axis for a face w pixels
    long (face split evenly over two pixels), after the PSF's loss to
    non-skin neighbours (none when 4+ pixels span the face)."""
    c = 1.0 if w >= 2.0 else 0.5 * w
    if w >= 4.0:
        return c
    if w >= 2.0:
        return c - _PSF_SIDE_LOSS
    return c - 2.0 * _PSF_SIDE_LOSS * c


def _axis_hi(w):
    """Best-case coverage (face aligned on a pixel), after the PSF."""
    c = 1.0 if w >= 1.0 else w
    if w >= 3.0:
        return c
    if w >= 2.0:
        return c - 0.5 * _PSF_SIDE_LOSS
    return c - _PSF_SIDE_LOSS * c


def _axis_cov(w):
    """Expected geometric cover of the best pixel along one axis for a face
    w pixels long whose edge falls at a uniformly random sub-pixel phase
    (integral of max over pixels of the overlap, in closed form)."""
    if w >= 2.0:
        return 1.0
    if w >= 1.0:
        u = 1.0 - 0.5 * w
        return u + u * u + (w - 1.0) * (1.0 + u)
    return w - 0.25 * w * w


def _excess(t_c, rb, ex):
    # radiance excess of t_c over the background's rb, relative to ex, >= 0
    k = calibration.KELVIN + t_c
    k *= k
    e = (k * k - rb) / ex
    return e if e > 0.0 else 0.0


def _psf_keep(app_c, bg_c, nb, o, interior=False):
    """Share of the reading pixel's signal the PSF keeps from its own
    area, from its 4 side neighbours' excess radiance relative to the
    reading (1 = as warm, 0 = background; above 1 only for an interior
    pixel, whose neighbours are skin and read above it by noise alone) and
    the diagonals' (separable cover: the product of the two sides')."""
    kb = calibration.KELVIN + bg_c
    kb *= kb
    rb = kb * kb
    ka = calibration.KELVIN + app_c
    ka *= ka
    ex = ka * ka - rb
    if ex <= 0.0:
        return 1.0 - 0.5 * PSF_DIAG_W  # no excess to compare with (the reading fails later)
    el = _excess(nb[o], rb, ex)
    er = _excess(nb[o + 1], rb, ex)
    eu = _excess(nb[o + 2], rb, ex)
    ed = _excess(nb[o + 3], rb, ex)
    side = el + er + eu + ed
    if not interior:
        side = min(el, 1.0) + min(er, 1.0) + min(eu, 1.0) + min(ed, 1.0)
    el = min(el, 1.0)
    er = min(er, 1.0)
    diag = (el + er) * (min(eu, 1.0) + min(ed, 1.0))
    return 1.0 - PSF_NB_W * (4.0 - side) - 0.25 * PSF_DIAG_W * (4.0 - diag)


def fraction_bounds(d_lo, d_hi, occluded):
    """(f, u_f) of the best face pixel for a distance in [d_lo, d_hi] m."""
    lo = _axis_lo(FACE_W_M / (d_hi * PX_M)) * _axis_lo(FACE_H_M / (d_hi * _PY_M))
    hi = _axis_hi(FACE_W_M / (d_lo * PX_M)) * _axis_hi(FACE_H_M / (d_lo * _PY_M))
    if occluded:
        lo *= 0.5  # the visible skin may be a band (forehead) narrower than the face
    return 0.5 * (lo + hi), 0.5 * (hi - lo)


class Reading:
    """Result of Measurer.measure (fields overwritten each call)."""

    def __init__(self):
        self.ok = False
        self.plausible = True
        self.skin_c = 0.0
        self.u_skin_c = 0.0
        self.u_noise_c = 0.0  # the part of u_skin that averages down over frames
        self.distance_m = 0.0
        self.u_distance_m = 0.0
        self.fraction = 0.0
        self.u_fraction = 0.0
        self.occluded = False
        self.resolved = False  # the peak pixel is verified all skin (see detect: interior)


class Measurer:
    """Turns detector heads into readings.  cal: calibration.Calibration of
    the device; emissivity: skin emissivity (DeviceConfig.emissivity)."""

    def __init__(self, cal=None, emissivity=calibration.SKIN_EMISSIVITY):
        self.cal = calibration.IDENTITY if cal is None else cal
        self.emissivity = emissivity
        self.r = Reading()

    def measure(self, det, k, ambient_c, weq=None, distance_m=None, u_distance_m=0.0):
        """Reading of detector head k; weq: the track's smoothed equivalent
        head width in pixels (default: this frame's); distance_m/u_distance_m:
        a measured distance (the ToF's, via tof.ToFFusion.fuse) instead of
        the head-size one."""
        r = self.r
        r.ok = False
        r.plausible = True
        sigma = det.sigma_c
        if weq is None:
            weq = det.h_weq[k]
        elif det.h_weq[k] < FRAGMENT_WIDTH_RATIO * weq:
            # this frame's head is much narrower than the track's: a fragment
            # (hair above a cool glasses band), not the face; a head does not
            # halve its width in a frame
            return r
        if weq < 0.3:
            weq = 0.3
        if distance_m is None:
            d = HEAD_WIDTH_M / (weq * PX_M)
            rel = (HEAD_WIDTH_REL_U * HEAD_WIDTH_REL_U + (WIDTH_PX_U / weq) ** 2) ** 0.5
        else:
            d = distance_m
            rel = u_distance_m / d
        r.distance_m = d
        r.u_distance_m = d * rel
        fw = FACE_W_M / (d * PX_M)
        fh = FACE_H_M / (d * _PY_M)
        occluded = fw >= _MIN_FACE_PX_FOR_OCCLUSION and det.h_nskin[k] < _OCCLUSION_RATIO * fw * fh
        r.occluded = occluded
        r.resolved = bool(det.h_interior[k]) and fw >= 2.0 and fh >= 2.0
        # the peak is the maximum of the n pixels that competed for it (the
        # interior ones when it is interior, else the skin-like ones): remove
        # the noise's expected share of it (order statistics), keep its spread
        n = det.h_nint[k] if r.resolved else det.h_nskin[k]
        j = 0
        while j + 1 < len(_MAX_N) and _MAX_N[j + 1] <= n:
            j += 1
        app = det.h_peak_c[k] - _MAX_BIAS[j] * sigma
        u_app = sigma * ((_MAX_SD[j] ** 2 + (0.3 * _MAX_BIAS[j]) ** 2) ** 0.5)
        keep = _psf_keep(app, det.h_bg_c[k], det.h_nb, 4 * k, r.resolved)
        if r.resolved:
            f = keep if keep < 1.0 else 1.0
            uf = _INTERIOR_U_FRACTION
        else:
            fm, fu = fraction_bounds(d / (1.0 + rel), d * (1.0 + rel), occluded)
            lo = fm - fu
            hi = fm + fu
            # the peak's neighbours are not all skin-hot: whatever the face
            # size, this pixel may sit on the face's edge
            if lo > UNRESOLVED_MAX_LO:
                lo = UNRESOLVED_MAX_LO
            # centre: the expected cover at the estimated distance, times
            # what the PSF keeps (measured); the bounds stay inside f +/- u_f
            fh_c = (_OCCLUDED_FACE_H_M if occluded else FACE_H_M) / (d * _PY_M)
            if fw >= 1.0 and fh_c >= 1.0:
                f = _axis_cov(fw) * _axis_cov(fh_c) * keep
            else:
                # under a pixel the cover hangs on the unknown sub-pixel phase
                # and on a distance from a 1-2 px head: the interval's middle
                f = 0.5 * (lo + hi)
            if f > hi:
                f = hi
            if f < lo:
                f = lo
            uf = hi - f if hi - f > f - lo else f - lo
        r.fraction = f
        r.u_fraction = uf
        cal = self.cal
        try:
            t_app, u_app_c = cal.apply_with_uncertainty(app, u_app)
            t_bg = cal.apply(det.h_bg_c[k])
            u_bg = 0.25 * (t_app - t_bg)
            if u_bg < 0.5:
                u_bg = 0.5
            ts, us = calibration.skin_from_apparent(t_app, u_app_c, t_bg, u_bg, f, uf)
            e = self.emissivity
            ts = calibration.correct_emissivity(ts, e, ambient_c)
        except (ValueError, OverflowError):
            return r  # not a measurable head this frame (e.g. colder than its background)
        us = us / e
        r.skin_c = ts
        r.u_skin_c = us
        r.u_noise_c = u_app / f
        if us < calibration.INF and ts - 2.0 * us > _PLAUSIBLE_SKIN_MAX_C:
            r.plausible = False  # hotter than any skin even allowing for the fill fraction
        if us < calibration.INF and ts + 2.0 * us < _PLAUSIBLE_SKIN_MIN_C:
            return r  # too cold for skin: a warm object or noise, not a face
        r.ok = True
        return r
