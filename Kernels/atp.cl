// atp.cl: AtP*'s QK fix for keys (Kramar et al. 2024), in a numerically stable
// form. Scores x = q.k^T/sqrt(d_h) of the clean run, delta = q.(k_patched - k)^T/sqrt(d_h)
// and grad = dL/dA, each [n, T, T] (row t = query, column s = key; only s <= t is read).
// Two 1-D kernels: atp_row_stats (one item per row), then atp_key_effects (one
// item per key). See docs/kernel-contract.md and Sources/AttribCore/Ops/AtP.swift.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

// The statistics of row (b, t) over s <= t, 7 reals at stats[(b*T + t)*7]:
// m (max), s* (first argmax), m2 (max over s != s*, -inf for t = 0),
// S = sum e^{x-m}, SG = sum e^{x-m} g, S2 = sum_{s != s*} e^{x-m2}, SG2 = sum_{s != s*} e^{x-m2} g.
__kernel void atp_row_stats(int n, int T,
                            __global const real* x, int x_off,
                            __global const real* grad, int g_off,
                            __global real* stats, int st_off)
{
    int r = (int)get_global_id(0);
    if (r >= n * T) return;
    int t = r % T;
    __global const real* xr = x + x_off + r * T;
    __global const real* gr = grad + g_off + r * T;
    real m = xr[0]; int sstar = 0;
    for (int s = 1; s <= t; ++s) if (xr[s] > m) { m = xr[s]; sstar = s; }
    real m2 = -INFINITY;
    for (int s = 0; s <= t; ++s) if (s != sstar && xr[s] > m2) m2 = xr[s];
    real S = 0, SG = 0, S2 = 0, SG2 = 0;
    for (int s = 0; s <= t; ++s) {
        real e = exp(xr[s] - m);
        S += e; SG += e * gr[s];
        if (s != sstar) { real e2 = exp(xr[s] - m2); S2 += e2; SG2 += e2 * gr[s]; }
    }
    __global real* o = stats + st_off + r * 7;
    o[0] = m; o[1] = (real)sstar; o[2] = m2; o[3] = S; o[4] = SG; o[5] = S2; o[6] = SG2;
}

inline real atp_sigmoid(real z) {
    if (z >= 0) return (real)1 / ((real)1 + exp(-z));
    real e = exp(z);
    return e / ((real)1 + e);
}

// y[b, s] = sum_{t >= s} (sigma(l_ts + delta_ts) - sigma(l_ts)) * (g_ts - gbar_ts), where
// l_ts = x_ts - log sum_{s' != s} e^{x_ts'} (the log-odds of key s in row t) and gbar_ts the
// softmax-weighted mean of g over the row's other keys. Rows with one key (t = 0) add 0.
__kernel void atp_key_effects(int n, int T,
                              __global const real* x, int x_off,
                              __global const real* delta, int d_off,
                              __global const real* grad, int g_off,
                              __global const real* stats, int st_off,
                              __global real* y, int y_off)
{
    int e = (int)get_global_id(0);
    if (e >= n * T) return;
    int s = e % T, b = e / T;
    real acc = 0;
    for (int t = (s > 0 ? s : 1); t < T; ++t) {
        int r = b * T + t;
        __global const real* st = stats + st_off + r * 7;
        real m = st[0]; int sstar = (int)st[1];
        real xv = x[x_off + r * T + s], dv = delta[d_off + r * T + s], gv = grad[g_off + r * T + s];
        real l, gbar;
        if (s == sstar) {
            l = (m - st[2]) - log(st[5]);
            gbar = st[6] / st[5];
        } else {
            real ex = exp(xv - m), den = st[3] - ex;
            l = (xv - m) - log(den);
            gbar = (st[4] - ex * gv) / den;
        }
        acc += (atp_sigmoid(l + dv) - atp_sigmoid(l)) * (gv - gbar);
    }
    y[y_off + e] = acc;
}
