"""The per-frame screening pipeline: detect -> track -> measure -> decide.

Screening.process(frame, ta_c, unix_time, t_ms) takes one 768-float frame
(degC at emissivity 1, row-major, row 0 at the top) and calls `sink(event)`
with a protocol.ScreeningEvent whenever a person's confirmed outcome changes.
t_ms is the frame's time on the clock the ToF readings are stamped with
(time.ticks_ms: the helmet's clock); it only decides whether the fusion's
reading is fresh.  reconfigure(cfg) applies a new configuration at once.

Per track (preallocated slots, one calibration.Decider each):
- best-conditioned reading: a frame's reading replaces the kept one when
  its non-averaging uncertainty (u_sys: fill fraction, background,
  calibration) is clearly smaller (< 0.9x); readings of about the same
  condition (<= 1.1x) are averaged, which shrinks only the noise part.
  The core interval comes from calibration.core_from_skin; an untracked
  uncertainty is inf (no reading yet) and decides RECHECK.
- CLEAR only from a resolved face (the kept reading's peak pixel has
  skin-hot neighbours): an unresolved face's fill fraction rests on a
  distance guess from a 1-2 px head, so it may be RECHECK or FEVER, never
  CLEAR;
- multi-frame confirmation: the Decider's outcome must hold for
  confirm_frames consecutive frames before it is reported;
- no event before the track has a reading (a head cut by the image border
  gives none: its width and face are not all there);
- one event per person per confirmed change: typically RECHECK while far,
  then CLEAR or FEVER when close.  FEVER is final for the track (a febrile
  person is never re-reported CLEAR).  `on_final(track_id, outcome)` is
  called when a track ends (person left) with its last reported outcome,
  if its kept reading was taken within _FINAL_MAX_DISTANCE_M.
- one FEVER alarm per person even when their track breaks at close range
  (see _same_fever_person);
- a queue: when the next person steps into the place of the one just
  screened before that track is retired, the tracker pairs them with it;
  a head that stays much narrower than the track's (_taken_over) is
  someone farther away, so the track ends (on_final) and the slot starts
  a new one: nobody inherits another person's reading or outcome;
- a small head inside or below a near person's head box (a chin, an ear
  or a shoulder found as a second head at arm's length, also while that
  head is missed for a frame or two) is that person: not read
  (_part_of_nearer_head);
- non-people: a reading hotter than any skin (after fill fraction) marks the
  track as an object: it never reports.  A track that has not moved for
  STATIC_S is treated as an object too and its pixels are released to the
  background model; where an object track ends, new tracks are objects for
  _KEEP_OUT_S (the half-absorbed remains of the object are not people).

Privacy: nothing of the frame is kept beyond the background model (needed
for segmentation); per track only numbers.
"""

from micropython import const

import calibration
import detect
import measure
import protocol
import track
from buffers import zeros

STATIC_S = 120.0  # a "person" that has not moved for 2 minutes is an object
_SYS_BETTER = const(0.9)
_SYS_SAME = const(1.1)
_NO_OUTCOME = const(255)
_FINAL_MAX_DISTANCE_M = const(2.0)  # on_final only for people who came this close
_WEQ_ALPHA = const(0.2)  # head-width smoothing per frame (about 5 frames)
_REID_S = const(3.0)
_REID_CORE_C = const(0.5)
_KEEP_OUT_ZONES = const(4)
_KEEP_OUT_S = const(120.0)
_KEEP_OUT_MARGIN = const(1)  # px around an object's box
_TAKEOVER_FRAMES = const(3)  # a head this many frames in a row much narrower than its track's is someone else
_PART_MISSED_FRAMES = const(2)  # a near head's box stands for this many frames it is not seen
_TAKEOVER_MIN_DROP_PX = const(2.0)  # ... and narrower by more than its width's noise (measure.WIDTH_PX_U, 3 sigma)


class Screening:
    """cfg: protocol.DeviceConfig; cal: calibration.Calibration (default:
    uncalibrated); sink(event) receives each ScreeningEvent."""

    def __init__(self, cfg=None, cal=None, sink=None, on_final=None, rate_hz=None, tof=None):
        cfg = protocol.DeviceConfig() if cfg is None else cfg
        cfg.validate()
        self.cfg = cfg
        rate = cfg.frame_rate_hz if rate_hz is None else rate_hz
        self.rate_hz = rate
        self.cal = calibration.IDENTITY if cal is None else cal
        self.calibrated = self.cal.uncertainty_c < calibration.UNCALIBRATED_UNCERTAINTY_C
        self.det = detect.Detector(rate)
        self.trk = track.Tracker(rate)
        self.meas = measure.Measurer(self.cal, cfg.emissivity)
        self.sink = sink
        self.on_final = on_final
        self.seq = 0
        self.ambient_c = calibration.OFFSET_REFERENCE_AMBIENT_C  # air temperature, from the background
        self.static_frames = int(STATIC_S * rate)
        n = track.MAX_TRACKS
        self.deciders = [calibration.Decider(cfg.threshold_c, cfg.hysteresis_c, cfg.coverage_k) for _ in range(n)]
        self.has = bytearray(n)  # 1 = the track has a reading
        self.skin_mean = zeros("f", n)
        self.sys_u = zeros("f", n)
        self.noise_var_sum = zeros("f", n)
        self.n_avg = zeros("H", n)
        self.dist = zeros("f", n)
        self.weq = zeros("f", n)  # smoothed equivalent head width (px): distance
        self.narrow = bytearray(n)  # consecutive frames the head was much narrower than weq
        self.occl = bytearray(n)
        self.tof = tof  # tof.ToFFusion when a VL53L1X is fitted, else None
        self.tofd = bytearray(n)  # 1 = the kept reading's distance is the ToF's
        self.resolved = bytearray(n)  # 1 = the kept reading's face pixel is verified all skin
        self.obj = bytearray(n)  # 1 = not a person (hot or static)
        self.cand = bytearray(n)
        self.cand_n = bytearray(n)
        self.reported = bytearray(n)
        self.core = zeros("f", n)  # latest core estimate and u (for display/tests)
        self.u_core = zeros("f", n)
        self.outcome = bytearray(n)  # latest (unconfirmed) Decider outcome
        self.frames = 0
        self.last_fever = _LastFever(rate)
        self.keep_out = _KeepOut(rate)
        self.box = bytearray(4 * n)  # per track: its blob's box last seen (r0, r1, c0, c1)
        self.head_box = bytearray(4 * n)  # per track: its head's box last read (r0, r1, c0, c1)

    def reconfigure(self, cfg):
        """Apply a new configuration (the app's OP_SET_CONFIG) from the next
        frame on: threshold, hysteresis and coverage k of every track's
        decision rule, skin-to-core offset, confirmation frames.  Outcomes
        already reported stand (FEVER stays final); a track's next event
        follows the new rule.  Frame rate and emissivity take effect at the
        next boot (the detector, tracker and sensor are built for a rate; a
        kept reading's skin estimate was made with the old emissivity).
        Raises OutOfRange (nothing changed) for an invalid cfg."""
        cfg.validate()
        for d in self.deciders:
            # the Decider reads these per update: plain attributes, no allocation per frame
            d.threshold_c = float(cfg.threshold_c)
            d.hysteresis_c = float(cfg.hysteresis_c)
            d.k = float(cfg.coverage_k)
        self.cfg = cfg  # offset, confirm_frames and k (events) are read from it per frame

    def _reset_slot(self, t):
        self.deciders[t].reset()
        self.has[t] = 0
        self.n_avg[t] = 0
        self.occl[t] = 0
        self.tofd[t] = 0
        self.resolved[t] = 0
        self.obj[t] = 0
        self.weq[t] = 0.0
        self.narrow[t] = 0
        self.cand[t] = _NO_OUTCOME
        self.cand_n[t] = 0
        self.reported[t] = _NO_OUTCOME
        self.outcome[t] = calibration.RECHECK

    def _start(self, t):
        """Slot t holds a new track: forget the last one's reading."""
        self._reset_slot(t)
        if self._in_keep_out(self.trk.x[t], self.trk.y[t]):
            self.obj[t] = 1

    def _part_of_nearer_head(self, k):
        """Is head k (a small one) inside or below the head box of a nearer
        person?  At arm's length a head fills most of the frame and the
        detector can find a second small "head" in it or under it: a chin,
        an ear, a shoulder, hair as they turn to leave.  What lies within a
        near head's columns, from its top row down, is that person (their
        head and body hide what is behind them; a farther head shows higher,
        towards the horizon), so it is not read, and its track reports
        nothing from there.  Near: a track whose kept reading is resolved,
        with a head at least twice as wide, seen within _PART_MISSED_FRAMES
        (a near head is missed now and then as it turns).  Its head box:
        rows and columns as last read, grown by a pixel."""
        det = self.det
        trk = self.trk
        hb = self.head_box
        r0 = det.h_r0[k]
        c0 = det.h_c0[k]
        c1 = det.h_c1[k]
        w = 2.0 * det.h_weq[k]
        for t in range(track.MAX_TRACKS):
            if not trk.active[t] or trk.head_track[k] == t or not self.resolved[t] or self.obj[t]:
                continue
            if trk.missed[t] > _PART_MISSED_FRAMES or self.weq[t] < w:
                continue
            o = 4 * t
            if hb[o] <= r0 + 1 and hb[o + 2] <= c0 + 1 and c1 <= hb[o + 3] + 1:
                return True
        return False

    def _taken_over(self, t, w):
        """Is track t's head this frame, w px wide, someone else?  A head
        much narrower than the track's (measure.FRAGMENT_WIDTH_RATIO, and by
        more than the width's noise: _TAKEOVER_MIN_DROP_PX) is for
        a frame or two a fragment (hair above a glasses band: measure
        refuses it and the track's width stays); for _TAKEOVER_FRAMES in a
        row it is someone farther away who stepped into the place of the
        person the track followed (a queue), whom the track must not hand
        that person's reading and outcome."""
        weq = self.weq[t]
        if weq <= 0.0 or w >= measure.FRAGMENT_WIDTH_RATIO * weq or weq - w < _TAKEOVER_MIN_DROP_PX:
            self.narrow[t] = 0
            return False
        if self.narrow[t] < 255:
            self.narrow[t] += 1
        return self.narrow[t] >= _TAKEOVER_FRAMES

    def _end(self, t):
        """Track t has ended (its person left, or someone else took over its
        head).  A person who came within reach and left unresolved is worth
        calling back; a far fragment of a track is not."""
        if (
            self.on_final is not None
            and self.reported[t] != _NO_OUTCOME
            and not self.obj[t]
            and self.has[t]
            and self.dist[t] <= _FINAL_MAX_DISTANCE_M
        ):
            self.on_final(self.trk.ids[t], self.reported[t])

    def _in_keep_out(self, x, y):
        """Is a head at column x, row y inside the box of an object: one
        that ended (keep-out zones) or one still tracked?"""
        if self.keep_out.contains(x, y):
            return True
        for t in range(track.MAX_TRACKS):
            if self.obj[t] and self.trk.active[t] and _inside(self.box, 4 * t, x, y):
                return True
        return False

    def _absorb(self, t, r, from_tof=False):
        """Fold this frame's reading into track t's best-conditioned reading."""
        us = r.u_skin_c
        un = r.u_noise_c
        sys2 = us * us - un * un
        u_sys = sys2**0.5 if sys2 > 0.0 else 0.0
        if us == calibration.INF:
            u_sys = calibration.INF
        # a resolved reading (face pixel verified all skin) always beats an
        # unresolved one, and is never replaced by one
        if self.has[t] and self.resolved[t] and not r.resolved:
            return
        if not self.has[t] or (r.resolved and not self.resolved[t]) or u_sys < _SYS_BETTER * self.sys_u[t]:
            self.has[t] = 1
            self.skin_mean[t] = r.skin_c
            self.sys_u[t] = u_sys
            self.noise_var_sum[t] = un * un
            self.n_avg[t] = 1
            self.dist[t] = r.distance_m
            self.occl[t] = 1 if r.occluded else 0
            self.tofd[t] = 1 if from_tof else 0
            self.resolved[t] = 1 if r.resolved else 0
        elif u_sys <= _SYS_SAME * self.sys_u[t] and u_sys < calibration.INF:
            n = self.n_avg[t]
            if n < 60000:
                self.skin_mean[t] = (self.skin_mean[t] * n + r.skin_c) / (n + 1)
                self.noise_var_sum[t] += un * un
                self.n_avg[t] = n + 1
                if r.occluded:
                    self.occl[t] = 1
                if u_sys > self.sys_u[t]:
                    self.sys_u[t] = u_sys

    def _reading_u(self, t):
        n = self.n_avg[t]
        s = self.sys_u[t]
        if s == calibration.INF:
            return s
        return (s * s + self.noise_var_sum[t] / (n * n)) ** 0.5

    def process(self, frame, ta_c=0.0, unix_time=0, t_ms=0):
        """Screen one frame; returns the number of events sent to the sink."""
        det = self.det
        trk = self.trk
        det.process(frame)
        self.frames += 1
        nh = det.n_heads
        trk.update(det.h_x, det.h_y, det.h_wmax, nh, det.h_peak_c)
        ambient = det.ambient_c if det.frames > 1 else det.bg[0]
        if ambient < -40.0 or ambient > 100.0:
            ambient = ta_c
        self.ambient_c = ambient  # the skin-to-core offset depends on the air
        events = 0
        fus = self.tof
        k_tof = -1 if fus is None else fus.pick(det.h_x, det.h_y, det.h_weq, nh, t_ms)
        for k in range(nh):
            t = trk.head_track[k]
            if t == 255:
                det.freeze_box(k)  # untracked but head-like: protect it anyway
                continue
            b = det.h_blob[k]
            bx = self.box
            bx[4 * t] = det.b_minr[b]
            bx[4 * t + 1] = det.b_maxr[b]
            bx[4 * t + 2] = det.b_minc[b]
            bx[4 * t + 3] = det.b_maxc[b]
            w = det.h_weq[k]
            if not trk.new[t] and not self.obj[t] and self._taken_over(t, w):
                self._end(t)
                trk.begin(t, det.h_x[k], det.h_y[k], det.h_wmax[k], det.h_peak_c[k])
            if trk.new[t]:
                self._start(t)
            if trk.frames_still[t] > self.static_frames:
                self.obj[t] = 1
            if self.obj[t]:
                continue  # not a person: background may absorb it
            det.freeze_box(k)
            # the head width is smoothed per track: a per-frame width would let
            # the best-reading choice favour frames whose noise made the head
            # look closer (fill fraction overestimated, skin underestimated)
            if self.weq[t] <= 0.0:
                self.weq[t] = w
            elif not self.narrow[t]:
                self.weq[t] += _WEQ_ALPHA * (w - self.weq[t])
            if det.h_edge[k]:
                continue  # a head cut by the image border: its width and face are not all there
            if self._part_of_nearer_head(k):
                continue
            hb = self.head_box
            hb[4 * t] = det.h_r0[k]
            hb[4 * t + 1] = det.h_r0[k] + det.h_rows[k] - 1
            hb[4 * t + 2] = det.h_c0[k]
            hb[4 * t + 3] = det.h_c1[k]
            from_tof = False
            if k == k_tof:
                d = fus.fuse(self.weq[t], True)
                from_tof = fus.from_tof
            if from_tof:
                r = self.meas.measure(det, k, ambient, self.weq[t], d, fus.u_distance_m)
            else:
                r = self.meas.measure(det, k, ambient, self.weq[t])
            if not r.ok:
                continue
            if not r.plausible:
                self.obj[t] = 1
                continue
            self._absorb(t, r, from_tof)
        self.keep_out.tick()
        for t in range(track.MAX_TRACKS):
            if trk.retired[t] and self.obj[t]:
                self.keep_out.add(self.box, 4 * t)
            if trk.retired[t]:
                self._end(t)
                continue
            if not trk.active[t] or self.obj[t]:
                continue
            events += self._decide(t, unix_time)
        det.update_background(frame)
        return events

    def _decide(self, t, unix_time):
        cfg = self.cfg
        if self.has[t]:
            u = self._reading_u(t)
            core, u_core = calibration.core_from_skin(
                self.skin_mean[t],
                u,
                cfg.skin_to_core_offset_c,
                calibration.DEFAULT_OFFSET_UNCERTAINTY_C,
                self.ambient_c,
            )
            out = self.deciders[t].update(core, u_core)
            if out == calibration.CLEAR and not self.resolved[t]:
                # CLEAR needs a face pixel verified to be all skin: the fill
                # fraction of an unresolved face rests on a distance guess
                out = calibration.RECHECK
            self.core[t] = core
            self.u_core[t] = u_core
        else:
            # no reading yet (head cut by the border, nothing measurable):
            # nothing to report about this person
            self.outcome[t] = calibration.RECHECK
            return 0
        self.outcome[t] = out
        if out == self.cand[t]:
            if self.cand_n[t] < 255:
                self.cand_n[t] += 1
        else:
            self.cand[t] = out
            self.cand_n[t] = 1
        if self.cand_n[t] < cfg.confirm_frames or out == self.reported[t]:
            return 0
        if self.reported[t] == calibration.FEVER:
            return 0  # FEVER is final for this person
        self.reported[t] = out
        if out == calibration.FEVER:
            if self._same_fever_person(t):
                return 0  # the person just alarmed for, on a new track
            f = self.last_fever
            f.frame = self.frames
            f.core_c = self.core[t]
            f.slot = t
            f.track_id = self.trk.ids[t]
        self._emit(t, out, unix_time)
        return 1

    def _same_fever_person(self, t):
        """A track lost at close range (two people overlapping, a head cut
        by the border) restarts as a new track; one alarm per person means a
        FEVER within _REID_S of the last one, with a core estimate within
        _REID_CORE_C, from a new track while the alarmed track is lost, is
        the same person.  Trade-off: a second febrile person of the same
        temperature within those seconds, while the first is out of sight,
        raises no second alarm (the officer is attending the first)."""
        f = self.last_fever
        if f.frame < 0 or self.frames - f.frame > f.window:
            return False
        d = self.core[t] - f.core_c
        if d < 0:
            d = -d
        if d > _REID_CORE_C:
            return False
        s = f.slot
        trk = self.trk
        alarmed_visible = trk.active[s] and trk.ids[s] == f.track_id and trk.seen[s]
        return not alarmed_visible

    def _emit(self, t, out, unix_time):
        self.seq += 1
        flags = 0
        if unix_time:
            flags |= protocol.FLAG_TIME_VALID
        if self.calibrated:
            flags |= protocol.FLAG_CALIBRATED
        if self.occl[t]:
            flags |= protocol.FLAG_SKIN_OCCLUDED
        if self.has[t] and self.tofd[t]:
            flags |= protocol.FLAG_DISTANCE_TOF
        core = None
        core_u = calibration.INF
        skin = None
        skin_u = calibration.INF
        dist = None
        if self.has[t]:
            k = self.cfg.coverage_k
            u = self._reading_u(t)
            skin = _clip(self.skin_mean[t])
            skin_u = k * u
            core = _clip(self.core[t])
            core_u = k * self.u_core[t]
            dist = self.dist[t]
        ev = protocol.ScreeningEvent(
            seq=self.seq,
            time=unix_time,
            kind=protocol.EVENT_SCREENING,
            outcome=out,
            core_c=core,
            core_u_c=core_u,
            skin_c=skin,
            skin_u_c=skin_u,
            distance_m=dist,
            track_id=self.trk.ids[t],
            flags=flags,
        )
        if self.sink is not None:
            self.sink(ev)


class _LastFever:
    """The last FEVER event: frame, core estimate, track slot and id, and the
    frames within which a FEVER like it is the same person (_REID_S)."""

    def __init__(self, rate):
        self.frame = -1
        self.core_c = 0.0
        self.slot = 0
        self.track_id = 0
        self.window = int(_REID_S * rate)


class _KeepOut:
    """Keep-out zones: where an object track ended, new tracks are objects
    too for _KEEP_OUT_S (the absorbed object's remains are not people).
    _KEEP_OUT_ZONES boxes (r0, r1, c0, c1); the oldest gives way."""

    def __init__(self, rate):
        self.box = bytearray(4 * _KEEP_OUT_ZONES)
        self.left = zeros("I", _KEEP_OUT_ZONES)  # frames left per zone; 0 = free
        self.frames = int(_KEEP_OUT_S * rate)

    def contains(self, x, y):
        for z in range(_KEEP_OUT_ZONES):
            if self.left[z] and _inside(self.box, 4 * z, x, y):
                return True
        return False

    def add(self, box, o):
        """A zone for the box at box[o:o + 4]."""
        best = 0
        for z in range(_KEEP_OUT_ZONES):
            if self.left[z] < self.left[best]:
                best = z
        for j in range(4):
            self.box[4 * best + j] = box[o + j]
        self.left[best] = self.frames

    def tick(self):
        """One frame has passed."""
        for z in range(_KEEP_OUT_ZONES):
            if self.left[z]:
                self.left[z] -= 1


def _inside(box, o, x, y):
    m = _KEEP_OUT_MARGIN
    return box[o] - m <= y <= box[o + 1] + 1 + m and box[o + 2] - m <= x <= box[o + 3] + 1 + m


def _clip(t):
    # the event record carries -50..150 degC; skin/core estimates stay far inside
    if t < -50.0:
        return -50.0
    if t > 150.0:
        return 150.0
    return t
