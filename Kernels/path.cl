// path.cl: straight-line path kernels for path attribution methods
// (integrated gradients and friends): build the interpolated inputs
// between a baseline and the input, and fold the path gradients back with
// quadrature weights.
//   x: n x d inputs, base: baselines (row stride base_stride: d, or 0 for
//   one shared baseline), alpha / w: m path points / weights,
//   path tensors: n x m x d, row-major (index (i*m + k)*d + j).
// `real`, act_f and act_df come from activation_math.cl, prepended to this file.

// Element g of the path, n x m x d: b + alpha_k (x[i*d+j] - b), b = base[i*base_stride + j].
inline real path_point(int g, int m, int d, __global const real* x, int x_off,
                       __global const real* base, int base_off, int base_stride,
                       __global const real* alpha, int alpha_off)
{
    int j = g % d;
    int t = g / d;            // t = i*m + k
    int k = t % m;
    int i = t / m;
    real b = base[base_off + i * base_stride + j];
    real xv = x[x_off + i * d + j];
    return b + alpha[alpha_off + k] * (xv - b);
}

// Element q of the n x d step-weighted sum: sum_{k=0..m-1} w_k g[(i*m+k)*d + j], k in
// order (deterministic); with `times`, of g (.) v, each product rounded before it is
// weighted (as ew_mul first).
inline real weighted_sum(int q, int m, int d, __global const real* g, int g_off,
                         __global const real* v, int v_off, int times,
                         __global const real* w, int w_off)
{
    int i = q / d;
    int j = q - i * d;
    int gb = i * m * d + j;
    real acc = (real)0;
    for (int k = 0; k < m; ++k) {
        real p = g[g_off + gb + k * d];
        if (times) p *= v[v_off + gb + k * d];
        acc += w[w_off + k] * p;
    }
    return acc;
}

// y = the path; 1-D over n*m*d.
__kernel void path_interpolate(int n, int m, int d,
                               __global const real* x, int x_off,
                               __global const real* base, int base_off,
                               int base_stride,
                               __global const real* alpha, int alpha_off,
                               __global real* y, int y_off)
{
    int g = (int)get_global_id(0);
    if (g >= n * m * d) return;
    y[y_off + g] = path_point(g, m, d, x, x_off, base, base_off, base_stride, alpha, alpha_off);
}

// y = the step-weighted sum of g; 1-D over n*d.
__kernel void path_weighted_sum(int n, int m, int d,
                                __global const real* g, int g_off,
                                __global const real* w, int w_off,
                                __global real* y, int y_off)
{
    int q = (int)get_global_id(0);
    if (q >= n * d) return;
    y[y_off + q] = weighted_sum(q, m, d, g, g_off, g, g_off, 0, w, w_off);
}

// The path and the activation after it (IG's path after a first affine layer), z never
// written: y = f(z), dydz = f'(z) for z the path point; 1-D over n*m*d. Bitwise
// path_interpolate, then act_forward, with f' as act_backward applies it.
__kernel void path_activation(int n, int m, int d, int kind,
                              __global const real* x, int x_off,
                              __global const real* base, int base_off,
                              int base_stride,
                              __global const real* alpha, int alpha_off,
                              __global real* y, int y_off,
                              __global real* dydz, int dydz_off)
{
    int g = (int)get_global_id(0);
    if (g >= n * m * d) return;
    real z = path_point(g, m, d, x, x_off, base, base_off, base_stride, alpha, alpha_off);
    y[y_off + g] = act_f(kind, z);
    dydz[dydz_off + g] = act_df(kind, z);
}

// The step-weighted sum of g (.) v, the product never written; 1-D over n*d.
__kernel void path_weighted_sum_times(int n, int m, int d,
                                      __global const real* g, int g_off,
                                      __global const real* v, int v_off,
                                      __global const real* w, int w_off,
                                      __global real* y, int y_off)
{
    int q = (int)get_global_id(0);
    if (q >= n * d) return;
    y[y_off + q] = weighted_sum(q, m, d, g, g_off, v, v_off, 1, w, w_off);
}
