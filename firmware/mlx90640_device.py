"""MLX90640 device class: owns the I2C bus (internal module; use
``mlx90640.MLX90640``, which loads it on first use)."""

import time

import micropython
import uctypes
from micropython import const

import i2c16
from buffers import zeros
from mlx90640 import (
    CONTROL_REG,
    EEPROM_ADDR,
    EEPROM_WORDS,
    FRAME_WORDS,
    RAM_ADDR,
    RATE_2HZ,
    RES_18,
    STATUS_REG,
    SensorError,
    _calculate_to,
    _repair_nonfinite,
    _ta,
    _word,
    extract_parameters,
    get_vdd,
    repair_pixels,
)

_STATUS_DATA_READY = const(0x0008)
# Status value written after a frame is taken: bit 3 (data ready) cleared,
# bit 4 (RAM overwrite enabled) and bit 5 (start measurement) set, as the
# Melexis driver does.
_STATUS_CLEAR = const(0x0030)
_SUBPAGE_MS = (2000, 1000, 500, 250, 125, 63, 32, 16)  # by refresh-rate code

VDD_RANGE = (2.9, 3.7)  # volts; the part is specified for 3.0-3.6 V
TA_RANGE = (-45.0, 95.0)  # degC; operating range -40..85 degC plus self-heating


@micropython.viper
def _be_words(src, dst, count: int):
    """Big-endian bytes from the bus into an array('H'), without allocating.
    In place (src is dst) is safe: word i is read before it is written."""
    s = ptr8(src)  # noqa: F821 (viper built-in)
    d = ptr16(dst)  # noqa: F821 (viper built-in)
    i = 0
    while i < count:
        d[i] = (s[2 * i] << 8) | s[2 * i + 1]
        i += 1


class MLX90640:
    """The sensor on an I2C bus (machine.I2C API).

        cam = MLX90640(i2c, address=0x33, refresh_rate=RATE_4HZ,
                       resolution=RES_18, chess=True)
        ta = cam.read_frame(image)          # image: array('f', 768), degC

    Every bus error is retried ``retries`` times, then raised as SensorError;
    so is a frame whose Vdd, Ta, gain, control word or subpage is not
    plausible: such a frame is never turned into temperatures.
    Attributes: params (calibration), frame (last 834-word frame, array('H')),
    emissivity (default 1.0), tr_offset (reflected temperature = Ta + tr_offset,
    default -8 as Melexis advises in open air), vdd and ta (volts, degC of the
    last subpage read), repaired (pixels repaired in the last image beyond
    the EEPROM list: NaN or out of range)."""

    def __init__(self, i2c, address=0x33, refresh_rate=RATE_2HZ, resolution=RES_18, chess=True, retries=3):
        self.i2c = i2c
        self.address = address
        self.retries = retries
        self.emissivity = 1.0
        self.tr_offset = -8.0
        self.repaired = 0
        self.vdd = 0.0
        self.ta = 0.0
        self._word = bytearray(2)
        self.frame = zeros("H", FRAME_WORDS)
        # The bus reads land in the frame's own first 832 words (a byte view:
        # I2C drivers fill bytes) and are turned into host order in place, so
        # no second 1.7 KB buffer stays resident.  The view lives no longer
        # than self.frame, and MicroPython's heap never moves objects.
        self._bus_view = uctypes.bytearray_at(uctypes.addressof(self.frame), 2 * EEPROM_WORDS)
        self.params = self._load_calibration()
        self.configure(refresh_rate, resolution, chess)
        self._last_subpage = -1

    # -- bus -------------------------------------------------------------
    def _bus(self, write, reg, buf):
        why = i2c16.transfer(self.i2c, self.address, write, reg, buf, self.retries)
        if why is not None:
            raise SensorError(
                "MLX90640 at 0x%02X: I2C %s of 0x%04X failed %d times: %s"
                % (self.address, "write" if write else "read", reg, self.retries + 1, why)
            )

    def read_register(self, reg):
        self._bus(False, reg, self._word)
        return (self._word[0] << 8) | self._word[1]

    def write_register(self, reg, value):
        self._word[0] = (value >> 8) & 0xFF
        self._word[1] = value & 0xFF
        self._bus(True, reg, self._word)

    # -- set-up ----------------------------------------------------------
    def _load_calibration(self):
        """EEPROM dump (832 words at 0x2400), sanity-checked and decoded."""
        ee = self.frame  # the EEPROM passes through the frame buffer
        self._bus(False, EEPROM_ADDR, self._bus_view)
        _be_words(ee, ee, EEPROM_WORDS)
        return extract_parameters(ee)  # raises SensorError on a bad dump

    def configure(self, refresh_rate=RATE_2HZ, resolution=RES_18, chess=True):
        """Set refresh rate (subpage rate, RATE_*), ADC resolution (RES_*) and
        reading pattern in control register 0x800D, and check it took."""
        if not 0 <= refresh_rate <= 7 or not 0 <= resolution <= 3:
            raise ValueError("refresh_rate 0..7 and resolution 0..3")
        ctrl = self.read_register(CONTROL_REG)
        ctrl &= ~0x1F80 & 0xFFFF
        ctrl |= (refresh_rate << 7) | (resolution << 10) | (0x1000 if chess else 0)
        self.write_register(CONTROL_REG, ctrl)
        if self.read_register(CONTROL_REG) & 0x1F80 != ctrl & 0x1F80:
            raise SensorError("MLX90640 control register did not take 0x%04X" % ctrl)
        self.control = ctrl
        self.subpage_ms = _SUBPAGE_MS[refresh_rate]

    # -- frames ----------------------------------------------------------
    def data_timeout_ms(self):
        """How long the next subpage may take before the sensor is silent."""
        return 3 * self.subpage_ms + 100

    def wait_data_ready(self, timeout_ms=None):
        """Poll status bit 3 until a new subpage is in RAM; return the status."""
        if timeout_ms is None:
            timeout_ms = self.data_timeout_ms()
        start = time.ticks_ms()
        while True:
            status = self.read_register(STATUS_REG)
            if status & _STATUS_DATA_READY:
                return status
            if time.ticks_diff(time.ticks_ms(), start) > timeout_ms:
                raise SensorError("MLX90640: no new data within %d ms (status 0x%04X)" % (timeout_ms, status))
            time.sleep_ms(max(1, self.subpage_ms // 8))

    def read_subpage(self):
        """Wait for, read and validate one subpage; returns self.frame (834
        words, reused buffer).  Raises SensorError for an inconsistent frame."""
        frame = self.frame
        for _ in range(3):
            self.wait_data_ready()
            self.write_register(STATUS_REG, _STATUS_CLEAR)
            self._bus(False, RAM_ADDR, self._bus_view)
            status = self.read_register(STATUS_REG)
            if not status & _STATUS_DATA_READY:
                break  # no newer subpage overwrote RAM while we read it
        else:
            raise SensorError("MLX90640: RAM kept changing during the read")
        _be_words(frame, frame, EEPROM_WORDS)
        ctrl = self.read_register(CONTROL_REG)
        frame[832] = ctrl
        frame[833] = status & 0x0001
        self._validate(frame, status)
        return frame

    def _validate(self, frame, status):
        if status & 0x0006:
            raise SensorError("MLX90640: impossible subpage number in status 0x%04X" % status)
        if frame[832] & 0x1F80 != self.control & 0x1F80:
            raise SensorError(
                "MLX90640: control register is 0x%04X, configured 0x%04X "
                "(sensor reset or bus corruption)" % (frame[832], self.control)
            )
        gain_word = _word(frame, 778)
        # Real parts read within a few % of gainEE; a corrupted word (0, 0xFFFF,
        # a flipped high bit) lands far outside (0.1, 10).
        if gain_word == 0 or not 0.1 < self.params.gain_ee / gain_word < 10.0:
            raise SensorError("MLX90640: implausible gain word %d" % gain_word)
        vdd = get_vdd(frame, self.params)
        if not VDD_RANGE[0] <= vdd <= VDD_RANGE[1]:
            raise SensorError("MLX90640: implausible Vdd %.3f V" % vdd)
        ptat = _word(frame, 800)
        if ptat * self.params.alpha_ptat + _word(frame, 768) == 0:
            raise SensorError("MLX90640: implausible PTAT words")
        ta = _ta(frame, self.params, vdd)
        if not TA_RANGE[0] <= ta <= TA_RANGE[1]:
            raise SensorError("MLX90640: implausible sensor temperature %.2f degC" % ta)
        self.vdd = vdd
        self.ta = ta

    def data_ready(self):
        """Is a new subpage in RAM (status bit 3)?  One register read, no
        wait: the helmet's main loop awaits it instead of blocking."""
        return bool(self.read_register(STATUS_REG) & _STATUS_DATA_READY)

    def read_subpage_into(self, out):
        """Read and check the next subpage (waiting for it only if it is not
        in RAM yet) and turn its pixels into temperatures in ``out``
        (array('f', 768), degC); returns its number, 0 or 1."""
        frame = self.read_subpage()
        ta = self.ta
        _calculate_to(frame, self.params, self.vdd, ta, self.emissivity, ta + self.tr_offset, out)
        return frame[833]

    def finish_frame(self, out):
        """Once both subpages are in ``out``: repair the EEPROM-listed and
        any non-finite pixels; returns Ta (degC) of the last subpage."""
        p = self.params
        chess = (self.control & 0x1000) != 0
        repair_pixels(out, p, chess)
        self.repaired = _repair_nonfinite(out, p, chess)
        return self.ta

    def read_frame(self, out):
        """Read both subpages into ``out`` (array('f', 768), degC), repair the
        EEPROM-listed and any non-finite pixels, return Ta (degC).  Blocks
        while it waits for the subpages (see data_ready)."""
        seen = 0
        sp = 0
        for _ in range(4):
            sp = self.read_subpage_into(out)
            seen |= 1 << sp
            if seen == 3:
                return self.finish_frame(out)
        raise SensorError("MLX90640: subpages do not alternate (subpage %d only)" % sp)
