"""Blackbody calibration: set points -> frames -> least squares -> device.

For each set point the technician (or the simulated bench) brings the
blackbody to temperature at a known distance, centred in view; the tool
collects N frames and averages the pixels that see only the blackbody's
aperture (its image from the lens geometry, less a pixel of margin for the
optics' blur).  The reference for each point is what an ideal sensor reads
from that source: its set temperature seen at its emissivity, reflecting the
room (calibration.apparent_from_object), so the fit is the sensor's own
error and not the blackbody's.

The fit (numpy least squares of reference on measured: true = gain *
reading + offset) must agree with shared/calibration.fit_calibration, whose
record is the only calibration format: the tool writes exactly that record
to the device (bench.write_calibration validates it again and the firmware
reads it with bench.load_calibration) and exports it for the app.

A fit is refused, with the reason, when there are fewer than two distinct
set points, the blackbody does not fill the averaged region, a point is not
stable across its frames, a residual is too large, or gain/offset fall
outside calibration's bounds (GAIN_MIN..GAIN_MAX, |offset| <= OFFSET_MAX_C).
"""

import json
import math
import time
from pathlib import Path

import numpy as np

import calibration
from bench_tools import frames, mpr

LENS_FOV_DEG = (55.0, 35.0)  # MLX90640 BAB, the reference build
MIN_SPAN_C = 2.0  # set points closer than this cannot tell gain from offset
MAX_SPATIAL_STD_C = 0.5  # the averaged region must see one uniform source
MAX_TEMPORAL_STD_C = 0.3  # the point's frame means must agree (blackbody settled)
MAX_RESIDUAL_C = 0.2  # worst |fit residual| accepted
MIN_ROI_PIXELS = 4


class CalibrationRefused(ValueError):
    """The calibration would not be trustworthy; the message says why."""


def roi_mask(distance_m, aperture_m, margin_px=1, shape=(frames.HEIGHT, frames.WIDTH)):
    """Pixels whose whole footprint lies on a square aperture centred in view."""
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    half = math.degrees(math.atan(aperture_m / 2.0 / distance_m))
    px_w, px_h = LENS_FOV_DEG[0] / w, LENS_FOV_DEG[1] / h
    # pixel centres relative to the optical axis, in degrees (simple angular model)
    xs = (np.arange(w) + 0.5 - w / 2.0) * px_w
    ys = (np.arange(h) + 0.5 - h / 2.0) * px_h
    inside_x = np.abs(xs) + (0.5 + margin_px) * px_w <= half
    inside_y = np.abs(ys) + (0.5 + margin_px) * px_h <= half
    mask[np.ix_(inside_y, inside_x)] = True
    return mask


def collect(port, count, rate_hz=4, timeout=600.0):
    """``count`` frames from the device: (count, 24, 32) degC and Ta per frame."""
    code = "import bench\nbench.frames(%d, %d)" % (count, rate_hz)
    found = mpr.results(mpr.run(port, "exec", code, timeout=timeout))
    imgs = np.stack([frames.decode(f["px"]) for f in found])
    return imgs, [f["ta"] for f in found]


def measure_point(imgs, mask):
    """(mean, temporal std of the per-frame means, mean spatial std) over the ROI."""
    roi = imgs[:, mask]
    if not np.all(np.isfinite(roi)):
        raise CalibrationRefused("a pixel in the blackbody region has no value: run the self-test")
    per_frame = roi.mean(axis=1)
    return (
        float(per_frame.mean()),
        float(per_frame.std(ddof=1) if len(per_frame) > 1 else 0.0),
        float(roi.std(axis=1).mean()),
    )


def fit(points, device_id="", created="", max_residual_c=MAX_RESIDUAL_C):
    """Least squares with numpy; returns (Calibration, fit details).  The
    record is calibration.fit_calibration's, checked against numpy."""
    pts = [(float(r), float(m)) for r, m in points]
    refs = sorted(r for r, _ in pts)
    if len(pts) < 2:
        raise CalibrationRefused("calibration needs at least 2 set points, got %d" % len(pts))
    if refs[-1] - refs[0] < MIN_SPAN_C:
        raise CalibrationRefused(
            "set points span %.2f degC; at least %.1f degC is needed to separate gain from offset"
            % (refs[-1] - refs[0], MIN_SPAN_C)
        )
    r = np.array([p[0] for p in pts])
    m = np.array([p[1] for p in pts])
    a = np.column_stack([m, np.ones_like(m)])
    (gain, offset), *_ = np.linalg.lstsq(a, r, rcond=None)
    residuals = r - a @ np.array([gain, offset])
    n = len(pts)
    s = max(math.sqrt(float(residuals @ residuals) / (n - 2)) if n > 2 else 0.0, calibration.FIT_UNCERTAINTY_FLOOR_C)
    cov = s * s * np.linalg.inv(a.T @ a)  # parameter covariance (the floor stands in for 2-point fits)
    worst = float(np.max(np.abs(residuals)))
    if worst > max_residual_c:
        raise CalibrationRefused(
            "residual %.3f degC exceeds %.3f degC: the sensor is not linear over these set points, or a "
            "point was taken before the blackbody settled (residuals %s)"
            % (worst, max_residual_c, ", ".join("%.3f" % x for x in residuals))
        )
    try:
        cal = calibration.fit_calibration(pts, device_id, created)
    except calibration.InvalidInput as exc:
        raise CalibrationRefused(
            "fit gain %.4f, offset %.3f degC is outside calibration's bounds (%s): wrong set points, wrong "
            "blackbody distance or a faulty sensor" % (gain, offset, exc)
        ) from None
    # Same record from both implementations (guards the "one format" rule).
    if abs(cal.gain - gain) > 1e-9 or abs(cal.offset_c - offset) > 1e-7:
        raise AssertionError("numpy fit (%r, %r) and calibration.fit_calibration %r disagree" % (gain, offset, cal))
    details = {
        "gain": float(gain),
        "offset_c": float(offset),
        "u_gain": math.sqrt(cov[0, 0]),
        "u_offset_c": math.sqrt(cov[1, 1]),
        "residuals_c": [float(x) for x in residuals],
        "residual_rms_c": cal.residual_rms_c,
        "uncertainty_c": cal.uncertainty_c,
    }
    return cal, details


def calibrate(
    port,
    set_points,
    set_blackbody,
    distance_m,
    aperture_m,
    emissivity=0.99,
    reflected_c=23.0,
    frames_per_point=16,
    rate_hz=4,
    out_dir=".",
    write=True,
    log=print,
):
    """The whole procedure; returns the record dict (also saved as JSON).
    ``set_blackbody(t_c)`` brings the source to ``t_c`` and returns when it
    is stable (a prompt on the bench, a state change on the simulated board)."""
    if len(set(set_points)) < 2:
        raise CalibrationRefused("calibration needs at least 2 distinct set points, got %s" % (list(set_points),))
    mask = roi_mask(distance_m, aperture_m)
    if mask.sum() < MIN_ROI_PIXELS:
        raise CalibrationRefused(
            "a %.3f m aperture at %.2f m covers only %d whole pixels (need %d): move the blackbody closer"
            % (aperture_m, distance_m, mask.sum(), MIN_ROI_PIXELS)
        )
    info = mpr.exec_json(port, "import bench, json\nprint('BENCH ' + json.dumps({'serial': bench.serial_number()}))")
    serial = info["serial"]
    points, stats = [], []
    for t in set_points:
        set_blackbody(t)
        imgs, tas = collect(port, frames_per_point, rate_hz)
        mean, temporal, spatial = measure_point(imgs, mask)
        ref = calibration.apparent_from_object(t, emissivity, reflected_c)
        log(
            "set point %.2f degC: reference %.3f, measured %.3f degC (frame std %.3f, region std %.3f, %d px)"
            % (t, ref, mean, temporal, spatial, mask.sum())
        )
        if spatial > MAX_SPATIAL_STD_C:
            raise CalibrationRefused(
                "at %.2f degC the averaged region is not uniform (std %.2f degC > %.2f): the blackbody is not "
                "centred or does not fill %d pixels at %.2f m" % (t, spatial, MAX_SPATIAL_STD_C, mask.sum(), distance_m)
            )
        if temporal > MAX_TEMPORAL_STD_C:
            raise CalibrationRefused(
                "at %.2f degC the reading drifts (frame std %.2f degC > %.2f): wait for the blackbody to settle"
                % (t, temporal, MAX_TEMPORAL_STD_C)
            )
        points.append((ref, mean))
        stats.append(
            {
                "set_c": t,
                "reference_c": ref,
                "measured_c": mean,
                "frame_std_c": temporal,
                "region_std_c": spatial,
                "sensor_ta_c": float(np.mean(tas)),
            }
        )
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    cal, details = fit(points, serial, created)
    record = {
        "calibration": json.loads(cal.to_json()),
        "fit": details,
        "points": stats,
        "distance_m": distance_m,
        "aperture_m": aperture_m,
        "emissivity": emissivity,
        "reflected_c": reflected_c,
        "frames_per_point": frames_per_point,
        "rate_hz": rate_hz,
        "roi_pixels": int(mask.sum()),
        "device_serial": serial,
        "written_to_device": False,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if write:
        ans = mpr.exec_json(port, "import bench\nbench.write_calibration(%r)" % cal.to_json())
        if not ans["stored"] or calibration.Calibration.from_json(ans["record"]) != cal:
            raise mpr.DeviceError("the device did not store the calibration: %s" % ans)
        record["written_to_device"] = True
    stem = out / ("calibration-%s" % serial)
    # The app imports exactly the shared record.
    stem.with_suffix(".json").write_text(cal.to_json() + "\n")
    Path(str(stem) + "-record.json").write_text(json.dumps(record, indent=2) + "\n")
    plot(points, cal, Path(str(stem) + ".png"))
    record["files"] = [str(stem.with_suffix(".json")), str(stem) + "-record.json", str(stem) + ".png"]
    log(
        "gain %.5f, offset %.3f degC, residual rms %.3f degC, uncertainty %.3f degC"
        % (cal.gain, cal.offset_c, cal.residual_rms_c, cal.uncertainty_c)
    )
    return record


def plot(points, cal, path, size=(480, 360)):
    """PNG: reference against measured (dots), the fit (line) and the
    identity (grey); below, the residuals x20 around a zero line."""
    from scene.png import write_png

    w, h = size
    img = np.full((h, w, 3), 255, dtype=np.uint8)
    m = np.array([p[1] for p in points])
    r = np.array([p[0] for p in points])
    lo = min(m.min(), r.min()) - 1.0
    hi = max(m.max(), r.max()) + 1.0
    top_h = int(h * 0.72)

    def xy(x, y):
        return int((x - lo) / (hi - lo) * (w - 41)) + 20, top_h - 10 - int((y - lo) / (hi - lo) * (top_h - 30))

    xs = np.linspace(lo, hi, 400)
    for x in xs:
        px, py = xy(x, x)
        if 0 <= py < h:
            img[py, px] = (170, 170, 170)
        px, py = xy(x, cal.gain * x + cal.offset_c)
        if 0 <= py < top_h:
            img[py, px] = (30, 90, 200)
    zero = top_h + (h - top_h) // 2
    img[zero, 20 : w - 20] = (170, 170, 170)
    for x, y in zip(m, r, strict=False):
        px, py = xy(x, y)
        img[max(0, py - 3) : py + 4, max(0, px - 3) : px + 4] = (200, 30, 30)
        res = y - (cal.gain * x + cal.offset_c)
        dy = int(np.clip(res * 20 * (h - top_h) / 2, -(h - top_h) // 2 + 2, (h - top_h) // 2 - 2))
        y0, y1 = sorted((zero, zero - dy))
        img[y0 : y1 + 1, max(0, px - 2) : px + 3] = (200, 30, 30)
    write_png(path, img)
