"""The simulated bench board, MicroPython side (unix port only).

Run by ``simulated_board.py`` as ``micropython -i bench_board.py`` for every
connection that socat accepts: each mpremote session therefore meets a
freshly powered board whose flash (the current directory) persists.  The
wiring and the injected faults come from ``$SIMBENCH_STATE/board.json``,
written by the host side, so a test changes the bench between sessions
(another blackbody set point, a sensor unplugged) without restarting socat.

board.json keys (all optional):
  sensor        "present" (default), "absent" (unplugged: NACK) or "blank"
                (answers, EEPROM all zeros)
  dead_pixels   [[index, ram word], ...] stuck pixel words (0x7FFF saturates)
  scene         file name in the state dir: 768 little-endian f32, the
                ideal reading of every pixel (degC); default: uniform 22.0
  ambient_ta    sensor temperature Ta (degC), default 30.0
  gain_error, offset_error
                the injected calibration error: the sensor reports
                gain_error * T + offset_error for a pixel whose ideal reading
                is T (what calibration must recover)
  noise_k       per-subpage Gaussian noise on every pixel (degC RMS)
  seed          noise seed
  battery_raw   ADC reading of the battery divider (default 41000, ~3.9 V)
  fail_write    file names whose writes fail with ENOSPC (a full flash)
  corrupt_write file names whose written bytes get one bit flipped (bad flash)
"""

import array
import builtins
import json
import math
import os
import random

import simboard

STATE = os.getenv("SIMBENCH_STATE") or "."
MLX_ADDRESS = 0x33  # firmware/board.py's MLX90640_ADDRESS (firmware may not be deployed yet)
BATTERY_PIN = 35


def _load_state():
    try:
        with open(STATE + "/board.json") as f:
            return json.load(f)
    except OSError:
        return {}


state = _load_state()


class _FaultyFile:
    """A flash file whose writes fail or are silently corrupted."""

    def __init__(self, f, fail, corrupt):
        self._f = f
        self._fail = fail
        self._corrupt = corrupt

    def write(self, data):
        if self._fail:
            raise OSError(28)  # ENOSPC
        if self._corrupt and len(data):
            data = bytearray(data)
            data[0] ^= 0x01
            self._corrupt = False
        return self._f.write(data)

    def close(self):
        self._f.close()

    def flush(self):
        self._f.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


_real_open = builtins.open


def _open(name, mode="r", *args):
    f = _real_open(name, mode, *args)
    if "w" in mode or "a" in mode:
        base = name.split("/")[-1]
        fail = base in state.get("fail_write", ())
        corrupt = base in state.get("corrupt_write", ())
        if fail or corrupt:
            return _FaultyFile(f, fail, corrupt)
    return f


if state.get("fail_write") or state.get("corrupt_write"):
    builtins.open = _open


def _read_floats(path):
    with open(path, "rb") as f:
        return array.array("f", f.read())


def _gauss():
    # Box-Muller from the port's uniform random(); random.gauss may be absent.
    u = random.random() or 1e-12
    return math.sqrt(-2.0 * math.log(u)) * math.cos(2.0 * math.pi * random.random())


sensor = None


def _make_sensor():
    import virtual_mlx90640

    class BenchSensor(virtual_mlx90640.VirtualMLX90640):
        """The virtual MLX90640 with a calibration error and noise: every
        subpage it measures gain * ideal + offset (+ noise) for each pixel."""

        def __init__(self, eeprom, ideal, gain, offset, noise):
            super().__init__(eeprom=eeprom)
            self.ideal = ideal
            self.gain = gain
            self.offset = offset
            self.noise = noise
            self.set_scene([gain * t + offset for t in ideal])

        def _measure(self, sp):
            if self.noise > 0.0:
                g, o, n, ideal, scene = self.gain, self.offset, self.noise, self.ideal, self.scene
                for i in range(768):
                    scene[i] = g * ideal[i] + o + n * _gauss()
            super()._measure(sp)

    ideal = _read_floats(STATE + "/" + state["scene"]) if state.get("scene") else array.array("f", [22.0] * 768)
    with open(STATE + "/eeprom.bin", "rb") as f:
        eeprom = array.array("H", f.read())
    s = BenchSensor(
        eeprom,
        ideal,
        float(state.get("gain_error", 1.0)),
        float(state.get("offset_error", 0.0)),
        float(state.get("noise_k", 0.0)),
    )
    s.set_ambient(ta=float(state.get("ambient_ta", 30.0)))
    for index, word in state.get("dead_pixels", ()):
        s.bad_pixel(index, word)
    return s


def wire():
    """Power-on: attach what board.json describes."""
    global sensor
    simboard.reset_board()
    random.seed(int(state.get("seed", 1)))
    kind = state.get("sensor", "present")
    if kind == "present":
        sensor = _make_sensor()
        simboard.attach_i2c(MLX_ADDRESS, sensor)
    elif kind == "blank":
        simboard.attach_i2c(MLX_ADDRESS, simboard.RegisterDevice16())
    simboard.adc_values[BATTERY_PIN] = int(state.get("battery_raw", 41000))


wire()
