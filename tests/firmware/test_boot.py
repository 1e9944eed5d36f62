"""Boot self-test and first event on the simulated board."""

INTERPRETERS = ("micropython",)

import board  # noqa: E402
import buzzer  # noqa: E402
import main  # noqa: E402
import protocol  # noqa: E402
import simboard  # noqa: E402


def power_on(sensor=True, tof=False, battery_mv=3900):
    simboard.reset_board()
    now = [0]
    simboard.set_clock(lambda: now[0])
    if sensor:
        simboard.attach_i2c(board.MLX90640_ADDRESS, simboard.RegisterDevice16())
    if tof:
        simboard.attach_i2c(board.VL53L1X_ADDRESS, simboard.RegisterDevice16())
    simboard.adc_values[board.BATTERY_PIN] = battery_mv // 2 * 65535 // 3100

    def sleep_ms(ms):
        now[0] += ms

    return main.boot(sleep_ms)


def test_boot_with_sensor_passes_and_records_a_boot_event():
    report, event = power_on()
    assert report.ok
    assert report.sensor_present and not report.tof_present
    assert "SELF-TEST PASSED" in report.summary()
    assert "MLX90640 at 0x33" in report.summary()
    decoded = protocol.decode_event(event)
    assert decoded.kind == protocol.EVENT_BOOT
    assert len(event) == protocol.EVENT_SIZE


def test_missing_sensor_fails_self_test_and_records_a_sensor_fault():
    report, event = power_on(sensor=False)
    assert not report.ok
    assert "SELF-TEST FAILED: no answer from the thermal sensor" in report.summary()
    decoded = protocol.decode_event(event)
    assert decoded.kind == protocol.EVENT_FAULT
    assert decoded.outcome == protocol.FAULT_SENSOR_BUS


def test_sensor_nacking_at_boot_counts_as_missing():
    simboard.reset_board()
    simboard.attach_i2c(board.MLX90640_ADDRESS, simboard.RegisterDevice16())
    simboard.inject_i2c_fault(board.MLX90640_ADDRESS, "nack", count=-1)
    report, _ = main.boot(lambda ms: None)
    assert not report.sensor_present


def test_boot_chirp_plays_the_self_test_pattern_on_the_buzzer_pin():
    power_on()
    timeline = simboard.pwm_timeline[board.BUZZER_PIN]
    notes = [(f, timeline[i + 1][0] - t) for i, (t, f, duty) in enumerate(timeline) if duty > 0]
    # Each note at its pitch for as long as the pattern says, on the board clock.
    assert notes == [(f, on) for f, on, _ in buzzer.SELF_TEST]
    assert timeline[-1][2] == 0  # silent afterwards


def test_distance_sensor_and_battery_are_reported():
    report, _ = power_on(tof=True, battery_mv=3700)
    assert report.tof_present
    assert "VL53L1X at 0x29" in report.summary()
    assert abs(report.battery_mv - 3700) < 5


def test_disabled_buzzer_stays_silent():
    simboard.reset_board()
    pwm = board.make_buzzer_pwm()
    b = buzzer.Buzzer(pwm, lambda ms: None)
    b.enabled = False
    b.play(buzzer.FEVER)
    assert all(duty == 0 for _, _, duty in simboard.pwm_timeline[board.BUZZER_PIN])
