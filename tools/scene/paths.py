"""Walking paths: waypoints visited in order at a constant speed, with an
optional dwell (standing still) at each; the walker stays at the last one."""

import math


class Path:
    def __init__(self, waypoints, speed_mps, start_s=0.0, end_s=None):
        self.points = [(w["x_m"], w["z_m"]) for w in waypoints]
        self.dwell = [w["dwell_s"] for w in waypoints]
        self.speed = speed_mps
        self.start_s = start_s
        self.end_s = end_s
        # timeline of (t_begin, t_end, kind, index): dwell at i or walk i -> i+1
        self.legs = []
        t = start_s
        for i, p in enumerate(self.points):
            self.legs.append((t, t + self.dwell[i], "dwell", i))
            t += self.dwell[i]
            if i + 1 < len(self.points):
                d = math.dist(p, self.points[i + 1])
                self.legs.append((t, t + d / speed_mps, "walk", i))
                t += d / speed_mps
        self.finish_s = t

    def present(self, t_s):
        return t_s >= self.start_s and (self.end_s is None or t_s < self.end_s)

    def state(self, t_s):
        """(x_m, z_m, heading (hx, hz) or None, moving) at time t_s.

        The heading is the direction of the current walk, else of the next
        one (about to leave), else of the last one; None for a path that
        never moves."""
        walks = [leg for leg in self.legs if leg[2] == "walk" and leg[1] > leg[0]]
        for t0, t1, kind, i in self.legs:
            if t_s < t1 or (t_s <= t1 and kind == "walk"):
                if kind == "dwell" or t_s < t0:
                    x, z = self.points[i]
                    moving = False
                else:
                    f = (t_s - t0) / (t1 - t0) if t1 > t0 else 1.0
                    (xa, za), (xb, zb) = self.points[i], self.points[i + 1]
                    x, z = xa + f * (xb - xa), za + f * (zb - za)
                    moving = True
                return x, z, self._heading(walks, t_s), moving
        x, z = self.points[-1]
        return x, z, self._heading(walks, t_s), False

    def _heading(self, walks, t_s):
        if not walks:
            return None
        chosen = walks[-1]
        for leg in walks:
            if t_s < leg[1]:
                chosen = leg
                break
        (xa, za), (xb, zb) = self.points[chosen[3]], self.points[chosen[3] + 1]
        n = math.hypot(xb - xa, zb - za)
        return ((xb - xa) / n, (zb - za) / n)
