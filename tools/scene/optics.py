"""The lens: a pinhole camera with the MLX90640's fields of view, and the
grid of sub-pixel rays used for supersampled rendering.

Pinhole (rectilinear) projection is what the design notes' footprint figures
assume (2 * tan(FOV/2) * d / 32 = 3.3 cm at 1 m for the 55 deg lens).  The
real 110 deg BAA lens has barrel distortion; it is not modelled.

Pixel coordinates: pixel (row r, col c) covers x in [c, c+1), y in [r, r+1);
row 0 is the top of the image, col 0 the left.  The image centre is (16, 12).
"""

import math

import numpy as np

WIDTH, HEIGHT = 32, 24
LENSES = {"BAB": (55.0, 35.0), "BAA": (110.0, 75.0)}  # (horizontal, vertical) FOV, degrees

# Rendered border around the 32x24 image, in pixels: the PSF at the image
# edge then blurs in real scene radiance instead of a padding guess.
MARGIN = 2


def pixel_footprint_m(lens, distance_m):
    """(width, height) in metres seen by one pixel at distance_m on the axis."""
    h, v = LENSES[lens]
    return (
        2.0 * math.tan(math.radians(h / 2)) * distance_m / WIDTH,
        2.0 * math.tan(math.radians(v / 2)) * distance_m / HEIGHT,
    )


class Camera:
    """Geometry is expressed relative to the camera: the origin is the lens,
    axes are the world's (x right, y up, z forward); only the view direction
    is pitched."""

    def __init__(self, lens="BAB", height_m=1.65, pitch_deg=0.0, supersample=8):
        h, v = LENSES[lens]
        self.lens = lens
        self.height_m = height_m
        self.fx = (WIDTH / 2) / math.tan(math.radians(h / 2))  # focal length in pixels
        self.fy = (HEIGHT / 2) / math.tan(math.radians(v / 2))
        self.ss = supersample
        p = math.radians(pitch_deg)
        # columns: camera right, up, forward expressed in world axes
        self.rot = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(p), math.sin(p)], [0.0, -math.sin(p), math.cos(p)]])
        self.ny = (HEIGHT + 2 * MARGIN) * supersample
        self.nx = (WIDTH + 2 * MARGIN) * supersample
        cols = (np.arange(self.nx) + 0.5) / supersample - MARGIN  # pixel x of each sub-sample
        rows = (np.arange(self.ny) + 0.5) / supersample - MARGIN
        u, w = np.meshgrid((cols - WIDTH / 2) / self.fx, (HEIGHT / 2 - rows) / self.fy)
        n = np.sqrt(u * u + w * w + 1.0)
        cam = np.stack([u / n, w / n, 1.0 / n])  # unit rays, camera frame
        world = np.tensordot(self.rot, cam, axes=1)
        # contiguous per-component arrays: the renderer slices them by bbox
        self.dx, self.dy, self.dz = (np.ascontiguousarray(a) for a in world)

    def to_camera(self, p):
        """Camera-relative world point(s) (..., 3) -> camera frame."""
        return np.asarray(p, dtype=np.float64) @ self.rot

    def project(self, p):
        """Camera-relative world point(s) -> (col, row) pixel coordinates."""
        q = self.to_camera(p)
        return (WIDTH / 2 + self.fx * q[..., 0] / q[..., 2], HEIGHT / 2 - self.fy * q[..., 1] / q[..., 2])

    def ground_point(self, x_m, y_m, z_m):
        """World position (metres above the ground) -> camera-relative."""
        return np.array([x_m, y_m - self.height_m, z_m])

    def sub_slices(self, bbox):
        """Sub-sample index slices (rows, cols) covering a pixel bbox
        (x0, y0, x1, y1); None when it misses the rendered area."""
        if bbox is None:
            return None
        x0, y0, x1, y1 = bbox
        s = self.ss
        c0 = max(0, int(math.floor((x0 + MARGIN) * s)))
        c1 = min(self.nx, int(math.ceil((x1 + MARGIN) * s)))
        r0 = max(0, int(math.floor((y0 + MARGIN) * s)))
        r1 = min(self.ny, int(math.ceil((y1 + MARGIN) * s)))
        if c0 >= c1 or r0 >= r1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def full_bbox(self):
        return (-MARGIN, -MARGIN, WIDTH + MARGIN, HEIGHT + MARGIN)


def gaussian_taps(sigma_px):
    """Normalised 1-D Gaussian PSF taps at pixel offsets -MARGIN..MARGIN."""
    k = np.arange(-MARGIN, MARGIN + 1, dtype=np.float64)
    if sigma_px <= 0.0:
        return (k == 0).astype(np.float64)
    w = np.exp(-0.5 * (k / sigma_px) ** 2)
    return w / w.sum()


def blur_valid(img, taps):
    """Separable convolution keeping only the inner (HEIGHT, WIDTH) pixels
    of an image rendered with MARGIN extra pixels on every side."""
    m = MARGIN
    rows = sum(taps[i] * img[i : i + HEIGHT, :] for i in range(2 * m + 1))
    return sum(taps[i] * rows[:, i : i + WIDTH] for i in range(2 * m + 1))
