#!/usr/bin/env python3
"""Makes the SALib fixtures of SensitivityTests.

Needs SALib (made with SALib 1.6.0, scipy 1.17.1, numpy 2.4.6):
    python3 -m venv --system-site-packages /tmp/qmcwork/venv
    /tmp/qmcwork/venv/bin/pip install SALib
    /tmp/qmcwork/venv/bin/python make_salib_fixtures.py
Files land beside this script. For each case NAME:
    NAME_X.npy   (case 1 only) the design, SALib.sample.sobol.sample(problem, N, ...), [rows, d]
    NAME_Y.npy   the test function on it, [rows]
    NAME_S.npy   SALib.analyze.sobol.analyze(problem, Y, ...): rows S1, S1_conf,
                 ST, ST_conf, then (second order) S2 and S2_conf flattened
                 [d*d] with NaN where SALib leaves NaN; one row per index,
                 padded with NaN to the longest.
"""
import os
import numpy as np
from SALib.sample import sobol as sobol_sample
from SALib.analyze import sobol as sobol_analyze
from SALib.test_functions import Ishigami, Sobol_G

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, problem, X, Y, second, keep_design=True):
    Si = sobol_analyze.analyze(problem, Y, calc_second_order=second, seed=11)
    rows = [Si["S1"], Si["S1_conf"], Si["ST"], Si["ST_conf"]]
    if second:
        rows += [Si["S2"].ravel(), Si["S2_conf"].ravel()]
    width = max(len(r) for r in rows)
    S = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        S[i, : len(r)] = r
    if keep_design:
        np.save(os.path.join(HERE, f"{name}_X.npy"), X.astype("<f8"))
    np.save(os.path.join(HERE, f"{name}_Y.npy"), Y.astype("<f8"))
    np.save(os.path.join(HERE, f"{name}_S.npy"), S)


# 1. Ishigami on [-pi, pi]^3, unscrambled Sobol, second order, N = 256:
#    the engine's own design must equal this one (same base sequence).
ishigami = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
X = sobol_sample.sample(ishigami, 256, calc_second_order=True, scramble=False)
save("ishigami_so_n256", ishigami, X, Ishigami.evaluate(X), True)

# 2. Sobol G (a = 0, 1, 4.5, 9, 99) on [0, 1]^5, scrambled Sobol (SALib's
#    default, seed 3), first and total order only, N = 256. Only Y and S are
#    kept (the design is scipy's random scramble, which the engine does not
#    reproduce; the estimators need only Y in SALib's row order).
a = np.array([0, 1, 4.5, 9, 99])
g = {"num_vars": 5, "names": [f"x{i}" for i in range(5)], "bounds": [[0, 1]] * 5}
X = sobol_sample.sample(g, 256, calc_second_order=False, scramble=True, seed=3)
save("sobolg_n256", g, X, Sobol_G.evaluate(X, a), False, keep_design=False)
