"""Find people's heads in a 32x24 frame of object temperatures (degC).

Per frame (Detector.process):
1. Background: a per-pixel model bg (degC).  Foreground = warmer than bg by
   _FG_THRESHOLD_C (about 3.5 sigma of single-pixel noise at 8 Hz).
2. Connected components (8-connected) of the foreground: two raster passes
   with a 126-entry union-find table, in viper on the preallocated label
   map: no per-frame allocation.
3. Heads: the top of each blob (up to _MAX_HEADS_PER_BLOB heads side by side
   per blob, for people merged into one blob at a distance).  The head grows
   downward from the topmost column until the row width jumps (shoulders)
   or the rows exceed _HEAD_ASPECT_MAX times the width.  A jump under which
   the next rows are much warmer than the head so far (_FRINGE_EXCESS_RATIO)
   is no far head's shoulders (clothes are cooler than a face) but a near
   head under a cool fringe (hair or a hat at low contrast, a noise pixel
   over the crown): the head grows on.
4. Rejection of things that are not people: any head pixel hotter than
   _SKIN_APPARENT_MAX_C (lamps, engines, hot drinks seen whole); no body
   below the head (a lone warm blob: cup, panel); a head wider than a head
   can be at the closest range or flatter than a head (walls).
5. Background update, only where no person is: bg += (T - bg) / 2**shift,
   2**shift the power of two nearest to _BG_TAU_S * rate (128 frames = 16 s
   at 8 Hz, 4 Hz or 16 Hz alike), in integer Q8 arithmetic with dither.  Pixels in a person's box (plus one pixel)
   are frozen, so a person standing still is never absorbed; the screening
   releases a track that has not moved for a long time (see screening.py).
   Rejected hot objects ARE updated, so a static one fades into the
   background within about 3 time constants.  Pixels that turn colder than
   the model (a person left, uncovering the wall) adapt fast (_BG_FAST_TAU_S,
   8 frames = 1 s at 8 Hz).

Outputs are parallel arrays indexed by head (0..n_heads-1); per head:
peak pixel index and apparent temperature, mean background behind the head,
equivalent head width in pixels, head box, and counts used by measure.py.
Units: degC, pixels; rows from the top of the image.
"""

import micropython
from micropython import const

from buffers import zeros

W = 32
H = 24
N = W * H

_FG_THRESHOLD_C = const(1.0)
_SKIN_APPARENT_MAX_C = const(41.5)  # no skin reads hotter than this (40 degC skin + noise)
_BG_TAU_S = const(20.0)
_BG_FAST_TAU_S = const(1.0)
_BG_INIT_MARGIN_C = const(2.0)  # at start, pixels this much above the median are not background
_NOMINAL_SKIN_APPARENT_C = const(33.0)  # floor of the width reference for tiny, mixed heads
_HEAD_ASPECT_MAX = const(2.2)  # head rows (with neck) per head width, cap
_HEAD_MAX_WIDTH_PX = const(13)  # a head at 0.5 m is about 9.5 px wide (BAB lens)
_MIN_BLOB_PX = const(3)  # smaller blobs are noise
_MIN_HEAD_CONTRAST_C = const(1.5)  # a head's hottest pixel above its background
_FRINGE_EXCESS_RATIO = const(1.5)  # "warmer below": excess over the head so far (noise and face-fill margin)
_MAX_BLOBS = const(24)
# label map byte: blob number 1..MAX_BLOBS, _FG = foreground not yet labelled,
# bit 7 = frozen (a person is here: do not update the background)
_FG = const(127)
_FROZEN = const(0x80)
_MAX_HEADS = const(8)
_MAX_HEADS_PER_BLOB = const(3)

# rejection reasons (counters, for diagnostics and tests)
REJECT_HOT = 0
REJECT_NO_BODY = 1
_REJECT_SHAPE = const(2)
_REJECT_SMALL = const(3)


def _r4(t):
    # relative radiance (T in kelvin)**4; same model as calibration.radiance
    k = t + 273.15
    k = k * k
    return k * k


def _from_r4(r):
    return r**0.25 - 273.15


# The per-pixel passes run in viper on integers: a float frame read the
# ordinary way boxes every value (16 bytes of heap each on the ESP32 port;
# the float version of the threshold and background loops made about
# 110 KB of garbage per frame).  Frame values are converted from their
# IEEE-754 bits to Q8 fixed point (1/256 degC, saturating at +-128 degC)
# inline; the background is an int16 Q8 array (1.5 KB instead of 3 KB).
Q = 256


@micropython.viper
def _fg_pass(frame, bg, lab, n: int, thr: int):
    """lab[i] = _FG where frame[i] - bg[i] > thr (Q8), else 0."""
    f = ptr32(frame)  # noqa: F821 (viper built-in)
    b = ptr16(bg)  # noqa: F821 (viper built-in)
    lb = ptr8(lab)  # noqa: F821 (viper built-in)
    i = 0
    while i < n:
        bits = f[i]
        e = (bits >> 23) & 0xFF
        m = (bits & 0x7FFFFF) | 0x800000
        if e >= 142:
            v = 32767  # saturate at 128 degC
        elif e > 118:
            v = m >> (142 - e)
        else:
            v = 0
        if (bits >> 31) & 1:
            v = 0 - v
        old = b[i]
        if old & 0x8000:
            old -= 0x10000
        lb[i] = 127 if v - old > thr else 0
        i += 1


@micropython.viper
def _bg_pass(frame, bg, lab, n: int, thr: int, shift: int, fast_shift: int, calm_shift: int, dither: int) -> int:
    """Background update (Q8): bg += (T - bg + dither) >> shift where no
    person is (label bit 7 clear); >> fast_shift where the scene turned
    colder by more than thr; >> calm_shift (<= shift: faster at start-up)
    where it is within thr of the model.  The dither (a different 0..2**shift - 1 value
    per pixel and frame) makes the truncating shift unbiased on average, so
    slow drifts are followed below the 1/256 degC step.  Returns the sum of
    bg (Q8) for the ambient estimate."""
    f = ptr32(frame)  # noqa: F821 (viper built-in)
    b = ptr16(bg)  # noqa: F821 (viper built-in)
    lb = ptr8(lab)  # noqa: F821 (viper built-in)
    mask = (1 << shift) - 1
    fmask = (1 << fast_shift) - 1
    cmask = (1 << calm_shift) - 1
    total = 0
    i = 0
    while i < n:
        bits = f[i]
        e = (bits >> 23) & 0xFF
        m = (bits & 0x7FFFFF) | 0x800000
        if e >= 142:
            v = 32767
        elif e > 118:
            v = m >> (142 - e)
        else:
            v = 0
        if (bits >> 31) & 1:
            v = 0 - v
        old = b[i]
        if old & 0x8000:
            old -= 0x10000
        d = v - old
        dd = dither + i * 29
        if d < 0 - thr:
            old += (d + (dd & fmask)) >> fast_shift
        elif lb[i] & 0x80:
            pass  # a person is here
        elif d > thr:
            old += (d + (dd & mask)) >> shift  # warm, not a person: absorbed slowly
        else:
            old += (d + (dd & cmask)) >> calm_shift
        if old > 32767:
            old = 32767
        if old < -32767:
            old = -32767
        b[i] = old
        total += old
        i += 1
    return total


@micropython.viper
def _components(lab, parent, remap, minr, maxr, minc, maxc, count, max_blobs: int) -> int:
    """8-connected components of the _FG (127) pixels of lab, in place, two
    raster passes with a union-find table of 126 provisional labels
    (allocation-free).  Final labels 1..max_blobs in raster order of each
    blob's first pixel; later blobs (and pixels beyond 126 provisional
    labels: clutter) become 0.  Fills the per-blob box and pixel count;
    returns the number of blobs."""
    lb = ptr8(lab)  # noqa: F821 (viper built-in)
    par = ptr8(parent)  # noqa: F821 (viper built-in)
    rem = ptr8(remap)  # noqa: F821 (viper built-in)
    r0 = ptr8(minr)  # noqa: F821 (viper built-in)
    r1 = ptr8(maxr)  # noqa: F821 (viper built-in)
    c0 = ptr8(minc)  # noqa: F821 (viper built-in)
    c1 = ptr8(maxc)  # noqa: F821 (viper built-in)
    cnt = ptr16(count)  # noqa: F821 (viper built-in)
    nxt = 1
    i = 0
    while i < 768:
        if lb[i] != 127:
            i += 1
            continue
        c = i % 32
        m = 0
        k = 0
        while k < 4:
            q = -1
            if k == 0 and c > 0:
                q = i - 1
            elif k == 1 and c > 0 and i >= 32:
                q = i - 33
            elif k == 2 and i >= 32:
                q = i - 32
            elif k == 3 and c < 31 and i >= 32:
                q = i - 31
            k += 1
            if q < 0:
                continue
            x = lb[q]
            if x == 0:
                continue
            while par[x] != x:
                x = par[x]
            if m == 0:
                m = x
            elif x != m:
                # union: the larger root joins the smaller
                if x < m:
                    par[m] = x
                    m = x
                else:
                    par[x] = m
        if m == 0:
            if nxt >= 127:
                lb[i] = 0  # out of provisional labels: clutter, dropped
                i += 1
                continue
            m = nxt
            par[m] = m
            nxt += 1
        lb[i] = m
        i += 1
    k = 0
    while k < 128:
        rem[k] = 0
        k += 1
    nb = 0
    i = 0
    while i < 768:
        x = lb[i]
        if x == 0:
            i += 1
            continue
        while par[x] != x:
            x = par[x]
        y = rem[x]
        if y == 0:
            if nb < max_blobs:
                nb += 1
                y = nb
                r0[y - 1] = 255
                r1[y - 1] = 0
                c0[y - 1] = 255
                c1[y - 1] = 0
                cnt[y - 1] = 0
            else:
                y = 255
            rem[x] = y
        if y == 255:
            lb[i] = 0
            i += 1
            continue
        lb[i] = y
        r = i // 32
        c = i - r * 32
        j = y - 1
        if r < r0[j]:
            r0[j] = r
        if r > r1[j]:
            r1[j] = r
        if c < c0[j]:
            c0[j] = c
        if c > c1[j]:
            c1[j] = c
        cnt[j] += 1
        i += 1
    return nb


def _shift_for(frames):
    # the power of two nearest to `frames` (the EMA time constant in frames)
    s = 0
    while (1 << (s + 1)) <= frames * 1.41:
        s += 1
    return s


class Detector:
    """Background model, segmentation and head localisation.

    rate_hz: frame rate (sets the background time constants and the noise
    level).  Allocates everything in __init__."""

    def __init__(self, rate_hz=8.0, noise_1hz_c=0.1):
        self.sigma_c = noise_1hz_c * (rate_hz**0.5)  # single-pixel noise per frame
        # EMA time constants as shifts: tau = 2**shift frames
        self.shift = _shift_for(_BG_TAU_S * rate_hz)
        self.fast_shift = _shift_for(_BG_FAST_TAU_S * rate_hz)
        self.bg = zeros("h", N)  # background, Q8 degC (1/256)
        self.label = bytearray(N)
        self.parent = bytearray(128)  # union-find table of the labelling
        self.remap = bytearray(128)
        self.frames = 0
        # blob stats
        self.n_blobs = 0
        self.b_minr = bytearray(_MAX_BLOBS)
        self.b_maxr = bytearray(_MAX_BLOBS)
        self.b_minc = bytearray(_MAX_BLOBS)
        self.b_maxc = bytearray(_MAX_BLOBS)
        self.b_count = zeros("H", _MAX_BLOBS)
        self.top = bytearray(W)  # per column: top row of the current blob (255 = none)
        self.used = bytearray(W)
        # heads
        self.n_heads = 0
        self.h_blob = bytearray(_MAX_HEADS)
        self.h_r0 = bytearray(_MAX_HEADS)  # first row
        self.h_rows = bytearray(_MAX_HEADS)  # rows (with neck)
        self.h_c0 = bytearray(_MAX_HEADS)
        self.h_c1 = bytearray(_MAX_HEADS)  # inclusive
        self.h_wmax = bytearray(_MAX_HEADS)  # widest row, whole pixels
        self.h_peak = zeros("H", _MAX_HEADS)  # pixel index of the hottest head pixel
        self.h_peak_c = zeros("f", _MAX_HEADS)  # its apparent temperature
        self.h_bg_c = zeros("f", _MAX_HEADS)  # background behind the head
        self.h_weq = zeros("f", _MAX_HEADS)  # equivalent head width, px
        self.h_ncand = bytearray(_MAX_HEADS)  # pixels within 2 sigma of the peak
        self.h_nskin = bytearray(_MAX_HEADS)  # skin-like pixels (>= 85 % of peak excess)
        self.h_edge = bytearray(_MAX_HEADS)  # 1 = the head touches the left/right border (partly outside)
        self.h_interior = bytearray(_MAX_HEADS)  # peak's 4 neighbours skin-like too
        self.h_nint = bytearray(_MAX_HEADS)  # interior pixels (each could have been the reading)
        self.h_nb = zeros("f", 4 * _MAX_HEADS)  # the reading pixel's left, right, up, down neighbours
        self.h_x = zeros("f", _MAX_HEADS)  # head centre column (px)
        self.h_y = zeros("f", _MAX_HEADS)  # head centre row (px)
        self.rejects = zeros("H", 4)
        self.ambient_c = 0.0

    # --- background -----------------------------------------------------------

    def _init_background(self, frame):
        # Median by a 128-bin histogram (no sorted copy of the frame): anything
        # clearly warmer than most of the scene is not background at start.
        lo = frame[0]
        hi = lo
        for i in range(N):
            v = frame[i]
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        step = (hi - lo) / 127.0 + 1e-6
        hist = zeros("H", 128)
        for i in range(N):
            hist[int((frame[i] - lo) / step)] += 1
        acc = 0
        b = 0
        while b < 127:
            acc += hist[b]
            if 2 * acc >= N:
                break
            b += 1
        med = lo + (b + 0.5) * step
        cap = med + _BG_INIT_MARGIN_C
        bg = self.bg
        for i in range(N):
            v = frame[i]
            # warm pixels (likely a person present at start) take the scene's
            # median until they are uncovered and adapt
            t = v if v < cap else med
            bg[i] = int(t * Q) if -127.0 < t < 127.0 else (32767 if t > 0 else -32767)

    def _update_background(self, frame):
        dither = (self.frames * 73) & 0xFFFF
        # start-up: for the first 2**shift frames, pixels within the threshold
        # of the model average in faster (about a running mean), so one noisy
        # first frame does not linger for tau; warm pixels never do
        shift = 0
        while shift < self.shift and (2 << shift) <= self.frames:
            shift += 1
        total = _bg_pass(
            frame, self.bg, self.label, N, int(_FG_THRESHOLD_C * Q), self.shift, self.fast_shift, shift, dither
        )
        self.ambient_c = total / (Q * N)

    def bg_c(self, i):
        """Background model at pixel i, degC."""
        return self.bg[i] / Q

    # --- segmentation ---------------------------------------------------------

    def _label(self, frame):
        lab = self.label
        _fg_pass(frame, self.bg, lab, N, int(_FG_THRESHOLD_C * Q))
        self.n_blobs = _components(
            lab, self.parent, self.remap, self.b_minr, self.b_maxr, self.b_minc, self.b_maxc, self.b_count, _MAX_BLOBS
        )

    # --- heads ----------------------------------------------------------------

    def _find_heads(self, frame, b):
        """Heads of blob b (0-based; its label is b + 1)."""
        lab = self.label
        n = b + 1
        top = self.top
        used = self.used
        minc = self.b_minc[b]
        maxc = self.b_maxc[b]
        minr = self.b_minr[b]
        maxr = self.b_maxr[b]
        for c in range(W):
            top[c] = 255
            used[c] = 0
        for c in range(minc, maxc + 1):
            for r in range(minr, maxr + 1):
                if lab[r * W + c] == n:
                    top[c] = r
                    break
        first_bottom = 255
        for _k in range(_MAX_HEADS_PER_BLOB):
            if self.n_heads >= _MAX_HEADS:
                return
            # topmost unused column (middle of a flat run)
            best = 255
            c_star = -1
            for c in range(minc, maxc + 1):
                if not used[c] and top[c] < best:
                    best = top[c]
                    c_star = c
            if c_star < 0 or best == 255:
                return
            run_end = c_star
            while run_end + 1 <= maxc and not used[run_end + 1] and top[run_end + 1] == best:
                run_end += 1
            c_star = (c_star + run_end) // 2
            if _k > 0:
                # a second head must be a real top (people side by side), not a shoulder
                if best >= first_bottom:
                    return
            r0 = best
            # grow the head downward
            a = c_star
            z = c_star
            wmax = 0
            wneck = 0  # narrowest row below the widest one (0 = none yet)
            rows = 0
            wide_row = r0
            r = r0
            while r <= maxr:
                base = r * W
                # the run of blob pixels in this row that overlaps [a, z]
                lo = -1
                for c in range(a, z + 1):
                    if lab[base + c] == n:
                        lo = c
                        break
                if lo < 0:
                    break
                ra = lo
                while ra - 1 >= 0 and lab[base + ra - 1] == n and not used[ra - 1]:
                    ra -= 1
                rz = lo
                while rz + 1 < W and lab[base + rz + 1] == n and not used[rz + 1]:
                    rz += 1
                w = rz - ra + 1
                if wneck and w >= wneck + 2:
                    break  # wider again below a narrowing (the neck): shoulders
                if (
                    rows >= 2
                    and 4 * rows >= 3 * wmax
                    and w >= wmax + 2
                    and w >= 2 * wmax
                    and not self._warmer_below(frame, n, r0, r, a, z, ra, rz)
                ):
                    break  # abruptly twice as wide: shoulders (far heads show no neck) or a neighbour
                if w < wmax and (not wneck or w < wneck):
                    wneck = w
                if rows > 0 and rows + 1 > _HEAD_ASPECT_MAX * wmax + 1:
                    break
                if w > wmax:
                    wmax = w
                    wide_row = r
                    if ra < a:
                        a = ra
                    if rz > z:
                        z = rz
                elif rows == 0:
                    a = ra
                    z = rz
                rows += 1
                r += 1
            for c in range(a, z + 1):
                used[c] = 1
            if _k == 0:
                first_bottom = r0 + rows
            self._accept_head(frame, b, r0, rows, a, z, wmax, wide_row, maxr)

    def _warmer_below(self, frame, n, r0, r, a, z, ra, rz):
        """Is there, in the rows r..r+2 of blob n between columns ra and
        rz, a pixel whose excess over the background is _FRINGE_EXCESS_RATIO
        times that of the head so far (rows r0..r-1, columns a..z)?  Then
        the narrow top is a cool fringe (hair, a hat, a noise pixel over the
        crown) of a warmer, wider head, not a far head on its shoulders: a
        far person's face is warmer than their clothes."""
        lab = self.label
        bg = self.bg
        top_c = -300.0
        for rr in range(r0, r):
            base = rr * W
            for c in range(a, z + 1):
                if lab[base + c] == n and frame[base + c] > top_c:
                    top_c = frame[base + c]
        end = r + 3 if r + 3 < H else H
        for rr in range(r, end):
            base = rr * W
            for c in range(ra, rz + 1):
                i = base + c
                if lab[i] == n:
                    b = bg[i] / Q
                    if frame[i] - b > _FRINGE_EXCESS_RATIO * (top_c - b):
                        return True
        return False

    def _accept_head(self, frame, b, r0, rows, a, z, wmax, wide_row, blob_maxr):
        lab = self.label
        bg = self.bg
        n = b + 1
        rej = self.rejects
        if self.b_count[b] < _MIN_BLOB_PX or r0 > H - 3:
            rej[_REJECT_SMALL] += 1
            return
        # body below: the blob reaches at least half a head below the head,
        # or leaves the image at the bottom (someone close)
        need = r0 + rows + (rows + 1) // 2
        if blob_maxr < H - 1 and blob_maxr < need:
            rej[REJECT_NO_BODY] += 1
            return
        if wmax > _HEAD_MAX_WIDTH_PX or (wmax >= 3 and rows * 10 < wmax * 9 and r0 + rows < H):
            rej[_REJECT_SHAPE] += 1
            return
        peak = -1
        peak_c = -300.0
        bsum = 0
        cnt = 0
        for r in range(r0, r0 + rows):
            base = r * W
            for c in range(a, z + 1):
                i = base + c
                if lab[i] != n:
                    continue
                v = frame[i]
                if v > _SKIN_APPARENT_MAX_C:
                    rej[REJECT_HOT] += 1
                    return
                if v > peak_c:
                    peak_c = v
                    peak = i
                bsum += bg[i]
                cnt += 1
        if peak < 0:
            return
        bgc = bsum / (cnt * Q)
        # background AROUND the head (a ring of non-blob pixels beside and
        # above it): the model under a person who was there from the start
        # is a guess, the surroundings are seen
        rsum = 0
        rcnt = 0
        rt = r0 - 1 if r0 > 0 else 0
        rb = r0 + rows if r0 + rows < H else H - 1
        cl = a - 2 if a >= 2 else 0
        cr = z + 2 if z + 2 < W else W - 1
        for r in range(rt, rb + 1):
            base = r * W
            for c in range(cl, cr + 1):
                if not lab[base + c]:
                    rsum += bg[base + c]
                    rcnt += 1
        if rcnt >= 3:
            bgc = rsum / (rcnt * Q)
        ex_peak = _r4(peak_c) - _r4(bgc)
        if peak_c - bgc < _MIN_HEAD_CONTRAST_C:
            rej[_REJECT_SMALL] += 1
            return
        # counts around the peak: candidates for the maximum (within 2 sigma)
        # and skin-like pixels (>= 85 % of the peak's excess radiance)
        lim = peak_c - 2.0 * self.sigma_c
        # skin-like: radiance excess over the head's background >= 90 % of the
        # peak's, as a temperature (one comparison per pixel)
        skin_t = _from_r4(_r4(bgc) + 0.9 * ex_peak)
        ncand = 0
        nskin = 0
        for r in range(r0, r0 + rows):
            base = r * W
            for c in range(a, z + 1):
                i = base + c
                if lab[i] != n:
                    continue
                v = frame[i]
                if v >= lim:
                    ncand += 1
                if v >= skin_t:
                    nskin += 1
        # interior: a face pixel whose 4 neighbours are skin-like too (each
        # >= 90 % of the peak's excess radiance, their mean within 3.5 sigma
        # of the pixel, which carries up to about +1.5 sigma of noise
        # maximum), in a head with at least 5 skin-like pixels: that pixel
        # sees skin only.  The hottest such pixel is the reading when the
        # global peak sits on the face's edge (next to glasses, hair, a mask).
        # nint counts the interior pixels: the ones that competed for the
        # reading's maximum (measure's order-statistics correction)
        interior = 0
        nint = 0
        if nskin >= 5:
            best = -300.0
            best_i = -1
            for r in range(r0, r0 + rows):
                base = r * W
                for c in range(a, z + 1):
                    i = base + c
                    if lab[i] != n:
                        continue
                    v = frame[i]
                    if v < skin_t:
                        continue
                    if self._interior(frame, i, n, skin_t):
                        nint += 1
                        if v > best:
                            best = v
                            best_i = i
            if best_i >= 0:
                interior = 1
                peak = best_i
                peak_c = best
        # the reading pixel's 4 neighbours (itself beyond the image border):
        # measure estimates from them what the PSF takes from the reading
        pr = peak // W
        pc = peak - pr * W
        nb = self.h_nb
        o = 4 * self.n_heads
        nb[o] = frame[peak - 1] if pc > 0 else peak_c
        nb[o + 1] = frame[peak + 1] if pc < W - 1 else peak_c
        nb[o + 2] = frame[peak - W] if pr > 0 else peak_c
        nb[o + 3] = frame[peak + W] if pr < H - 1 else peak_c
        # equivalent width of the widest row: excess radiance relative to the
        # peak's (or to nominal skin, for tiny heads whose peak is itself mixed)
        ref = ex_peak
        nom = _r4(_NOMINAL_SKIN_APPARENT_C) - _r4(bgc)
        if nom > ref:
            ref = nom
        weq = 0.0
        base = wide_row * W
        c_lo = a - 1 if a > 0 else 0
        c_hi = z + 1 if z < W - 1 else W - 1
        for c in range(c_lo, c_hi + 1):
            i = base + c
            e = (_r4(frame[i]) - _r4(bg[i] / Q)) / ref
            if e > 1.0:
                e = 1.0
            if e > 0.0:
                weq += e
        k = self.n_heads
        self.h_blob[k] = b
        self.h_r0[k] = r0
        self.h_rows[k] = rows
        self.h_c0[k] = a
        self.h_c1[k] = z
        self.h_wmax[k] = wmax
        self.h_peak[k] = peak
        self.h_peak_c[k] = peak_c
        self.h_bg_c[k] = bgc
        self.h_weq[k] = weq
        self.h_ncand[k] = ncand if ncand < 255 else 255
        self.h_nskin[k] = nskin if nskin < 255 else 255
        self.h_interior[k] = interior
        self.h_nint[k] = nint if nint < 255 else 255
        self.h_edge[k] = 1 if a == 0 or z == W - 1 else 0
        self.h_x[k] = 0.5 * (a + z) + 0.5
        self.h_y[k] = r0 + 0.5 * rows
        self.n_heads = k + 1

    def _interior(self, frame, i, n, skin_t):
        lab = self.label
        r = i // W
        c = i - r * W
        if r == 0 or r == H - 1 or c == 0 or c == W - 1:
            return False
        s = 0.0
        for q in (i - 1, i + 1, i - W, i + W):
            if lab[q] & 127 != n:
                return False
            v = frame[q]
            if v < skin_t:
                return False
            s += v
        return 0.25 * s >= frame[i] - 3.5 * self.sigma_c

    # --- per frame --------------------------------------------------------------

    def process(self, frame):
        """Segment one frame (768 floats, degC, row-major, row 0 at the top).
        Heads are in the h_* arrays afterwards; call update_background()
        once the caller has marked person areas with freeze_box()."""
        if not self.frames:
            self._init_background(frame)
        self.frames += 1
        self._label(frame)
        self.n_heads = 0
        for b in range(self.n_blobs):
            self._find_heads(frame, b)

    def freeze_box(self, k):
        """Mark head k's blob area (its bounding box plus one pixel) as a
        person: the background there is not updated this frame."""
        b = self.h_blob[k]
        r0 = self.b_minr[b] - 1
        r1 = self.b_maxr[b] + 1
        c0 = self.b_minc[b] - 1
        c1 = self.b_maxc[b] + 1
        if r0 < 0:
            r0 = 0
        if c0 < 0:
            c0 = 0
        if r1 > H - 1:
            r1 = H - 1
        if c1 > W - 1:
            c1 = W - 1
        lab = self.label
        for r in range(r0, r1 + 1):
            base = r * W
            for c in range(c0, c1 + 1):
                lab[base + c] |= _FROZEN

    def update_background(self, frame):
        self._update_background(frame)
