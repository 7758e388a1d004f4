// conv.cl: the pieces of a batched 2-D convolution as one GEMM.
// im2col / col2im (its adjoint, gather form: one work item per pixel, no
// atomics), transpose01 ([a,b,c] -> [b,a,c]) and row_bias_add.
// Images are NCHW; OH = (H + 2*ph - kh)/sh + 1, OW likewise (the host passes
// oh, ow). cols is [C*kh*kw, N*OH*OW]: row ci*kh*kw + ki*kw + kj, column
// ni*OH*OW + oy*OW + ox. All 1-D kernels: global = n rounded up, guarded.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

// cols[row, col] = x[ni, ci, oy*sh - ph + ki, ox*sw - pw + kj], 0 outside.
// 1-D over C*kh*kw * N*OH*OW.
__kernel void im2col(int n, int c, int h, int w, int kh, int kw,
                     int sh, int sw, int ph, int pw, int oh, int ow,
                     __global const real* x, int x_off,
                     __global real* cols, int cols_off)
{
    int e = (int)get_global_id(0);
    int ohw = oh * ow;
    int ncols = n * ohw;
    if (e >= c * kh * kw * ncols) return;
    int row = e / ncols, col = e - row * ncols;
    int ci = row / (kh * kw), kk = row - ci * kh * kw;
    int ki = kk / kw, kj = kk - ki * kw;
    int ni = col / ohw, p = col - ni * ohw;
    int oy = p / ow, ox = p - oy * ow;
    int iy = oy * sh - ph + ki, ix = ox * sw - pw + kj;
    real v = (real)0;
    if (iy >= 0 && iy < h && ix >= 0 && ix < w)
        v = x[x_off + ((ni * c + ci) * h + iy) * w + ix];
    cols[cols_off + e] = v;
}

// x[ni, ci, iy, ix] = sum of the cols entries im2col read from that pixel,
// ki then kj ascending. Overwrites x. 1-D over N*C*H*W.
__kernel void col2im(int n, int c, int h, int w, int kh, int kw,
                     int sh, int sw, int ph, int pw, int oh, int ow,
                     __global const real* cols, int cols_off,
                     __global real* x, int x_off)
{
    int e = (int)get_global_id(0);
    if (e >= n * c * h * w) return;
    int ix = e % w, t = e / w;
    int iy = t % h; t /= h;
    int ci = t % c, ni = t / c;
    int ohw = oh * ow;
    int ncols = n * ohw;
    real s = (real)0;
    for (int ki = 0; ki < kh; ++ki) {
        int ty = iy + ph - ki;
        if (ty < 0 || ty % sh != 0) continue;
        int oy = ty / sh;
        if (oy >= oh) continue;
        for (int kj = 0; kj < kw; ++kj) {
            int tx = ix + pw - kj;
            if (tx < 0 || tx % sw != 0) continue;
            int ox = tx / sw;
            if (ox >= ow) continue;
            s += cols[cols_off + ((ci * kh + ki) * kw + kj) * ncols + ni * ohw + oy * ow + ox];
        }
    }
    x[x_off + e] = s;
}

// y[j, i, k] = x[i, j, k], x [a, b, c], y [b, a, c]. 1-D over a*b*c (y order).
__kernel void transpose01(int a, int b, int c,
                          __global const real* x, int x_off,
                          __global real* y, int y_off)
{
    int e = (int)get_global_id(0);
    if (e >= a * b * c) return;
    int k = e % c, t = e / c;
    int i = t % a, j = t / a;
    y[y_off + e] = x[x_off + (i * b + j) * c + k];
}

// y[r, c] += bias[r]. 1-D over rows*cols.
__kernel void row_bias_add(int rows, int cols,
                           __global const real* bias, int bias_off,
                           __global real* y, int y_off)
{
    int e = (int)get_global_id(0);
    if (e >= rows * cols) return;
    y[y_off + e] += bias[bias_off + e / cols];
}
