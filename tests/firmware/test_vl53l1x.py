"""VL53L1X driver on the simulated board, against the virtual sensor
(tools/simboard/virtual_vl53l1x.py): init sequence, identity, configuration
registers, ranging and timing, invalid range statuses, bus faults, a sensor
that resets or stops.  Real time: short budgets keep each test under a
second or two."""

INTERPRETERS = ("micropython",)

import time  # noqa: E402

import machine  # noqa: E402

import simboard  # noqa: E402
import virtual_vl53l1x  # noqa: E402
import vl53l1x  # noqa: E402
from checks import heapsize, near, raises  # noqa: E402

ADDR = 0x29


def _setup(**kw):
    simboard.reset_board()
    simboard.set_clock(None)
    tof = virtual_vl53l1x.VirtualVL53L1X(**kw)
    simboard.attach_i2c(ADDR, tof)
    return tof


def _device(**kw):
    kw.setdefault("timing_budget_ms", 20)
    kw.setdefault("period_ms", 25)
    return vl53l1x.VL53L1X(machine.I2C(0), **kw)


def _first_valid(dev, tries=5):
    for _ in range(tries):
        mm, status = dev.read_mm()
        if status == vl53l1x.STATUS_VALID:
            return mm
    raise AssertionError("no valid reading in %d tries (last status %d)" % (tries, status))


def test_init_sequence_configures_the_part():
    tof = _setup()
    dev = _device(timing_budget_ms=50, period_ms=100)
    assert tof.config_writes == 1  # the default block, 0x2D..0x87 in one transfer
    assert tof.regs[0x0008] == 0x09 and tof.regs[0x000B] == 0x00  # after the VHV ranging
    assert tof.long_mode()
    assert tof.timing_budget_ms() == 50
    assert tof.period_ms() == 100
    assert tof.ranging and dev.ranging
    assert tof.regs[0x0046] == 0x20  # interrupt on new sample, from the block
    dev.stop()
    assert not tof.ranging


def test_short_mode_and_budget_tables():
    tof = _setup()
    dev = _device(distance_mode=vl53l1x.DISTANCE_SHORT, timing_budget_ms=15, period_ms=20)
    assert not tof.long_mode()
    assert tof.regs[0x004B] == 0x14 and tof.regs[0x0060] == 0x07
    assert tof.timing_budget_ms() == 15
    with raises(ValueError, match="short distance mode only"):
        dev.set_distance_mode(vl53l1x.DISTANCE_LONG)  # 15 ms has no long-mode timeouts
    dev.set_timing_budget(20)
    dev.set_distance_mode(vl53l1x.DISTANCE_LONG)
    assert tof.long_mode() and tof.regs[0x0060] == 0x0F
    assert (tof.regs[0x005E] << 8) | tof.regs[0x005F] == 0x001E  # 20 ms, long-mode word
    with raises(ValueError, match="timing budget"):
        dev.set_timing_budget(42)
    with raises(ValueError, match="shorter than the timing budget"):
        dev.set_period(10)
    with raises(ValueError, match="distance mode"):
        dev.set_distance_mode(3)


def test_wrong_part_absent_part_and_no_boot_are_clear_errors():
    _setup(model_id=0xEEAA)
    with raises(vl53l1x.ToFError, match="model id 0xEEAA, expected 0xEACC") as e:
        _device()
    assert "not a VL53L1X" in str(e.value)
    simboard.reset_board()  # nothing at 0x29
    with raises(vl53l1x.ToFError, match="NACK (sensor absent"):
        _device()
    _setup(boot_ms=60000)  # held in reset (XSHUT low)
    with raises(vl53l1x.ToFError, match="did not boot"):
        _device()


def test_ranging_values_and_noise():
    tof = _setup()
    tof.set_target(1500)
    dev = _device()
    # the first result after a start has no wrap-around check: not a distance
    mm, status = dev.read_mm()
    assert status == vl53l1x.STATUS_NO_WRAP_CHECK and mm is None
    assert _first_valid(dev) == 1500
    tof.set_target(3200)
    dev.read_mm()  # may still be the previous target's
    assert _first_valid(dev) == 3200
    tof.set_target(1000)
    tof.noise_mm = 15.0
    dev.read_mm()
    total = 0
    lo = hi = None
    for _ in range(20):
        mm = _first_valid(dev)
        total += mm
        lo = mm if lo is None or mm < lo else lo
        hi = mm if hi is None or mm > hi else hi
    near(total / 20, 1000, 12)
    assert hi - lo > 5  # noise is there
    assert dev.distance_mm == mm and dev.status == vl53l1x.STATUS_VALID


def test_invalid_status_is_never_a_distance():
    tof = _setup()
    tof.set_target(1200)
    dev = _device()
    _first_valid(dev)
    for fault, code in (
        ("sigma", vl53l1x.STATUS_SIGMA_FAIL),
        ("signal", vl53l1x.STATUS_SIGNAL_FAIL),
        ("out_of_bounds", vl53l1x.STATUS_OUT_OF_BOUNDS),
        ("wrap", vl53l1x.STATUS_WRAP_FAIL),
        ("hardware", vl53l1x.STATUS_HARDWARE_FAIL),
        ("min_range", vl53l1x.STATUS_MIN_RANGE),
    ):
        tof.fault = fault
        dev.read_mm()  # the result measured before the fault was set
        for _ in range(3):
            mm, status = dev.read_mm()
            assert status == code, (fault, status)
            assert mm is None, (fault, mm)
            assert dev.distance_mm == 0
    tof.fault = None
    tof.set_target(None)  # nothing in the cone
    dev.read_mm()
    mm, status = dev.read_mm()
    assert (mm, status) == (None, vl53l1x.STATUS_SIGNAL_FAIL)
    tof.set_target(4700)  # beyond the long mode's reach
    dev.read_mm()
    mm, status = dev.read_mm()
    assert (mm, status) == (None, vl53l1x.STATUS_SIGNAL_FAIL)
    # a "valid" code with an impossible distance is not believed either
    tof.set_target(1200)
    dev.read_mm()
    _first_valid(dev)
    dev.wait_ready()
    tof.regs[0x0089] = 9  # device code for valid
    tof.regs[0x0096] = 0
    tof.regs[0x0097] = 0
    assert dev.read_mm(wait=False) == (None, vl53l1x.STATUS_INVALID)
    dev.wait_ready()
    tof.regs[0x0089] = 0  # a device code without meaning
    assert dev.read_mm()[0] is None


def test_data_ready_timing_follows_the_period():
    tof = _setup()
    tof.set_target(800)
    dev = _device(timing_budget_ms=20, period_ms=60)
    dev.read_mm()
    assert not dev.data_ready()  # cleared by the read
    assert dev.read_mm(wait=False) == (None, vl53l1x.STATUS_NONE)
    t0 = time.ticks_ms()
    n0 = tof.measurements
    for _ in range(5):
        dev.read_mm()
    dt = time.ticks_diff(time.ticks_ms(), t0)
    assert tof.measurements - n0 == 5
    assert 5 * 60 - 70 <= dt <= 5 * 60 + 150, dt
    # results not collected are not queued: one waits, the rest are dropped
    time.sleep_ms(200)
    assert dev.data_ready()
    dev.read_mm()
    assert not dev.data_ready()


def test_bus_faults_are_retried_then_reported():
    tof = _setup()
    tof.set_target(1500)
    dev = _device()
    _first_valid(dev)
    simboard.inject_i2c_fault(ADDR, "nack", count=3)
    assert _first_valid(dev) == 1500  # absorbed by the retries
    simboard.inject_i2c_fault(ADDR, "nack", count=-1)
    with raises(vl53l1x.ToFError, match="NACK") as e:
        dev.read_mm()
    assert "failed 4 times" in str(e.value) and "0x29" in str(e.value)
    simboard.inject_i2c_fault(ADDR, "timeout", count=-1)
    with raises(vl53l1x.ToFError, match="bus timeout"):
        dev.read_mm()
    simboard.clear_i2c_faults()
    assert _first_valid(dev) == 1500


def test_reset_sensor_times_out_then_reinit_recovers():
    tof = _setup()
    tof.set_target(2000)
    dev = _device()
    _first_valid(dev)
    tof.power_on()  # a brown-out: ranging stopped, configuration lost
    with raises(vl53l1x.ToFError, match="no measurement within"):
        dev.read_mm()
    dev.init()
    assert tof.timing_budget_ms() == 20 and tof.config_writes == 2
    assert _first_valid(dev) == 2000
    dev.stop()
    with raises(vl53l1x.ToFError, match="ranging is stopped"):
        dev.read_mm()
    tof.stuck = True
    dev.start()
    with raises(vl53l1x.ToFError, match="no measurement"):
        dev.read_mm()


def test_active_low_interrupt_polarity():
    tof = _setup()
    tof.set_target(900)
    dev = _device(start=False)
    assert dev._polarity == 1  # the default block: active high
    dev.write(0x0030, 0x11)  # active low, as ST's SetInterruptPolarity(0) does
    dev._polarity = 0
    dev.start()
    assert _first_valid(dev) == 900


def test_target_from_scene_people():
    near(virtual_vl53l1x.target_from_people([(0.0, 2.0)]), 1880, 1)
    assert virtual_vl53l1x.target_from_people([(2.0, 2.0)]) is None  # 45 deg off axis
    assert virtual_vl53l1x.target_from_people([]) is None
    # the nearest in the cone wins; someone nearer but outside is not seen
    assert virtual_vl53l1x.target_from_people([(0.3, 3.0), (0.1, 1.5), (1.5, 1.0)]) == 1383


class _RegisterBus:
    """A bus with a VL53L1X-like register file that is always ready and
    allocates nothing when read: shows the driver's read path does not."""

    def __init__(self):
        self.mem = bytearray(0x200)
        self.mem[0x00E5] = 1
        self.mem[0x010F] = 0xEA
        self.mem[0x0110] = 0xCC
        self.mem[0x0031] = 1

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        m = self.mem
        for i in range(len(buf)):
            buf[i] = m[memaddr + i]

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        m = self.mem
        for i in range(len(buf)):
            m[memaddr + i] = buf[i]
        m[0x0031] = 1  # a result always waits (active high)


def test_read_allocates_nothing():
    import micropython

    bus = _RegisterBus()
    dev = vl53l1x.VL53L1X(bus)
    bus.mem[0x0089] = 9  # valid
    bus.mem[0x0096] = 0x05
    bus.mem[0x0097] = 0xDC  # 1500 mm
    dev.read(wait=False)  # warm up
    micropython.heap_lock()
    try:
        status = dev.read()
        ready = dev.data_ready()
    finally:
        micropython.heap_unlock()
    assert status == vl53l1x.STATUS_VALID and dev.distance_mm == 1500 and ready


@heapsize("160k")
def test_scene_to_fused_distance():
    """A person from scene coordinates through the virtual part, the driver
    and the fusion: the head they belong to gets the ToF distance."""
    from array import array

    import measure
    import tof as tofmod

    t = _setup()
    dev = _device()
    fus = tofmod.ToFFusion()
    xs = array("f", [0.0, 0.0])
    ys = array("f", [12.0, 12.0])
    ws = array("f", [0.0, 0.0])
    # (x, z) on the ground: one person near the axis at 1.6 m, one nearer but at the image edge, outside the cone
    people = [(0.15, 1.6), (0.5, 1.1)]
    for k, (x, z) in enumerate(people):
        d = (x * x + z * z) ** 0.5
        xs[k] = 16.0 + x / z / tofmod._TX
        ws[k] = measure.HEAD_WIDTH_M / (d * measure.PX_M)
    t.set_target(virtual_vl53l1x.target_from_people(people))
    dev.read_mm()
    mm, status = dev.read_mm()
    assert status == vl53l1x.STATUS_VALID
    fus.reading(mm, status, time.ticks_ms())
    assert fus.pick(xs, ys, ws, 2, time.ticks_ms()) == 0  # the side person is outside the cone
    d = fus.fuse(ws[0], True)
    assert fus.from_tof
    near(d, (0.15**2 + 1.6**2) ** 0.5 - 0.12 + tofmod.FRONT_TO_CENTRE_M, 0.005)
    # the person walks out of the cone: signal fail, nothing fused
    t.set_target(virtual_vl53l1x.target_from_people([(0.5, 1.1)]))
    dev.read_mm()
    mm, status = dev.read_mm()
    fus.reading(mm, status, time.ticks_ms())
    assert mm is None and fus.pick(xs, ys, ws, 2, time.ticks_ms()) == -1
