// gather.cl: embedding-style row gather and its deterministic adjoint.
// table is row-major with `cols` columns; idx holds row numbers (validated
// by the host before launch).
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

// y[i,c] = table[idx[i], c]; 1-D over n*cols.
__kernel void gather_rows(int n, int cols,
                          __global const int* idx, int idx_off,
                          __global const real* table, int table_off,
                          __global real* y, int y_off)
{
    int g = (int)get_global_id(0);
    if (g >= n * cols) return;
    int i = g / cols;
    int c = g - i * cols;
    int r = idx[idx_off + i];
    y[y_off + g] = table[table_off + r * cols + c];
}

// table[idx[i], c] += src[i, c]; 1-D over cols. Each item owns one column
// and walks i = 0..n-1 in order, so repeated indices accumulate in a fixed
// order without atomics (bitwise deterministic).
__kernel void scatter_add_rows(int n, int cols,
                               __global const int* idx, int idx_off,
                               __global const real* src, int src_off,
                               __global real* table, int table_off)
{
    int c = (int)get_global_id(0);
    if (c >= cols) return;
    for (int i = 0; i < n; ++i) {
        int t = table_off + idx[idx_off + i] * cols + c;
        table[t] = table[t] + src[src_off + i * cols + c];
    }
}
