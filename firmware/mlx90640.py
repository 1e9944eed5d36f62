"""MLX90640 32x24 thermopile array: calibration maths and I2C device driver.

For MicroPython (ESP32, single-precision floats, ~100 KB heap).  The maths
follows the Melexis datasheet (section 11, "Calculating object temperature")
and mirrors the public API of the Melexis reference C library in snake_case:

    params = extract_parameters(eeprom_words)   # 832 words read at 0x2400
    vdd = get_vdd(frame, params)                # volts
    ta = get_ta(frame, params)                  # sensor (ambient) degC
    calculate_to(frame, params, emissivity, tr, out)
        # fills the pixels of frame[833]'s subpage in out (array('f', 768))
    repair_pixels(out, params, chess=True)      # broken/outlier pixels
    bad_pixels(params)                          # tuple of deviating pixel indices

``frame`` is the reference driver's 834-word layout: 768 pixel words
(RAM 0x0400), 64 auxiliary words (RAM 0x0700), word 832 = control register
0x800D, word 833 = subpage number.  array('H') is the fast path; a list or
tuple works too (its pixel words are copied into a reused buffer).

Device class (mlx90640_device.py, loaded on first use of mlx90640.MLX90640;
owns the bus through the machine.I2C API, 16-bit register addresses,
big-endian words):

    import array, machine, mlx90640
    cam = mlx90640.MLX90640(machine.I2C(0), refresh_rate=mlx90640.RATE_4HZ)
    image = array.array('f', bytes(4 * 768))
    ta = cam.read_frame(image)        # both subpages, repaired, degC

Speed and memory: the per-pixel work runs in a viper fixed-point kernel
(mlx90640_fixed.py) that allocates nothing; calculate_to's per-frame set-up
allocates a few dozen float temporaries (O(1), not per pixel).  Parameters
take about 10 KB on the 64-bit host (per-pixel tables: offset and kta
numerators array('h'), 24-bit 1/alpha mantissas, 5.3 KB in all; a 2 KB root
table shared by every sensor; less on the 32-bit ESP32).  A float loop
(mlx90640_float.py, @micropython.native, loaded only when needed) serves
EEPROMs outside the kernel's proven ranges and is the kernel's reference in
the tests (``params.fixed_point = False`` selects it).

Precision: tables are single precision (array('f')) or exact integers, as
floats are single on the ESP32.  Results match the Melexis vector within
0.001 degC, the kernel and the float loop agree within 0.001 degC, and a
float32 numpy re-implementation (tools/reference) shows single precision
suffices.  The kernel covers objects up to about 345 degC (sensor spec: 300);
beyond, pixels are NaN.
"""

import array
import gc

from micropython import const

import mlx90640_fixed as _fx
from buffers import zeros

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

NPIX = 768
FRAME_WORDS = 834
EEPROM_WORDS = 832
EEPROM_ADDR = 0x2400
RAM_ADDR = 0x0400
STATUS_REG = 0x8000
CONTROL_REG = 0x800D

# Refresh rate codes (control register bits 7-9); the rate is per subpage.
_RATE_0_5HZ = const(0)
RATE_1HZ = 1
RATE_2HZ = 2
RATE_4HZ = 3
RATE_8HZ = 4
RATE_16HZ = 5
RATE_32HZ = 6
RATE_64HZ = 7
# ADC resolution codes (control register bits 10-11): 16..19 bit.
_RES_16 = const(0)
RES_17 = 1
RES_18 = 2
RES_19 = 3

KELVIN = 273.15
_NO_PIXEL = const(0xFFFF)  # terminator in broken_pixels / outlier_pixels (as Melexis)


class SensorError(Exception):
    """The sensor or its data cannot be trusted (bus failure, bad EEPROM,
    inconsistent frame, implausible Vdd/Ta)."""


def _signed(value, bits):
    """Two's complement value of the low ``bits`` of ``value``."""
    value &= (1 << bits) - 1
    if value >= 1 << (bits - 1):
        value -= 1 << bits
    return value


def _nibbles(ee, first, count):
    """``count`` signed 4-bit fields packed little-nibble-first from ee[first]."""
    out = []
    for i in range(count):
        out.append(_signed(ee[first + (i >> 2)] >> (4 * (i & 3)), 4))
    return out


class Params:
    """Calibration parameters from EEPROM (names: Melexis', snake_case).

    Scalars: k_vdd, vdd25, kv_ptat, kt_ptat, vptat25, alpha_ptat, gain_ee,
    tgc, resolution_ee, calibration_mode_ee (0x80 = calibrated in chess mode),
    ks_ta, cp_kv, cp_kta.  Small tuples: ks_to[4], ct[4], cp_alpha[2],
    cp_offset[2], il_chess_c[3].  Per-pixel tables (index = row*32 + column):
    offset: array('h'); alpha, kta, kv: read-only indexable views (alpha =
    1 / (mantissa * 2**alpha_exp), 0.0 for a bad pixel whose sensitivity is
    not positive; int16 numerators / 2**kta_scale; four parity values).
    broken_pixels and outlier_pixels: array('H', 5) padded with 0xFFFF like
    the reference driver.

    Sensitivities are kept only as amant: 1/alpha rounded to 24-bit mantissas
    (3 bytes each, little-endian: 2.3 KB) with one exponent alpha_exp
    (relative error at most 2**-24 times the largest/smallest alpha ratio,
    about 1.2e-7 for real parts), which both the kernel and the float loop
    use; a 3 KB table of alpha itself would be heap the helmet cannot spare.
    """

    def __init__(self):
        # Filled by extract_parameters; declared here so the object's shape is
        # fixed (and visible to the type checker).
        self.k_vdd = 0
        self.vdd25 = 0
        self.kv_ptat = 0.0
        self.kt_ptat = 0.0
        self.vptat25 = 0
        self.alpha_ptat = 0.0
        self.gain_ee = 0
        self.tgc = 0.0
        self.resolution_ee = 0
        self.ks_ta = 0.0
        self.calibration_mode_ee = 0
        self.ct = (0, 0, 0, 0)
        self.ks_to = (0.0, 0.0, 0.0, 0.0)
        self.cp_offset = (0, 0)
        self.cp_alpha = (0.0, 0.0)
        self.cp_kta = 0.0
        self.cp_kv = 0.0
        self.il_chess_c = (0.0, 0.0, 0.0)
        # Per-pixel tables, allocated first thing (big blocks on a fresh heap).
        self.offset = zeros("h", NPIX)
        self.ktan = zeros("h", NPIX)  # kta numerators, exact
        self.amant = bytearray(3 * NPIX)  # 1/alpha mantissas, 24-bit
        self.alpha_exp = 0
        self.alpha = _InverseTable(self.amant, 1.0)
        self.kta_scale = 0
        self.kta = _ScaledTable(self.ktan, 1)
        self._kv4 = (0.0, 0.0, 0.0, 0.0)
        self.kv = _ParityTable(self._kv4)
        self.broken_pixels = array.array("H", [_NO_PIXEL] * 5)
        self.outlier_pixels = array.array("H", [_NO_PIXEL] * 5)
        self.bad_map = bytearray(NPIX // 8)
        self._max_off = 1
        self._max_on = 1
        self._kv_scale = 1.0
        self._dk_scale = 1.0
        self._alpha_pow = 1.0
        # Per-frame scratch, reused so that calculate_to allocates no lists or
        # arrays: kv factor per row/column parity, interleave correction per
        # (row parity, column % 4), float constants, fixed-point constants.
        self._kvf = array.array("f", bytes(4 * 4))
        self._ilc = array.array("f", bytes(4 * 8))
        self._rng = array.array("f", bytes(4 * 20))
        self._fc = array.array("i", bytes(4 * _fx.FC_COUNT))
        self._raw: "array.array | None" = None  # copy of a list frame's pixel words
        self.fixed_point = True  # False forces the float loop (tests compare both)


class _ScaledTable:
    """Read-only per-pixel view value = numerators[i] / divisor (kta), kept as
    int16 numerators instead of a 3 KB float table."""

    def __init__(self, numerators, divisor):
        self._n = numerators
        self._d = divisor

    def __len__(self):
        return NPIX

    def __getitem__(self, i):
        return self._n[i] / self._d


def _mant(t, i):
    """Entry i of a 24-bit little-endian table (amant)."""
    j = 3 * i
    return t[j] | (t[j + 1] << 8) | (t[j + 2] << 16)


def _set_mant(t, i, v):
    j = 3 * i
    t[j] = v & 255
    t[j + 1] = (v >> 8) & 255
    t[j + 2] = (v >> 16) & 255


class _InverseTable:
    """Read-only per-pixel view value = 1 / (mantissa i * scale) (alpha
    from amant), 0.0 where the mantissa is 0 (non-positive alpha)."""

    def __init__(self, mantissas, scale):
        self._m = mantissas
        self._s = scale

    def __len__(self):
        return NPIX

    def __getitem__(self, i):
        m = _mant(self._m, i)
        return 1 / (m * self._s) if m else 0.0


class _ParityTable:
    """Read-only per-pixel view of a value that depends only on row and
    column parity (kv): four floats instead of 768."""

    def __init__(self, values):
        self._v = values

    def __len__(self):
        return NPIX

    def __getitem__(self, i):
        return self._v[((i >> 4) & 2) | (i & 1)]


def extract_parameters(ee: "Sequence[int]") -> Params:
    """Decode the 832 EEPROM words into a Params object.

    Raises SensorError for an EEPROM that cannot be a calibrated sensor (all
    0x0000/0xFFFF, zero gain/slopes, non-positive sensitivities, more than
    four deviating pixels)."""
    if len(ee) < EEPROM_WORDS:
        raise SensorError("EEPROM dump has %d words, expected 832" % len(ee))
    all_ones = all_zero = True
    for i in range(EEPROM_WORDS):
        w = ee[i]
        if w != 0xFFFF:
            all_ones = False
        if w != 0:
            all_zero = False
    if all_ones or all_zero:
        raise SensorError("EEPROM reads all 0x%04X: sensor absent or not calibrated" % (0xFFFF if all_ones else 0))

    # The per-pixel and root tables need ~7.5 KB in 1.5-2.3 KB blocks: collect
    # first so that a fragmented 100 KB heap still has the contiguous room.
    gc.collect()
    p = Params()
    _fx.root_table()  # built once (2 KB), shared by every sensor
    # Supply voltage sensor (datasheet 11.1.1).
    p.k_vdd = _signed(ee[51] >> 8, 8) * 32
    p.vdd25 = ((ee[51] & 0xFF) - 256) * 32 - 8192
    # Ambient (PTAT) sensor (11.1.2).
    p.kv_ptat = _signed(ee[50] >> 10, 6) / 4096
    p.kt_ptat = _signed(ee[50], 10) / 8
    p.vptat25 = _signed(ee[49], 16)
    p.alpha_ptat = (ee[16] >> 12) / 4 + 8
    p.gain_ee = _signed(ee[48], 16)
    p.tgc = _signed(ee[60], 8) / 32
    p.resolution_ee = (ee[56] >> 12) & 3
    p.ks_ta = _signed(ee[60] >> 8, 8) / 8192
    # Bit 11 of word 10 is 0 when calibrated in chess mode; Melexis encodes the
    # mode as 0x80 (chess) / 0x00 (interleaved) to compare with the control word.
    p.calibration_mode_ee = ((ee[10] & 0x0800) >> 4) ^ 0x80

    # Object temperature ranges and their sensitivity slopes (11.1.12).
    step = ((ee[63] >> 12) & 3) * 10
    ct2 = ((ee[63] >> 4) & 15) * step
    ct3 = ct2 + ((ee[63] >> 8) & 15) * step
    p.ct = (-40, 0, ct2, ct3)
    ks_to_scale = 1 << ((ee[63] & 15) + 8)
    p.ks_to = (
        _signed(ee[61], 8) / ks_to_scale,
        _signed(ee[61] >> 8, 8) / ks_to_scale,
        _signed(ee[62], 8) / ks_to_scale,
        _signed(ee[62] >> 8, 8) / ks_to_scale,
    )

    # Compensation pixels (11.1.10).
    kta_scale1 = ((ee[56] >> 4) & 15) + 8
    kta_scale2 = ee[56] & 15
    kv_scale = (ee[56] >> 8) & 15
    cp_off0 = _signed(ee[58], 10)
    p.cp_offset = (cp_off0, cp_off0 + _signed(ee[58] >> 10, 6))
    cp_a0 = _signed(ee[57], 10) / (1 << (((ee[32] >> 12) & 15) + 27))
    p.cp_alpha = (cp_a0, (1 + _signed(ee[57] >> 10, 6) / 128) * cp_a0)
    p.cp_kta = _signed(ee[59], 8) / (1 << kta_scale1)
    p.cp_kv = _signed(ee[59] >> 8, 8) / (1 << kv_scale)
    # Interleaved/chess pattern corrections (11.1.11).
    p.il_chess_c = (_signed(ee[53], 6) / 16, _signed(ee[53] >> 6, 5) / 2, _signed(ee[53] >> 11, 5) / 8)

    _extract_deviating(ee, p)  # first: bad pixels may have any sensitivity
    _extract_pixels(ee, p, kta_scale1, kta_scale2, kv_scale)
    _check_plausible(p)
    _prepare_static(p)
    return p


def _extract_pixels(ee, p, kta_scale1, kta_scale2, kv_scale):
    """Per-pixel offset, alpha, kta, kv (11.1.6-11.1.9)."""
    # Offsets: reference + row and column corrections + pixel remainder.
    occ_rem = 1 << (ee[16] & 15)
    occ_col_shift = (ee[16] >> 4) & 15
    occ_row_shift = (ee[16] >> 8) & 15
    off_ref = _signed(ee[17], 16)
    occ_row = _nibbles(ee, 18, 24)
    occ_col = _nibbles(ee, 24, 32)
    # Sensitivities, same structure with their own scales.
    acc_rem = 1 << (ee[32] & 15)
    acc_col_shift = (ee[32] >> 4) & 15
    acc_row_shift = (ee[32] >> 8) & 15
    alpha_div = 2.0 ** (((ee[32] >> 12) & 15) + 30)
    alpha_ref = ee[33]
    acc_row = _nibbles(ee, 34, 24)
    acc_col = _nibbles(ee, 40, 32)
    # kta and kv depend on row/column parity: index 2*(row odd) + (column odd).
    kta_rc = (_signed(ee[54] >> 8, 8), _signed(ee[55] >> 8, 8), _signed(ee[54], 8), _signed(ee[55], 8))
    kv_rc = (_signed(ee[52] >> 12, 4), _signed(ee[52] >> 4, 4), _signed(ee[52] >> 8, 4), _signed(ee[52], 4))
    kta_div = 1 << kta_scale1
    kv_div = 1 << kv_scale
    # TGC removes the compensation pixel's share of the sensitivity.
    alpha_tgc = p.tgc * (p.cp_alpha[0] + p.cp_alpha[1]) / 2

    offset = p.offset
    ktan = p.ktan
    anum = p.amant  # integer sensitivity numerators until _invert_alpha
    fits = True
    max_off = max_on = 1
    for i in range(NPIX):
        row = i >> 5
        col = i & 31
        w = ee[64 + i]
        split = ((row & 1) << 1) | (col & 1)
        off = (
            off_ref + (occ_row[row] << occ_row_shift) + (occ_col[col] << occ_col_shift) + _signed(w >> 10, 6) * occ_rem
        )
        kn = kta_rc[split] + (_signed(w >> 1, 3) << kta_scale2)
        if not (-32768 <= off <= 32767 and -32768 <= kn <= 32767):
            raise SensorError("EEPROM calibration implausible: pixel %d offset %d kta %d" % (i, off, kn))
        offset[i] = off
        ktan[i] = kn
        max_off = max(max_off, abs(off))
        max_on = max(max_on, abs(off * kn))
        a = alpha_ref + (acc_row[row] << acc_row_shift) + (acc_col[col] << acc_col_shift) + _signed(w >> 4, 6) * acc_rem
        _set_mant(anum, i, a)  # |a| < 2**16 + 2 * 2**18 + 2**20: fits 24 bits signed
    p.kta_scale = kta_scale1
    p.kta = _ScaledTable(ktan, kta_div)
    p._kv4 = tuple(kv_rc[j] / kv_div for j in range(4))
    p.kv = _ParityTable(p._kv4)
    p._max_off = max_off
    p._max_on = max_on
    if max_on >= 1 << 30:
        fits = False
    _invert_alpha(p, alpha_div, alpha_tgc)
    p.fixed_point = fits


def _invert_alpha(p, div, tgc):
    """Turn p.amant's numerators into 1/alpha mantissas in place, alpha =
    numerator / div - tgc rounded to single precision (the ESP32's floats):
    mantissa i * 2**alpha_exp = 1/alpha[i], mantissas < 2**24.  Two passes
    (largest 1/alpha, then the mantissas) instead of a 3 KB float table."""
    amant = p.amant
    f32 = array.array("f", [0.0])  # single-precision rounding, as on the ESP32
    top = 0.0
    for i in range(NPIX):
        f32[0] = _signed(_mant(amant, i), 24) / div - tgc
        a = f32[0]
        if a > 0:
            top = max(top, 1 / a)
        elif not _is_bad(p, i):
            raise SensorError("EEPROM calibration implausible: pixel %d sensitivity %s" % (i, a))
    exp = 0
    while top >= 16777216.0 * 2.0**exp:
        exp += 1
    while top < 8388608.0 * 2.0**exp:
        exp -= 1
    for i in range(NPIX):
        f32[0] = _signed(_mant(amant, i), 24) / div - tgc
        a = f32[0]
        _set_mant(amant, i, min(16777215, int(1 / a / 2.0**exp + 0.5)) if a > 0 else 0)
    p.alpha_exp = exp
    p._alpha_pow = 2.0**exp
    p.alpha = _InverseTable(amant, p._alpha_pow)


def _extract_deviating(ee, p):
    """Broken (word == 0) and outlier (bit 0 set) pixels, at most 4 in all."""
    broken = array.array("H", [_NO_PIXEL] * 5)
    outlier = array.array("H", [_NO_PIXEL] * 5)
    nb = no = 0
    for i in range(NPIX):
        w = ee[64 + i]
        if w == 0:
            if nb == 5:
                break
            broken[nb] = i
            nb += 1
        elif w & 1:
            if no == 5:
                break
            outlier[no] = i
            no += 1
    if nb + no > 4:
        raise SensorError("EEPROM lists %d broken and %d outlier pixels (at most 4 allowed)" % (nb, no))
    p.broken_pixels = broken
    p.outlier_pixels = outlier
    # One byte per pixel would cost 768 B; a bitmap costs 96.
    bad = bytearray(NPIX // 8)
    for i in bad_pixels(p):
        bad[i >> 3] |= 1 << (i & 7)
    p.bad_map = bad


def _check_plausible(p):
    """Reject decoded values that no calibrated part can have."""
    if p.k_vdd == 0 or p.kt_ptat == 0 or p.gain_ee == 0:
        raise SensorError(
            "EEPROM calibration implausible: kVdd=%d KtPTAT=%s gainEE=%d" % (p.k_vdd, p.kt_ptat, p.gain_ee)
        )
    if not 1000 <= p.vptat25 <= 30000:
        raise SensorError("EEPROM calibration implausible: vPTAT25=%d" % p.vptat25)


def bad_pixels(params: Params) -> tuple:
    """Indices of the broken and outlier pixels listed in EEPROM."""
    out = []
    for table in (params.broken_pixels, params.outlier_pixels):
        for i in table:
            if i != _NO_PIXEL:
                out.append(i)
    return tuple(out)


def _is_bad(p, i):
    return p.bad_map[i >> 3] & (1 << (i & 7))


# ---------------------------------------------------------------- per frame


def _word(frame, i):
    """Signed 16-bit RAM word."""
    v = frame[i]
    return v - 65536 if v > 32767 else v


def get_vdd(frame: "Sequence[int]", params: Params) -> float:
    """Supply voltage (V) from the frame's Vdd word, corrected for the ADC
    resolution in use versus the calibration one."""
    res_ram = (frame[832] >> 10) & 3
    correction = (1 << params.resolution_ee) / (1 << res_ram)
    return (correction * _word(frame, 810) - params.vdd25) / params.k_vdd + 3.3


def get_ta(frame: "Sequence[int]", params: Params) -> float:
    """Sensor (ambient) temperature in degC from the PTAT words."""
    return _ta(frame, params, get_vdd(frame, params))


def _ta(frame, p, vdd):
    ptat = _word(frame, 800)
    v_ptat_art = ptat / (ptat * p.alpha_ptat + _word(frame, 768)) * 262144.0
    return (v_ptat_art / (1 + p.kv_ptat * (vdd - 3.3)) - p.vptat25) / p.kt_ptat + 25


def calculate_to(frame: "Sequence[int]", params: Params, emissivity: float, tr: float, out: "array.array") -> None:
    """Object temperature (degC) of every pixel of the frame's subpage into
    ``out``; the other subpage's pixels are left untouched.

    ``tr`` is the reflected temperature (Melexis: Ta - 8 in open air).
    Pixels whose signal is beyond the model (negative radiance) get NaN.
    ``out`` must be an array('f') of 768 items: the kernel writes its memory."""
    vdd = get_vdd(frame, params)
    _calculate_to(frame, params, vdd, _ta(frame, params, vdd), emissivity, tr, out)


def _calculate_to(frame, p, vdd, ta, emissivity, tr, out):
    """calculate_to with the frame's Vdd and Ta already known (the device
    class computed them to validate the frame: 16 float objects saved)."""
    if not isinstance(out, array.array) or len(out) < NPIX:
        raise ValueError("out must be array('f') with 768 items")
    subpage = frame[833]
    ctrl = frame[832]
    dta = ta - 25
    dvdd = vdd - 3.3
    chess = (ctrl & 0x1000) != 0
    mode = 0x80 if chess else 0

    # Radiance of the surroundings seen through a grey body (Kelvin^4).
    ta4 = (ta + KELVIN) ** 4
    tr4 = (tr + KELVIN) ** 4
    ta_tr = tr4 - (tr4 - ta4) / emissivity

    gain_word = _word(frame, 778)
    if gain_word == 0:
        raise SensorError("MLX90640 frame has a zero gain word: corrupted")
    gain = p.gain_ee / gain_word
    # Compensation pixel of this subpage (thermal gradient reference).
    cp_factor = (1 + p.cp_kta * dta) * (1 + p.cp_kv * dvdd)
    if subpage == 0:
        cp = _word(frame, 776) * gain - p.cp_offset[0] * cp_factor
    else:
        cp_off = float(p.cp_offset[1])
        if mode != p.calibration_mode_ee:
            cp_off += p.il_chess_c[0]
        cp = _word(frame, 808) * gain - cp_off * cp_factor
    tgc_cp = p.tgc * cp

    # Scale shared by every pixel: emissivity and the Ta dependence of alpha
    # (alpha_comp = alpha * (1 + KsTa*(Ta-25))); the loops compute
    # u = IR / (emissivity * alpha_comp) directly.
    scale = 1 / (emissivity * (1 + p.ks_ta * dta))
    # kv depends only on row/column parity: four factors per frame.
    kvf = p._kvf
    kv4 = p._kv4
    for i in range(4):
        kvf[i] = 1 + kv4[i] * dvdd
    # Interleave pattern correction when the sensor runs in the other mode
    # than it was calibrated in, by row parity and column % 4; folded with
    # the TGC term into one constant c subtracted from every IR value.
    ilc = p._ilc
    il_on = mode != p.calibration_mode_ee
    if il_on:
        c1, c2 = p.il_chess_c[1], p.il_chess_c[2]
        for j in range(8):
            il = j >> 2
            conv = (0, -1, 0, 1)[j & 3] * (1 - 2 * il)
            ilc[j] = tgc_cp - (c2 * (2 * il - 1) - c1 * conv)
    else:
        for j in range(8):
            ilc[j] = tgc_cp

    rng = p._rng  # range constants: set once per sensor by _prepare_static
    rng[13] = ta_tr

    if p.fixed_point and _fx.prepare_frame(p, gain, dvdd, dta, scale, ta_tr, subpage, chess, il_on):
        if not isinstance(frame, array.array):
            frame = _copy_pixels(p, frame)
        _fx.to_kernel(frame, out, p.offset, p.ktan, p.amant, p._fc, _fx.root_table(), _fx.QUARTER_POW)
        return
    # The float loop multiplies by amant instead of dividing by alpha: the
    # power of two 2**alpha_exp joins the scale (exact).
    scale_a = scale * p._alpha_pow
    rng[14] = gain * scale_a
    rng[15] = scale_a
    rng[16] = dta / (1 << p.kta_scale)
    import mlx90640_float  # loaded only when needed: keeps the common case small

    mlx90640_float.to_loop(frame, out, p.offset, p.ktan, p.amant, kvf, ilc, rng, subpage, 1 if chess else 0)


def _prepare_static(p):
    """Constants of the To ranges, once per sensor.  Sensitivity correction:
    alpha * (a_r + b_r * To[K]) in range r; the first pass uses range 1's
    slope with a = 1 - 273.15 * ksTo[1].  Float copies in _rng; then the
    fixed-point kernel derives its own (or clears p.fixed_point)."""
    ks, ct = p.ks_to, p.ct
    corr2 = 1 + ks[1] * ct[2]
    corr = (1 / (1 + ks[0] * 40), 1.0, corr2, corr2 * (1 + ks[2] * (ct[3] - ct[2])))
    rng = p._rng
    for r in range(4):
        rng[r] = corr[r] * (1 - ks[r] * (ct[r] + KELVIN))  # a_r
        rng[4 + r] = corr[r] * ks[r]  # b_r
    rng[8] = ct[1] + KELVIN
    rng[9] = ct[2] + KELVIN
    rng[10] = ct[3] + KELVIN
    rng[11] = ks[1]
    rng[12] = 1 - ks[1] * KELVIN
    _fx.prepare_sensor(p)


def _copy_pixels(p, frame):
    """Pixel words of a list/tuple frame into a reusable array('H')."""
    raw = p._raw
    if raw is None:
        raw = p._raw = zeros("H", NPIX)
    for i in range(NPIX):
        raw[i] = frame[i]
    return raw


# ---------------------------------------------------------------- repair


def repair_pixels(to: "array.array", params: Params, chess: bool = True) -> None:
    """Replace each broken/outlier pixel by the mean of its valid neighbours
    (like the reference BadPixelsCorrection: diagonal neighbours in chess mode,
    which were measured in the same subpage; left/right in interleaved mode,
    same row, same subpage).  Falls back to all eight neighbours when none of
    those is valid; leaves the pixel alone when no neighbour is."""
    for i in params.broken_pixels:
        if i != _NO_PIXEL:
            _repair_one(to, params, i, chess)
    for i in params.outlier_pixels:
        if i != _NO_PIXEL:
            _repair_one(to, params, i, chess)


# Neighbours measured in the same subpage (chess: diagonals; interleaved: same
# row), then all eight as the fallback.
_DIAGONAL = ((-1, -1), (-1, 1), (1, -1), (1, 1))
_SIDEWAYS = ((0, -1), (0, 1))
_EIGHT = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _repair_one(to, p, i, chess):
    row = i >> 5
    col = i & 31
    first = _DIAGONAL if chess else _SIDEWAYS
    for offsets in (first, _EIGHT):
        total = 0.0
        n = 0
        for dr, dc in offsets:
            r = row + dr
            c = col + dc
            if 0 <= r < 24 and 0 <= c < 32:
                j = (r << 5) + c
                v = to[j]
                if not _is_bad(p, j) and v == v:  # skip bad and NaN neighbours
                    total += v
                    n += 1
        if n:
            to[i] = total / n
            return


def _repair_nonfinite(out, p, chess):
    """Pixels that came out NaN or outside -60..320 degC (the part measures
    -40..300: beyond that the signal is a pixel gone bad in the field, e.g.
    a saturated word) are repaired like the EEPROM-listed ones; returns how
    many.  The scans run in viper: no float object per pixel."""
    n = _fx.mark_out_of_range(out)
    if n:
        i = _fx.next_nan(out, 0)
        while i < NPIX:
            _repair_one(out, p, i, chess)
            i = _fx.next_nan(out, i + 1)
    return n


def __getattr__(name):
    # The device class lives in its own module so that maths-only users (and
    # the import on a 100 KB heap) do not pay for it; mlx90640.MLX90640 works.
    if name == "MLX90640":
        import mlx90640_device

        return mlx90640_device.MLX90640
    raise AttributeError(name)
