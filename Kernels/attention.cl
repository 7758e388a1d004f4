// attention.cl: the layout helpers of multi-head attention (the products are
// gemm.cl's strided batched GEMM, the causal softmax is softmax.cl's over
// masked scores). 1-D kernels: global = n rounded up, guarded.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

// y[i, k, j, l] = x[i, j, k, l], x [a, b, c, d], y [a, c, b, d]
// ([B, T, H, dh] <-> [B, H, T, dh]). 1-D over a*b*c*d in y order.
__kernel void transpose12(int a, int b, int c, int d,
                          __global const real* x, int x_off,
                          __global real* y, int y_off)
{
    int e = (int)get_global_id(0);
    if (e >= a * b * c * d) return;
    int l = e % d, t = e / d;
    int j = t % b; t /= b;
    int k = t % c, i = t / c;
    y[y_off + e] = x[x_off + ((i * b + j) * c + k) * d + l];
}

// y[i*ys0 + j*ys1 + k] = x[i*xs0 + j*xs1 + k] over an n0 x n1 x n2 box.
// 1-D over n0*n1*n2.
__kernel void copy_box(int n0, int n1, int n2,
                       __global const real* x, int x_off, int xs0, int xs1,
                       __global real* y, int y_off, int ys0, int ys1)
{
    int e = (int)get_global_id(0);
    if (e >= n0 * n1 * n2) return;
    int k = e % n2, t = e / n2;
    int j = t % n1, i = t / n1;
    y[y_off + i * ys0 + j * ys1 + k] = x[x_off + i * xs0 + j * xs1 + k];
}
