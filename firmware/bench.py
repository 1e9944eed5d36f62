"""Bench mode: machine-readable answers for the bench tools (tools/bench_tools).

The tools run these functions over mpremote (``exec "import bench; ..."``);
each prints one line ``BENCH <json>`` per result, so the host parses results
instead of scraping the console.  Judgement (thresholds, dead-pixel search,
pass/fail) stays on the host, where it is easy to change and to explain; the
helmet only measures and reports.

Also the bench's side of the blackbody calibration: ``write_calibration``
stores the record the host fitted (firmware/calstore.py, which the helmet
reads at boot) and ``read_calibration`` reports what the helmet will use.

Raw thermal frames leave the helmet only through these bench functions (and
live view): never during screening.
"""

import array
import binascii
import gc
import json
import os
import struct
import sys

import machine

import board
import calibration
import calstore
import mlx90640
import selftest as boot_selftest
import version
from buzzer import Buzzer

CALIBRATION_PATH = calstore.PATH
PIXEL_NA = -32768  # int16 code of a NaN or unreadable pixel
MARK = "BENCH "


def _emit(obj):
    print(MARK + json.dumps(obj))


def encode_image(image):
    """768 degC floats as base64 of little-endian int16 centi-degC."""
    buf = bytearray(2 * mlx90640.NPIX)
    for i in range(mlx90640.NPIX):
        v = image[i]
        if v != v or v > 327.0 or v < -327.0:
            c = PIXEL_NA
        else:
            c = int(v * 100.0 + (0.5 if v >= 0 else -0.5))
        struct.pack_into("<h", buf, 2 * i, c)
    return binascii.b2a_base64(bytes(buf)).decode().strip()


# ---------------------------------------------------------------- self-test


class _Led:
    """The status LED, with every level set read back from the pin."""

    def __init__(self, pin):
        self.pin = pin
        self.log = []

    def on(self):
        self.pin.on()
        self.log.append([1, self.pin.value()])

    def off(self):
        self.pin.off()
        self.log.append([0, self.pin.value()])


class _Pwm:
    """The buzzer's PWM, with frequency and duty read back after each change."""

    def __init__(self, pwm):
        self.pwm = pwm
        self.log = []

    def freq(self, value=None):
        if value is None:
            return self.pwm.freq()
        self.pwm.freq(value)
        return None

    def duty_u16(self, value=None):
        if value is None:
            return self.pwm.duty_u16()
        self.pwm.duty_u16(value)
        self.log.append([value, self.pwm.freq(), self.pwm.duty_u16()])
        return None


def _raw_frame(cam, image):
    """Both subpages into ``image`` with only the EEPROM-listed pixels
    repaired: pixels that died since calibration stay visible (NaN or out of
    range), unlike read_frame(), which hides them for screening."""
    seen = 0
    for _ in range(4):
        if seen == 3:
            break
        frame = cam.read_subpage()
        mlx90640.calculate_to(frame, cam.params, cam.emissivity, cam.ta + cam.tr_offset, image)
        seen |= 1 << frame[833]
    if seen != 3:
        raise mlx90640.SensorError("MLX90640: subpages do not alternate")
    mlx90640.repair_pixels(image, cam.params, (cam.control & 0x1000) != 0)
    return cam.ta


def _sensor(out, i2c, report):
    """EEPROM and frame stages of the sensor, each with its own error."""
    cam = report.sensor.camera
    if not report.sensor_present:
        return
    if cam is None:
        try:
            cam = mlx90640.MLX90640(i2c, board.MLX90640_ADDRESS, refresh_rate=boot_selftest.SELF_TEST_RATE)
        except mlx90640.SensorError as exc:
            out["eeprom_error"] = str(exc)
            return
        out["frame_error"] = report.sensor.error
        return
    out["repair_list"] = list(mlx90640.bad_pixels(cam.params))
    image = array.array("f", bytes(4 * mlx90640.NPIX))
    try:
        ta = _raw_frame(cam, image)
    except mlx90640.SensorError as exc:
        out["frame_error"] = str(exc)
        return
    out["ta"] = ta
    out["vdd"] = mlx90640.get_vdd(cam.frame, cam.params)
    out["frame"] = encode_image(image)


def _ble(out, stop):
    try:
        import ble_server
    except ImportError:
        out["ble"] = {"built": False}
        return
    try:
        import bluetooth

        ble = bluetooth.BLE()
        # No journal: nothing connects during the check, and advertising
        # stops again before this returns.
        ble_server.BleServer(ble, None, serial=serial_number())
        out["ble"] = {"built": True, "active": bool(ble.active()), "advertising": True}
        if stop:
            ble.gap_advertise(None)  # type: ignore[arg-type]  # None stops advertising (MicroPython docs)
            ble.active(False)
    except Exception as exc:  # any failure to bring the radio up is the finding
        out["ble"] = {"built": True, "active": False, "advertising": False, "error": repr(exc)}


def serial_number():
    """The board's unique id as hex: the device id of its calibration."""
    return binascii.hexlify(machine.unique_id()).decode()


def selftest(stop_ble=True):
    """The boot self-test plus what the bench needs to judge it.  BLE
    advertising is started through the firmware's server, then stopped
    unless ``stop_ble`` is False (the simulated bench inspects it after)."""
    gc.collect()
    i2c = board.make_i2c()
    led = _Led(board.make_led())
    pwm = _Pwm(board.make_buzzer_pwm())
    report = boot_selftest.run(i2c, Buzzer(pwm), led, board.make_battery_adc())
    out = {
        "firmware": version.FIRMWARE_VERSION,
        "model": version.MODEL,
        "serial": serial_number(),
        "platform": sys.platform,
        "reset_cause": report.reset_cause,
        "i2c_devices": report.i2c_devices,
        "sensor_address": board.MLX90640_ADDRESS,
        "sensor_present": report.sensor_present,
        "boot_ok": report.ok,
        "summary": report.summary(),
        "battery_mv": report.battery_mv,
        "led_pin": board.LED_PIN,
        "led": led.log,
        "buzzer_pin": board.BUZZER_PIN,
        "buzzer": pwm.log,
    }
    _sensor(out, i2c, report)
    report = None
    _ble(out, stop_ble)
    gc.collect()
    out["free_heap"] = gc.mem_free()
    _emit(out)


# ---------------------------------------------------------------- frames

RATES = {1: mlx90640.RATE_1HZ, 2: mlx90640.RATE_2HZ, 4: mlx90640.RATE_4HZ, 8: mlx90640.RATE_8HZ, 16: mlx90640.RATE_16HZ}


def frames(count, rate_hz=4):
    """Stream ``count`` frames (0: until interrupted), one BENCH line each:
    frame number, Ta and the image.  Subpage rate ``rate_hz``."""
    cam = mlx90640.MLX90640(board.make_i2c(), board.MLX90640_ADDRESS, refresh_rate=RATES[rate_hz])
    image = array.array("f", bytes(4 * mlx90640.NPIX))
    n = 0
    while count == 0 or n < count:
        ta = cam.read_frame(image)
        _emit({"n": n, "ta": ta, "repaired": cam.repaired, "px": encode_image(image)})
        n += 1


# ---------------------------------------------------------------- calibration


def load_calibration(path=CALIBRATION_PATH):
    """(Calibration, reason): what the helmet screens with (calstore.load)."""
    return calstore.load(path)


def write_calibration(text, path=CALIBRATION_PATH):
    """Validate and store a calibration record, then report what the
    firmware reads back."""
    cal = calibration.Calibration.from_json(text)  # refuse a bad record before touching flash
    calstore.store(cal, path)
    back, reason = load_calibration(path)
    _emit({"stored": reason is None and back == cal, "reason": reason, "record": back.to_json()})


def read_calibration(path=CALIBRATION_PATH):
    cal, reason = load_calibration(path)
    _emit({"reason": reason, "record": cal.to_json()})


# ---------------------------------------------------------------- config and journal


def read_config():
    import config
    import protocol

    cfg, reason = config.load()
    _emit({"reason": reason, "record": binascii.hexlify(protocol.encode_config(cfg)).decode()})


def write_config(record_hex):
    import config
    import protocol

    config.save(protocol.decode_config(binascii.unhexlify(record_hex)))
    read_config()


def dump_journal(path="journal.bin"):
    """Every retained event record (hex), then the journal's counters.
    A board without a journal file reports so instead of creating one."""
    try:
        os.stat(path)
    except OSError:
        _emit({"present": False})
        return
    import journal
    import protocol

    j = journal.Journal(path)
    buf = bytearray(protocol.EVENT_SIZE)
    seq = j.next_from(1)
    while seq:
        if j.read_into(seq, buf):
            _emit({"seq": seq, "record": binascii.hexlify(bytes(buf)).decode()})
        seq = j.next_from(seq + 1)
    _emit({"present": True, "acked": j.acked, "next_seq": j.next_seq, "dropped": j.dropped_total})
    j.close()
