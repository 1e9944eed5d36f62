"""ST VL53L1X time-of-flight distance sensor (optional; same I2C bus as the
MLX90640, address 0x29).

    tof = VL53L1X(i2c)                       # boot, identify, configure, start ranging
    mm, status = tof.read_mm()               # waits for the next measurement
    if status == STATUS_VALID: ...           # mm is an int; otherwise mm is None

Registers have 16-bit addresses and 8-bit values (16/32-bit values are
big-endian over consecutive addresses; the part auto-increments).  The
sequence follows ST's VL53L1X ultra-lite driver (ULD, STSW-IMG009) and the
datasheet (DS12385):

- boot: FIRMWARE__SYSTEM_STATUS (0x00E5) reads non-zero once the firmware
  has booted (about 1.2 ms after power-up / XSHUT high);
- identity: IDENTIFICATION__MODEL_ID (0x010F, 16 bits) is 0xEACC (model 0xEA,
  module type 0xCC); anything else at 0x29 is refused with a clear error;
- configuration: ST's default block written to 0x002D..0x0087, one ranging
  (the VHV calibration) run and discarded, then VHV loop bound 0x0008 = 0x09
  and 0x000B = 0 (later rangings start from the calibrated temperature);
- distance mode: long (up to about 4 m in the dark, less in sunlight) or
  short (1.3 m, better ambient immunity), timing budget (ranging time of one
  measurement) and inter-measurement period (timed ranging);
- ranging: SYSTEM__MODE_START (0x0087) = 0x40 starts, 0x00 stops;
  GPIO__TIO_HV_STATUS (0x0031) bit 0 equals the interrupt polarity (from
  GPIO_HV_MUX__CTRL 0x0030 bit 4: 0 = active high) when a result is ready;
  SYSTEM__INTERRUPT_CLEAR (0x0086) = 0x01 releases the next one;
- results: one read of 17 bytes from RESULT__RANGE_STATUS (0x0089): range
  status in byte 0 (bits 4:0, a device code mapped to ST's API codes below),
  distance in mm in bytes 13-14 (RESULT__FINAL_CROSSTALK_CORRECTED_RANGE_MM_SD0,
  0x0096).

Only STATUS_VALID carries a distance: every other status (sigma fail,
signal fail, out of bounds, wrap-around, hardware fail, "valid but no wrap
check", min-range clipped, ...) comes back as (None, status) and is never
turned into a distance.  A "valid" result outside 1..MAX_MM is reported as
STATUS_INVALID.

Bus errors are retried ``retries`` times (1, 2, 4 ms apart), then raised as
ToFError naming the register and the cause (NACK: absent; timeout: bus held).
A sensor that stops producing results (brown-out reset, ranging stopped)
raises ToFError from read_mm's timeout.  The ToF is optional equipment: the
caller falls back to the head-size distance on any ToFError.

Memory: every bus buffer is preallocated; read()/data_ready() allocate
nothing but small ints; read_mm() returns a 2-tuple (use read() and the
attributes ``distance_mm``/``status`` where even that matters).
"""

import time

from micropython import const

import i2c16

ADDRESS = const(0x29)
MODEL_ID = const(0xEACC)

DISTANCE_SHORT = const(1)
DISTANCE_LONG = const(2)

# ST's range status codes (ULD API), after mapping the device code.
STATUS_VALID = const(0)
STATUS_SIGMA_FAIL = const(1)  # too much noise in the measurement
STATUS_SIGNAL_FAIL = const(2)  # return signal too weak: no target, too far, too dark
STATUS_MIN_RANGE = const(3)  # target closer than the minimum range (value clipped)
STATUS_OUT_OF_BOUNDS = const(4)  # phase out of the valid window (target beyond range)
STATUS_HARDWARE_FAIL = const(5)
STATUS_NO_WRAP_CHECK = const(6)  # first result after start: wrap-around not yet checked
STATUS_WRAP_FAIL = const(7)  # wrap-around: target beyond the ambiguity distance
STATUS_INVALID = const(14)  # the driver's own: "valid" but distance implausible
STATUS_NONE = const(255)  # no result / unknown device code

MAX_MM = const(6000)  # the part reports at most about 4.5 m; beyond this is corruption

# fmt: off
# device range status (bits 4:0 of 0x0089) -> API status; the table of ST's ULD
_STATUS_MAP = bytes((
    255, 255, 255, 5, 2, 4, 1, 7, 3, 0, 255, 255,
    9, 13, 255, 255, 255, 255, 10, 6, 255, 255, 11, 12,
))

# Default configuration of registers 0x002D..0x0087 (91 bytes), written once
# at init.  Source: STMicroelectronics, VL53L1X ULD API (STSW-IMG009),
# VL53L1X_api.c, array VL51L1X_DEFAULT_CONFIGURATION, the current version
# (0x005E/0x005F = 0x01CC: long mode, 100 ms budget; 0x0086/0x0087 = 0: the
# driver clears and starts explicitly).  Copyright (c) 2017 STMicroelectronics,
# distributed by ST under the BSD 3-Clause licence (its open-source option of
# the ULD's dual licence).  Register data only: no ST code is reproduced.
# Bytes a user may change (meaning from ST's documentation): 0x2D I2C fast-plus
# bits, 0x2E/0x2F pull-up voltage, 0x30 interrupt polarity (bit 4),
# 0x46 interrupt on new sample, 0x64-0x65 sigma threshold (14.2 mm),
# 0x66-0x67 minimum signal rate (9.7 MCPS), 0x6C-0x6F inter-measurement period,
# 0x72-0x75 distance thresholds, 0x7F/0x80 region of interest; the rest are
# internal settings.
_DEFAULT_CONFIG = bytes((
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x02, 0x08,  # 0x2D
    0x00, 0x08, 0x10, 0x01, 0x01, 0x00, 0x00, 0x00,  # 0x35
    0x00, 0xFF, 0x00, 0x0F, 0x00, 0x00, 0x00, 0x00,  # 0x3D
    0x00, 0x20, 0x0B, 0x00, 0x00, 0x02, 0x0A, 0x21,  # 0x45
    0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0xC8,  # 0x4D
    0x00, 0x00, 0x38, 0xFF, 0x01, 0x00, 0x08, 0x00,  # 0x55
    0x00, 0x01, 0xCC, 0x0F, 0x01, 0xF1, 0x0D, 0x01,  # 0x5D
    0x68, 0x00, 0x80, 0x08, 0xB8, 0x00, 0x00, 0x00,  # 0x65
    0x00, 0x0F, 0x89, 0x00, 0x00, 0x00, 0x00, 0x00,  # 0x6D
    0x00, 0x00, 0x01, 0x0F, 0x0D, 0x0E, 0x0E, 0x00,  # 0x75
    0x00, 0x02, 0xC7, 0xFF, 0x9B, 0x00, 0x00, 0x00,  # 0x7D
    0x01, 0x00, 0x00,                                # 0x85
))

# Timing budget (ms) -> RANGE_CONFIG__TIMEOUT_MACROP_A_HI and _B_HI words,
# per distance mode (values of ST's ULD).  15 ms exists in short mode only.
_BUDGETS = (15, 20, 33, 50, 100, 200, 500)
_TIMEOUTS_SHORT = (
    (0x001D, 0x0027), (0x0051, 0x006E), (0x00D6, 0x006E), (0x01AE, 0x01E8),
    (0x02E1, 0x0388), (0x03E1, 0x0496), (0x0591, 0x05C1),
)
_TIMEOUTS_LONG = (
    None, (0x001E, 0x0022), (0x0060, 0x006E), (0x00AD, 0x00C6),
    (0x01CC, 0x01EA), (0x02D9, 0x02F8), (0x048F, 0x04A4),
)
# Distance mode -> PHASECAL_CONFIG__TIMEOUT_MACROP, RANGE_CONFIG__VCSEL_PERIOD_A,
# _B, RANGE_CONFIG__VALID_PHASE_HIGH, SD_CONFIG__WOI_SD0 (word),
# SD_CONFIG__INITIAL_PHASE_SD0 (word)
_MODE_SHORT = (0x14, 0x07, 0x05, 0x38, 0x0705, 0x0606)
_MODE_LONG = (0x0A, 0x0F, 0x0D, 0xB8, 0x0F0D, 0x0E0E)
# fmt: on

_VHV_LOOP_BOUND = const(0x0008)
_VHV_START = const(0x000B)
_CONFIG_START = const(0x002D)
_GPIO_HV_MUX_CTRL = const(0x0030)
_GPIO_TIO_HV_STATUS = const(0x0031)
_PHASECAL_TIMEOUT = const(0x004B)
_RANGE_TIMEOUT_A = const(0x005E)
_VCSEL_PERIOD_A = const(0x0060)
_RANGE_TIMEOUT_B = const(0x0061)
_VCSEL_PERIOD_B = const(0x0063)
_VALID_PHASE_HIGH = const(0x0069)
_INTERMEASUREMENT = const(0x006C)
_WOI_SD0 = const(0x0078)
_INITIAL_PHASE_SD0 = const(0x007A)
_INTERRUPT_CLEAR = const(0x0086)
_MODE_START = const(0x0087)
_RESULT = const(0x0089)  # 17 bytes: status at 0, distance at 13-14 (0x0096)
_OSC_CALIBRATE = const(0x00DE)
_SYSTEM_STATUS = const(0x00E5)
_MODEL_ID_REG = const(0x010F)

BOOT_TIMEOUT_MS = 100  # the datasheet's boot is 1.2 ms


class ToFError(Exception):
    """The VL53L1X does not answer, is not a VL53L1X, or stopped measuring."""


class VL53L1X:
    """The sensor on an I2C bus (machine.I2C API).  See the module docstring.

    distance_mode: DISTANCE_LONG (default) or DISTANCE_SHORT; timing_budget_ms:
    15 (short only), 20, 33, 50, 100, 200, 500; period_ms: inter-measurement
    period (>= the budget); start: begin ranging at the end of init.
    Attributes after read(): distance_mm (int, 0 when not valid), status
    (STATUS_*), raw_status (the device code)."""

    def __init__(
        self,
        i2c,
        address=ADDRESS,
        distance_mode=DISTANCE_LONG,
        timing_budget_ms=50,
        period_ms=100,
        start=True,
        retries=3,
    ):
        self.i2c = i2c
        self.address = address
        self.retries = retries
        self._b1 = bytearray(1)
        self._b2 = bytearray(2)
        self._b4 = bytearray(4)
        self._res = bytearray(17)
        self.distance_mm = 0
        self.status = STATUS_NONE
        self.raw_status = 0
        self.ranging = False
        self.distance_mode = distance_mode
        self.timing_budget_ms = timing_budget_ms
        self.period_ms = period_ms
        self._polarity = 1
        self.init(start)

    # -- bus -------------------------------------------------------------
    def _bus(self, write, reg, buf):
        why = i2c16.transfer(self.i2c, self.address, write, reg, buf, self.retries)
        if why is not None:
            raise ToFError(
                "VL53L1X at 0x%02X: I2C %s of 0x%04X failed %d times: %s"
                % (self.address, "write" if write else "read", reg, self.retries + 1, why)
            )

    def read_u8(self, reg):
        self._bus(False, reg, self._b1)
        return self._b1[0]

    def read_u16(self, reg):
        b = self._b2
        self._bus(False, reg, b)
        return (b[0] << 8) | b[1]

    def write(self, reg, value, nbytes=1):
        """Write a 1, 2 or 4-byte register (big-endian)."""
        b = self._b1 if nbytes == 1 else (self._b2 if nbytes == 2 else self._b4)
        i = len(b)
        while i:
            i -= 1
            b[i] = value & 0xFF
            value >>= 8
        self._bus(True, reg, b)

    # -- set-up ----------------------------------------------------------
    def init(self, start=True):
        """Boot wait, identity check, default configuration, VHV calibration,
        distance mode, timing budget and period; start ranging if asked.
        Also the re-initialisation after a fault (the part may have reset)."""
        self.ranging = False
        self.wait_booted()
        model = self.read_u16(_MODEL_ID_REG)
        if model != MODEL_ID:
            raise ToFError(
                "device at 0x%02X is not a VL53L1X: model id 0x%04X, expected 0x%04X "
                "(another part at this address, or a VL53L0X/VL53L4CD?)" % (self.address, model, MODEL_ID)
            )
        self.write(_MODE_START, 0x00)  # a re-init may find the part ranging
        self._bus(True, _CONFIG_START, _DEFAULT_CONFIG)  # auto-increment over 0x2D..0x87
        self._polarity = 0 if self.read_u8(_GPIO_HV_MUX_CTRL) & 0x10 else 1
        # the first ranging runs the VHV (temperature) calibration: discard it
        self.write(_MODE_START, 0x40)
        self.wait_ready(BOOT_TIMEOUT_MS + 1000)
        self.write(_INTERRUPT_CLEAR, 0x01)
        self.write(_MODE_START, 0x00)
        self.write(_VHV_LOOP_BOUND, 0x09)  # two VHV bounds
        self.write(_VHV_START, 0x00)  # start VHV from the previous temperature
        self.set_distance_mode(self.distance_mode)
        self.set_timing_budget(self.timing_budget_ms)
        self.set_period(self.period_ms)
        if start:
            self.start()

    def wait_booted(self, timeout_ms=BOOT_TIMEOUT_MS):
        """Poll FIRMWARE__SYSTEM_STATUS until the firmware has booted."""
        t0 = time.ticks_ms()
        while True:
            state = self.read_u8(_SYSTEM_STATUS)
            if state & 0x01:
                return
            if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
                raise ToFError(
                    "VL53L1X at 0x%02X did not boot within %d ms (system status 0x%02X; "
                    "XSHUT low or not a VL53L1X?)" % (self.address, timeout_ms, state)
                )
            time.sleep_ms(1)

    def set_distance_mode(self, mode):
        """DISTANCE_LONG (up to about 4 m) or DISTANCE_SHORT (1.3 m); keeps
        the timing budget (rewritten for the mode's timeouts)."""
        if mode == DISTANCE_LONG:
            m = _MODE_LONG
        elif mode == DISTANCE_SHORT:
            m = _MODE_SHORT
        else:
            raise ValueError("distance mode must be DISTANCE_SHORT (1) or DISTANCE_LONG (2)")
        if mode == DISTANCE_LONG and self.timing_budget_ms == 15:
            raise ValueError("a 15 ms timing budget exists in short distance mode only")
        was = self.ranging
        if was:
            self.stop()
        self.write(_PHASECAL_TIMEOUT, m[0])
        self.write(_VCSEL_PERIOD_A, m[1])
        self.write(_VCSEL_PERIOD_B, m[2])
        self.write(_VALID_PHASE_HIGH, m[3])
        self.write(_WOI_SD0, m[4], 2)
        self.write(_INITIAL_PHASE_SD0, m[5], 2)
        self.distance_mode = mode
        self._write_budget(self.timing_budget_ms)
        if was:
            self.start()

    def set_timing_budget(self, ms):
        """Ranging time of one measurement (ms): longer = less noise, more range."""
        if ms > self.period_ms:
            raise ValueError("timing budget %d ms exceeds the period %d ms" % (ms, self.period_ms))
        self._write_budget(ms)

    def _write_budget(self, ms):
        if ms not in _BUDGETS:
            raise ValueError("timing budget must be one of %r ms" % (_BUDGETS,))
        table = _TIMEOUTS_LONG if self.distance_mode == DISTANCE_LONG else _TIMEOUTS_SHORT
        words = table[_BUDGETS.index(ms)]
        if words is None:
            raise ValueError("a 15 ms timing budget exists in short distance mode only")
        self.write(_RANGE_TIMEOUT_A, words[0], 2)
        self.write(_RANGE_TIMEOUT_B, words[1], 2)
        self.timing_budget_ms = ms

    def set_period(self, ms):
        """Inter-measurement period (ms, >= the timing budget): SYSTEM__
        INTERMEASUREMENT_PERIOD in oscillator ticks, from the part's own
        oscillator calibration (RESULT__OSC_CALIBRATE_VAL, 10 bits) x 1.075."""
        if ms < self.timing_budget_ms:
            raise ValueError("period %d ms is shorter than the timing budget %d ms" % (ms, self.timing_budget_ms))
        clock = self.read_u16(_OSC_CALIBRATE) & 0x3FF
        self.write(_INTERMEASUREMENT, clock * ms * 1075 // 1000, 4)
        self.period_ms = ms

    # -- ranging ---------------------------------------------------------
    def start(self):
        """Start timed ranging (a result every period_ms)."""
        self.write(_INTERRUPT_CLEAR, 0x01)
        self.write(_MODE_START, 0x40)
        self.ranging = True

    def stop(self):
        self.write(_MODE_START, 0x00)
        self.ranging = False

    def data_ready(self):
        """True when a new result waits (GPIO__TIO_HV_STATUS bit 0 at the
        interrupt's active level)."""
        return (self.read_u8(_GPIO_TIO_HV_STATUS) & 0x01) == self._polarity

    def wait_ready(self, timeout_ms=None):
        """Poll until a result is ready; ToFError after timeout_ms (default:
        two periods plus a budget and 50 ms)."""
        if timeout_ms is None:
            timeout_ms = 2 * self.period_ms + self.timing_budget_ms + 50
        t0 = time.ticks_ms()
        while not self.data_ready():
            if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms:
                raise ToFError(
                    "VL53L1X at 0x%02X: no measurement within %d ms (ranging stopped or sensor reset?)"
                    % (self.address, timeout_ms)
                )
            time.sleep_ms(2)

    def read(self, wait=True):
        """Fetch the waiting result (after waiting for one when ``wait``),
        release the next, and return the status (STATUS_*).  The distance
        is in ``distance_mm`` when the status is STATUS_VALID, else 0.
        With wait=False and no new result: STATUS_NONE, nothing changes on
        the sensor."""
        if wait:
            if not self.ranging:
                raise ToFError("VL53L1X: read while ranging is stopped (call start())")
            self.wait_ready()
        elif not self.data_ready():
            self.status = STATUS_NONE
            self.distance_mm = 0
            return STATUS_NONE
        r = self._res
        self._bus(False, _RESULT, r)
        self.write(_INTERRUPT_CLEAR, 0x01)
        raw = r[0] & 0x1F
        self.raw_status = raw
        status = _STATUS_MAP[raw] if raw < 24 else STATUS_NONE
        mm = (r[13] << 8) | r[14]
        if status == STATUS_VALID and not 0 < mm <= MAX_MM:
            status = STATUS_INVALID
        self.status = status
        self.distance_mm = mm if status == STATUS_VALID else 0
        return status

    def read_mm(self, wait=True):
        """(distance_mm, status): distance_mm is an int only for STATUS_VALID,
        None for every other status (never a distance)."""
        status = self.read(wait)
        return (self.distance_mm if status == STATUS_VALID else None), status
