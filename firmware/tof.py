"""Which tracked head a VL53L1X reading belongs to, and the fused distance.

No hardware here: readings come in as (distance_mm, status, t_ms), heads as
the detector's arrays, so this is tested with plain numbers.

Geometry (both sensors boresighted on the helmet's brim, a few cm apart:
parallax is negligible beyond 0.5 m).  The MLX90640 BAB images 55 x 35 deg
on 32 x 24 pixels; pixel coordinates as in detect (pixel i spans [i, i+1),
the optical axis at column 16, row 12).  A pixel offset maps to an angle
through the pinhole model, tan(a) = (x - 16) / 16 * tan(27.5 deg), and
tan(b) = (y - 12) / 12 * tan(17.5 deg); the ToF's cone (27 deg full angle,
the default 16 x 16 SPAD region) holds the directions with tan(a)^2 +
tan(b)^2 <= tan(13.5 deg)^2: an ellipse of semi-axes 7.4 columns by 9.1 rows
around the image centre, columns 8.6-23.4 and rows 2.9-21.1 (WINDOW).

The ToF reports the nearest surface in its cone, which for a person is the
face or chest (FRONT_TO_CENTRE_M before the head centre, which head-size
distances refer to) and may be someone's body whose head is just outside the
cone: a head counts as in the cone when its person's body can be (half the
shoulders' width, BODY_HALF_WIDTH x the head width, sideways; for a head
above the axis the body below it crosses the axis).

Choice (pick): a fresh valid reading (age <= max_age_ms) goes to a head
in the cone whose head-size distance agrees with it within k combined
standard uncertainties; of several such heads, the nearest by head size
(the ToF reports the nearest surface: a far head on the axis behind a near
one off it does not get the near one's distance), and among heads of about
the same size the nearest the image centre.  A reading that agrees with no
head (a hand, a door frame, a person whose head is not tracked) is not
used.  Fusion (fuse): the chosen head takes the ToF distance (plus
FRONT_TO_CENTRE_M) with its uncertainty (TOF_U_M + TOF_U_REL x d, ranging
accuracy and where on the body it landed); every other head, and every head
when the reading is stale, invalid or inconsistent, keeps its head-size
distance.

Limits: far away a head is 1-2 pixels wide and its size says little (3 m
+/- 1.5 m), so the agreement gate is wide there and a reading off something
in front of the person (an outstretched hand) can pass it.  The distance
then reads short, the fill fraction high and the skin estimate low: a
febrile person may get RECHECK instead of FEVER, never CLEAR (screening
reports CLEAR only from a resolved face, whose fill fraction does not rest
on the distance).
"""

import math
import time

import measure

CONE_DEG = 27.0
FOV_X_DEG = 55.0
FOV_Y_DEG = 35.0
COLS = 32
ROWS = 24
CENTRE_X = COLS / 2
CENTRE_Y = ROWS / 2
_T_CONE = math.tan(math.radians(CONE_DEG / 2))
_TX = math.tan(math.radians(FOV_X_DEG / 2)) / CENTRE_X  # tan per column
_TY = math.tan(math.radians(FOV_Y_DEG / 2)) / CENTRE_Y  # tan per row
HALF_COLS = _T_CONE / _TX  # 7.38: the cone's semi-axis in columns
HALF_ROWS = _T_CONE / _TY  # 9.14: in rows
# (first column, last column, first row, last row) of the pixels the cone touches
WINDOW = (
    int(CENTRE_X - HALF_COLS),
    int(CENTRE_X + HALF_COLS),
    int(CENTRE_Y - HALF_ROWS),
    int(CENTRE_Y + HALF_ROWS),
)

FRONT_TO_CENTRE_M = 0.10  # ToF hits face/chest; head-size distance is to the head centre
TOF_U_M = 0.05  # 1-sigma: ranging (+/- 20 mm long mode) and where on the body it landed
TOF_U_REL = 0.01  # plus 1 % of the distance (ambient light, reflectance)
K_AGREE = 2.0  # agreement gate, combined standard uncertainties
MAX_AGE_MS = 300  # a reading older than this (a frame at 4 Hz is 250 ms) is stale
BODY_HALF_WIDTH = 1.5  # shoulders' half width, in head widths
SAME_WIDTH = 1.1  # head widths within 10 %: about the same distance
MIN_M = 0.1
MAX_M = 4.5


def head_distance(weq):
    """Head-size distance (m) and its 1-sigma uncertainty for an equivalent
    head width of weq pixels: measure's model (one source of truth)."""
    if weq < 0.3:
        weq = 0.3
    d = measure.HEAD_WIDTH_M / (weq * measure.PX_M)
    rel = (measure.HEAD_WIDTH_REL_U * measure.HEAD_WIDTH_REL_U + (measure.WIDTH_PX_U / weq) ** 2) ** 0.5
    return d, d * rel


class ToFFusion:
    """Latest ToF reading and the per-head choice; outputs of fuse() in
    distance_m, u_distance_m and from_tof (no allocation per call)."""

    def __init__(self, max_age_ms=MAX_AGE_MS, k=K_AGREE, centre_x=CENTRE_X, centre_y=CENTRE_Y):
        self.max_age_ms = max_age_ms
        self.k = k
        self.cx = centre_x  # where the ToF's axis falls on the image (mounting)
        self.cy = centre_y
        self.valid = False
        self.tof_m = 0.0  # last valid reading, converted to a head-centre distance
        self.u_tof_m = 0.0
        self.t_ms = 0
        self.distance_m = 0.0
        self.u_distance_m = 0.0
        self.from_tof = False

    def reading(self, distance_mm, status, t_ms):
        """A result from VL53L1X.read_mm(): only status 0 with a distance
        counts; anything else withdraws the previous reading."""
        if status != 0 or distance_mm is None:
            self.valid = False
            return
        d = distance_mm / 1000.0 + FRONT_TO_CENTRE_M
        if not MIN_M <= d <= MAX_M:
            self.valid = False
            return
        self.valid = True
        self.tof_m = d
        self.u_tof_m = TOF_U_M + TOF_U_REL * d
        self.t_ms = t_ms

    def fresh(self, t_ms):
        """Is the reading valid and at most max_age_ms older than t_ms (ticks
        of the same clock, time.ticks_ms: compared with ticks_diff, so the
        wrap does not matter)?  A reading taken after t_ms is not used; a
        stale one is dropped, so that it cannot look fresh again once the
        ticks have gone half a period further (ticks_diff's range)."""
        if not self.valid:
            return False
        age = time.ticks_diff(t_ms, self.t_ms)
        if age > self.max_age_ms:
            self.valid = False
            return False
        return age >= 0

    def cone_offset(self, x, y, weq=0.0):
        """Squared tangent of the angle from the ToF axis to the nearest
        point of the person whose head is centred at (x, y) with width weq
        px, over the cone's: <= 1 means the cone can see them."""
        dx = abs(x - self.cx) - BODY_HALF_WIDTH * weq
        if dx < 0.0:
            dx = 0.0
        dy = y - self.cy
        if dy < 0.0:
            dy = 0.0  # head above the axis: the body below it crosses it
        tx = dx * _TX
        ty = dy * _TY
        return (tx * tx + ty * ty) / (_T_CONE * _T_CONE)

    def agrees(self, weq):
        """Does the ToF reading agree with this head width's distance?"""
        dh, uh = head_distance(weq)
        u = (uh * uh + self.u_tof_m * self.u_tof_m) ** 0.5
        return abs(self.tof_m - dh) <= self.k * u

    def pick(self, xs, ys, weqs, n, t_ms):
        """Index of the head (of n; centres xs/ys, widths weqs in px) the
        current reading belongs to, or -1.  Of the heads in the cone that
        agree with it, the nearest by head size (widest: the ToF sees the
        nearest surface); heads of about the same size (within SAME_WIDTH)
        go by nearness to the image centre."""
        if not self.fresh(t_ms):
            return -1
        best = -1
        best_w = 0.0
        best_c = 0.0
        for j in range(n):
            w = weqs[j]
            if self.cone_offset(xs[j], ys[j], w) > 1.0 or not self.agrees(w):
                continue
            c = self.cone_offset(xs[j], ys[j])  # the head's own centre, not its body
            if best >= 0:
                if w < best_w / SAME_WIDTH:
                    continue  # clearly farther than the best so far
                if w <= best_w * SAME_WIDTH and c >= best_c:
                    continue  # about as near, but not nearer the centre
            best = j
            best_w = w
            best_c = c
        return best

    def fuse(self, weq, use_tof):
        """Distance of a head of width weq px: the ToF's when use_tof (this is
        the picked head) and it still agrees (weq may be the track's smoothed
        width), else head size.  Returns distance_m; sets u_distance_m and
        from_tof."""
        dh, uh = head_distance(weq)
        if use_tof and self.valid and self.agrees(weq):
            self.distance_m = self.tof_m
            self.u_distance_m = self.u_tof_m
            self.from_tof = True
        else:
            self.distance_m = dh
            self.u_distance_m = uh
            self.from_tof = False
        return self.distance_m
