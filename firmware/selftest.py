"""Power-on self-test: what the helmet can see of its own hardware.

The result is reported at boot (serial console, and later BLE and the bench
tools), so a technician or the officer knows before screening starts whether
the sensor answered, and hears that the buzzer works.
"""

import gc

import board
import machine
import version
from buzzer import SELF_TEST

RESET_CAUSES = {
    machine.PWRON_RESET: "power-on",
    machine.HARD_RESET: "hard reset",
    machine.WDT_RESET: "watchdog",
    machine.DEEPSLEEP_RESET: "deep sleep",
    machine.SOFT_RESET: "soft reset",
}


class SelfTestReport:
    def __init__(self, reset_cause, i2c_devices, battery_mv, free_heap):
        self.firmware = version.FIRMWARE_VERSION
        self.reset_cause = reset_cause
        self.i2c_devices = i2c_devices
        self.sensor_present = board.MLX90640_ADDRESS in i2c_devices
        self.tof_present = board.VL53L1X_ADDRESS in i2c_devices
        self.battery_mv = battery_mv
        self.free_heap = free_heap

    @property
    def ok(self):
        """The helmet can screen only if the thermal sensor answers."""
        return self.sensor_present

    def summary(self):
        return (
            "helmet %s | reset: %s | thermal sensor: %s | distance sensor: %s | battery %d mV | heap free %d B | %s"
            % (
                self.firmware,
                RESET_CAUSES.get(self.reset_cause, "unknown (%d)" % self.reset_cause),
                "MLX90640 at 0x%02x" % board.MLX90640_ADDRESS if self.sensor_present else "MISSING",
                "VL53L1X at 0x%02x" % board.VL53L1X_ADDRESS if self.tof_present else "not fitted",
                self.battery_mv,
                self.free_heap,
                "SELF-TEST PASSED" if self.ok else "SELF-TEST FAILED: no answer from the thermal sensor",
            )
        )


def run(i2c, buzzer, led, battery_adc):
    """Light the LED, chirp, scan the bus, measure the battery and the heap."""
    led.on()
    buzzer.play(SELF_TEST)
    try:
        devices = i2c.scan()
    except OSError:
        devices = []  # a bus stuck low answers nothing: reported as a missing sensor
    led.off()
    battery_mv = battery_adc.read_uv() * 2 // 1000  # 1:2 divider
    gc.collect()
    return SelfTestReport(machine.reset_cause(), devices, battery_mv, gc.mem_free())
