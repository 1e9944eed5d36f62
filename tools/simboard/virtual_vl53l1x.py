"""Register-level virtual VL53L1X for the simulated board (MicroPython/CPython).

    import simboard, virtual_vl53l1x
    tof = virtual_vl53l1x.VirtualVL53L1X()
    simboard.attach_i2c(0x29, tof)
    tof.set_target(1500)                 # mm; None = nothing in the cone
    tof.noise_mm = 10                    # 1-sigma ranging noise (deterministic generator)
    tof.fault = "signal"                 # next results fail: see FAULTS

Bus: 16-bit register addresses, 8-bit registers, multi-byte transfers
auto-increment (16/32-bit values are big-endian), as on the part.  A
transaction with 8-bit addressing is not acknowledged.

Behaviour modelled (from the datasheet and ST's ULD driver):
- boot: FIRMWARE__SYSTEM_STATUS (0x00E5) reads 0 for ``boot_ms`` after power-on
  (``power_on()``: also what a brown-out does), then 1;
- identity: 0x010F/0x0110 = model id (``model_id``, 0xEACC by default);
- configuration: writes anywhere are stored; the default block written by
  the driver (0x002D..0x0087) counts in ``config_writes``;
- distance mode from PHASECAL_CONFIG__TIMEOUT_MACROP (0x004B: 0x14 short,
  0x0A long), timing budget from RANGE_CONFIG__TIMEOUT_MACROP_A_HI (0x005E)
  in ST's tables, inter-measurement period from 0x006C / (osc calibration
  (0x00DE) x 1.075);
- ranging: 0x0087 = 0x40 starts (first result one budget later, then one per
  max(period, budget)), 0x00 stops; a result is produced only when the last
  one was cleared (0x0086 bit 0) — a simplification of the part, which holds
  its interrupt until cleared; GPIO__TIO_HV_STATUS (0x0031) bit 0 is at the
  active level of GPIO_HV_MUX__CTRL (0x0030) bit 4 (0 = active high) while a
  result waits;
- results at 0x0089 (range status device code), 0x0096 (distance mm) and
  0x0098 (signal rate); the first result after a start reports "valid, no
  wrap check" (ST API status 6) like the part;
- times on simboard.ticks_ms() (a test's virtual clock when set).

Targets: ``set_target(mm)``; a target beyond the mode's reach (LONG_MAX_MM /
SHORT_MAX_MM) or None gives signal fail with a meaningless distance.
``target_from_people(...)`` finds the nearest person in the cone from scene
ground truth.  Faults (``fault``): None, "sigma", "signal", "wrap",
"out_of_bounds", "hardware", "min_range" (persist until reset to None), and
``stuck`` (no result ever becomes ready).  Bus faults (NACK, timeout) are
simboard.inject_i2c_fault's job.
"""

import math
import time

import simboard

try:
    import errno

    ENODEV = errno.ENODEV
except (ImportError, AttributeError):  # pragma: no cover
    ENODEV = 19

MODEL_ID = 0xEACC
LONG_MAX_MM = 4000
SHORT_MAX_MM = 1300
CONE_DEG = 27.0  # full field of view of the default 16x16 SPAD region
OSC_CALIBRATE = 0x01B4  # a plausible oscillator calibration value (10 bits)

# ST API status -> device code the part writes into 0x0089 bits 4:0
# (the inverse of the driver's table)
_RAW = {0: 9, 1: 6, 2: 4, 3: 8, 4: 5, 5: 3, 6: 19, 7: 7}
FAULTS = {"sigma": 1, "signal": 2, "min_range": 3, "out_of_bounds": 4, "hardware": 5, "wrap": 7}

# RANGE_CONFIG__TIMEOUT_MACROP_A_HI -> timing budget, both modes (ST's ULD tables)
_BUDGET_BY_WORD = {
    0x001D: 15,
    0x0051: 20,
    0x001E: 20,
    0x00D6: 33,
    0x0060: 33,
    0x01AE: 50,
    0x00AD: 50,
    0x02E1: 100,
    0x01CC: 100,
    0x03E1: 200,
    0x02D9: 200,
    0x0591: 500,
    0x048F: 500,
}


def target_from_people(people, cone_deg=CONE_DEG, body_half_width_m=0.2, body_half_depth_m=0.12):
    """Distance (mm) the ToF reports for scene people, or None.

    people: iterable of (x_m, z_m) ground positions (scene coordinates: x to
    the right, z away from the officer; the sensor at x = z = 0, boresighted
    with the thermal camera, pitch 0).  A standing person spans the sensor's
    height, so only the horizontal angle decides: a person is in the cone
    when the near edge of their body (half width ``body_half_width_m``) is
    within cone_deg / 2 of the axis.  The ToF sees the nearest one, at the
    front of the body (``body_half_depth_m`` before the centre)."""
    t = math.tan(math.radians(cone_deg / 2))
    best = None
    for x, z in people:
        if z <= 0.0:
            continue
        if abs(x) - body_half_width_m > z * t:
            continue
        d = math.sqrt(x * x + z * z) - body_half_depth_m
        if best is None or d < best:
            best = d
    return None if best is None else int(round(best * 1000))


class VirtualVL53L1X(simboard.I2CDevice):
    """A virtual sensor; see the module docstring."""

    SIZE = 0x0200  # register file 0x0000..0x01FF

    def __init__(self, model_id=MODEL_ID, boot_ms=2, seed=1):
        self.model_id = model_id
        self.boot_ms = boot_ms
        self.target_mm = None
        self.noise_mm = 0.0
        self.fault = None
        self.stuck = False
        self.config_writes = 0
        self.measurements = 0
        self._seed = seed & 0x7FFFFFFF or 1
        self.regs = bytearray(self.SIZE)
        self.power_on()

    # -- scene and faults --------------------------------------------------
    def set_target(self, mm):
        """Distance (mm) of the nearest object in the cone; None = nothing."""
        self.target_mm = mm

    def power_on(self):
        """Power-on / brown-out: registers back to reset values, ranging
        stopped, firmware booting for boot_ms."""
        r = self.regs
        for i in range(self.SIZE):
            r[i] = 0
        r[0x0001] = 0x29  # I2C address register
        r[0x0030] = 0x01  # interrupt active high
        r[0x004B] = 0x0A  # long distance mode
        r[0x005E] = 0x01  # 100 ms budget (long)
        r[0x005F] = 0xCC
        r[0x00DE] = OSC_CALIBRATE >> 8
        r[0x00DF] = OSC_CALIBRATE & 0xFF
        r[0x010F] = self.model_id >> 8
        r[0x0110] = self.model_id & 0xFF
        self.booted_at = time.ticks_add(simboard.ticks_ms(), self.boot_ms)
        self.ranging = False
        self.pending = False  # a result waits to be cleared
        self.next_ms = 0
        self.first = True

    # -- derived settings --------------------------------------------------
    def long_mode(self):
        return self.regs[0x004B] != 0x14

    def timing_budget_ms(self):
        word = (self.regs[0x005E] << 8) | self.regs[0x005F]
        return _BUDGET_BY_WORD.get(word, 100)

    def period_ms(self):
        r = self.regs
        ticks = (r[0x006C] << 24) | (r[0x006D] << 16) | (r[0x006E] << 8) | r[0x006F]
        clock = ((r[0x00DE] << 8) | r[0x00DF]) & 0x3FF
        if clock == 0:
            return self.timing_budget_ms()
        return int(ticks / (clock * 1.075) + 0.5)

    def _interval_ms(self):
        p = self.period_ms()
        b = self.timing_budget_ms()
        return p if p > b else b

    # -- bus ---------------------------------------------------------------
    def read_mem(self, memaddr, buf, addrsize):
        if addrsize != 16:
            raise OSError(ENODEV)
        self._advance()
        r = self.regs
        for i in range(len(buf)):
            a = memaddr + i
            if a == 0x00E5:
                buf[i] = 1 if self._booted() else 0
            elif a == 0x0031:
                active = 0 if r[0x0030] & 0x10 else 1
                buf[i] = (r[0x0031] & 0xFE) | (active if self.pending else 1 - active)
            elif a < self.SIZE:
                buf[i] = r[a]
            else:
                buf[i] = 0

    def write_mem(self, memaddr, data, addrsize):
        if addrsize != 16:
            raise OSError(ENODEV)
        self._advance()
        if memaddr <= 0x002D and memaddr + len(data) - 1 >= 0x0087:
            self.config_writes += 1
        for i in range(len(data)):
            a = memaddr + i
            v = data[i]
            if a == 0x0086:
                if v & 0x01:
                    self.pending = False
                continue
            if a == 0x0087:
                if v & 0x40 and not self.ranging:
                    self.ranging = True
                    self.first = True
                    self.next_ms = time.ticks_add(simboard.ticks_ms(), self.timing_budget_ms())
                elif not v & 0x40:
                    self.ranging = False
                self.regs[a] = v
                continue
            if a in (0x00E5, 0x010F, 0x0110):
                continue  # read-only
            if a < self.SIZE:
                self.regs[a] = v

    def _booted(self):
        return time.ticks_diff(simboard.ticks_ms(), self.booted_at) >= 0

    # -- measurement -------------------------------------------------------
    def _advance(self):
        if not self.ranging or self.stuck:
            return
        now = simboard.ticks_ms()
        if time.ticks_diff(now, self.next_ms) < 0:
            return
        interval = self._interval_ms()
        # results the host did not clear in time are not produced (the part
        # holds its interrupt); the schedule keeps its period
        while time.ticks_diff(now, self.next_ms) >= 0:
            self.next_ms = time.ticks_add(self.next_ms, interval)
        if self.pending:
            return
        self._measure()
        self.pending = True

    def _gauss(self):
        """Standard normal from a small deterministic generator (sum of 12
        uniforms), the same on MicroPython and CPython."""
        s = 0.0
        for _ in range(12):
            self._seed = (1103515245 * self._seed + 12345) & 0x7FFFFFFF
            s += self._seed / 2147483648.0
        return s - 6.0

    def _measure(self):
        self.measurements += 1
        reach = LONG_MAX_MM if self.long_mode() else SHORT_MAX_MM
        target = self.target_mm
        status = 0
        mm = 0
        if self.fault is not None:
            status = FAULTS[self.fault]
            mm = target if target is not None else 7
        elif target is None or target > reach:
            status = 2  # signal fail: nothing (or nothing bright enough) in reach
            mm = (target % 1500) if target is not None else 21  # meaningless, like the part's
        else:
            mm = int(target + self.noise_mm * self._gauss() + 0.5)
            if mm < 1:
                mm = 1
            if self.first:
                status = 6  # first result after a start: no wrap check yet
        self.first = False
        mm &= 0xFFFF
        r = self.regs
        r[0x0089] = _RAW[status]
        r[0x0096] = mm >> 8
        r[0x0097] = mm & 0xFF
        sig = 0 if status == 2 else 0x0400
        r[0x0098] = sig >> 8
        r[0x0099] = sig & 0xFF
