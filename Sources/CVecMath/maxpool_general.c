// Max pooling with any window and stride (overlapping windows: a ResNet's 3x3, stride 2 stem
// pool, padded by the layer first), forward and backward, Float32: CPUKernels.maxPool2d's
// general loop in C. The rule is that loop's: from -inf at the window's first position, a
// value wins where it is greater than the running maximum or is NaN, rows then columns; so
// values and argmax are bitwise the Swift loop's, which spent 4.4 ns a 3x3 window on branches
// that random data mispredicts (ResNet-50 IG: the stem pool 7% of the time).
// With AVX-512 and a column stride of 1 or 2, 16 outputs of a row a step: each window
// position's 16 values are one load (stride 1) or the even lanes of two (stride 2).
#include "vecmath.h"
#include "cpu_features.h"
#include "maxpool_rule.h"
#include <math.h>
#include <string.h>


static void forward_row_scalar(const float *xp, float *yl, int32_t *al, size_t oy, size_t ox0, size_t ox1,
                               size_t w, size_t kh, size_t kw, size_t sh, size_t sw) {
    for (size_t ox = ox0; ox < ox1; ox++) {
        size_t first = oy * sh * w + ox * sw, idx = first;
        float m = -INFINITY;
        for (size_t ky = 0; ky < kh; ky++)
            for (size_t kx = 0; kx < kw; kx++) { size_t p = first + ky * w + kx; MAX_STEP(m, idx, xp[p], p); }
        yl[ox] = m;
        al[ox] = (int32_t)idx;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

// Outputs [ox0, ox0 + n) of row oy, n ≤ 16.
AVX512 static inline void forward_16(const float *xp, float *yl, int32_t *al, size_t oy, size_t ox0, size_t n,
                                     size_t w, size_t kh, size_t kw, size_t sh, size_t sw) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __mmask16 out = (__mmask16)((1u << n) - 1);
    // Stride 2: lanes 0..2(n-1) of the 32 loaded hold the even columns needed.
    uint32_t span = sw == 2 ? (n >= 16 ? 0x7FFFFFFFu : (1u << (2 * n - 1)) - 1) : 0;
    __m512 m = _mm512_set1_ps(-INFINITY);
    __m512i pos = _mm512_setzero_si512();
    for (size_t ky = 0; ky < kh; ky++) {
        const float *row = xp + (oy * sh + ky) * w + ox0 * sw;
        for (size_t kx = 0; kx < kw; kx++) {
            __m512 v;
            if (sw == 1) v = _mm512_maskz_loadu_ps(out, row + kx);
            else v = _mm512_permutex2var_ps(_mm512_maskz_loadu_ps((__mmask16)span, row + kx), even,
                                            _mm512_maskz_loadu_ps((__mmask16)(span >> 16), row + kx + 16));
            maxpool_step16(&m, &pos, v, (int)(ky * w + kx));
        }
    }
    __m512i first = _mm512_add_epi32(_mm512_set1_epi32((int)(oy * sh * w + ox0 * sw)),
                                     _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                        _mm512_set1_epi32((int)sw)));
    _mm512_mask_storeu_ps(yl + ox0, out, m);
    _mm512_mask_storeu_epi32(al + ox0, out, _mm512_add_epi32(first, pos));
}

AVX512 static void forward_avx512(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w,
                                  size_t kh, size_t kw, size_t sh, size_t sw, size_t oh, size_t ow) {
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        for (size_t oy = 0; oy < oh; oy++) {
            float *yl = y + (p * oh + oy) * ow;
            int32_t *al = argmax + (p * oh + oy) * ow;
            for (size_t ox = 0; ox < ow; ox += 16) forward_16(xp, yl, al, oy, ox, ow - ox < 16 ? ow - ox : 16, w, kh, kw, sh, sw);
        }
    }
}
#endif

// The widest kernel that may run (16: AVX-512 where present; 1: the scalar loop), for the
// tests that compare them (atomic: other tests pool on other threads).
static int general_max_lanes = 16;
void attrib_maxpool_general_set_max_lanes(int lanes) { __atomic_store_n(&general_max_lanes, lanes >= 16 ? 16 : 1, __ATOMIC_RELAXED); }

void attrib_maxpool_forward_f32(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w,
                                size_t kh, size_t kw, size_t sh, size_t sw) {
    size_t oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;
#if defined(__x86_64__)
    if ((sw == 1 || sw == 2) && __atomic_load_n(&general_max_lanes, __ATOMIC_RELAXED) >= 16 && cpu_has_avx512f()) {
        forward_avx512(x, y, argmax, planes, h, w, kh, kw, sh, sw, oh, ow);
        return;
    }
#endif
    for (size_t p = 0; p < planes; p++)
        for (size_t oy = 0; oy < oh; oy++)
            forward_row_scalar(x + p * h * w, y + (p * oh + oy) * ow, argmax + (p * oh + oy) * ow, oy, 0, ow, w, kh, kw, sh, sw);
}

// The gather's sums as a scatter: dx from 0, then each window's 0 + dy added at its argmax in
// (oy, ox) order, which is the order the gather sums a pixel's windows in. An argmax outside
// its window is skipped, as the gather (which looks only at the windows covering a pixel) does.
void attrib_maxpool_backward_f32(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w,
                                 size_t kh, size_t kw, size_t sh, size_t sw) {
    size_t oh = (h - kh) / sh + 1, ow = (w - kw) / sw + 1;
    for (size_t p = 0; p < planes; p++) {
        float *xp = dx + p * h * w;
        const float *dyp = dy + p * oh * ow;
        const int32_t *ap = argmax + p * oh * ow;
        memset(xp, 0, h * w * sizeof(float));
        for (size_t oy = 0; oy < oh; oy++) {
            for (size_t ox = 0; ox < ow; ox++) {
                long a = ap[oy * ow + ox];
                long iy = a >= 0 ? a / (long)w : -1, ix = a >= 0 ? a % (long)w : -1;
                if (a < 0 || a >= (long)(h * w) || iy < (long)(oy * sh) || iy >= (long)(oy * sh + kh) ||
                    ix < (long)(ox * sw) || ix >= (long)(ox * sw + kw)) continue;
                xp[a] += dyp[oy * ow + ox];
            }
        }
    }
}
