"""Allocation-free fixed-point To kernel for the MLX90640 (viper).

Internal to mlx90640 (``import mlx90640`` is the API).  Why it exists: in
MicroPython every float operation allocates a float object, so the float
per-pixel loop allocates ~20 objects per pixel (~575 KB per full frame on the
64-bit host, about half that on the ESP32) and spends much of its time in the garbage collector.  This kernel does
the same maths (datasheet 11.2.2.5-11.2.2.9, identical to the float path) in
32-bit integers under ``@micropython.viper``: it allocates nothing.

Numbers and their formats (all intermediates fit in signed 32 bits on the
ESP32; tests/host/test_mlx90640_fixed_ranges.py runs this code in CPython with
an int type that fails on any value outside [-2**31, 2**31)):

  IRq   pixel IR signal, counts in Q12 (guarded |IRq| < 2**26)
  t     IRq * alpha^-1 mantissa >> 20         (< 2**30)
  u     radiance IR / (emissivity * alpha_comp) in units of 256 K^4 (< 2**29)
  y     u / d + Ta_Tr, same units                (< 2**30)
  R     fourth root of y*256: temperature in K, Q20 (< 2**30)
  D     sensitivity correction d = 1 + ksTo*(To - ct), Q22 in [2**21, 2**23)

Fourth roots: normalise y to m in [2**29, 2**30) by a shift s, interpolate
m**0.25 linearly in a 513-entry table (relative error < 1e-7), then multiply
by 2**(-s/4).  Divisions u / d: four 32-bit integer divisions (long division,
7 bits at a time).  Per-frame constants arrive in an array('i') biased by
2**29, because viper's ptr32 loads are unsigned on 64-bit hosts and literal
constants must stay below 2**30 to be small ints on the ESP32.

Result error against the double-precision float path: about 2e-4 degC for
objects from -40 to 300 degC (the tests allow 0.001-0.002).  Pixels outside the representable
range (IR beyond 16384 counts, u above 2**29 i.e. about 345 degC, d outside
[0.5, 2)) come out NaN, never wrapped.
"""

import array
import math

import micropython
from micropython import const

from buffers import zeros

BIAS = 1 << 29
_TO_OFFSET_Q20 = const(286418534)  # round(273.15 * 2**20)
_NAN_HI = const(0x7FC0)

# Frame-constant slots (see prepare() in mlx90640.py).
_FC_GH = const(0)
_FC_GL = const(1)
_FC_KV = const(2)  # 4 slots, by 2 * (row odd) + (column odd)
_FC_SKV = const(6)
_FC_DK = const(7)  # 4 slots
_FC_SDK = const(11)
_FC_C = const(12)  # 8 slots, by 4 * (row odd) + column % 4
_FC_MQ = const(20)
_FC_MS = const(21)
_FC_T = const(22)
_FC_TLIM = const(23)
_FC_A1 = const(24)
_FC_B1 = const(25)
_FC_N1 = const(26)
_FC_AR = const(27)  # 4 slots
_FC_BR = const(31)  # 4 slots
_FC_NR = const(35)  # 4 slots
_FC_THR = const(39)  # 3 slots, Q10 Kelvin
_FC_SUBPAGE = const(42)
_FC_CHESS = const(43)
FC_COUNT = 44

# ---------------------------------------------------------------- set-up
# Python code run once per sensor (prepare_sensor) or once per subpage
# (prepare_frame), turning the float parameters into the kernel's integers.
# ``p`` is an mlx90640.Params; its 1/alpha mantissas (amant, alpha_exp) come
# from mlx90640, shared with the float loop.


def prepare_sensor(p):
    """Range slopes, thresholds and the offset-term shifts as kernel
    integers (after mlx90640 filled p._rng); clears p.fixed_point when a value
    is outside the ranges the kernel is proven for."""
    rng = p._rng
    fc = p._fc
    bias = BIAS
    lim = 1 << 29
    slopes = [(rng[12], rng[11])] + [(rng[r], rng[4 + r]) for r in range(4)]
    slots = [(_FC_A1, _FC_B1, _FC_N1)] + [(_FC_AR + r, _FC_BR + r, _FC_NR + r) for r in range(4)]
    for (a, b), (sa, sb, sn) in zip(slopes, slots):
        bn = _slope(b)
        aq = int(round(a * 4194304))
        if bn is None or not 0 < aq < lim:
            p.fixed_point = False
            return
        fc[sa] = aq + bias
        fc[sb] = bn[0] + bias
        fc[sn] = bn[1] + bias
    for j in range(3):
        fc[_FC_THR + j] = int(min(lim - 1, round(rng[8 + j] * 1024))) + bias
    # Fixed shifts for the offset terms, valid for |Vdd - 3.3| <= 1 V and
    # |Ta - 25| <= 128: the largest with max|offset| * |KV| < 2**29 and
    # max|offset * kta numerator| * |DK| < 2**29 (see the kernel).
    kv_max = 1.0
    for k in p._kv4:
        kv_max = max(kv_max, 1.0 + abs(k))
    skv = 20
    while skv > 0 and p._max_off * kv_max * (1 << (12 + skv)) >= lim:
        skv -= 1
    dk_max = kv_max * 128 / (1 << p.kta_scale)
    sdk = 30
    while sdk > 0 and p._max_on * dk_max * (1 << (12 + sdk)) >= lim:
        sdk -= 1
    if p._max_off * kv_max * (1 << (12 + skv)) >= lim or p._max_on * dk_max * (1 << (12 + sdk)) >= lim:
        p.fixed_point = False
        return
    fc[_FC_SKV] = skv + bias
    fc[_FC_SDK] = sdk + bias
    p._kv_scale = float(1 << (12 + skv))
    p._dk_scale = (1 << (12 + sdk)) / (1 << p.kta_scale)


def _slope(b):
    """(B, n) with b = B * 2**-(n + 22), 2**18 <= |B| < 2**19 (B = 0 for b = 0),
    or None when b is too steep for the kernel's d arithmetic."""
    if b == 0:
        return 0, 0
    sb = 0
    mag = abs(b)
    while mag * (1 << sb) < 262144:
        sb += 1
        if sb > 60:
            return 0, 0
    n = sb - 22
    if n < 0 or n > 20:
        return None
    return int(round(b * (1 << sb))), n


def prepare_frame(p, gain, dvdd, dta, scale, ta_tr, subpage, chess, il_on):
    """Integer constants of this frame for the viper kernel, or False when a
    value falls outside the ranges the kernel is proven for (then the float
    loop runs; no real sensor gets there).  Written to allocate little: the
    shifts were fixed once per sensor by prepare_sensor for |Vdd - 3.3| <= 1
    and |Ta - 25| <= 128."""
    if not (-1.0 <= dvdd <= 1.0 and -128.0 <= dta <= 128.0):
        return False
    fc = p._fc
    bias = 536870912  # BIAS
    g24 = round(gain * 16777216.0)
    if not 0 < g24 < 67108864:
        return False
    fc[0] = (g24 >> 12) + bias  # _FC_GH
    fc[1] = (g24 & 4095) + bias  # _FC_GL
    kvf = p._kvf
    kvs = p._kv_scale
    dks = dta * p._dk_scale
    for j in range(4):
        k = kvf[j]
        fc[2 + j] = round(k * kvs) + bias  # _FC_KV
        fc[7 + j] = round(k * dks) + bias  # _FC_DK
    ilc = p._ilc
    if not il_on:  # one constant for all eight slots
        c = round(ilc[0] * 4096.0)
        if not -268435456 < c < 268435456:
            return False
        for j in range(8):
            fc[12 + j] = c + bias  # _FC_C
    else:
        for j in range(8):
            c = round(ilc[j] * 4096.0)
            if not -268435456 < c < 268435456:
                return False
            fc[12 + j] = c + bias
    # u = t * M with M = scale * 2**alpha_exp, as a 24-bit mantissa MQ and a
    # shift ms: u = (t * MQ >> 24) << ms.
    m = scale * p._alpha_pow
    if not 1e-6 < m < 1e6:
        return False
    mant, ms = math.frexp(m)  # m = mant * 2**ms, 0.5 <= mant < 1
    mq = round(mant * 16777216.0)
    if mq >= 16777216:
        mq >>= 1
        ms += 1
    fc[20] = mq + bias  # _FC_MQ
    fc[21] = ms + bias  # _FC_MS
    t_units = round(ta_tr * 0.00390625)  # / 256
    if not 0 < t_units < 268435456:
        return False
    fc[22] = t_units + bias  # _FC_T
    t_lim = 536870911.0 / m  # |u| < 2**29
    fc[23] = (536870911 if t_lim >= 536870911.0 else int(t_lim)) + bias  # _FC_TLIM
    fc[42] = subpage + bias  # _FC_SUBPAGE
    fc[43] = (1 if chess else 0) + bias  # _FC_CHESS
    return True


_root_table = None


def root_table():
    """m**0.25 in Q22 for m = 2**29 + k * 2**20, k = 0..512 (2 KB, shared)."""
    global _root_table
    if _root_table is None:
        t = zeros("i", 513)
        for k in range(513):
            # Start from the float root, then integer Newton steps and a
            # final bracket so the entry is floor(m**0.25 * 2**22) on any port.
            m = (1 << 29) + (k << 20)
            target = m << 88
            g = int(m**0.25 * 4194304)
            for _ in range(2):
                g = (3 * g + target // (g * g * g)) // 4
            while g**4 > target:
                g -= 1
            while (g + 1) ** 4 <= target:
                g += 1
            t[k] = g
        _root_table = t
    return _root_table


# 2**(-r/4) in Q24 for r = 1, 2, 3 (r = 0 needs no multiply).
QUARTER_POW = array.array("i", [1 << 24, 14107901, 11863283, 9975792])


@micropython.viper
def to_kernel(frame, out, offset, ktan, amant, fc, tab, qp):
    """Fill ``out`` (array('f')) for the pixels of this frame's subpage."""
    pf = ptr16(frame)  # noqa: F821 (viper built-in)
    po = ptr16(out)  # noqa: F821 (viper built-in)
    poff = ptr16(offset)  # noqa: F821 (viper built-in)
    pkt = ptr16(ktan)  # noqa: F821 (viper built-in)
    pa = ptr8(amant)  # noqa: F821 (viper built-in)
    pc = ptr32(fc)  # noqa: F821 (viper built-in)
    pt = ptr32(tab)  # noqa: F821 (viper built-in)
    pq = ptr32(qp)  # noqa: F821 (viper built-in)
    bias = 1 << 29

    gh = pc[0] - bias
    gl = pc[1] - bias
    skv = pc[6] - bias
    sdk = pc[11] - bias
    mq = pc[20] - bias
    ms = pc[21] - bias
    ta_tr = pc[22] - bias
    t_lim = pc[23] - bias
    subpage = pc[42] - bias
    chess = pc[43] - bias
    mq_h = mq >> 12
    mq_l = mq & 4095

    row = 0
    while row < 24:
        rp = row & 1
        col = 0
        step = 1
        if chess:
            col = rp ^ subpage
            step = 2
        elif rp != subpage:
            row += 1
            continue
        while col < 32:
            i = (row << 5) + col
            par = (rp << 1) + (col & 1)
            # --- IR signal, Q12 counts -------------------------------------
            raw = pf[i]
            if raw > 32767:
                raw -= 65536
            off = poff[i]
            if off > 32767:
                off -= 65536
            kt = pkt[i]
            if kt > 32767:
                kt -= 65536
            kv = pc[2 + par] - bias
            dk = pc[7 + par] - bias
            c = pc[12 + (rp << 2) + (col & 3)] - bias
            irq = raw * gh + ((raw * gl) >> 12) - ((off * kv) >> skv) - (((off * kt) * dk) >> sdk) - c
            hi = 32704  # 0x7FC0: quiet NaN
            lo = 0
            if irq > -67108864 and irq < 67108864:  # |IRq| < 2**26
                # --- t = IRq * A >> 20 (A < 2**24: 15/12-bit limbs) --------
                j = 3 * i  # 24-bit little-endian mantissa
                a = pa[j] | (pa[j + 1] << 8) | (pa[j + 2] << 16)
                ah = irq >> 15
                al = irq & 32767
                bh = a >> 12
                bl = a & 4095
                t = (ah * bh << 7) + ((ah * bl) >> 5) + ((al * bh) >> 8) + ((al * bl) >> 20)
                if t > 0 - t_lim and t < t_lim:
                    # --- u = t * M in 256 K^4 units ------------------------
                    ah = t >> 15
                    al = t & 32767
                    u = (ah * mq_h << 3) + ((ah * mq_l) >> 9) + ((al * mq_h) >> 12) + ((al * mq_l) >> 24)
                    if ms >= 0:
                        u = u << ms
                    else:
                        u = u >> (0 - ms)
                    neg = 0
                    n = u
                    if u < 0:
                        neg = 1
                        n = 0 - u
                    # --- three passes: d = 1, first-pass slope, range slope
                    r = 0
                    ok = 1
                    pas = 0
                    while pas < 3 and ok:
                        if pas == 0:
                            y = u + ta_tr
                        else:
                            if pas == 1:
                                da = pc[24] - bias
                                db = pc[25] - bias
                                dn = pc[26] - bias
                            else:
                                rng = 3
                                r10 = r >> 10
                                if r10 < pc[39] - bias:
                                    rng = 0
                                elif r10 < pc[40] - bias:
                                    rng = 1
                                elif r10 < pc[41] - bias:
                                    rng = 2
                                da = pc[27 + rng] - bias
                                db = pc[31 + rng] - bias
                                dn = pc[35 + rng] - bias
                            r10 = r >> 10
                            th = r10 >> 10
                            tl = r10 & 1023
                            d = da + ((db * th) >> dn) + ((db * tl) >> (dn + 10))
                            if d < 2097152 or d >= 8388608:  # [2**21, 2**23)
                                ok = 0
                                break
                            # long division n * 2**22 / d, 7 bits at a time
                            q = n // d
                            rem = n - q * d
                            acc = q << 22
                            rem = rem << 7
                            q = rem // d
                            rem = rem - q * d
                            acc += q << 15
                            rem = rem << 7
                            q = rem // d
                            rem = rem - q * d
                            acc += q << 8
                            rem = rem << 7
                            q = rem // d
                            acc += q << 1
                            if neg:
                                acc = 0 - acc
                            y = acc + ta_tr
                        if y <= 0 or y > 1073741823:  # y < 2**30
                            ok = 0
                            break
                        # --- R = (256 y) ** 0.25 in Q20 ---------------------
                        m = y
                        s = 0
                        if m < 32768:
                            m = m << 14
                            s += 14
                        if m < 4194304:
                            m = m << 7
                            s += 7
                        while m < 536870912:
                            m = m << 1
                            s += 1
                        k = (m >> 20) - 512
                        g0 = pt[k]
                        g = g0 + (((pt[k + 1] - g0) * ((m >> 8) & 4095)) >> 12)
                        sr = s & 3
                        if sr:
                            cq = pq[sr]
                            ah = g >> 15
                            al = g & 32767
                            bh = cq >> 12
                            bl = cq & 4095
                            g = (ah * bh << 3) + ((ah * bl) >> 9) + ((al * bh) >> 12) + ((al * bl) >> 24)
                        r = g >> (s >> 2)
                        pas += 1
                    if ok:
                        # --- To (degC) as IEEE-754 single, written as 2 halves
                        v = r - 286418534
                        sign = 0
                        if v < 0:
                            sign = 1
                            v = 0 - v
                        if v == 0:
                            hi = 0
                        else:
                            e = 0
                            x = v
                            if x >= 65536:
                                x = x >> 16
                                e += 16
                            if x >= 256:
                                x = x >> 8
                                e += 8
                            if x >= 16:
                                x = x >> 4
                                e += 4
                            if x >= 4:
                                x = x >> 2
                                e += 2
                            if x >= 2:
                                e += 1
                            if e > 23:
                                mant = (v + (1 << (e - 24))) >> (e - 23)
                                if mant >= 16777216:
                                    mant = mant >> 1
                                    e += 1
                            else:
                                mant = v << (23 - e)
                            hi = (sign << 15) | ((e + 107) << 7) | ((mant >> 16) & 127)
                            lo = mant & 65535
            po[i << 1] = lo
            po[(i << 1) + 1] = hi
            col += step
        row += 1


# ---------------------------------------------------------------- output checks
# On the float image, but reading its IEEE-754 bits as 16-bit halves: reading
# out[i] in Python would allocate a float object per pixel (24 KB per frame on
# the 64-bit host) in the device's every-frame check.


@micropython.viper
def mark_out_of_range(out) -> int:
    """Set every pixel of ``out`` (array('f', 768)) that is NaN or outside
    -60..320 degC to NaN; return how many."""
    po = ptr16(out)  # noqa: F821 (viper built-in)
    n = 0
    i = 0
    while i < 1536:  # two halves per pixel
        hi = po[i + 1]
        mag = hi & 0x7FFF
        lim = 0x43A0  # high half of 320.0
        if hi & 0x8000:
            lim = 0x4270  # high half of 60.0 (negative: below -60)
        if mag > lim or (mag == lim and po[i] != 0):  # NaN and inf included
            po[i] = 0
            po[i + 1] = 0x7FC0  # quiet NaN
            n += 1
        i += 2
    return n


@micropython.viper
def next_nan(out, start: int) -> int:
    """Index of the first NaN pixel of ``out`` at or after ``start``, or 768."""
    po = ptr16(out)  # noqa: F821 (viper built-in)
    i = start
    while i < 768:
        hi = po[2 * i + 1]
        if (hi & 0x7F80) == 0x7F80 and ((hi & 0x7F) | po[2 * i]) != 0:  # exponent all ones, mantissa not 0
            return i
        i += 1
    return 768
