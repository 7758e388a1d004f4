// path.cl: straight-line path kernels for path attribution methods
// (integrated gradients and friends): build the interpolated inputs
// between a baseline and the input, and fold the path gradients back with
// quadrature weights.
//   x: n x d inputs, base: baselines (row stride base_stride: d, or 0 for
//   one shared baseline), alpha / w: m path points / weights,
//   path tensors: n x m x d, row-major (index (i*m + k)*d + j).
// `real`, act_f and act_df come from activation_math.cl, prepended to this file.

// y[(i*m+k)*d + j] = b + alpha_k (x[i*d+j] - b), b = base[i*base_stride + j];
// 1-D over n*m*d.
__kernel void path_interpolate(int n, int m, int d,
                               __global const real* x, int x_off,
                               __global const real* base, int base_off,
                               int base_stride,
                               __global const real* alpha, int alpha_off,
                               __global real* y, int y_off)
{
    int g = (int)get_global_id(0);
    if (g >= n * m * d) return;
    int j = g % d;
    int t = g / d;            // t = i*m + k
    int k = t % m;
    int i = t / m;
    real b = base[base_off + i * base_stride + j];
    real xv = x[x_off + i * d + j];
    y[y_off + g] = b + alpha[alpha_off + k] * (xv - b);
}

// y[i*d+j] = sum_{k=0..m-1} w_k g[(i*m+k)*d + j]; 1-D over n*d, k summed in
// order (deterministic).
__kernel void path_weighted_sum(int n, int m, int d,
                                __global const real* g, int g_off,
                                __global const real* w, int w_off,
                                __global real* y, int y_off)
{
    int q = (int)get_global_id(0);
    if (q >= n * d) return;
    int i = q / d;
    int j = q - i * d;
    int gb = g_off + i * m * d + j;
    real acc = (real)0;
    for (int k = 0; k < m; ++k) acc += w[w_off + k] * g[gb + k * d];
    y[y_off + q] = acc;
}

// The path and the activation after it (IG's path after a first affine layer), z never
// written: y = f(z), dydz = f'(z) for z as path_interpolate computes it; 1-D over n*m*d.
// Bitwise path_interpolate, then act_forward, with f' as act_backward applies it.
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
    int j = g % d;
    int t = g / d;
    int k = t % m;
    int i = t / m;
    real b = base[base_off + i * base_stride + j];
    real xv = x[x_off + i * d + j];
    real z = b + alpha[alpha_off + k] * (xv - b);
    y[y_off + g] = act_f(kind, z);
    dydz[dydz_off + g] = act_df(kind, z);
}

// path_weighted_sum of g (.) v, the product never written: each product rounded, then
// weighted and summed in order of k, as ew_mul then path_weighted_sum.
__kernel void path_weighted_sum_times(int n, int m, int d,
                                      __global const real* g, int g_off,
                                      __global const real* v, int v_off,
                                      __global const real* w, int w_off,
                                      __global real* y, int y_off)
{
    int q = (int)get_global_id(0);
    if (q >= n * d) return;
    int i = q / d;
    int j = q - i * d;
    int gb = i * m * d + j;
    real acc = (real)0;
    for (int k = 0; k < m; ++k) {
        real p = g[g_off + gb + k * d] * v[v_off + gb + k * d];
        acc += w[w_off + k] * p;
    }
    y[y_off + q] = acc;
}
