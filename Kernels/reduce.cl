// reduce.cl: row reductions (row_sum, row_max, row_mean) and the column sum
// used for bias gradients (col_sum).
// Row kernels: one work-group of RED_WG items per row (global = rows*RED_WG).
// Each item first strides over the row accumulating privately, then the
// group combines the RED_WG partials with a tree reduction in local memory.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

#ifndef RED_WG
#define RED_WG 256
#endif

// max that propagates NaN (like numpy.max) and handles -INFINITY.
real max_nan(real a, real b)
{
    return (a > b || isnan(a)) ? a : b;
}

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

// Tree max, same protocol as group_sum.
real group_max(__local real* scratch, int lid, real v)
{
    scratch[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = RED_WG / 2; s > 0; s >>= 1) {
        if (lid < s) scratch[lid] = max_nan(scratch[lid], scratch[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    real r = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void row_sum(int rows, int cols,
             __global const real* x, int x_off,
             __global real* y, int y_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    // Every group is a row when global = rows*RED_WG. Should a surplus group
    // exist, it runs the same barriers over an empty row and writes nothing
    // (no early return before barriers: PoCL 3.1 miscompiles that pattern).
    if (row >= rows) cols = 0;
    int base = x_off + row * cols;
    real acc = (real)0;
    for (int c = lid; c < cols; c += RED_WG) acc += x[base + c];
    real s = group_sum(scratch, lid, acc);
    if (lid == 0 && row < rows) y[y_off + row] = s;
}

__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void row_max(int rows, int cols,
             __global const real* x, int x_off,
             __global real* y, int y_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    if (row >= rows) cols = 0;               // see the first kernel
    int base = x_off + row * cols;
    real acc = -(real)INFINITY;              // identity; idle items keep it
    for (int c = lid; c < cols; c += RED_WG) acc = max_nan(acc, x[base + c]);
    real m = group_max(scratch, lid, acc);
    if (lid == 0 && row < rows) y[y_off + row] = m;
}

__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void row_mean(int rows, int cols,
              __global const real* x, int x_off,
              __global real* y, int y_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    if (row >= rows) cols = 0;               // see the first kernel
    int base = x_off + row * cols;
    real acc = (real)0;
    for (int c = lid; c < cols; c += RED_WG) acc += x[base + c];
    real s = group_sum(scratch, lid, acc);
    if (lid == 0 && row < rows) y[y_off + row] = s / (real)cols;
}

// y[c] = beta*y[c] + sum_r x[r,c]; 1-D over cols, rows summed in order.
// beta == 0 overwrites y without reading it (y may hold garbage/NaN).
__kernel void col_sum(int rows, int cols,
                      __global const real* x, int x_off,
                      real beta,
                      __global real* y, int y_off)
{
    int c = (int)get_global_id(0);
    if (c >= cols) return;
    real acc = (real)0;
    for (int r = 0; r < rows; ++r) acc += x[x_off + r * cols + c];
    if (beta == (real)0)
        y[y_off + c] = acc;
    else
        y[y_off + c] = beta * y[y_off + c] + acc;
}

// Split-K's sum: C(i, j) = sum over b < splits of W[b*M*N + i*N + j] (+ beta*C(i, j)),
// the partial products of K's chunks (alpha already applied). beta == 0 never reads C.
// Global (ceil(N/64)*64, M), local (64, 1); items past N return.
__kernel void splitk_sum(int M, int N, int splits, __global const real* restrict W,
                         real beta, __global real* restrict C, int C_off, int ldc)
{
    const int j = (int)get_global_id(0), i = (int)get_global_id(1);
    if (j >= N || i >= M) return;
    const long plane = (long)M * N;
    real s = (real)0;
    for (int b = 0; b < splits; ++b) s += W[b * plane + (long)i * N + j];
    __global real* c = C + C_off + (long)i * ldc + j;
    *c = (beta == (real)0) ? s : s + beta * *c;
}
