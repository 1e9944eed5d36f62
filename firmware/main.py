"""Helmet entry point: MicroPython runs this file at every boot.

Today it runs the power-on self-test, reports it on the console and makes
the first journal event: BOOT when the thermal sensor delivered a frame, a
SENSOR_BUS fault when it did not answer, a SENSOR_DATA fault when it answered
with bad data (the helmet never screens without a working sensor).  After boot
the helmet's main loop (helmet.main) screens until power-off.
"""

import sys

import board
import protocol
from buzzer import Buzzer


def boot_event(report, seq=0, unix_time=0):
    """The event that records this boot in the journal, as wire bytes."""
    if report.ok:
        event = protocol.ScreeningEvent(seq=seq, time=unix_time, kind=protocol.EVENT_BOOT)
    else:
        fault = protocol.FAULT_SENSOR_DATA if report.sensor_present else protocol.FAULT_SENSOR_BUS
        event = protocol.ScreeningEvent(seq=seq, time=unix_time, kind=protocol.EVENT_FAULT, outcome=fault)
    return protocol.encode_event(event)


def boot(sleep_ms=None, image=None):
    """Self-test the hardware; returns (report, boot event bytes).  image:
    the frame buffer the test frame is read into (helmet.main's)."""
    pwm = board.make_buzzer_pwm()
    buzzer = Buzzer(pwm) if sleep_ms is None else Buzzer(pwm, sleep_ms)
    # imported here and let go of afterwards: the self-test runs once, and
    # its code and objects are RAM the screening needs (the caller drops
    # the report once it has taken the camera)
    import selftest

    report = selftest.run(board.make_i2c(), buzzer, board.make_led(), board.make_battery_adc(), image)
    sys.modules.pop("selftest", None)
    print(report.summary())
    return report, boot_event(report)


if __name__ == "__main__":
    import helmet

    helmet.main(boot)  # frame buffer first, then the self-test, then screening
