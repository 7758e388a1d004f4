// Average pooling over non-overlapping windows (stride = kernel) on Float32
// planes, forward and backward: the CPU backend's hot path for the digits
// CNN's 2×2 pools. Written in C because the Swift loops, generic and inside a
// closure, spilled every index to the stack (measured: 3 ns per element).
// The arithmetic is that of CPUKernels.avgPool2d(Backward): each window summed
// from 0, rows then columns, then divided by kh·kw (or multiplied by its exact
// reciprocal when kh·kw is a power of two: the same rounding).
#include "vecmath.h"

static inline float scale(float s, float div, float inv, int exact) { return exact ? s * inv : s / div; }

// 2×2 windows, the common case, with fixed trip counts the compiler vectorises
// (about 3× the general loop's speed, measured). ×0.25 is exactly ÷4.
static void forward_2x2(const float *restrict x, float *restrict y, size_t planes, size_t h, size_t w) {
    size_t oh = h / 2, ow = w / 2;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * oh * ow;
        for (size_t oy = 0; oy < oh; oy++) {
            const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            for (size_t ox = 0; ox < ow; ox++) {
                float s = 0.0f;
                s += r0[2 * ox]; s += r0[2 * ox + 1]; s += r1[2 * ox]; s += r1[2 * ox + 1];
                yp[oy * ow + ox] = s * 0.25f;
            }
        }
    }
}

static void backward_2x2(const float *restrict dy, float *restrict dx, size_t planes, size_t h, size_t w) {
    size_t oh = h / 2, ow = w / 2;
    for (size_t p = 0; p < planes; p++) {
        const float *dyp = dy + p * oh * ow;
        float *xp = dx + p * h * w;
        for (size_t oy = 0; oy < oh; oy++) {
            float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            const float *d = dyp + oy * ow;
            for (size_t ox = 0; ox < ow; ox++) {
                float v = (0.0f + d[ox]) * 0.25f;
                r0[2 * ox] = v; r0[2 * ox + 1] = v; r1[2 * ox] = v; r1[2 * ox + 1] = v;
            }
            for (size_t ix = 2 * ow; ix < w; ix++) { r0[ix] = 0.0f; r1[ix] = 0.0f; }
        }
        for (size_t iy = 2 * oh; iy < h; iy++) for (size_t ix = 0; ix < w; ix++) xp[iy * w + ix] = 0.0f;
    }
}

void attrib_avgpool_tiled_forward_f32(const float *x, float *y, size_t planes, size_t h, size_t w,
                                       size_t kh, size_t kw) {
    if (kh == 2 && kw == 2) { forward_2x2(x, y, planes, h, w); return; }
    size_t oh = h / kh, ow = w / kw, k = kh * kw;
    float div = (float)k, inv = 1.0f / div;
    int exact = (k & (k - 1)) == 0;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * oh * ow;
        for (size_t oy = 0; oy < oh; oy++) {
            for (size_t ox = 0; ox < ow; ox++) {
                float s = 0.0f;
                for (size_t ky = 0; ky < kh; ky++) {
                    const float *row = xp + (oy * kh + ky) * w + ox * kw;
                    for (size_t kx = 0; kx < kw; kx++) s += row[kx];
                }
                yp[oy * ow + ox] = scale(s, div, inv, exact);
            }
        }
    }
}

void attrib_avgpool_tiled_backward_f32(const float *dy, float *dx, size_t planes, size_t h, size_t w,
                                        size_t kh, size_t kw) {
    if (kh == 2 && kw == 2) { backward_2x2(dy, dx, planes, h, w); return; }
    size_t oh = h / kh, ow = w / kw, k = kh * kw;
    float div = (float)k, inv = 1.0f / div;
    int exact = (k & (k - 1)) == 0;
    for (size_t p = 0; p < planes; p++) {
        const float *dyp = dy + p * oh * ow;
        float *xp = dx + p * h * w;
        for (size_t iy = 0; iy < h; iy++) {
            float *xl = xp + iy * w;
            size_t oy = iy / kh, covered = 0;
            if (oy < oh) {
                const float *dyl = dyp + oy * ow;
                covered = ow * kw;
                for (size_t ox = 0; ox < ow; ox++) {
                    float v = scale(0.0f + dyl[ox], div, inv, exact);
                    for (size_t kx = 0; kx < kw; kx++) xl[ox * kw + kx] = v;
                }
            }
            for (size_t ix = covered; ix < w; ix++) xl[ix] = 0.0f;
        }
    }
}
