"""Solid primitives (ellipsoid, box) in camera-relative world coordinates:
ray intersection for the renderer and exact pixel bounding boxes for culling
and ground truth.  Rays start at the lens (the origin) with unit direction,
so the ray parameter t is the distance in metres.
"""

import math

import numpy as np

from .optics import HEIGHT, WIDTH


def yaw_frame(forward_xz):
    """Rotation whose columns are (right, up, forward) for an upright object
    facing forward_xz = (fx, fz) on the ground."""
    fx, fz = forward_xz
    n = math.hypot(fx, fz)
    fx, fz = fx / n, fz / n
    # right = up x forward: a person facing the camera (forward -z) has
    # their right hand on the image's left (-x).
    return np.array([[fz, 0.0, fx], [0.0, 1.0, 0.0], [-fx, 0.0, fz]])


def yaw_deg_frame(yaw_deg):
    """Frame for an object turned yaw_deg from facing +z (away from the camera)."""
    a = math.radians(yaw_deg)
    return yaw_frame((math.sin(a), math.cos(a)))


class Ellipsoid:
    def __init__(self, center, semi_axes, frame):
        self.center = np.asarray(center, dtype=np.float64)
        self.semi = np.asarray(semi_axes, dtype=np.float64)
        self.frame = frame
        # world -> unit-sphere coordinates; the lens maps to self.origin
        self.to_unit = (frame / self.semi).T  # rows: axis_i / semi_i
        self.origin = self.to_unit @ (-self.center)
        self.shape = (frame * self.semi**2) @ frame.T  # Q: x'Q^-1 x = 1 form

    def intersect(self, dx, dy, dz, want_local=False):
        """Distance to the first hit along each ray (inf on a miss); with
        want_local also the ray directions in unit-sphere coordinates."""
        m, o = self.to_unit, self.origin
        lx = m[0, 0] * dx + m[0, 1] * dy + m[0, 2] * dz
        ly = m[1, 0] * dx + m[1, 1] * dy + m[1, 2] * dz
        lz = m[2, 0] * dx + m[2, 1] * dy + m[2, 2] * dz
        a = lx * lx + ly * ly + lz * lz
        b = o[0] * lx + o[1] * ly + o[2] * lz  # half of the usual b
        c = float(o @ o) - 1.0
        disc = b * b - a * c
        hit = disc >= 0.0
        root = np.sqrt(np.where(hit, disc, 0.0))
        # outside (c > 0): near root; inside: the far one
        t = (-b - root) / a if c > 0.0 else (-b + root) / a
        t = np.where(hit & (t > 0.0), t, np.inf)
        return (t, (lx, ly, lz)) if want_local else t

    def local_point(self, t, local_dirs):
        """Hit points on the unit sphere (x right, y up, z forward)."""
        lx, ly, lz = local_dirs
        o = self.origin
        return o[0] + t * lx, o[1] + t * ly, o[2] + t * lz

    def bbox_px(self, cam):
        """Exact pixel bbox of the projected outline (tangent planes through
        the lens); None when the ellipsoid reaches behind the lens."""
        c = cam.to_camera(self.center)
        q = cam.rot.T @ self.shape @ cam.rot
        if c[2] * c[2] <= q[2, 2]:
            return None
        xs = _tangents(q[0, 0], q[0, 2], q[2, 2], c[0], c[2])
        ys = _tangents(q[1, 1], q[1, 2], q[2, 2], c[1], c[2])
        if xs is None or ys is None:
            return None
        return tuple(
            float(v)
            for v in (
                WIDTH / 2 + cam.fx * xs[0],
                HEIGHT / 2 - cam.fy * ys[1],
                WIDTH / 2 + cam.fx * xs[1],
                HEIGHT / 2 - cam.fy * ys[0],
            )
        )


def _tangents(qaa, qaz, qzz, ca, cz):
    # Plane a = s*z through the lens, normal n = (1, -s); tangent to the
    # ellipsoid when n'Qn = (n.c)^2: a quadratic in s (ratios a/z).
    A = qzz - cz * cz
    B = -2.0 * (qaz - ca * cz)
    C = qaa - ca * ca
    disc = B * B - 4.0 * A * C
    if A == 0.0 or disc < 0.0:
        return None
    r = math.sqrt(disc)
    s1, s2 = (-B - r) / (2 * A), (-B + r) / (2 * A)
    return (min(s1, s2), max(s1, s2))


class Box:
    def __init__(self, center, size, frame):
        self.center = np.asarray(center, dtype=np.float64)
        self.half = np.asarray(size, dtype=np.float64) / 2.0
        self.frame = frame
        self.origin = frame.T @ (-self.center)  # lens in box coordinates

    def intersect(self, dx, dy, dz):
        m, o, h = self.frame.T, self.origin, self.half
        tnear = np.full(dx.shape, -np.inf)
        tfar = np.full(dx.shape, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for i in range(3):  # slab test, one axis at a time
                d = m[i, 0] * dx + m[i, 1] * dy + m[i, 2] * dz
                inv = 1.0 / d
                t1 = (-h[i] - o[i]) * inv
                t2 = (h[i] - o[i]) * inv
                np.maximum(tnear, np.minimum(t1, t2), out=tnear)
                np.minimum(tfar, np.maximum(t1, t2), out=tfar)
        t = np.where(tnear > 0.0, tnear, tfar)  # lens inside the box: exit point
        return np.where((tnear <= tfar) & (t > 0.0), t, np.inf)

    def corners(self):
        s = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], dtype=np.float64)
        return self.center + (s * self.half) @ self.frame.T

    def bbox_px(self, cam):
        q = cam.to_camera(self.corners())
        if np.any(q[:, 2] <= 1e-6):
            return None
        x = WIDTH / 2 + cam.fx * q[:, 0] / q[:, 2]
        y = HEIGHT / 2 - cam.fy * q[:, 1] / q[:, 2]
        return (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
