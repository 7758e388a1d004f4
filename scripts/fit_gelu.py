#!/usr/bin/env python3
"""Fits behind the CPU backend's Float32 GELU (Sources/CVecMath/vecmath.c), printed as
C float literals with their relative error in double and when evaluated in float32:

  erfcx(a)  ≈ P(a)/Q(a), degrees (4, 4), on [0, 10.5]  (Sanathanan–Koerner iteration, relative,
                                                       Chebyshev nodes)
  exp(r)    ≈ P(r), degree 6, on |r| ≤ ln2/2           (least squares, relative)

    python3 scripts/fit_gelu.py        (needs numpy)
"""
import math

import numpy as np


def cheb(lo, hi, n=4000):
    return (lo + hi) / 2 + (hi - lo) / 2 * np.cos(np.pi * (np.arange(n) + 0.5) / n)


def horner32(coefs, x):
    """Evaluates Σ c_i x^i in float32 with one rounding per step (as fmadd does)."""
    x = x.astype(np.float32).astype(np.float64)
    acc = np.zeros_like(x)
    for c in np.asarray(coefs, dtype=np.float32).astype(np.float64)[::-1]:
        acc = (acc * x + c).astype(np.float32).astype(np.float64)
    return acc


def poly_fit(x, y, degree, power=1):
    v = np.vstack([x ** (power * i) for i in range(degree + 1)]).T
    w = 1 / np.abs(y)
    c, *_ = np.linalg.lstsq(v * w[:, None], y * w, rcond=None)
    return c


def rational_fit(x, y, p, q, iterations=40):
    vp = np.vstack([x ** i for i in range(p + 1)]).T
    vq = np.vstack([x ** i for i in range(1, q + 1)]).T
    w0, qprev, best = 1 / np.abs(y), np.ones_like(x), None
    for _ in range(iterations):
        w = w0 / np.abs(qprev)
        c, *_ = np.linalg.lstsq(np.hstack([vp, -y[:, None] * vq]) * w[:, None], y * w, rcond=None)
        num, den = c[:p + 1], np.concatenate([[1.0], c[p + 1:]])
        qprev = np.polyval(den[::-1], x)
        err = np.max(np.abs(np.polyval(num[::-1], x) / qprev / y - 1))
        if best is None or err < best[0]:
            best = (err, num, den)
    return best


def show(name, coefs):
    print(f"  {name}: " + ", ".join(f"{np.float32(c):.9e}f" for c in coefs))


def main():
    a = cheb(0, 10.5)
    y = np.array([math.erfc(v) * math.exp(v * v) for v in a])
    err, num, den = rational_fit(a, y, 4, 4, iterations=60)
    r32 = (horner32(num, a) / horner32(den, a)).astype(np.float32)
    print(f"erfcx(a) = P(a)/Q(a): double {err:.2e}, float32 {np.max(np.abs(r32 / y - 1)):.2e}")
    show("P", num)
    show("Q", den)

    r = cheb(-math.log(2) / 2 * 1.0001, math.log(2) / 2 * 1.0001)
    c = poly_fit(r, np.exp(r), 6)
    rf = r.astype(np.float32).astype(np.float64)
    print(f"exp(r) = P(r): double {np.max(np.abs(np.polyval(c[::-1], r) / np.exp(r) - 1)):.2e}, "
          f"float32 {np.max(np.abs(horner32(c, r) / np.exp(rf) - 1)):.2e}")
    show("P", c)


if __name__ == "__main__":
    main()
