// path.cl: straight-line path kernels for path attribution methods
// (integrated gradients and friends): build the interpolated inputs
// between a baseline and the input, and fold the path gradients back with
// quadrature weights.
//   x: n x d inputs, base: baselines (row stride base_stride: d, or 0 for
//   one shared baseline), alpha / w: m path points / weights,
//   path tensors: n x m x d, row-major (index (i*m + k)*d + j).
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

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
