"""Boot self-test and first event on the simulated board.

The virtual MLX90640 lives in the same interpreter as the firmware, so these
tests get a larger heap than the helmet has; the firmware's own footprint is
measured where it runs alone (make demo prints it, the benches record it).
"""

INTERPRETERS = ("micropython",)

import time  # noqa: E402

import board  # noqa: E402
import buzzer  # noqa: E402
import main  # noqa: E402
import protocol  # noqa: E402
import simboard  # noqa: E402
import virtual_mlx90640  # noqa: E402
from checks import heapsize  # noqa: E402


def power_on(sensor=True, tof=False, battery_mv=3900):
    simboard.reset_board()
    # Board time = real time + time skipped by the buzzer's sleeps, so the
    # chirp costs no real time while the driver's real waits still count.
    skipped = [0]
    simboard.set_clock(lambda: time.ticks_add(time.ticks_ms(), skipped[0]))
    camera = None
    if sensor:
        camera = virtual_mlx90640.VirtualMLX90640()
        camera.set_scene(22.0)
        simboard.attach_i2c(board.MLX90640_ADDRESS, camera if sensor is True else sensor)
    if tof:
        simboard.attach_i2c(board.VL53L1X_ADDRESS, simboard.RegisterDevice16())
    simboard.adc_values[board.BATTERY_PIN] = battery_mv // 2 * 65535 // 3100

    def sleep_ms(ms):
        skipped[0] += ms

    return main.boot(sleep_ms)


@heapsize("320k")
def test_boot_with_sensor_passes_and_records_a_boot_event():
    report, event = power_on()
    assert report.ok
    assert report.sensor_present and not report.tof_present
    assert "SELF-TEST PASSED" in report.summary()
    assert "MLX90640 at 0x33" in report.summary()
    # One real frame was read through the driver: the scene's 22 degC, sane Ta and Vdd.
    assert abs(report.sensor.coldest - 22.0) < 0.1 and abs(report.sensor.hottest - 22.0) < 0.1
    assert 3.0 < report.sensor.vdd < 3.6
    assert report.sensor.camera is not None
    decoded = protocol.decode_event(event)
    assert decoded.kind == protocol.EVENT_BOOT
    assert len(event) == protocol.EVENT_SIZE


@heapsize("320k")
def test_missing_sensor_fails_self_test_and_records_a_sensor_fault():
    report, event = power_on(sensor=False)
    assert not report.ok
    assert "thermal sensor: MISSING (no answer at 0x33)" in report.summary()
    assert "SELF-TEST FAILED" in report.summary()
    decoded = protocol.decode_event(event)
    assert decoded.kind == protocol.EVENT_FAULT
    assert decoded.outcome == protocol.FAULT_SENSOR_BUS


@heapsize("320k")
def test_sensor_nacking_at_boot_counts_as_missing():
    simboard.reset_board()
    simboard.attach_i2c(board.MLX90640_ADDRESS, simboard.RegisterDevice16())
    simboard.inject_i2c_fault(board.MLX90640_ADDRESS, "nack", count=-1)
    report, _ = main.boot(lambda ms: None)
    assert not report.sensor_present


@heapsize("320k")
def test_sensor_with_blank_eeprom_fails_with_a_data_fault():
    report, event = power_on(sensor=simboard.RegisterDevice16())  # answers, all words zero
    assert report.sensor_present and not report.ok
    assert "thermal sensor: FAULTY: " in report.summary()
    assert protocol.decode_event(event).outcome == protocol.FAULT_SENSOR_DATA


@heapsize("320k")
def test_corrupted_frame_at_boot_fails_with_the_reason_and_no_scene():
    camera = virtual_mlx90640.VirtualMLX90640()
    camera.corrupt_next("vdd")
    report, event = power_on(sensor=camera)
    assert report.sensor_present and not report.ok
    assert "FAULTY: MLX90640: implausible Vdd" in report.summary()
    assert "scene" not in report.summary()
    assert protocol.decode_event(event).outcome == protocol.FAULT_SENSOR_DATA


@heapsize("320k")
def test_boot_chirp_plays_the_self_test_pattern_on_the_buzzer_pin():
    power_on()
    timeline = simboard.pwm_timeline[board.BUZZER_PIN]
    notes = [(f, timeline[i + 1][0] - t) for i, (t, f, duty) in enumerate(timeline) if duty > 0]
    # Each note at its pitch for as long as the pattern says, on the board
    # clock (which also runs in real time: allow a millisecond of it).
    assert [f for f, _ in notes] == [f for f, _, _ in buzzer.SELF_TEST]
    for (_, length), (_, on, _) in zip(notes, buzzer.SELF_TEST):
        assert on <= length <= on + 1, notes
    assert timeline[-1][2] == 0  # silent afterwards


@heapsize("320k")
def test_distance_sensor_and_battery_are_reported():
    report, _ = power_on(tof=True, battery_mv=3700)
    assert report.tof_present
    assert "VL53L1X at 0x29" in report.summary()
    assert abs(report.battery_mv - 3700) < 5


@heapsize("320k")
def test_disabled_buzzer_stays_silent():
    simboard.reset_board()
    pwm = board.make_buzzer_pwm()
    b = buzzer.Buzzer(pwm, lambda ms: None)
    b.enabled = False
    b.play(buzzer.FEVER)
    assert all(duty == 0 for _, _, duty in simboard.pwm_timeline[board.BUZZER_PIN])
