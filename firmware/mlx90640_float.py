"""Float per-pixel To loop for the MLX90640 (internal to mlx90640).

Runs when an EEPROM's constants fall outside the ranges the fixed-point viper
kernel (mlx90640_fixed) is proven for, and as that kernel's reference in the
tests (``params.fixed_point = False``).  Every float operation allocates in
MicroPython (~20 float objects per pixel), which is why it is not the default.
It shares the kernel's 1/alpha mantissas (the only copy of alpha kept), so
their rounding is checked against the numpy reference instead
(tests/host/test_mlx90640_crosscheck.py, test_mlx90640_fixed_ranges.py).
"""

import math

import micropython


@micropython.native
def to_loop(frame, out, offset, ktan, amant, kvf, ilc, rng, subpage, chess):
    """Float per-pixel loop (datasheet 11.2.2.5-11.2.2.9), on
    u = IR / (emissivity * alpha_comp): the object's radiance in Kelvin^4
    above the reflected background ta_tr.  1/alpha comes from the kernel's
    24-bit little-endian mantissas (amant, 3 bytes a pixel; the scales in
    rng carry 2**alpha_exp).  Every To needs three fourth roots
    (y ** 0.25: one float object, faster than two sqrt calls): the plain
    one, the first pass with the 0..CT2 slope, the pass with the range's slope.
    Used when the fixed-point kernel's ranges do not hold, and as its
    reference in the tests."""
    nan = math.nan
    a0 = rng[0]
    a1 = rng[1]
    a2 = rng[2]
    a3 = rng[3]
    b0 = rng[4]
    b1 = rng[5]
    b2 = rng[6]
    b3 = rng[7]
    t1 = rng[8]
    t2 = rng[9]
    t3 = rng[10]
    k1 = rng[11]
    k1c = rng[12]
    ta_tr = rng[13]
    gs = rng[14]
    scale = rng[15]
    dtak = rng[16]
    for row in range(24):
        rp = row & 1
        if chess:
            col = rp ^ subpage
            step = 2
        else:
            if rp != subpage:
                continue
            col = 0
            step = 1
        base = row << 5
        kv_even = kvf[rp << 1] * scale
        kv_odd = kvf[(rp << 1) + 1] * scale
        while col < 32:
            i = base + col
            raw = frame[i]
            if raw > 32767:
                raw -= 65536
            kv = kv_odd if col & 1 else kv_even
            off = offset[i]
            j = 3 * i
            am = amant[j] | (amant[j + 1] << 8) | (amant[j + 2] << 16)  # 2**-alpha_exp / alpha
            u = (raw * gs - (off + off * ktan[i] * dtak) * kv - ilc[(rp << 2) + (col & 3)] * scale) * am
            y = u + ta_tr
            if y > 0.0:
                y = u / (k1 * y**0.25 + k1c) + ta_tr
            if y > 0.0:
                to = y**0.25
                if to < t2:
                    if to < t1:
                        y = u / (a0 + b0 * to) + ta_tr
                    else:
                        y = u / (a1 + b1 * to) + ta_tr
                elif to < t3:
                    y = u / (a2 + b2 * to) + ta_tr
                else:
                    y = u / (a3 + b3 * to) + ta_tr
            if y > 0.0:
                out[i] = y**0.25 - 273.15
            else:
                out[i] = nan
            col += step
