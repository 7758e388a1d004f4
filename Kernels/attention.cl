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

// Rotary position embedding (rotate-half layout) of x [rows = n*T*heads,
// head_dim]: the row's position is (row / heads) % T; with h = rot/2 and
// i < h, y[i] = x[i] c - x[i+h] s, y[i+h] = x[i+h] c + x[i] s where c, s are
// cos/sin [T, h] at (position, i) (sgn = -1 negates s: the inverse rotation,
// which is the backward). Entries rot..head_dim-1 are copied. 1-D over
// rows*head_dim; x and y may be the same buffer only if they do not overlap
// partially (the host passes distinct buffers).
__kernel void rotary(int rows, int t, int heads, int head_dim, int rot, real sgn,
                     __global const real* x, int x_off,
                     __global const real* cs, int cs_off,
                     __global const real* sn, int sn_off,
                     __global real* y, int y_off)
{
    int e = (int)get_global_id(0);
    if (e >= rows * head_dim) return;
    int row = e / head_dim, k = e % head_dim;
    int xb = x_off + row * head_dim;
    if (k >= rot) { y[y_off + e] = x[xb + k]; return; }
    int h = rot / 2;
    int pos = (row / heads) % t;
    int i = k < h ? k : k - h;
    real c = cs[cs_off + pos * h + i], s = sgn * sn[sn_off + pos * h + i];
    y[y_off + e] = k < h ? x[xb + k] * c - x[xb + k + h] * s
                         : x[xb + k] * c + x[xb + k - h] * s;
}
