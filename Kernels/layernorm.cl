// layernorm.cl: layer normalisation over the last dimension (PyTorch's:
// biased variance, rstd = 1/sqrt(var + eps)) and its backward.
// layer_norm and layer_norm_backward_dx are row kernels: one work-group of
// RED_WG items per row (global = rows*RED_WG); each item strides over the
// row, a tree reduction in local memory combines the partials. The variance
// is two-pass (sum of (x - mean)^2 after the mean), stable for any offset.
// layer_norm_backward_params is 1-D over cols, rows summed in order.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

#ifndef RED_WG
#define RED_WG 256
#endif

// Tree sum of one value per work item; every item gets the result.
// Must be reached by all items of the group. Ends with a barrier so the
// caller may reuse scratch.
real group_sum(__local real* scratch, int lid, real v)
{
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RED_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] = scratch[lid] + scratch[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    real r = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

// y = (x - mean)*rstd*gamma + beta; mean[row], rstd[row] written.
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void layer_norm(int rows, int cols, real eps,
                __global const real* x, int x_off,
                __global const real* gamma, int gamma_off,
                __global const real* beta, int beta_off,
                __global real* y, int y_off,
                __global real* mean, int mean_off,
                __global real* rstd, int rstd_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    // Every group is a row when global = rows*RED_WG. Should a surplus group
    // exist, it runs the same barriers over an empty row and writes nothing
    // (no early return before barriers: PoCL 3.1 miscompiles that pattern).
    int len = row < rows ? cols : 0;
    int xb = x_off + row * cols;
    int yb = y_off + row * cols;
    real acc = (real)0;
    for (int k = lid; k < len; k += RED_WG) acc += x[xb + k];
    real mu = group_sum(scratch, lid, acc) / (real)cols;
    acc = (real)0;
    for (int k = lid; k < len; k += RED_WG) { real d = x[xb + k] - mu; acc += d * d; }
    real var = group_sum(scratch, lid, acc) / (real)cols;
    real rs = (real)1 / sqrt(var + eps);
    for (int k = lid; k < len; k += RED_WG)
        y[yb + k] = (x[xb + k] - mu) * rs * gamma[gamma_off + k] + beta[beta_off + k];
    if (lid == 0 && row < rows) { mean[mean_off + row] = mu; rstd[rstd_off + row] = rs; }
}

// With xh = (x - mean)*rstd and g = dy*gamma:
// dx = rstd*(g - mean_c(g) - xh*mean_c(g*xh)). Overwrites dx.
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void layer_norm_backward_dx(int rows, int cols,
                            __global const real* x, int x_off,
                            __global const real* gamma, int gamma_off,
                            __global const real* mean, int mean_off,
                            __global const real* rstd, int rstd_off,
                            __global const real* dy, int dy_off,
                            __global real* dx, int dx_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    int len = row < rows ? cols : 0;         // see layer_norm
    int r = row < rows ? row : 0;
    real mu = mean[mean_off + r], rs = rstd[rstd_off + r];
    int xb = x_off + row * cols, gb = dy_off + row * cols, db = dx_off + row * cols;
    real a1 = (real)0, a2 = (real)0;
    for (int k = lid; k < len; k += RED_WG) {
        real g = dy[gb + k] * gamma[gamma_off + k];
        real xh = (x[xb + k] - mu) * rs;
        a1 += g; a2 += g * xh;
    }
    real m1 = group_sum(scratch, lid, a1) / (real)cols;
    real m2 = group_sum(scratch, lid, a2) / (real)cols;
    for (int k = lid; k < len; k += RED_WG) {
        real g = dy[gb + k] * gamma[gamma_off + k];
        real xh = (x[xb + k] - mu) * rs;
        dx[db + k] = rs * (g - m1 - xh * m2);
    }
}

// dgamma[c] = sum_r dy*xh, dbeta[c] = sum_r dy, rows in order. Overwrites
// both. 1-D over cols.
__kernel void layer_norm_backward_params(int rows, int cols,
                                         __global const real* x, int x_off,
                                         __global const real* mean, int mean_off,
                                         __global const real* rstd, int rstd_off,
                                         __global const real* dy, int dy_off,
                                         __global real* dgamma, int dgamma_off,
                                         __global real* dbeta, int dbeta_off)
{
    int c = (int)get_global_id(0);
    if (c >= cols) return;
    real dg = (real)0, db = (real)0;
    for (int r = 0; r < rows; ++r) {
        real g = dy[dy_off + r * cols + c];
        real xh = (x[x_off + r * cols + c] - mean[mean_off + r]) * rstd[rstd_off + r];
        dg += g * xh; db += g;
    }
    dgamma[dgamma_off + c] = dg;
    dbeta[dbeta_off + c] = db;
}

// RMSNorm (Llama's): y = x*rstd*gamma with rstd = 1/sqrt(mean(x^2) + eps);
// rstd[row] written. A row kernel like layer_norm.
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void rms_norm(int rows, int cols, real eps,
              __global const real* x, int x_off,
              __global const real* gamma, int gamma_off,
              __global real* y, int y_off,
              __global real* rstd, int rstd_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    int len = row < rows ? cols : 0;         // see layer_norm
    int xb = x_off + row * cols;
    int yb = y_off + row * cols;
    real acc = (real)0;
    for (int k = lid; k < len; k += RED_WG) { real v = x[xb + k]; acc += v * v; }
    real ms = group_sum(scratch, lid, acc) / (real)cols;
    real rs = (real)1 / sqrt(ms + eps);
    for (int k = lid; k < len; k += RED_WG)
        y[yb + k] = x[xb + k] * rs * gamma[gamma_off + k];
    if (lid == 0 && row < rows) rstd[rstd_off + row] = rs;
}

// With xh = x*rstd and g = dy*gamma: dx = rstd*(g - xh*mean_c(g*xh)).
// Overwrites dx. (The weight's gradient is not needed: inference only.)
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void rms_norm_backward_dx(int rows, int cols,
                          __global const real* x, int x_off,
                          __global const real* gamma, int gamma_off,
                          __global const real* rstd, int rstd_off,
                          __global const real* dy, int dy_off,
                          __global real* dx, int dx_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    int len = row < rows ? cols : 0;
    int r = row < rows ? row : 0;
    real rs = rstd[rstd_off + r];
    int xb = x_off + row * cols, gb = dy_off + row * cols, db = dx_off + row * cols;
    real a = (real)0;
    for (int k = lid; k < len; k += RED_WG)
        a += dy[gb + k] * gamma[gamma_off + k] * x[xb + k] * rs;
    real m = group_sum(scratch, lid, a) / (real)cols;
    for (int k = lid; k < len; k += RED_WG) {
        real g = dy[gb + k] * gamma[gamma_off + k];
        dx[db + k] = rs * (g - x[xb + k] * rs * m);
    }
}
