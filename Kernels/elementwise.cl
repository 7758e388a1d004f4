// elementwise.cl: simple 1-D elementwise kernels (add/sub/mul, scale, axpy,
// fill, copy) and a row-broadcast bias add. One work item per element; the
// global size is rounded up by the host, so every kernel guards i >= n.
// See docs/kernel-contract.md for the argument lists.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

// y = a + b
__kernel void ew_add(int n,
                     __global const real* a, int a_off,
                     __global const real* b, int b_off,
                     __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = a[a_off + i] + b[b_off + i];
}

// y = a - b
__kernel void ew_sub(int n,
                     __global const real* a, int a_off,
                     __global const real* b, int b_off,
                     __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = a[a_off + i] - b[b_off + i];
}

// y = a * b (Hadamard product)
__kernel void ew_mul(int n,
                     __global const real* a, int a_off,
                     __global const real* b, int b_off,
                     __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = a[a_off + i] * b[b_off + i];
}

// y = alpha * x
__kernel void ew_scale(int n, real alpha,
                       __global const real* x, int x_off,
                       __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = alpha * x[x_off + i];
}

// y += alpha * x
__kernel void ew_axpy(int n, real alpha,
                      __global const real* x, int x_off,
                      __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = y[y_off + i] + alpha * x[x_off + i];
}

// y = value
__kernel void ew_fill(int n, real value,
                      __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = value;
}

// y = x
__kernel void ew_copy(int n,
                      __global const real* x, int x_off,
                      __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    y[y_off + i] = x[x_off + i];
}

// y[r,c] += bias[c]; 1-D over rows*cols, column = flat index mod cols.
__kernel void bias_add(int rows, int cols,
                       __global const real* bias, int bias_off,
                       __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    int n = rows * cols;
    if (i >= n) return;
    int c = i % cols;
    y[y_off + i] = y[y_off + i] + bias[bias_off + c];
}

// y[o,c,i] = x[o,c,i]*scale[c] (+ shift[c] where has_shift); 1-D over outer*channels*inner.
// A per-channel affine map (Device.channelAffine); y may be x.
__kernel void channel_affine(int n, int channels, int inner,
                             __global const real* x, int x_off,
                             __global const real* scale, int scale_off,
                             __global const real* shift, int shift_off, int has_shift,
                             __global real* y, int y_off)
{
    int i = (int)get_global_id(0);
    if (i >= n) return;
    int c = (i / inner) % channels;
    real v = x[x_off + i] * scale[scale_off + c];
    if (has_shift) v += shift[shift_off + c];
    y[y_off + i] = v;
}
