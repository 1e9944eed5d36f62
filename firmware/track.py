"""Tracks with stable ids: gated nearest neighbour with a motion prediction.

Each track holds a head position (x = column, y = row, pixels), a velocity
(pixels per frame) and the head width.  Per frame:
1. predict: position + velocity;
2. cost of pairing track t with head k = distance from the prediction plus
   0.5 px per pixel of head-width difference (two people crossing at
   different distances differ in head size) plus _TEMP_COST px per degC of
   face-peak difference; pairs beyond the gate (_GATE_PX + _GATE_WIDTH *
   head width: bigger, closer heads move more pixels per frame) are never
   paired, nor are two big heads (>= _BIG_HEAD_PX wide, where the face peak
   is all skin and steady) whose face peaks differ by more than
   _TEMP_GATE_C: that is the next person stepping into the same spot; nor
   a head more than twice (plus a pixel) as wide or narrow as the track's;
3. greedy assignment, cheapest pair first (optimal enough for <= 8 heads);
4. alpha-beta update (_ALPHA position, _BETA velocity) of paired tracks;
   unpaired tracks coast on their prediction and are retired after
   max_missed frames (about 1 s: long enough to bridge a crossing);
   unpaired heads start new tracks with the next id (u16, wraps, skips 0).
5. begin(t) gives a paired track a new id where the caller knows that
   someone else has taken over its head (see Screening's width rule).
A track also counts how long it has stayed within _STILL_PX of an anchor
(frames_still), so the screening can release objects that never move.
All state is preallocated (MAX_TRACKS slots); ids are 1..65535.
"""

from micropython import const

from buffers import zeros

MAX_TRACKS = 8
_GATE_PX = const(3.0)
_GATE_WIDTH = const(1.0)
_ALPHA = const(0.6)
_BETA = const(0.3)
_STILL_PX = const(1.5)
_MAX_PAIRS = const(64)
_TEMP_COST = const(1.0)
_TEMP_GATE_C = const(1.2)
_BIG_HEAD_PX = const(5)


class Tracker:
    def __init__(self, rate_hz=8.0, max_missed_s=1.0):
        self.max_missed = max(2, int(max_missed_s * rate_hz + 0.5))
        self.next_id = 1
        n = MAX_TRACKS
        self.active = bytearray(n)
        self.ids = zeros("H", n)
        self.x = zeros("f", n)
        self.y = zeros("f", n)
        self.vx = zeros("f", n)
        self.vy = zeros("f", n)
        self.w = zeros("f", n)
        self.peak = zeros("f", n)  # face-peak apparent temperature (degC), smoothed
        self.ax = zeros("f", n)  # anchor of the stillness counter
        self.ay = zeros("f", n)
        self.missed = bytearray(n)
        self.age = zeros("I", n)
        self.frames_still = zeros("I", n)
        self.seen = bytearray(n)  # 1 = paired with a head this frame
        self.new = bytearray(n)  # 1 = started this frame
        self.retired = bytearray(n)  # 1 = retired this frame (slot data still readable)
        self.head_track = bytearray(8)  # per head: track slot, 255 = none
        self._pc = zeros("f", _MAX_PAIRS)
        self._pt = bytearray(_MAX_PAIRS)
        self._pk = bytearray(_MAX_PAIRS)

    def update(self, xs, ys, ws, n_heads, peaks=None):
        """Associate n_heads heads (arrays of column, row, width px and,
        optionally, face-peak degC) with tracks.  Afterwards head_track[k] is the slot of head k; seen, new
        and retired flag what happened to each slot."""
        act = self.active
        tx = self.x
        ty = self.y
        tvx = self.vx
        tvy = self.vy
        tw = self.w
        for t in range(MAX_TRACKS):
            self.seen[t] = 0
            self.new[t] = 0
            self.retired[t] = 0
        ht = self.head_track
        for k in range(n_heads):
            ht[k] = 255
        # candidate pairs within the gate
        pc = self._pc
        pt = self._pt
        pk = self._pk
        npairs = 0
        for t in range(MAX_TRACKS):
            if not act[t]:
                continue
            px = tx[t] + tvx[t]
            py = ty[t] + tvy[t]
            gate = _GATE_PX + _GATE_WIDTH * tw[t]
            for k in range(n_heads):
                dx = xs[k] - px
                dy = ys[k] - py
                dist = (dx * dx + dy * dy) ** 0.5
                if dist > gate or npairs >= _MAX_PAIRS:
                    continue
                dw = ws[k] - tw[t]
                if dw < 0:
                    dw = -dw
                if ws[k] > 2.0 * tw[t] + 1.0 or tw[t] > 2.0 * ws[k] + 1.0:
                    continue  # a head does not halve or double in size from one frame to the next
                cost = dist + 0.5 * dw
                if peaks is not None:
                    dp = peaks[k] - self.peak[t]
                    if dp < 0:
                        dp = -dp
                    if dp > _TEMP_GATE_C and ws[k] >= _BIG_HEAD_PX and tw[t] >= _BIG_HEAD_PX:
                        continue
                    cost += _TEMP_COST * dp
                pc[npairs] = cost
                pt[npairs] = t
                pk[npairs] = k
                npairs += 1
        # greedy: cheapest remaining pair first
        while True:
            best = -1
            bc = 1e9
            for p in range(npairs):
                if pt[p] != 255 and pc[p] < bc:
                    bc = pc[p]
                    best = p
            if best < 0:
                break
            t = pt[best]
            k = pk[best]
            ht[k] = t
            self.seen[t] = 1
            for p in range(npairs):
                if pt[p] == t or pk[p] == k:
                    pt[p] = 255
        for t in range(MAX_TRACKS):
            if not act[t]:
                continue
            px = tx[t] + tvx[t]
            py = ty[t] + tvy[t]
            if self.seen[t]:
                for k in range(n_heads):
                    if ht[k] == t:
                        break
                rx = xs[k] - px
                ry = ys[k] - py
                tx[t] = px + _ALPHA * rx
                ty[t] = py + _ALPHA * ry
                tvx[t] = tvx[t] + _BETA * rx
                tvy[t] = tvy[t] + _BETA * ry
                tw[t] = 0.5 * (tw[t] + ws[k])
                if peaks is not None:
                    self.peak[t] = 0.5 * (self.peak[t] + peaks[k])
                self.missed[t] = 0
            else:
                tx[t] = px
                ty[t] = py
                m = self.missed[t] + 1
                self.missed[t] = m if m < 255 else 255
                if m > self.max_missed:
                    act[t] = 0
                    self.retired[t] = 1
                    continue
            self.age[t] += 1
            dx = tx[t] - self.ax[t]
            dy = ty[t] - self.ay[t]
            if dx * dx + dy * dy > _STILL_PX * _STILL_PX:
                self.ax[t] = tx[t]
                self.ay[t] = ty[t]
                self.frames_still[t] = 0
            else:
                self.frames_still[t] += 1
        # new tracks for unpaired heads
        for k in range(n_heads):
            if ht[k] != 255:
                continue
            for t in range(MAX_TRACKS):
                if not act[t] and not self.retired[t]:
                    break
            else:
                continue  # no free slot: the head stays untracked this frame
            act[t] = 1
            self.seen[t] = 1
            self.begin(t, xs[k], ys[k], ws[k], peaks[k] if peaks is not None else 0.0)
            ht[k] = t

    def begin(self, t, x, y, w, peak):
        """Start a track with the next id in slot t: head at column x, row
        y, width w px, face peak degC.  update() calls it for unpaired
        heads; the screening calls it for an active slot when someone else
        has taken over its head (see Screening's width rule)."""
        self.new[t] = 1
        self.ids[t] = self.next_id
        self.next_id = self.next_id + 1 if self.next_id < 65535 else 1
        self.x[t] = x
        self.y[t] = y
        self.ax[t] = x
        self.ay[t] = y
        self.vx[t] = 0.0
        self.vy[t] = 0.0
        self.w[t] = w
        self.peak[t] = peak
        self.missed[t] = 0
        self.age[t] = 1
        self.frames_still[t] = 0
