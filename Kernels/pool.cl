// pool.cl: 2-D max and average pooling over NCHW (no padding) and their
// backward in gather form (one work item per input pixel, no atomics,
// correct for overlapping windows). OH = (H - kh)/sh + 1, OW likewise (the
// host passes oh, ow). All 1-D kernels: global = n rounded up, guarded.
//
// argmax (int) = iy*W + ix, the maximum's position in its own H x W input
// plane (PyTorch's return_indices). The first maximum in row order wins ties;
// the update rule `v > m || isnan(v)` (PyTorch's) propagates NaN.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
typedef REAL real;

// First output index (along one axis) whose window covers input position i,
// for kernel k and stride s.
int first_window(int i, int k, int s)
{
    return i - k + 1 <= 0 ? 0 : (i - k + s) / s;
}

// 1-D over N*C*OH*OW.
__kernel void max_pool2d(int n, int c, int h, int w, int kh, int kw,
                         int sh, int sw, int oh, int ow,
                         __global const real* x, int x_off,
                         __global real* y, int y_off,
                         __global int* argmax, int argmax_off)
{
    int e = (int)get_global_id(0);
    if (e >= n * c * oh * ow) return;
    int ox = e % ow, t = e / ow;
    int oy = t % oh, plane = t / oh;
    int base = x_off + plane * h * w;
    real m = -(real)INFINITY;
    int idx = oy * sh * w + ox * sw;
    for (int ky = 0; ky < kh; ++ky) {
        int rowp = (oy * sh + ky) * w + ox * sw;
        for (int kx = 0; kx < kw; ++kx) {
            real v = x[base + rowp + kx];
            if (v > m || isnan(v)) { m = v; idx = rowp + kx; }
        }
    }
    y[y_off + e] = m;
    argmax[argmax_off + e] = idx;
}

// dx[pixel] = sum of dy over the covering windows whose argmax is the pixel,
// oy then ox ascending. Overwrites dx. 1-D over N*C*H*W.
__kernel void max_pool2d_backward(int n, int c, int h, int w, int kh, int kw,
                                  int sh, int sw, int oh, int ow,
                                  __global const real* dy, int dy_off,
                                  __global const int* argmax, int argmax_off,
                                  __global real* dx, int dx_off)
{
    int e = (int)get_global_id(0);
    if (e >= n * c * h * w) return;
    int ix = e % w, t = e / w;
    int iy = t % h, plane = t / h;
    int me = iy * w + ix;
    int oy0 = first_window(iy, kh, sh), oy1 = min(iy / sh, oh - 1);
    int ox0 = first_window(ix, kw, sw), ox1 = min(ix / sw, ow - 1);
    int base = plane * oh * ow;
    real s = (real)0;
    for (int oy = oy0; oy <= oy1; ++oy)
        for (int ox = ox0; ox <= ox1; ++ox) {
            int o = base + oy * ow + ox;
            if (argmax[argmax_off + o] == me) s += dy[dy_off + o];
        }
    dx[dx_off + e] = s;
}

// y = (sum of the window, row order) / (kh*kw). 1-D over N*C*OH*OW.
__kernel void avg_pool2d(int n, int c, int h, int w, int kh, int kw,
                         int sh, int sw, int oh, int ow,
                         __global const real* x, int x_off,
                         __global real* y, int y_off)
{
    int e = (int)get_global_id(0);
    if (e >= n * c * oh * ow) return;
    int ox = e % ow, t = e / ow;
    int oy = t % oh, plane = t / oh;
    int base = x_off + plane * h * w;
    real s = (real)0;
    for (int ky = 0; ky < kh; ++ky) {
        int rowp = base + (oy * sh + ky) * w + ox * sw;
        for (int kx = 0; kx < kw; ++kx) s += x[rowp + kx];
    }
    y[y_off + e] = s / (real)(kh * kw);
}

// dx[pixel] = (sum of dy over the covering windows, oy then ox) / (kh*kw).
// Overwrites dx. 1-D over N*C*H*W.
__kernel void avg_pool2d_backward(int n, int c, int h, int w, int kh, int kw,
                                  int sh, int sw, int oh, int ow,
                                  __global const real* dy, int dy_off,
                                  __global real* dx, int dx_off)
{
    int e = (int)get_global_id(0);
    if (e >= n * c * h * w) return;
    int ix = e % w, t = e / w;
    int iy = t % h, plane = t / h;
    int oy0 = first_window(iy, kh, sh), oy1 = min(iy / sh, oh - 1);
    int ox0 = first_window(ix, kw, sw), ox1 = min(ix / sw, ow - 1);
    int base = dy_off + plane * oh * ow;
    real s = (real)0;
    for (int oy = oy0; oy <= oy1; ++oy)
        for (int ox = ox0; ox <= ox1; ++ox) s += dy[base + oy * ow + ox];
    dx[dx_off + e] = s / (real)(kh * kw);
}
