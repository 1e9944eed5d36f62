"""The simulated board behaves like the ESP32 port where the helmet relies on it."""

INTERPRETERS = ("micropython",)

import errno  # noqa: E402

import machine  # noqa: E402

import simboard  # noqa: E402
from checks import raises  # noqa: E402


def setup():
    simboard.reset_board()
    now = [0]
    simboard.set_clock(lambda: now[0])
    return now


def test_i2c_scan_finds_attached_devices_only():
    setup()
    simboard.attach_i2c(0x33, simboard.RegisterDevice16())
    simboard.attach_i2c(0x29, simboard.RegisterDevice16())
    assert machine.I2C(0).scan() == [0x29, 0x33]
    assert machine.I2C(1).scan() == []


def test_register_device_is_big_endian_with_auto_increment():
    setup()
    dev = simboard.RegisterDevice16({0x2400: 0x1234, 0x2401: 0xABCD})
    simboard.attach_i2c(0x33, dev)
    i2c = machine.I2C(0, freq=400000)
    assert i2c.readfrom_mem(0x33, 0x2400, 4, addrsize=16) == b"\x12\x34\xab\xcd"
    i2c.writeto_mem(0x33, 0x800D, b"\x19\x01", addrsize=16)
    assert dev.words[0x800D] == 0x1901


def test_missing_device_nacks_with_enodev():
    setup()
    with raises(OSError) as caught:
        machine.I2C(0).readfrom_mem(0x33, 0x8000, 2, addrsize=16)
    assert caught.value.args[0] == errno.ENODEV


def test_injected_faults_fail_the_counted_transactions_then_clear():
    setup()
    simboard.attach_i2c(0x33, simboard.RegisterDevice16())
    i2c = machine.I2C(0)
    simboard.inject_i2c_fault(0x33, "timeout", count=2)
    for _ in range(2):
        with raises(OSError) as caught:
            i2c.readfrom_mem(0x33, 0x8000, 2, addrsize=16)
        assert caught.value.args[0] == errno.ETIMEDOUT
    assert i2c.readfrom_mem(0x33, 0x8000, 2, addrsize=16) == b"\x00\x00"
    simboard.inject_i2c_fault(0x33, "nack", count=-1)
    assert 0x33 not in i2c.scan()
    simboard.clear_i2c_faults()
    assert 0x33 in i2c.scan()


def test_bus_time_counts_the_wire_at_the_bus_frequency():
    setup()
    simboard.attach_i2c(0x33, simboard.RegisterDevice16())
    machine.I2C(0, freq=400000).readfrom_mem(0x33, 0x0400, 1664, addrsize=16)
    transactions, nbytes, bus_us = simboard.i2c_stats[0]
    assert (transactions, nbytes) == (1, 1666)
    # 1666 data + 1 address byte, 9 clocks each, at 400 kHz: about 37.5 ms.
    assert 37000 < bus_us < 38000


def test_pwm_timeline_records_every_change_with_board_time():
    now = setup()
    pwm = machine.PWM(machine.Pin(25), freq=2000, duty_u16=0)
    now[0] = 100
    pwm.duty_u16(32768)
    now[0] = 250
    pwm.freq(3000)
    pwm.deinit()
    assert simboard.pwm_timeline[25] == [(0, 2000, 0), (100, 2000, 32768), (250, 3000, 32768), (250, 3000, 0)]
    with raises(ValueError, match="duty_u16"):
        pwm.duty_u16(70000)


def test_button_press_fires_falling_edge_irq():
    setup()
    seen = []
    button = machine.Pin(0, machine.Pin.IN, machine.Pin.PULL_UP)
    assert button.value() == 1
    button.irq(lambda p: seen.append(p.value()), machine.Pin.IRQ_FALLING)
    simboard.press_button(0)
    assert seen == [0]
    assert button.value() == 1


def test_unfed_watchdog_resets_the_board():
    now = setup()
    wdt = machine.WDT(timeout=1000)
    now[0] = 900
    wdt.feed()
    now[0] = 1800
    machine.idle()  # fed 900 ms ago: still alive
    now[0] = 2000
    with raises(simboard.WatchdogReset):
        machine.idle()
    assert machine.reset_cause() == machine.WDT_RESET
    assert simboard.resets == ["watchdog not fed for 1100 ms"]
    machine.idle()  # the reset disarmed it until firmware makes a new one


def test_machine_reset_raises_board_reset():
    setup()
    with raises(simboard.BoardReset, match="machine.reset"):
        machine.reset()
    assert machine.reset_cause() == machine.HARD_RESET
