// softmax.cl: row-wise softmax / log-softmax and their backward passes.
// Row kernels: one work-group of RED_WG items per row (global = rows*RED_WG);
// each item strides over the row accumulating privately, then a tree
// reduction in local memory combines the partials. Forward passes subtract
// the row max before exp. Every item only rewrites the elements it read
// itself, so in-place use (y == x, dx == dy) is safe.
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
// Ends with a barrier so the caller may reuse scratch.
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

// Row max over x[base .. base+cols).
real row_max_of(__local real* scratch, int lid, int cols,
                __global const real* x, int base)
{
    real acc = -(real)INFINITY;
    for (int c = lid; c < cols; c += RED_WG) acc = max_nan(acc, x[base + c]);
    return group_max(scratch, lid, acc);
}

// y = exp(x - m) / sum exp(x - m), m = row max.
// Pass 2 stores exp(x - m) in y, pass 3 divides by the sum.
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void softmax_rows(int rows, int cols,
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
    int xb = x_off + row * cols;
    int yb = y_off + row * cols;
    real m = row_max_of(scratch, lid, cols, x, xb);
    real acc = (real)0;
    for (int c = lid; c < cols; c += RED_WG) {
        real e = exp(x[xb + c] - m);
        y[yb + c] = e;
        acc += e;
    }
    real s = group_sum(scratch, lid, acc);
    for (int c = lid; c < cols; c += RED_WG) y[yb + c] = y[yb + c] / s;
}

// y = (x - m) - log sum exp(x - m), m = row max.
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void log_softmax_rows(int rows, int cols,
                      __global const real* x, int x_off,
                      __global real* y, int y_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    if (row >= rows) cols = 0;               // see the first kernel
    int xb = x_off + row * cols;
    int yb = y_off + row * cols;
    real m = row_max_of(scratch, lid, cols, x, xb);
    real acc = (real)0;
    for (int c = lid; c < cols; c += RED_WG) acc += exp(x[xb + c] - m);
    real lse = log(group_sum(scratch, lid, acc));
    for (int c = lid; c < cols; c += RED_WG) y[yb + c] = (x[xb + c] - m) - lse;
}

// dx = y * (dy - sum_c dy*y)   (y is the softmax output)
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void softmax_backward(int rows, int cols,
                      __global const real* y, int y_off,
                      __global const real* dy, int dy_off,
                      __global real* dx, int dx_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    if (row >= rows) cols = 0;               // see the first kernel
    int yb = y_off + row * cols;
    int gb = dy_off + row * cols;
    int db = dx_off + row * cols;
    real acc = (real)0;
    for (int c = lid; c < cols; c += RED_WG) acc += dy[gb + c] * y[yb + c];
    real dot = group_sum(scratch, lid, acc);
    for (int c = lid; c < cols; c += RED_WG)
        dx[db + c] = y[yb + c] * (dy[gb + c] - dot);
}

// dx = dy - exp(y) * sum_c dy   (y is the log-softmax output)
__kernel __attribute__((reqd_work_group_size(RED_WG, 1, 1)))
void log_softmax_backward(int rows, int cols,
                          __global const real* y, int y_off,
                          __global const real* dy, int dy_off,
                          __global real* dx, int dx_off)
{
    __local real scratch[RED_WG];
    int row = (int)get_group_id(0);
    int lid = (int)get_local_id(0);
    if (row >= rows) cols = 0;               // see the first kernel
    int yb = y_off + row * cols;
    int gb = dy_off + row * cols;
    int db = dx_off + row * cols;
    real acc = (real)0;
    for (int c = lid; c < cols; c += RED_WG) acc += dy[gb + c];
    real s = group_sum(scratch, lid, acc);
    for (int c = lid; c < cols; c += RED_WG)
        dx[db + c] = dy[gb + c] - exp(y[yb + c]) * s;
}
