"""Independent numpy implementation of the MLX90640 datasheet equations.

Used only on the host to cross-check the firmware driver (firmware/mlx90640.py):
written separately, vectorised over the 768 pixels, straight from the datasheet
formulas (no algebraic rearrangement, unlike the firmware's hot loop).

    p = extract(eeprom_words, dtype=np.float64)   # dict of named parameters
    vdd(frame, p), ta(frame, p)
    to = object_temperature(frame, p, emissivity, tr)  # 768 values, NaN off-subpage
    image = compute_sequence(eeprom, frames, emissivity=1.0, tr_offset=-8)

``dtype=np.float32`` runs every table and every step in single precision, as
the ESP32 does, to show that single precision is enough.
"""

from __future__ import annotations

import numpy as np

KELVIN = 273.15
ROWS, COLS = 24, 32


def _s(value, bits):
    """Signed value of the low ``bits`` of an integer array or scalar."""
    v = np.asarray(value, dtype=np.int64) & ((1 << bits) - 1)
    return np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)


def _nibble_table(words):
    """Signed 4-bit fields, lowest nibble first, from a run of words."""
    w = np.asarray(words, dtype=np.int64)
    return _s((w[:, None] >> (4 * np.arange(4))[None, :]).reshape(-1), 4)


def extract(eeprom, dtype=np.float64):
    ee = np.asarray(eeprom, dtype=np.int64)
    assert ee.shape == (832,)
    f = dtype
    p = {"dtype": dtype}
    p["kVdd"] = int(_s(ee[51] >> 8, 8)) * 32
    p["vdd25"] = (int(ee[51] & 0xFF) - 256) * 32 - 8192
    p["KvPTAT"] = f(_s(ee[50] >> 10, 6)) / f(4096)
    p["KtPTAT"] = f(_s(ee[50] & 0x3FF, 10)) / f(8)
    p["vPTAT25"] = int(_s(ee[49], 16))
    p["alphaPTAT"] = f((ee[16] & 0xF000) >> 12) / f(4) + f(8)
    p["gainEE"] = int(_s(ee[48], 16))
    p["tgc"] = f(_s(ee[60] & 0xFF, 8)) / f(32)
    p["resolutionEE"] = int((ee[56] & 0x3000) >> 12)
    p["KsTa"] = f(_s(ee[60] >> 8, 8)) / f(8192)
    p["calibrationModeEE"] = int(((ee[10] & 0x0800) >> 4) ^ 0x80)

    step = int((ee[63] & 0x3000) >> 12) * 10
    ct2 = int((ee[63] & 0x00F0) >> 4) * step
    ct3 = ct2 + int((ee[63] & 0x0F00) >> 8) * step
    p["ct"] = np.array([-40, 0, ct2, ct3], dtype=f)
    scale = f(2.0 ** (int(ee[63] & 0xF) + 8))
    raw = np.array([ee[61] & 0xFF, ee[61] >> 8, ee[62] & 0xFF, ee[62] >> 8])
    p["ksTo"] = (_s(raw, 8) / scale).astype(f)

    kta_s1 = int((ee[56] & 0xF0) >> 4) + 8
    kta_s2 = int(ee[56] & 0xF)
    kv_s = int((ee[56] & 0xF00) >> 8)
    cp_off0 = int(_s(ee[58] & 0x3FF, 10))
    p["cpOffset"] = np.array([cp_off0, cp_off0 + int(_s(ee[58] >> 10, 6))], dtype=f)
    a_scale_cp = int((ee[32] & 0xF000) >> 12) + 27
    cp_a0 = f(_s(ee[57] & 0x3FF, 10)) / f(2.0**a_scale_cp)
    cp_a1 = (f(1) + f(_s(ee[57] >> 10, 6)) / f(128)) * cp_a0
    p["cpAlpha"] = np.array([cp_a0, cp_a1], dtype=f)
    p["cpKta"] = f(_s(ee[59] & 0xFF, 8)) / f(2.0**kta_s1)
    p["cpKv"] = f(_s(ee[59] >> 8, 8)) / f(2.0**kv_s)
    p["ilChessC"] = np.array(
        [_s(ee[53] & 0x3F, 6) / 16.0, _s((ee[53] >> 6) & 0x1F, 5) / 2.0, _s(ee[53] >> 11, 5) / 8.0], dtype=f
    )

    px = ee[64:832].reshape(ROWS, COLS)
    row_odd = (np.arange(ROWS) % 2)[:, None]
    col_odd = (np.arange(COLS) % 2)[None, :]
    split = 2 * row_odd + col_odd  # 0: RoCo, 1: RoCe, 2: ReCo, 3: ReCe (1-based naming)

    # Offset: offset_ref + row + column corrections + remainder.
    occ_row = _nibble_table(ee[18:24])
    occ_col = _nibble_table(ee[24:32])
    offset = (
        int(_s(ee[17], 16))
        + (occ_row << int((ee[16] & 0x0F00) >> 8))[:, None]
        + (occ_col << int((ee[16] & 0x00F0) >> 4))[None, :]
        + _s(px >> 10, 6) * (1 << int(ee[16] & 0xF))
    )
    p["offset"] = offset.reshape(-1).astype(np.int64)

    acc_row = _nibble_table(ee[34:40])
    acc_col = _nibble_table(ee[40:48])
    a_int = (
        ee[33]
        + (acc_row << int((ee[32] & 0x0F00) >> 8))[:, None]
        + (acc_col << int((ee[32] & 0x00F0) >> 4))[None, :]
        + _s((px & 0x3F0) >> 4, 6) * (1 << int(ee[32] & 0xF))
    )
    alpha = a_int.astype(f) / f(2.0 ** (int((ee[32] & 0xF000) >> 12) + 30))
    alpha = alpha - p["tgc"] * (cp_a0 + cp_a1) / f(2)
    p["alpha"] = alpha.reshape(-1).astype(f)

    kta_rc = _s(np.array([ee[54] >> 8, ee[55] >> 8, ee[54] & 0xFF, ee[55] & 0xFF]), 8)
    kta = (kta_rc[split] + (_s((px & 0xE) >> 1, 3) << kta_s2)).astype(f) / f(2.0**kta_s1)
    p["kta"] = kta.reshape(-1).astype(f)
    kv_rc = _s(np.array([ee[52] >> 12, ee[52] >> 4, ee[52] >> 8, ee[52]]) & 0xF, 4)
    p["kv"] = (np.broadcast_to(kv_rc[split], (ROWS, COLS)).astype(f) / f(2.0**kv_s)).reshape(-1)

    flat = ee[64:832]
    broken = np.flatnonzero(flat == 0)
    outlier = np.flatnonzero((flat != 0) & ((flat & 1) == 1))
    p["brokenPixels"] = broken
    p["outlierPixels"] = outlier
    return p


def _w(frame, i):
    return int(_s(frame[i], 16))


def vdd(frame, p):
    f = p["dtype"]
    res_ram = (int(frame[832]) & 0x0C00) >> 10
    corr = f(2.0 ** p["resolutionEE"] / 2.0**res_ram)
    return (corr * f(_w(frame, 810)) - f(p["vdd25"])) / f(p["kVdd"]) + f(3.3)


def ta(frame, p):
    f = p["dtype"]
    v = vdd(frame, p)
    ptat = f(_w(frame, 800))
    ptat_art = ptat / (ptat * p["alphaPTAT"] + f(_w(frame, 768))) * f(2.0**18)
    return (ptat_art / (f(1) + p["KvPTAT"] * (v - f(3.3))) - f(p["vPTAT25"])) / p["KtPTAT"] + f(25)


def subpage_mask(frame):
    """Boolean mask of the pixels measured in this frame's subpage."""
    n = np.arange(768)
    il = (n // 32) % 2
    chess = il ^ (n % 2)
    mode_chess = (int(frame[832]) & 0x1000) != 0
    return (chess if mode_chess else il) == int(frame[833])


def object_temperature(frame, p, emissivity, tr):
    """To (degC) for the frame's subpage pixels; NaN elsewhere (and where the
    signal is beyond the model: negative radiance)."""
    with np.errstate(invalid="ignore"):
        return _object_temperature(frame, p, emissivity, tr)


def _object_temperature(frame, p, emissivity, tr):
    f = p["dtype"]
    emissivity = f(emissivity)
    fr = np.asarray(frame, dtype=np.int64)
    v = vdd(frame, p)
    t = ta(frame, p)
    dta = t - f(25)
    dv = v - f(3.3)
    ta4 = (t + f(KELVIN)) ** 4
    tr4 = (f(tr) + f(KELVIN)) ** 4
    ta_tr = tr4 - (tr4 - ta4) / emissivity
    mode = 0x80 if (int(frame[832]) & 0x1000) else 0
    sp = int(frame[833])

    gain = f(p["gainEE"]) / f(_w(frame, 778))
    ir = _s(fr[:768], 16).astype(f) * gain
    ir = ir - p["offset"].astype(f) * (f(1) + p["kta"] * dta) * (f(1) + p["kv"] * dv)
    if mode != p["calibrationModeEE"]:
        n = np.arange(768)
        il = (n // 32) % 2
        conv = np.array([0, -1, 0, 1])[n % 4] * (1 - 2 * il)
        c = p["ilChessC"]
        ir = ir + c[2] * (2 * il - 1).astype(f) - c[1] * conv.astype(f)

    cp_raw = np.array([_w(frame, 776), _w(frame, 808)], dtype=f) * gain
    cp_off = p["cpOffset"].copy()
    if mode != p["calibrationModeEE"]:
        cp_off[1] = cp_off[1] + p["ilChessC"][0]
    cp = cp_raw - cp_off * (f(1) + p["cpKta"] * dta) * (f(1) + p["cpKv"] * dv)
    ir = ir - p["tgc"] * cp[sp]
    ir = ir / emissivity

    a_comp = p["alpha"] * (f(1) + p["KsTa"] * dta)
    ks, ct = p["ksTo"], p["ct"]
    sx = ks[1] * np.sqrt(np.sqrt(a_comp**3 * (ir + a_comp * ta_tr)))
    to1 = np.sqrt(np.sqrt(ir / (a_comp * (f(1) - ks[1] * f(KELVIN)) + sx) + ta_tr)) - f(KELVIN)
    rng = np.searchsorted(ct[1:4], to1, side="right")  # 0: < ct1, ..., 3: >= ct3
    corr = np.array(
        [
            f(1) / (f(1) + ks[0] * f(40)),
            f(1),
            f(1) + ks[1] * ct[2],
            (f(1) + ks[1] * ct[2]) * (f(1) + ks[2] * (ct[3] - ct[2])),
        ],
        dtype=f,
    )
    to = np.sqrt(np.sqrt(ir / (a_comp * corr[rng] * (f(1) + ks[rng] * (to1 - ct[rng]))) + ta_tr)) - f(KELVIN)
    return np.where(subpage_mask(frame), to, np.nan)


def compute_sequence(eeprom, frames, emissivity=1.0, tr_offset=-8.0, dtype=np.float64):
    """Images after each frame as in the vector's recipe (0 = not yet computed)."""
    p = extract(eeprom, dtype)
    image = np.zeros(768, dtype=np.float64)
    images = []
    for frame in frames:
        t = ta(frame, p)
        to = object_temperature(frame, p, emissivity, float(t) + tr_offset)
        mask = subpage_mask(frame)
        image[mask] = to[mask]
        images.append(image.copy())
    return images


def frame_for_scene(frame, p, to_target, emissivity=1.0, tr=None):
    """Inverse model: a copy of ``frame`` whose pixel words of its subpage
    encode object temperatures ``to_target`` (768 degC values), keeping its
    aux words (so Ta, Vdd, gain and CP stay).  Rounds to integer words, so
    the round trip is exact to the ADC step (~0.01 degC or better)."""
    f = p["dtype"]
    t = ta(frame, p)
    if tr is None:
        tr = float(t) - 8
    v = vdd(frame, p)
    dta = t - f(25)
    dv = v - f(3.3)
    ta4 = (t + f(KELVIN)) ** 4
    tr4 = (f(tr) + f(KELVIN)) ** 4
    ta_tr = tr4 - (tr4 - ta4) / f(emissivity)
    mode = 0x80 if (int(frame[832]) & 0x1000) else 0
    sp = int(frame[833])
    gain = f(p["gainEE"]) / f(_w(frame, 778))
    ks, ct = p["ksTo"], p["ct"]
    to_target = np.asarray(to_target, dtype=np.float64)
    rng = np.searchsorted(ct[1:4], to_target, side="right")
    corr = np.array([1 / (1 + ks[0] * 40), 1, 1 + ks[1] * ct[2], (1 + ks[1] * ct[2]) * (1 + ks[2] * (ct[3] - ct[2]))])
    a_comp = p["alpha"] * (1 + p["KsTa"] * dta)
    # Forward: To^4 = ir / (a_comp * corr * (1 + ks (To1 - ct))) + ta_tr with
    # To1 the first pass; solve by fixed-point iteration on ir.
    sens = a_comp * corr[rng] * (1 + ks[rng] * (to_target - ct[rng]))
    ir = ((to_target + KELVIN) ** 4 - ta_tr) * sens
    for _ in range(4):
        sx = ks[1] * np.sqrt(np.sqrt(np.maximum(a_comp**3 * (ir + a_comp * ta_tr), 0)))
        to1 = np.sqrt(np.sqrt(ir / (a_comp * (1 - ks[1] * KELVIN) + sx) + ta_tr)) - KELVIN
        r1 = np.searchsorted(ct[1:4], to1, side="right")
        sens = a_comp * corr[r1] * (1 + ks[r1] * (to1 - ct[r1]))
        ir = ((to_target + KELVIN) ** 4 - ta_tr) * sens
    ir = ir * emissivity
    cp_raw = np.array([_w(frame, 776), _w(frame, 808)], dtype=np.float64) * gain
    cp_off = np.array(p["cpOffset"], dtype=np.float64)
    if mode != p["calibrationModeEE"]:
        cp_off[1] = cp_off[1] + p["ilChessC"][0]
    cp = cp_raw - cp_off * (1 + p["cpKta"] * dta) * (1 + p["cpKv"] * dv)
    ir = ir + p["tgc"] * cp[sp]
    if mode != p["calibrationModeEE"]:
        n = np.arange(768)
        il = (n // 32) % 2
        conv = np.array([0, -1, 0, 1])[n % 4] * (1 - 2 * il)
        c = p["ilChessC"]
        ir = ir - (c[2] * (2 * il - 1) - c[1] * conv)
    ir = ir + p["offset"] * (1 + p["kta"] * dta) * (1 + p["kv"] * dv)
    raw = np.rint(ir / gain).astype(np.int64)
    raw = np.clip(raw, -32768, 32767) & 0xFFFF
    out = [int(x) for x in frame]
    mask = subpage_mask(frame)
    for i in np.flatnonzero(mask):
        out[i] = int(raw[i])
    return out
