#!/usr/bin/env python3
"""Makes the Sobol fixtures of QMCTests: scipy's unscrambled Sobol points.

Run from anywhere: python3 make_qmc_fixtures.py  (needs numpy and scipy;
made with scipy 1.17.1, numpy 2.4.6). Files land beside this script.

Small sets are stored as float64 exactly as scipy returns them. The two
large ones are stored as int32 numerators k with point = k * 2**-30: scipy's
points are 30-bit integers times 2**-30 (bits=30 by default), so this is the
same information, bit for bit, at half the size; the script asserts it.
"""
import os
import numpy as np
from scipy.stats import qmc

HERE = os.path.dirname(os.path.abspath(__file__))


def sobol(d, n):
    return qmc.Sobol(d=d, scramble=False).random(n)


def save_float64(name, x):
    assert x.dtype == np.float64
    np.save(os.path.join(HERE, name), x)


def save_numerators(name, x):
    k = np.rint(x * 2.0**30)
    assert (k * 2.0**-30 == x).all() and k.max() < 2**30 and k.min() >= 0
    np.save(os.path.join(HERE, name), k.astype("<i4"))


save_float64("sobol_d1_n1024.npy", sobol(1, 1024))
save_float64("sobol_d2_n256.npy", sobol(2, 256))
save_float64("sobol_d7_n128.npy", sobol(7, 128))
save_numerators("sobol_d64_n1024_k30.npy", sobol(64, 1024))
save_numerators("sobol_d2048_n8_k30.npy", sobol(2048, 8))
# The last 8 of 2048 dimensions over 1024 points: high-dimension rows of the
# table, deeper into their direction numbers.
save_numerators("sobol_d2048_n1024_last8_k30.npy", sobol(2048, 1024)[:, -8:])
