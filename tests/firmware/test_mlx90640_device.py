"""MLX90640 device class on the simulated board, against the virtual sensor
(tools/simboard/virtual_mlx90640.py): configuration, round trip of scene
temperatures, bus faults, corrupted frames, stuck data-ready, bad pixels.

The heap is larger than the helmet's because the virtual sensor and the
simulated board live in the same interpreter; the driver's own memory is
measured in tests/host/test_mlx90640_memory.py."""

import array

import machine

import mlx90640
import simboard
import virtual_mlx90640
from checks import heapsize, near, raises

INTERPRETERS = ("micropython",)
ADDR = 0x33


def _setup(**kw):
    simboard.reset_board()
    cam = virtual_mlx90640.VirtualMLX90640(**kw)
    simboard.attach_i2c(ADDR, cam)
    return cam


def _device(cam=None, **kw):
    kw.setdefault("refresh_rate", mlx90640.RATE_64HZ)
    return mlx90640.MLX90640(machine.I2C(0), **kw)


def _image():
    return array.array("f", bytes(4 * 768))


@heapsize("320k")
def test_init_configures_control_register():
    cam = _setup()
    _device(refresh_rate=mlx90640.RATE_32HZ, resolution=mlx90640.RES_19, chess=False)
    assert (cam.control >> 7) & 7 == mlx90640.RATE_32HZ
    assert (cam.control >> 10) & 3 == mlx90640.RES_19
    assert cam.control & 0x1000 == 0
    _device(refresh_rate=mlx90640.RATE_64HZ, resolution=mlx90640.RES_18, chess=True)
    assert cam.control & 0x1F80 == (7 << 7) | (2 << 10) | 0x1000
    assert cam.control & 0x0001  # bits outside the fields are kept


@heapsize("320k")
def test_round_trip_minus10_to_100():
    cam = _setup()
    dev = _device()
    out = _image()
    for t in (-10.0, 0.0, 22.5, 36.5, 37.8, 60.0, 100.0):
        cam.set_scene(t)
        dev.read_frame(out)  # the first frame may mix the previous scene
        ta = dev.read_frame(out)
        near(ta, 30.0, 0.02)
        for i in range(768):
            near(out[i], t, 0.05)


@heapsize("320k")
def test_round_trip_scene_with_gradient_interleaved_and_ambient():
    cam = _setup()
    dev = _device(chess=False, resolution=mlx90640.RES_17)
    cam.set_ambient(ta=22.0, vdd=3.25)
    scene = array.array("f", [-10.0 + 110.0 * i / 767 for i in range(768)])
    cam.set_scene(scene)
    out = _image()
    dev.read_frame(out)
    ta = dev.read_frame(out)
    near(ta, 22.0, 0.02)
    near(mlx90640.get_vdd(dev.frame, dev.params), 3.25, 0.002)
    for i in range(768):
        near(out[i], scene[i], 0.05)


@heapsize("320k")
def test_emissivity_round_trip():
    cam = _setup()
    cam.scene_emissivity = 0.95
    dev = _device()
    dev.emissivity = 0.95
    cam.set_scene(34.0)
    out = _image()
    dev.read_frame(out)
    dev.read_frame(out)
    for i in range(768):
        near(out[i], 34.0, 0.05)


@heapsize("320k")
def test_bus_errors_are_retried_then_reported():
    cam = _setup()
    dev = _device()
    cam.set_scene(30.0)
    out = _image()
    simboard.inject_i2c_fault(ADDR, "nack", count=2)
    dev.read_frame(out)  # two NACKs: absorbed by the retries
    near(out[100], 30.0, 0.05)
    simboard.inject_i2c_fault(ADDR, "nack", count=-1)
    with raises(mlx90640.SensorError, match="NACK"):
        dev.read_frame(out)
    simboard.inject_i2c_fault(ADDR, "timeout", count=-1)
    with raises(mlx90640.SensorError, match="timeout"):
        dev.read_frame(out)
    simboard.clear_i2c_faults()
    dev.read_frame(out)
    near(out[100], 30.0, 0.05)


@heapsize("320k")
def test_absent_sensor_and_blank_eeprom():
    simboard.reset_board()
    with raises(mlx90640.SensorError, match="NACK"):
        _device()
    _setup(eeprom=[0xFFFF] * 832)
    with raises(mlx90640.SensorError, match="0xFFFF"):
        _device()


@heapsize("320k")
def test_corrupted_frames_are_rejected_not_processed():
    cam = _setup()
    dev = _device()
    cam.set_scene(30.0)
    out = _image()
    dev.read_frame(out)
    for kind, message in (("gain", "gain"), ("vdd", "Vdd"), ("ptat", "PTAT"), ("control", "control register")):
        for i in range(768):
            out[i] = -99.0
        cam.corrupt_next(kind)
        with raises(mlx90640.SensorError, match=message):
            for _ in range(3):  # the corruption hits whichever subpage comes next
                dev.read_frame(out)
        dev.read_frame(out)  # the sensor recovers: so does the driver
        near(out[5], 30.0, 0.05)


@heapsize("320k")
def test_stuck_data_ready_times_out():
    cam = _setup()
    dev = _device()
    cam.stuck_data_ready = True
    with raises(mlx90640.SensorError, match="no new data"):
        dev.read_frame(_image())
    cam.stuck_data_ready = False
    dev.read_frame(_image())


@heapsize("320k")
def test_pixel_gone_bad_is_repaired():
    cam = _setup()
    dev = _device()
    cam.set_scene(33.0)
    cam.bad_pixel(300, 0x7FFF)  # saturated: beyond the model
    out = _image()
    dev.read_frame(out)
    dev.read_frame(out)
    assert dev.repaired == 1
    near(out[300], 33.0, 0.05)


@heapsize("320k")
def test_eeprom_broken_pixel_is_repaired():
    ee, _ = virtual_mlx90640.load_example_words()
    ee[64 + 200] = 0  # broken pixel listed in EEPROM
    cam = _setup(eeprom=ee)
    dev = _device()
    assert mlx90640.bad_pixels(dev.params) == (200,)
    cam.set_scene(35.0)
    cam.bad_pixel(200, 0x1234)  # whatever it reads, it is replaced
    out = _image()
    dev.read_frame(out)
    dev.read_frame(out)
    near(out[200], 35.0, 0.05)


@heapsize("320k")
def test_virtual_sensor_registers_and_timing():
    """Data ready follows the refresh rate on the board clock; subpages
    alternate; writing the status register clears bit 3."""
    now = [0]
    simboard.set_clock(lambda: now[0])
    try:
        cam = _setup()
        i2c = machine.I2C(0)
        buf = bytearray(2)

        def reg(addr):
            i2c.readfrom_mem_into(ADDR, addr, buf, addrsize=16)
            return (buf[0] << 8) | buf[1]

        i2c.writeto_mem(ADDR, 0x800D, bytes([0x19, 0x81]), addrsize=16)  # 4 Hz: 250 ms
        assert reg(0x800D) == 0x1981
        assert reg(0x8000) & 0x0008 == 0
        now[0] = 249
        assert reg(0x8000) & 0x0008 == 0
        now[0] = 250
        status = reg(0x8000)
        assert status & 0x0008 and status & 0x0007 == 0
        i2c.writeto_mem(ADDR, 0x8000, bytes([0x00, 0x30]), addrsize=16)
        assert reg(0x8000) & 0x0008 == 0
        now[0] = 500
        assert reg(0x8000) & 0x000F == 0x0009  # subpage 1 now
        assert reg(0x2400) == cam.eeprom[0]  # EEPROM readable
        assert reg(0x0400 + 800) == 1685  # PTAT word written
    finally:
        simboard.set_clock(None)


@heapsize("320k")
def test_realistic_gain_quantises_like_the_part():
    """With the real part's gain, one count is ~0.25 degC near room
    temperature: the round trip holds to half a count."""
    cam = _setup(gain_scale=1.0)
    dev = _device()
    out = _image()
    for t in (0.0, 36.5, 100.0):
        cam.set_scene(t)
        dev.read_frame(out)
        dev.read_frame(out)
        for i in range(768):
            near(out[i], t, 0.3)


@heapsize("320k")
def test_out_of_range_pixels_are_repaired_at_the_exact_limits():
    """The device's every-frame check (viper, on the float bits) keeps
    -60..320 degC as they are and repairs NaN, infinities and anything
    beyond, like a float comparison would."""
    ee, _ = virtual_mlx90640.load_example_words()
    p = mlx90640.extract_parameters(ee)
    inf = float("inf")
    nan = float("nan")
    kept = (320.0, -60.0, 319.99997, -59.999996, -0.0, 0.0, 1e-40)
    bad = (320.00003, -60.000004, inf, -inf, nan, -nan, 3.4e38)
    out = array.array("f", [30.0] * 768)
    # Rows 2 and 6, every fourth column: no two cases are neighbours.
    kept_at = [66 + 4 * k for k in range(len(kept))]
    bad_at = [194 + 4 * k for k in range(len(bad))]
    for i, v in zip(kept_at, kept):
        out[i] = v
    for i, v in zip(bad_at, bad):
        out[i] = v
    stored = [out[i] for i in kept_at]  # single precision, as compared
    assert mlx90640._repair_nonfinite(out, p, True) == len(bad)
    for i, v in zip(kept_at, stored):
        assert out[i] == v, "pixel %d changed" % i
    for i in bad_at:
        assert out[i] == 30.0, "pixel %d not repaired: %r" % (i, out[i])
    # A pixel without any valid neighbour stays NaN (nothing to repair from).
    for i in range(768):
        out[i] = nan
    assert mlx90640._repair_nonfinite(out, p, True) == 768
    assert out[0] != out[0]
