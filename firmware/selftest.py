"""Power-on self-test: what the helmet can see of its own hardware.

The result is reported at boot (serial console, and later BLE and the bench
tools), so a technician or the officer knows before screening starts whether
the sensor works, and hears that the buzzer does.  The thermal sensor must
answer on the bus, hold a plausible EEPROM, and deliver one full frame with
a sane Ta and Vdd; anything less fails the self-test with the reason.
"""

import gc

import machine

import board
import mlx90640
import version
from buffers import zeros
from buzzer import SELF_TEST

RESET_CAUSES = {
    machine.PWRON_RESET: "power-on",
    machine.HARD_RESET: "hard reset",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deep sleep",
    machine.SOFT_RESET: "soft reset",
}

# Fast enough that the check costs about 130 ms at boot; screening sets its own rate.
SELF_TEST_RATE = mlx90640.RATE_16HZ


class SensorCheck:
    """One full frame read at boot, or the reason it could not be."""

    def __init__(self, camera=None, error=None, ta=0.0, vdd=0.0, coldest=0.0, hottest=0.0):
        self.camera = camera  # the opened MLX90640, handed on to screening
        self.error = error
        self.ta = ta
        self.vdd = vdd
        self.coldest = coldest
        self.hottest = hottest

    @property
    def ok(self):
        return self.error is None


def check_sensor(i2c, image=None):
    """Open the MLX90640 (EEPROM dump and check) and read one full frame
    into ``image`` (array('f', 768); default: a new one).  The helmet hands
    in its frame buffer: a second 3 KB block at boot is what a 100 KB heap
    cannot spare once fragmented."""
    if image is None:
        image = zeros("f", mlx90640.NPIX)
    try:
        camera = mlx90640.MLX90640(i2c, board.MLX90640_ADDRESS, refresh_rate=SELF_TEST_RATE)
        ta = camera.read_frame(image)
    except mlx90640.SensorError as exc:
        return SensorCheck(error=str(exc))
    vdd = mlx90640.get_vdd(camera.frame, camera.params)
    return SensorCheck(camera, None, ta, vdd, min(image), max(image))


class SelfTestReport:
    def __init__(self, reset_cause, i2c_devices, sensor, battery_mv, free_heap):
        self.firmware = version.FIRMWARE_VERSION
        self.reset_cause = reset_cause
        self.i2c_devices = i2c_devices
        self.sensor_present = board.MLX90640_ADDRESS in i2c_devices
        self.sensor = sensor
        self.tof_present = board.VL53L1X_ADDRESS in i2c_devices
        self.battery_mv = battery_mv
        self.free_heap = free_heap

    @property
    def ok(self):
        """The helmet can screen only if the thermal sensor delivers frames."""
        return self.sensor_present and self.sensor.ok

    def sensor_summary(self):
        if not self.sensor_present:
            return "MISSING (no answer at 0x%02x)" % board.MLX90640_ADDRESS
        s = self.sensor
        if not s.ok:
            return "FAULTY: %s" % s.error
        return "MLX90640 at 0x%02x, Ta %.1f C, Vdd %.2f V, scene %.1f..%.1f C" % (
            board.MLX90640_ADDRESS,
            s.ta,
            s.vdd,
            s.coldest,
            s.hottest,
        )

    def summary(self):
        return (
            "helmet %s | reset: %s | thermal sensor: %s | distance sensor: %s | battery %d mV | heap free %d B | %s"
            % (
                self.firmware,
                RESET_CAUSES.get(self.reset_cause, "unknown (%d)" % self.reset_cause),
                self.sensor_summary(),
                "VL53L1X at 0x%02x" % board.VL53L1X_ADDRESS if self.tof_present else "not fitted",
                self.battery_mv,
                self.free_heap,
                "SELF-TEST PASSED" if self.ok else "SELF-TEST FAILED: the thermal sensor does not deliver frames",
            )
        )


def run(i2c, buzzer, led, battery_adc, image=None):
    """Light the LED, chirp, scan the bus, read a frame (into ``image``, see
    check_sensor), measure battery and heap."""
    led.on()
    buzzer.play(SELF_TEST)
    try:
        devices = i2c.scan()
    except OSError:
        devices = []  # a bus stuck low answers nothing: reported as a missing sensor
    if board.MLX90640_ADDRESS in devices:
        sensor = check_sensor(i2c, image)
    else:
        sensor = SensorCheck(error="no answer on the I2C bus")
    led.off()
    battery_mv = battery_adc.read_uv() * 2 // 1000  # 1:2 divider
    gc.collect()
    return SelfTestReport(machine.reset_cause(), devices, sensor, battery_mv, gc.mem_free())
