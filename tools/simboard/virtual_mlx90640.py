"""Register-level virtual MLX90640 for the simulated board (MicroPython/CPython).

    import simboard, virtual_mlx90640
    cam = virtual_mlx90640.VirtualMLX90640()      # Melexis example EEPROM
    simboard.attach_i2c(0x33, cam)
    cam.set_scene(36.5)                           # or 768 degC values
    cam.set_ambient(ta=30.0, vdd=3.3)

Registers: EEPROM 0x2400-0x273F (the Melexis example calibration), RAM
0x0400-0x073F, status 0x8000 (bit 3 new data, bits 0-2 last subpage; writing
0 to bit 3 clears it), control 0x800D (refresh rate, resolution, chess /
interleaved).  Every subpage period (from the refresh rate, on
simboard.ticks_ms()) the part "measures" the next subpage: it writes that
subpage's pixels and the auxiliary words and sets bit 3.

Pixel words come from the INVERSE of the datasheet model: object
temperatures set here become the words the driver turns back into the same
temperatures.  ``gain_scale`` makes the virtual amplifier that many times more
sensitive than the real part (gain word = gainEE * gain_scale): with 1 the
words quantise like the real sensor (about 0.25 degC per count near room
temperature), with 5 (the default) a round trip is exact to about 0.04 degC
from -10 to 100 degC.

Faults: ``corrupt_next(kind)`` ("gain", "vdd", "control", "ptat") spoils the
next subpage's words; ``stuck_data_ready`` keeps bit 3 clear; ``bad_pixel(i,
word)`` sticks a pixel's RAM word.  Bus-level faults (NACK, timeout) are
simboard.inject_i2c_fault's job.
"""

import array
import os
import time

import simboard

KELVIN = 273.15
_SUBPAGE_MS = (2000, 1000, 500, 250, 125, 63, 32, 16)


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def example_path():
    base = os.getenv("HELMET_DATA") or "../shared/data"
    return base + "/mlx90640/melexis_example.json"


def load_example_words(path=None):
    """(eeprom, [frame0, frame1]) as array('H') from the Melexis example JSON,
    parsed in small chunks: the 63 KB file never sits in a 100 KB heap."""
    ee = array.array("H")
    frames = []
    target = None
    key = ""
    number = ""
    depth = 0
    in_string = False
    with open(path or example_path()) as f:
        while True:
            chunk = f.read(512)
            if not chunk:
                break
            for ch in chunk:
                if in_string:
                    if ch == '"':
                        in_string = False
                        if depth == 1:
                            if key == "expected":
                                return ee, frames
                            target = key
                    else:
                        key += ch
                    continue
                if ch == '"':
                    in_string = True
                    key = ""
                elif ch == "[":
                    depth += 1
                    if target == "frames" and depth == 3:
                        frames.append(array.array("H"))
                elif ch in "0123456789":
                    number += ch
                else:
                    if number:
                        if target == "eeprom":
                            ee.append(int(number))
                        elif target == "frames" and frames:
                            frames[-1].append(int(number))
                        number = ""
                    if ch == "]":
                        depth -= 1
                    elif ch == "{":
                        depth += 1
                    elif ch == "}":
                        depth -= 1
    return ee, frames


class _Cal:
    """The few calibration values the inverse model needs (decoded here,
    independently of the driver)."""

    def __init__(self, ee):
        self.k_vdd = _signed(ee[51] >> 8, 8) * 32
        self.vdd25 = ((ee[51] & 0xFF) - 256) * 32 - 8192
        self.kv_ptat = _signed(ee[50] >> 10, 6) / 4096
        self.kt_ptat = _signed(ee[50], 10) / 8
        self.vptat25 = _signed(ee[49], 16)
        self.alpha_ptat = (ee[16] >> 12) / 4 + 8
        self.gain_ee = _signed(ee[48], 16)
        self.tgc = _signed(ee[60], 8) / 32
        self.res_ee = (ee[56] >> 12) & 3
        self.ks_ta = _signed(ee[60] >> 8, 8) / 8192
        self.cal_chess = not (ee[10] & 0x0800)
        step = ((ee[63] >> 12) & 3) * 10
        ct2 = ((ee[63] >> 4) & 15) * step
        self.ct = (-40, 0, ct2, ct2 + ((ee[63] >> 8) & 15) * step)
        sc = 1 << ((ee[63] & 15) + 8)
        self.ks_to = (
            _signed(ee[61], 8) / sc,
            _signed(ee[61] >> 8, 8) / sc,
            _signed(ee[62], 8) / sc,
            _signed(ee[62] >> 8, 8) / sc,
        )
        kta1 = ((ee[56] >> 4) & 15) + 8
        kta2 = ee[56] & 15
        kvs = (ee[56] >> 8) & 15
        c0 = _signed(ee[58], 10)
        self.cp_offset = (c0, c0 + _signed(ee[58] >> 10, 6))
        self.cp_kta = _signed(ee[59], 8) / (1 << kta1)
        self.cp_kv = _signed(ee[59] >> 8, 8) / (1 << kvs)
        self.il = (_signed(ee[53], 6) / 16, _signed(ee[53] >> 6, 5) / 2, _signed(ee[53] >> 11, 5) / 8)
        cpa0 = _signed(ee[57], 10) / 2 ** (((ee[32] >> 12) & 15) + 27)
        cpa1 = (1 + _signed(ee[57] >> 10, 6) / 128) * cpa0

        def nib(first, n):
            return [_signed(ee[first + (i >> 2)] >> (4 * (i & 3)), 4) for i in range(n)]

        occ_r, occ_c = nib(18, 24), nib(24, 32)
        acc_r, acc_c = nib(34, 24), nib(40, 32)
        kta_rc = (_signed(ee[54] >> 8, 8), _signed(ee[55] >> 8, 8), _signed(ee[54], 8), _signed(ee[55], 8))
        kv_rc = (_signed(ee[52] >> 12, 4), _signed(ee[52] >> 4, 4), _signed(ee[52] >> 8, 4), _signed(ee[52], 4))
        self.offset = array.array("f", bytes(4 * 768))
        self.alpha = array.array("f", bytes(4 * 768))
        self.kta = array.array("f", bytes(4 * 768))
        self.kv = [k / (1 << kvs) for k in kv_rc]
        off_ref = _signed(ee[17], 16)
        for i in range(768):
            r, c, w = i >> 5, i & 31, ee[64 + i]
            split = ((r & 1) << 1) | (c & 1)
            self.offset[i] = (
                off_ref
                + (occ_r[r] << ((ee[16] >> 8) & 15))
                + (occ_c[c] << ((ee[16] >> 4) & 15))
                + _signed(w >> 10, 6) * (1 << (ee[16] & 15))
            )
            self.alpha[i] = (
                ee[33]
                + (acc_r[r] << ((ee[32] >> 8) & 15))
                + (acc_c[c] << ((ee[32] >> 4) & 15))
                + _signed(w >> 4, 6) * (1 << (ee[32] & 15))
            ) / 2 ** (((ee[32] >> 12) & 15) + 30) - self.tgc * (cpa0 + cpa1) / 2
            self.kta[i] = (kta_rc[split] + (_signed(w >> 1, 3) << kta2)) / (1 << kta1)


class VirtualMLX90640(simboard.RegisterDevice16):
    """A virtual sensor; see the module docstring."""

    def __init__(self, eeprom=None, gain_scale=5.0, control=0x1901):
        super().__init__()
        if eeprom is None:
            eeprom = load_example_words()[0]
        self.eeprom = array.array("H", eeprom)
        self.cal = _Cal(self.eeprom)
        self.ram = array.array("H", bytes(2 * 832))
        self.status = 0
        self.control = control
        self.gain_scale = gain_scale
        self.scene = array.array("f", [25.0] * 768)
        self.scene_emissivity = 1.0
        self.tr_offset = -8.0  # reflected temperature the driver assumes
        self.ta = 30.0
        self.vdd = 3.3
        self.next_subpage = 0
        self.last_ms = simboard.ticks_ms()
        self.measured = 0
        # faults
        self.stuck_data_ready = False
        self.stuck_pixels = {}
        self._corrupt = None
        self._control_glitch = None

    # -- scene -----------------------------------------------------------
    def set_scene(self, to):
        """Object temperature (degC): one value for all pixels or 768 values."""
        if isinstance(to, (int, float)):
            for i in range(768):
                self.scene[i] = to
        else:
            for i in range(768):
                self.scene[i] = to[i]

    def set_ambient(self, ta=None, vdd=None):
        if ta is not None:
            self.ta = ta
        if vdd is not None:
            self.vdd = vdd

    # -- faults ----------------------------------------------------------
    def corrupt_next(self, kind):
        """Spoil the next subpage: "gain" (gain word 0), "vdd" (Vdd word far
        off), "ptat" (PTAT words zero), "control" (control register reads
        back with other mode bits, as after a brown-out reset)."""
        if kind not in ("gain", "vdd", "ptat", "control"):
            raise ValueError(kind)
        self._corrupt = kind

    def bad_pixel(self, index, word=0x7FFF):
        """Stick pixel ``index``'s RAM word (None releases it)."""
        if word is None:
            self.stuck_pixels.pop(index, None)
        else:
            self.stuck_pixels[index] = word

    # -- registers -------------------------------------------------------
    def read_word(self, reg):
        self._advance()
        if 0x2400 <= reg < 0x2400 + 832:
            return self.eeprom[reg - 0x2400]
        if 0x0400 <= reg < 0x0400 + 832:
            return self.ram[reg - 0x0400]
        if reg == 0x8000:
            return self.status
        if reg == 0x800D:
            if self._control_glitch is not None:
                return self._control_glitch
            return self.control
        return 0

    def write_word(self, reg, value):
        self._advance()
        if reg == 0x8000:
            # Bit 3 is cleared by writing 0; bits 4-5 are kept; bits 0-2 read-only.
            self.status = (self.status & 0x0007) | (value & 0x0030) | (self.status & value & 0x0008)
        elif reg == 0x800D:
            self.control = value & 0xFFFF
            self._control_glitch = None
        elif 0x2400 <= reg < 0x2400 + 832:
            raise OSError(5)  # EEPROM writes need the erase/program sequence: refuse

    def _period_ms(self):
        return _SUBPAGE_MS[(self.control >> 7) & 7]

    def _advance(self):
        now = simboard.ticks_ms()
        period = self._period_ms()
        if self.stuck_data_ready:
            self.last_ms = now
            return
        if time.ticks_diff(now, self.last_ms) >= period:
            self.last_ms = now
            self._measure(self.next_subpage)
            self.status = (self.status & 0x0030) | 0x0008 | self.next_subpage
            self.next_subpage ^= 1

    # -- the inverse model -----------------------------------------------
    def _measure(self, sp):
        """Write the words the real part would produce for this subpage."""
        cal = self.cal
        ram = self.ram
        ctrl = self.control
        res_ram = (ctrl >> 10) & 3
        chess = (ctrl & 0x1000) != 0
        ta, vdd = self.ta, self.vdd
        dta, dv = ta - 25, vdd - 3.3
        # Vdd word (810), PTAT (800) and PTAT-art (768) words.
        corr = (1 << cal.res_ee) / (1 << res_ram)
        self._put(810, round(((vdd - 3.3) * cal.k_vdd + cal.vdd25) / corr))
        ptat = 1685
        v_art = ((ta - 25) * cal.kt_ptat + cal.vptat25) * (1 + cal.kv_ptat * dv)
        self._put(800, ptat)
        self._put(768, round(ptat * 262144 / v_art - ptat * cal.alpha_ptat))
        gain_word = round(cal.gain_ee * self.gain_scale)
        self._put(778, gain_word)
        gain = cal.gain_ee / gain_word
        # Compensation pixels read exactly their offset: no thermal gradient.
        cpf = (1 + cal.cp_kta * dta) * (1 + cal.cp_kv * dv)
        il_mismatch = chess != cal.cal_chess
        cp1 = cal.cp_offset[1] + (cal.il[0] if il_mismatch else 0)
        self._put(776, round(cal.cp_offset[0] * cpf / gain))
        self._put(808, round(cp1 * cpf / gain))
        # Pixels of this subpage.
        tr = ta + self.tr_offset
        e = self.scene_emissivity
        ta4 = (ta + KELVIN) ** 4
        tr4 = (tr + KELVIN) ** 4
        ta_tr = tr4 - (tr4 - ta4) / e
        ks, ct = cal.ks_to, cal.ct
        corr2 = 1 + ks[1] * ct[2]
        corr_r = (1 / (1 + ks[0] * 40), 1.0, corr2, corr2 * (1 + ks[2] * (ct[3] - ct[2])))
        alpha_t = 1 + cal.ks_ta * dta
        for i in range(768):
            row, col = i >> 5, i & 31
            il = row & 1
            pattern = (il ^ (col & 1)) if chess else il
            if pattern != sp:
                continue
            to = self.scene[i]
            a = cal.alpha[i] * alpha_t
            to4 = (to + KELVIN) ** 4 - ta_tr
            # The forward model divides by a * corr_r * (1 + ks_r (To1 - ct_r))
            # with To1 its own first-pass estimate: iterate to the fixed point.
            to1 = to
            for _ in range(3):
                r = 0 if to1 < ct[1] else 1 if to1 < ct[2] else 2 if to1 < ct[3] else 3
                ir = to4 * a * corr_r[r] * (1 + ks[r] * (to1 - ct[r]))
                y = ir / a + ta_tr
                if y <= 0:
                    break
                sx = ks[1] * (y**0.25)
                y = ir / (a * (1 - ks[1] * KELVIN) + a * sx) + ta_tr
                if y <= 0:
                    break
                to1 = y**0.25 - KELVIN
            ir = ir * e
            if il_mismatch:
                conv = (0, -1, 0, 1)[col & 3] * (1 - 2 * il)
                ir -= cal.il[2] * (2 * il - 1) - cal.il[1] * conv
            # (+ tgc * compensation pixel: zero, the CP words read their offset)
            ir += cal.offset[i] * (1 + cal.kta[i] * dta) * (1 + cal.kv[(il << 1) | (col & 1)] * dv)
            raw = round(ir / gain)
            raw = max(-32768, min(32767, raw))
            ram[i] = raw & 0xFFFF
        for i, w in self.stuck_pixels.items():
            ram[i] = w
        self.measured += 1
        self._control_glitch = None
        kind = self._corrupt
        self._corrupt = None
        if kind == "gain":
            self._put(778, 0)
        elif kind == "vdd":
            self._put(810, 0x7FFF)
        elif kind == "ptat":
            self._put(800, 0)
            self._put(768, 0)
        elif kind == "control":
            self._control_glitch = (self.control ^ 0x1000) & 0xFFFF

    def _put(self, index, value):
        self.ram[index] = int(value) & 0xFFFF
