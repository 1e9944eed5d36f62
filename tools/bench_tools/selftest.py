"""Bench self-test over mpremote: one pass/fail report, terminal and JSON.

The helmet measures (firmware/bench.py: the boot self-test with the LED and
buzzer read back, the sensor's EEPROM and a raw frame, BLE, heap); this
module judges, so every threshold is here and named in the report:

    firmware      bench module answers; version (and the expected one, if given)
    i2c_scan      the MLX90640 answers at 0x33
    sensor_eeprom the EEPROM dump decodes to a plausible calibration
    frame         a full frame with Ta and Vdd in the bench ranges
    dead_pixels   no pixel is NaN, out of the sensor's range or a spike against
                  its neighbours, except the EEPROM's repair list
    buzzer        the boot chirp's three rising tones reached the PWM and it
                  ended silent (read back; on the simulated board also its
                  PWM timeline)
    led           the status LED went on and off (pin read back)
    ble           advertising started through the firmware's GATT server
                  ("not built" when the firmware has no ble_server)
    free_heap     enough heap left after the self-test
The first failing check names the reason of the verdict.
"""

import json

import numpy as np

from bench_tools import frames, mpr

TA_RANGE = (0.0, 60.0)  # degC: a bench room plus the sensor's self-heating
VDD_RANGE = (3.0, 3.6)  # V: the MLX90640's specified supply
OBJECT_RANGE = (-40.0, 300.0)  # degC: what the sensor can measure
SPIKE_C = 10.0  # degC beyond every neighbour: an isolated spike is a dead pixel
MIN_FREE_HEAP = 20000  # bytes left for screening's per-frame work
MIN_TONES = 3

# Runs in the same session right after bench.selftest(): stops the advertising
# it left on and, on the simulated board, adds what the board itself recorded.
_AFTER = """
import json, bluetooth
_b = bluetooth.BLE()
_adv = getattr(_b, '_adv', None)
_b.gap_advertise(None)
_b.active(False)
try:
    import simboard
    _e = {'pwm': [list(e) for e in simboard.pwm_timeline.get(bench.board.BUZZER_PIN, [])],
          'led_level': simboard.pin_levels.get(bench.board.LED_PIN, 0), 'advertising': _adv is not None}
except ImportError:
    _e = None
print('BENCH ' + json.dumps({'sim': _e}))
"""


def dead_pixels(img, repair_list=()):
    """Indices of dead pixels: NaN, out of range, or an isolated spike (more
    than SPIKE_C beyond every one of its up to 8 neighbours: a real object,
    however thin, is blurred onto a neighbour by the optics); the EEPROM
    repair list excepted."""
    h, w = img.shape
    bad = []
    skip = set(repair_list)
    for r in range(h):
        for c in range(w):
            i = r * w + c
            v = img[r, c]
            if i in skip:
                continue
            if not np.isfinite(v) or not OBJECT_RANGE[0] <= v <= OBJECT_RANGE[1]:
                bad.append(i)
                continue
            nb = [
                img[y, x]
                for y in range(r - 1, r + 2)
                for x in range(c - 1, c + 2)
                if 0 <= y < h and 0 <= x < w and (y, x) != (r, c) and np.isfinite(img[y, x])
            ]
            if nb and (v > max(nb) + SPIKE_C or v < min(nb) - SPIKE_C):
                bad.append(i)
    return bad


def _check(name, ok, detail):
    return {"name": name, "ok": bool(ok), "detail": detail}


def judge(dev, sim=None, expect_version=None):
    """The report for the device's answer ``dev`` (bench.selftest()), and the
    simulated board's own evidence ``sim`` when there is one."""
    checks = []
    version = dev["firmware"]
    vok = expect_version is None or version == expect_version
    checks.append(_check("firmware", vok, "version %s%s" % (version, "" if vok else ", expected %s" % expect_version)))
    found = ", ".join("0x%02x" % a for a in dev["i2c_devices"]) or "nothing"
    checks.append(
        _check(
            "i2c_scan", dev["sensor_present"], "found %s; MLX90640 expected at 0x%02x" % (found, dev["sensor_address"])
        )
    )
    if dev["sensor_present"]:
        err = dev.get("eeprom_error")
        checks.append(_check("sensor_eeprom", err is None, err or "calibration decoded"))
        if err is None:
            checks.extend(_frame_checks(dev))
    checks.extend(_output_checks(dev, sim))
    ble = dev["ble"]
    if not ble["built"]:
        checks.append({"name": "ble", "ok": True, "detail": "not built (firmware has no ble_server)", "skipped": True})
    else:
        adv = ble.get("advertising") and (sim is None or sim["advertising"])
        detail = ble.get("error") or ("advertising" if adv else "not advertising")
        if sim is not None:
            detail += " (simulated stack confirms)" if sim["advertising"] else " (simulated stack shows none)"
        checks.append(_check("ble", ble.get("active") and adv, detail))
    heap = dev["free_heap"]
    checks.append(_check("free_heap", heap >= MIN_FREE_HEAP, "%d bytes free (need %d)" % (heap, MIN_FREE_HEAP)))
    failed = [c for c in checks if not c["ok"]]
    return {
        "ok": not failed,
        "reason": None if not failed else "%s: %s" % (failed[0]["name"], failed[0]["detail"]),
        "failed": [c["name"] for c in failed],
        "checks": checks,
        "device": {
            k: dev.get(k)
            for k in ("firmware", "model", "serial", "platform", "battery_mv", "free_heap", "ta", "vdd", "summary")
        },
    }


def _frame_checks(dev):
    err = dev.get("frame_error")
    if err is not None:
        return [_check("frame", False, err)]
    ta, vdd = dev["ta"], dev["vdd"]
    ok = TA_RANGE[0] <= ta <= TA_RANGE[1] and VDD_RANGE[0] <= vdd <= VDD_RANGE[1]
    out = [
        _check(
            "frame",
            ok,
            "Ta %.2f degC (bench range %g..%g), Vdd %.3f V (%g..%g)" % (ta, *TA_RANGE, vdd, *VDD_RANGE),
        )
    ]
    img = frames.decode(dev["frame"])
    repair = dev.get("repair_list", [])
    bad = dead_pixels(img, repair)
    detail = "%d dead pixel(s) beyond the EEPROM repair list %s" % (len(bad), repair)
    if bad:
        detail += ": " + ", ".join("%d (row %d, col %d)" % (i, i // 32, i % 32) for i in bad[:8])
    out.append(_check("dead_pixels", not bad, detail))
    return out


def _output_checks(dev, sim):
    log = dev["buzzer"]  # [duty set, freq read back, duty read back]
    tones = [f for d, f, back in log if d > 0 and back == d]
    rising = len(tones) >= MIN_TONES and all(a < b for a, b in zip(tones, tones[1:], strict=False))
    silent = bool(log) and log[-1][2] == 0
    ok = rising and silent and all(d == back for d, _, back in log)
    detail = "tones %s Hz, %s" % (tones, "ended silent" if silent else "STILL SOUNDING")
    if sim is not None:
        heard = [f for _, f, d in sim["pwm"] if d > 0]
        ok = ok and heard == tones
        detail += "; PWM timeline %s Hz" % heard
    out = [_check("buzzer", ok, detail)]
    led = dev["led"]  # [level set, level read back]
    lok = [1, 1] in led and bool(led) and led[-1] == [0, 0]
    if sim is not None:
        lok = lok and sim["led_level"] == 0
    out.append(_check("led", lok, "levels set/read back %s" % led))
    return out


def run(port, expect_version=None, timeout=120.0):
    """Self-test the board on ``port``: the report dict."""
    try:
        text = mpr.run(port, "exec", "import bench\nbench.selftest(stop_ble=False)", "exec", _AFTER, timeout=timeout)
    except mpr.DeviceError as exc:
        msg = str(exc)
        if "ImportError" in msg and "bench" in msg:
            msg = "firmware not deployed (no bench module on the board): run deploy first"
        return {"ok": False, "reason": "firmware: " + msg, "failed": ["firmware"], "checks": [], "device": {}}
    found = mpr.results(text)
    return judge(found[0], found[-1]["sim"], expect_version)


def format_report(rep):
    lines = []
    for c in rep["checks"]:
        mark = "skip" if c.get("skipped") else "PASS" if c["ok"] else "FAIL"
        lines.append("  [%s] %-13s %s" % (mark, c["name"], c["detail"]))
    d = rep.get("device") or {}
    if d:
        lines.insert(0, "helmet %s (%s), serial %s" % (d.get("firmware"), d.get("platform"), d.get("serial")))
    lines.append("SELF-TEST PASSED" if rep["ok"] else "SELF-TEST FAILED: %s" % rep["reason"])
    return "\n".join(lines)


def save(rep, path):
    with open(path, "w") as f:
        json.dump(rep, f, indent=2)
