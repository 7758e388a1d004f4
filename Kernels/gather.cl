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

// Weights stored at 16 bits (BFloat16 or Float16) read as float. Built with REAL = float.
// vload_half is core OpenCL (no cl_khr_fp16 needed: no half arithmetic happens); a BFloat16
// is the top half of a float's bits. Both widen exactly.
static inline float bf16_to_float(ushort b) { return as_float(((uint)b) << 16); }

// y[i] = x[i] widened; 1-D over n.
__kernel void widen_bf16(int n, __global const ushort* x, int x_off, __global float* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i < n) y[y_off + i] = bf16_to_float(x[x_off + i]);
}

__kernel void widen_f16(int n, __global const half* x, int x_off, __global float* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i < n) y[y_off + i] = vload_half(x_off + i, x);
}

// gather_rows from a 16-bit table into float rows; 1-D over n*cols.
__kernel void gather_rows_bf16(int n, int cols, __global const int* idx, int idx_off,
                               __global const ushort* table, int table_off, __global float* y, int y_off)
{
    int g = (int)get_global_id(0);
    if (g >= n * cols) return;
    int i = g / cols, c = g - i * cols;
    y[y_off + g] = bf16_to_float(table[table_off + idx[idx_off + i] * cols + c]);
}

__kernel void gather_rows_f16(int n, int cols, __global const int* idx, int idx_off,
                              __global const half* table, int table_off, __global float* y, int y_off)
{
    int g = (int)get_global_id(0);
    if (g >= n * cols) return;
    int i = g / cols, c = g - i * cols;
    y[y_off + g] = vload_half(table_off + idx[idx_off + i] * cols + c, table);
}
