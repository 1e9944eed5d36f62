"""Scene -> Frame: ray-cast every sub-pixel sample, mix in radiance space,
then hand the pixel radiance to the sensor model.

Each of supersample**2 rays per pixel finds the nearest surface (depth
buffer), takes that surface's apparent radiance (emission + reflected
surroundings), and the pixel is the mean radiance of its rays: a pixel
partly covered by skin reads what the sensor's T**4 mixing gives.
Background, floor and distractors never move: they are rendered once and
copied into each frame before the people are drawn.
"""

from dataclasses import asdict, dataclass, field

import numpy as np

from . import radiometry
from .distractors import Distractor
from .optics import HEIGHT, MARGIN, WIDTH, Camera, blur_valid
from .people import GLASSES, HAIR, HAT, MASK, N_MATERIALS, SKIN, Person
from .sensor import Sensor

# subpage of each pixel in chess mode: (row + col) % 2
CHESS = np.add.outer(np.arange(HEIGHT), np.arange(WIDTH)) % 2
BACKGROUND_LABEL = 0
FLOOR_LABEL = 999
FLOOR_EMISSIVITY = 0.95
HEAD_MATERIALS = (SKIN, HAIR, HAT, GLASSES, MASK)


@dataclass
class PersonTruth:
    id: str
    present: bool  # in the scene at this time (start_s <= t < end_s)
    in_fov: bool  # present and the head's outline overlaps the image
    distance_m: float  # lens to head centre
    position_m: tuple[float, float]  # (x, z) on the ground
    core_c: float
    skin_c: float  # true face skin temperature
    skin_apparent_c: float  # what a pixel fully on skin reads at emissivity 1
    head_bbox_px: tuple[float, float, float, float] | None  # (x0, y0, x1, y1), unclipped
    best_face_px: tuple[int, int] | None  # (row, col) of the pixel with most visible skin
    # "visible skin": exposed head skin (face; scalp and ears where no hair),
    # not hidden by hair, hat, glasses, mask or anything in front; not the neck
    skin_fraction: float  # geometric visible-skin fraction of that pixel
    skin_fraction_psf: float  # the same weighted by the PSF: what the pixel effectively sees
    skin_pixels: int  # pixels at least half covered by visible skin
    skin_area_px: float  # visible skin area, in pixels
    wearing: list[str] = field(default_factory=list)  # of glasses/mask/hat
    hidden_by: list[str] = field(default_factory=list)  # ids of things in front of the head
    occluded: bool = False  # wearing something over the face, or hidden in part

    def as_dict(self):
        return asdict(self)


@dataclass
class DistractorTruth:
    id: str
    kind: str
    temperature_c: float
    emissivity: float
    apparent_c: float  # reading of a pixel fully on it (emissivity 1)
    distance_m: float
    bbox_px: tuple[float, float, float, float] | None
    in_fov: bool
    visible_area_px: float  # unoccluded area inside the image, in pixels

    def as_dict(self):
        return asdict(self)


@dataclass
class Frame:
    object_c: np.ndarray  # float32 (24, 32), row 0 = top
    ta_c: float
    people: list[PersonTruth]
    distractors: list[DistractorTruth]
    t_s: float
    subpage_rate_hz: float
    # id -> float32 (24, 32) geometric visible-skin fraction of each pixel
    # (people in the field of view only; not written to recordings)
    skin_maps: dict[str, np.ndarray] = field(default_factory=dict)

    def truth_dict(self):
        return {
            "t_s": self.t_s,
            "ta_c": self.ta_c,
            "people": [p.as_dict() for p in self.people],
            "distractors": [d.as_dict() for d in self.distractors],
        }


def _overlaps_image(bbox):
    return bool(bbox is not None) and bool(bbox[0] < WIDTH and bbox[2] > 0 and bbox[1] < HEIGHT and bbox[3] > 0)


class Scene:
    def __init__(self, scenario, seed=0):
        d = scenario.data
        self.scenario = scenario
        self.seed = seed
        self.ambient_c = d["ambient_c"]
        self.reflected_c = d["reflected_c"] if d["reflected_c"] is not None else self.ambient_c
        s = d["sensor"]
        self.camera = Camera(d["lens"], d["camera"]["height_m"], d["camera"]["pitch_deg"], s["supersample"])
        self.sensor = Sensor(s, self.ambient_c, seed)
        self.people = [
            Person(p, i, self.ambient_c, self.reflected_c, np.random.default_rng([seed, 3, i]))
            for i, p in enumerate(d["people"])
        ]
        self.distractors = [Distractor(x, i, self.camera, self.reflected_c) for i, x in enumerate(d["distractors"])]
        self._static = self._render_static(d["background"])
        self._depth = np.empty_like(self._static[0])
        self._rad = np.empty_like(self._static[1])
        self._label = np.empty_like(self._static[2])

    # --- rendering -----------------------------------------------------------

    def _render_static(self, bg):
        cam = self.camera
        shape = (cam.ny, cam.nx)
        cols = (np.arange(cam.nx) + 0.5) / cam.ss - MARGIN
        rows = (np.arange(cam.ny) + 0.5) / cam.ss - MARGIN
        gx, gy = bg["gradient_c"]
        t_bg = self.ambient_c + gx * (cols[None, :] / WIDTH - 0.5) + gy * (0.5 - rows[:, None] / HEIGHT)
        rad = radiometry.radiance(np.broadcast_to(t_bg, shape)).copy()  # far background: blackbody
        depth = np.full(shape, np.inf)
        label = np.full(shape, BACKGROUND_LABEL, dtype=np.int32)
        if bg["floor_c"] is not None:
            with np.errstate(divide="ignore"):
                t = np.where(cam.dy < 0.0, -cam.height_m / cam.dy, np.inf)
            hit = np.isfinite(t)
            depth[hit] = t[hit]
            rad[hit] = radiometry.apparent_radiance(bg["floor_c"], FLOOR_EMISSIVITY, self.reflected_c)
            label[hit] = FLOOR_LABEL
        buf = (depth, rad, label)
        for dis in self.distractors:
            self._draw_uniform(buf, dis.primitive, dis.radiance, dis.label)
        return buf

    def _draw_uniform(self, buf, prim, radiance, label):
        sl = self.camera.sub_slices(prim.bbox_px(self.camera) or self.camera.full_bbox())
        if sl is None:
            return
        cam = self.camera
        t = prim.intersect(cam.dx[sl], cam.dy[sl], cam.dz[sl])
        depth = buf[0][sl]
        win = t < depth
        depth[win] = t[win]
        buf[1][sl][win] = radiance
        buf[2][sl][win] = label

    def _draw_head(self, buf, person, head):
        """Like _draw_uniform, but the material depends on where the ray hits."""
        cam = self.camera
        sl = cam.sub_slices(head.bbox_px(cam) or cam.full_bbox())
        if sl is None:
            return None
        t, dirs = head.intersect(cam.dx[sl], cam.dy[sl], cam.dz[sl], want_local=True)
        depth = buf[0][sl]
        win = t < depth
        if win.any():
            tw = t[win]
            px, py, pz = head.local_point(tw, [d[win] for d in dirs])
            mats = person.classify_head(px, py, pz)
            depth[win] = tw
            buf[1][sl][win] = person.radiance[mats]
            buf[2][sl][win] = person.label_base + mats
        return sl, np.isfinite(t)

    def render(self, t_s, subpage_rate_hz=8, noise=True, chess=False):
        """The frame the sensor reports at time t_s (seconds).

        chess=True mimics how the MLX90640 fills a frame: the subpage read at
        t = k / subpage_rate_hz (pixels with (row + col) % 2 == k % 2, as in
        Melexis' chess mode) is fresh, the other half of the pixels comes from
        the previous subpage, one period earlier, so moving edges show the
        chess artefact.  The ground truth is for t_s."""
        t_s = float(t_s)
        if not subpage_rate_hz > 0:
            raise ValueError("subpage_rate_hz must be > 0, got %r" % (subpage_rate_hz,))
        if chess:
            older = self.render(t_s - 1.0 / subpage_rate_hz, subpage_rate_hz, noise).object_c
            frame = self.render(t_s, subpage_rate_hz, noise)
            k = int(round(t_s * subpage_rate_hz))
            stale = CHESS != (k % 2)
            frame.object_c[stale] = older[stale]
            return frame
        np.copyto(self._depth, self._static[0])
        np.copyto(self._rad, self._static[1])
        np.copyto(self._label, self._static[2])
        buf = (self._depth, self._rad, self._label)
        cam = self.camera
        posed = []
        for person in self.people:
            present, x, z, fwd = person.pose(t_s)
            head_hits = None
            head = None
            if present:
                head, others = person.parts(cam, x, z, fwd)
                for prim, mat in others:
                    self._draw_uniform(buf, prim, person.radiance[mat], person.label_base + mat)
                head_hits = self._draw_head(buf, person, head)
            posed.append((person, present, x, z, head, head_hits))

        s = cam.ss
        pix = self._rad.reshape(cam.ny // s, s, cam.nx // s, s).mean(axis=(1, 3))
        object_c = self.sensor.read(pix, t_s, subpage_rate_hz, noise)

        inner = self._label[MARGIN * s : (MARGIN + HEIGHT) * s, MARGIN * s : (MARGIN + WIDTH) * s]
        counts = np.bincount(inner.ravel(), minlength=1000 + N_MATERIALS * len(self.people))
        skin_maps = {}
        people = [self._person_truth(*p, skin_maps) for p in posed]
        distractors = [self._distractor_truth(d, counts) for d in self.distractors]
        return Frame(object_c, self.sensor.ta_c(t_s), people, distractors, t_s, float(subpage_rate_hz), skin_maps)

    # --- ground truth --------------------------------------------------------

    def _label_owner(self, label):
        if label >= 1000:
            return self.people[(label - 1000) // N_MATERIALS].id
        if 1 <= label <= len(self.distractors):
            return self.distractors[label - 1].id
        return None

    def _person_truth(self, person, present, x, z, head, head_hits, skin_maps):
        cam = self.camera
        center = person.head_center(cam, x, z)
        truth = PersonTruth(
            id=person.id,
            present=present,
            in_fov=False,
            distance_m=float(np.sqrt(center @ center)),
            position_m=(x, z),
            core_c=person.core_c,
            skin_c=person.skin_c,
            skin_apparent_c=person.skin_apparent_c,
            head_bbox_px=None,
            best_face_px=None,
            skin_fraction=0.0,
            skin_fraction_psf=0.0,
            skin_pixels=0,
            skin_area_px=0.0,
            wearing=list(person.wearing),
            occluded=bool(person.wearing),
        )
        if not present or head is None:
            return truth
        bbox = head.bbox_px(cam)
        truth.head_bbox_px = tuple(round(float(v), 4) for v in bbox) if bbox else None
        truth.in_fov = _overlaps_image(bbox) if bbox else True
        if head_hits is not None:
            sl, hit = head_hits
            labels = self._label[sl][hit]
            mine = (labels >= person.label_base) & (labels < person.label_base + N_MATERIALS)
            others = np.unique(labels[~mine & (labels != BACKGROUND_LABEL)])
            truth.hidden_by = sorted({self._label_owner(int(v)) for v in others} - {None})
            truth.occluded = truth.occluded or bool(truth.hidden_by)
        if truth.in_fov and bbox:
            geo, eff = self._skin_maps(person, bbox)
            skin_maps[person.id] = geo
            if geo.any():
                # best pixel: most effective (PSF-weighted) skin, what the sensor pixel sees
                k = int(np.argmax(eff + 1e-9 * geo))
                truth.best_face_px = divmod(k, WIDTH)
                truth.skin_fraction = float(geo.flat[k])
                truth.skin_fraction_psf = float(eff.flat[k])
            truth.skin_pixels = int(np.count_nonzero(geo >= 0.5))
            truth.skin_area_px = float(geo.sum())
        return truth

    def _skin_maps(self, person, bbox):
        """(geometric, PSF-weighted) visible-skin fraction per image pixel.
        Only the head's box (plus the PSF margin) can hold face skin."""
        s, m = self.camera.ss, MARGIN
        ext = np.zeros((HEIGHT + 2 * m, WIDTH + 2 * m))
        c0, c1 = max(0, int(np.floor(bbox[0])) + m), min(WIDTH + 2 * m, int(np.ceil(bbox[2])) + m)
        r0, r1 = max(0, int(np.floor(bbox[1])) + m), min(HEIGHT + 2 * m, int(np.ceil(bbox[3])) + m)
        if c0 < c1 and r0 < r1:
            sub = self._label[r0 * s : r1 * s, c0 * s : c1 * s] == person.label_base + SKIN
            ext[r0:r1, c0:c1] = sub.reshape(r1 - r0, s, c1 - c0, s).mean(axis=(1, 3))
        geo = ext[m : m + HEIGHT, m : m + WIDTH].astype(np.float32)
        return geo, blur_valid(ext, self.sensor.taps)

    def _distractor_truth(self, dis, counts):
        bbox = dis.primitive.bbox_px(self.camera)
        area = counts[dis.label] / self.camera.ss**2
        return DistractorTruth(
            id=dis.id,
            kind=dis.kind,
            temperature_c=dis.temperature_c,
            emissivity=dis.emissivity,
            apparent_c=dis.apparent_c,
            distance_m=dis.distance_m,
            bbox_px=tuple(round(float(v), 4) for v in bbox) if bbox else None,
            in_fov=_overlaps_image(bbox) if bbox else area > 0,
            visible_area_px=float(area),
        )
