// Average pooling over non-overlapping windows (stride = kernel) on Float32
// planes, forward and backward: the CPU backend's hot path for the digits
// CNN's 2×2 pools. Written in C because the Swift loops, generic and inside a
// closure, spilled every index to the stack (measured: 3 ns per element).
// The arithmetic is that of CPUKernels.avgPool2d(Backward): each window summed
// from 0, rows then columns, then divided by kh·kw (or multiplied by its exact
// reciprocal when kh·kw is a power of two: the same rounding).
#include "vecmath.h"
#include <math.h>
#include <string.h>
#include "cpu_features.h"
#include "maxpool_avx512.h"
#include "maxpool_rule.h"

static inline float scale(float s, float div, float inv, int exact) { return exact ? s * inv : s / div; }

// 2×2 windows, the common case. The window sums keep the scalar order
// ((((0 + a) + b) + c) + d) · ¼ (×¼ is exactly ÷4) in every path, so the SIMD
// blocks (8 input columns with AVX2, 4 with SSE) and the scalar remainder give the
// same bits. Backward spreads (0 + dy)·¼ over each window, times m elementwise when m
// is given (the fused GELU′ product: the same two roundings as the passes apart);
// uncovered rows and columns get 0, or 0·m (a signed zero, as the unfused product gives).

static void forward_2x2_scalar(const float *restrict x, float *restrict y, size_t planes, size_t h, size_t w) {
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

static void backward_2x2_scalar(const float *restrict dy, const float *restrict m, float *restrict dx,
                                size_t planes, size_t h, size_t w) {
    size_t oh = h / 2, ow = w / 2;
    for (size_t p = 0; p < planes; p++) {
        const float *dyp = dy + p * oh * ow, *mp = m ? m + p * h * w : 0;
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
        for (size_t i = 2 * oh * w; i < h * w; i++) xp[i] = 0.0f;
        if (mp) for (size_t i = 0; i < h * w; i++) xp[i] = xp[i] * mp[i];
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define POOL_AVX2 1


// Four windows from two rows of 8: per 128-bit lane e = (r0[0], r0[2], r1[0], r1[2]) and
// o = (r0[1], r0[3], r1[1], r1[3]); slots 0 and 1 accumulate row 0's pair, then row 1's.
__attribute__((target("avx2")))
static inline __m128 windows4(const float *r0, const float *r1) {
    __m256 a = _mm256_loadu_ps(r0), b = _mm256_loadu_ps(r1);
    __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), e), o);
    s = _mm256_add_ps(s, _mm256_permute_ps(e, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm256_add_ps(s, _mm256_permute_ps(o, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm256_mul_ps(s, _mm256_set1_ps(0.25f));
    return _mm_movelh_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// Two windows from two rows of 4, the same steps in one 128-bit register (slots 0, 1).
__attribute__((target("avx2")))
static inline __m128 windows2(const float *r0, const float *r1) {
    __m128 a = _mm_loadu_ps(r0), b = _mm_loadu_ps(r1);
    __m128 e = _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), o = _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    __m128 s = _mm_add_ps(_mm_add_ps(_mm_setzero_ps(), e), o);
    s = _mm_add_ps(s, _mm_shuffle_ps(e, e, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_ps(s, _mm_shuffle_ps(o, o, _MM_SHUFFLE(1, 0, 3, 2)));
    return _mm_mul_ps(s, _mm_set1_ps(0.25f));
}

__attribute__((target("avx2")))
static void forward_2x2_avx2(const float *restrict x, float *restrict y, size_t planes, size_t h, size_t w) {
    size_t oh = h / 2, ow = w / 2, cw = 2 * ow;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * oh * ow;
        for (size_t oy = 0; oy < oh; oy++) {
            const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            float *yl = yp + oy * ow;
            size_t j = 0;
            for (; j + 8 <= cw; j += 8) _mm_storeu_ps(yl + j / 2, windows4(r0 + j, r1 + j));
            for (; j + 4 <= cw; j += 4) _mm_storel_pi((__m64 *)(yl + j / 2), windows2(r0 + j, r1 + j));
            for (; j < cw; j += 2) {
                float s = 0.0f;
                s += r0[j]; s += r0[j + 1]; s += r1[j]; s += r1[j + 1];
                yl[j / 2] = s * 0.25f;
            }
        }
    }
}

// One row pair of the backward; `mul` is a constant at each call, so each copy is branch-free.
__attribute__((target("avx2"), always_inline))
static inline void backward_rows_avx2(const float *d, const float *m0, const float *m1, float *r0, float *r1,
                                      size_t cw, size_t w, const int mul) {
    const __m128 quarter = _mm_set1_ps(0.25f), zero = _mm_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= cw; j += 8) {
        __m128 v = _mm_mul_ps(_mm_add_ps(zero, _mm_loadu_ps(d + j / 2)), quarter);
        __m256 s = _mm256_set_m128(_mm_unpackhi_ps(v, v), _mm_unpacklo_ps(v, v));   // v0 v0 v1 v1 … v3 v3
        _mm256_storeu_ps(r0 + j, mul ? _mm256_mul_ps(s, _mm256_loadu_ps(m0 + j)) : s);
        _mm256_storeu_ps(r1 + j, mul ? _mm256_mul_ps(s, _mm256_loadu_ps(m1 + j)) : s);
    }
    for (; j + 4 <= cw; j += 4) {
        __m128 v = _mm_mul_ps(_mm_add_ps(zero, _mm_castpd_ps(_mm_load_sd((const double *)(d + j / 2)))), quarter);
        __m128 s = _mm_unpacklo_ps(v, v);                                               // v0 v0 v1 v1
        _mm_storeu_ps(r0 + j, mul ? _mm_mul_ps(s, _mm_loadu_ps(m0 + j)) : s);
        _mm_storeu_ps(r1 + j, mul ? _mm_mul_ps(s, _mm_loadu_ps(m1 + j)) : s);
    }
    for (; j < cw; j += 2) {
        float v = (0.0f + d[j / 2]) * 0.25f;
        r0[j] = mul ? v * m0[j] : v; r0[j + 1] = mul ? v * m0[j + 1] : v;
        r1[j] = mul ? v * m1[j] : v; r1[j + 1] = mul ? v * m1[j + 1] : v;
    }
    for (; j < w; j++) { r0[j] = mul ? 0.0f * m0[j] : 0.0f; r1[j] = mul ? 0.0f * m1[j] : 0.0f; }
}

__attribute__((target("avx2")))
static void backward_2x2_avx2(const float *restrict dy, const float *restrict m, float *restrict dx,
                              size_t planes, size_t h, size_t w) {
    size_t oh = h / 2, ow = w / 2, cw = 2 * ow;
    for (size_t p = 0; p < planes; p++) {
        const float *dyp = dy + p * oh * ow, *mp = m ? m + p * h * w : 0;
        float *xp = dx + p * h * w;
        for (size_t oy = 0; oy < oh; oy++) {
            float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            if (mp) backward_rows_avx2(dyp + oy * ow, mp + 2 * oy * w, mp + 2 * oy * w + w, r0, r1, cw, w, 1);
            else backward_rows_avx2(dyp + oy * ow, 0, 0, r0, r1, cw, w, 0);
        }
        for (size_t i = 2 * oh * w; i < h * w; i++) xp[i] = mp ? 0.0f * mp[i] : 0.0f;
    }
}
#endif

// With h even, no window crosses a plane's edge, so consecutive planes are one image
// of planes·h rows: one loop instead of one per plane (the digits CNN's planes are 8×8
// and 4×4, where the per-plane loop set-up cost more than the windows).
static void forward_2x2(const float *x, float *y, size_t planes, size_t h, size_t w) {
    if (h % 2 == 0) { h *= planes; planes = 1; }
#ifdef POOL_AVX2
    if (cpu_has_avx2()) { forward_2x2_avx2(x, y, planes, h, w); return; }
#endif
    forward_2x2_scalar(x, y, planes, h, w);
}

static void backward_2x2(const float *dy, const float *m, float *dx, size_t planes, size_t h, size_t w) {
    if (h % 2 == 0) { h *= planes; planes = 1; }
#ifdef POOL_AVX2
    if (cpu_has_avx2()) { backward_2x2_avx2(dy, m, dx, planes, h, w); return; }
#endif
    backward_2x2_scalar(dy, m, dx, planes, h, w);
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
    if (kh == 2 && kw == 2) { backward_2x2(dy, 0, dx, planes, h, w); return; }
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

// dx = avgPoolBackward(dy) ⊙ m: 2×2 windows in one pass; others per group of planes,
// the product taken while the group is still in L1. The same two roundings as the
// passes apart.
void attrib_avgpool_tiled_backward_mul_f32(const float *dy, const float *m, float *dx, size_t planes,
                                           size_t h, size_t w, size_t kh, size_t kw) {
    if (kh == 2 && kw == 2) { backward_2x2(dy, m, dx, planes, h, w); return; }
    size_t hw = h * w, ohw = (h / kh) * (w / kw);
    size_t group = hw >= ATTRIB_FUSED_PLANE_MAX ? 1 : ATTRIB_FUSED_PLANE_MAX / hw;
    for (size_t p = 0; p < planes; p += group) {
        size_t g = planes - p < group ? planes - p : group;
        float *out = dx + p * hw;
        const float *mp = m + p * hw;
        attrib_avgpool_tiled_backward_f32(dy + p * ohw, out, g, h, w, kh, kw);
        for (size_t i = 0; i < g * hw; i++) out[i] = out[i] * mp[i];
    }
}

// Max pooling over tiled windows (stride = kernel), the layout of most CNNs' 2x2 pools:
// one plane at a time, indices kept in registers, where the general kernel (Swift,
// CPUKernels.maxPool2d) divides per line and its backward gathers per pixel from the
// windows covering it. The same rule as the general kernel: a value wins where it is
// greater than the running maximum or is NaN, starting from -inf at the window's first
// position, so values and argmax are bitwise the same.
// One step of the rule: MAX_STEP (maxpool_rule.h).

// One body for every window size; `static inline` and called with the constants 2, 2 for
// the common 2x2 pool, so the compiler unrolls that case, as a hand-written copy would.
// The window starts from its first element with no test: from -inf, the rule takes it or
// keeps -inf with the window's first position, which is the same value and index.
static inline void maxpool_forward(const float *x, float *y, int32_t *argmax, size_t planes,
                                   size_t h, size_t w, size_t kh, size_t kw) {
    size_t oh = h / kh, ow = w / kw;
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * h * w;
        float *yp = y + p * oh * ow;
        int32_t *ap = argmax + p * oh * ow;
        for (size_t oy = 0; oy < oh; oy++) {
            for (size_t ox = 0; ox < ow; ox++) {
                size_t first = oy * kh * w + ox * kw, idx = first;
                float m = xp[first];
                for (size_t ky = 0; ky < kh; ky++) {
                    size_t row = first + ky * w;
                    for (size_t kx = ky == 0 ? 1 : 0; kx < kw; kx++) MAX_STEP(m, idx, xp[row + kx], row + kx);
                }
                yp[oy * ow + ox] = m;
                ap[oy * ow + ox] = (int32_t)idx;
            }
        }
    }
}

#ifdef POOL_AVX2
// 2x2 windows, eight at a time, the same rule in the same order (first, right, below,
// below-right) with compares and blends: bitwise the scalar kernel's values and indices.
// Windows run in output order across rows and planes (a ReLU CNN's planes are 8x8 and 4x4,
// where a row holds 4 or 2 windows), each window's two top and two bottom values loaded as
// 64-bit pairs. Even and odd columns then come apart by in-lane shuffles, which leave the
// windows in the order 0 1 4 5 | 2 3 6 7; one 64-bit permute restores it.

__attribute__((target("avx2")))
static inline __m256 in_order(__m256 v) { return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), 0xD8)); }

static inline long long pair_at(const float *p) { long long v; memcpy(&v, p, sizeof v); return v; }

// The windows in output order: where the current one starts (its top-left element's offset
// in x and in its plane), advanced without a division.
typedef struct { size_t ow, oh, w, plane, ox, oy, p; } windows2x2;
static inline void window_start(windows2x2 *g, size_t *at, long *local) {
    *local = (long)(2 * g->oy * g->w + 2 * g->ox);
    *at = g->p * g->plane + (size_t)*local;
    if (++g->ox == g->ow) { g->ox = 0; if (++g->oy == g->oh) { g->oy = 0; g->p++; } }
}

__attribute__((target("avx2")))
static void maxpool2x2_forward_avx2(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w) {
    windows2x2 g = { w / 2, h / 2, w, h * w, 0, 0, 0 };
    size_t total = planes * g.oh * g.ow, k = 0;
    const __m256 right = _mm256_castsi256_ps(_mm256_set1_epi32(1)), below = _mm256_castsi256_ps(_mm256_set1_epi32((int)w)),
                 diagonal = _mm256_castsi256_ps(_mm256_set1_epi32((int)w + 1));
    for (; k + 8 <= total; k += 8) {
        size_t at[8]; long local[8];
        for (int i = 0; i < 8; i++) window_start(&g, &at[i], &local[i]);
        __m256 t0 = _mm256_castsi256_ps(_mm256_set_epi64x(pair_at(x + at[3]), pair_at(x + at[2]), pair_at(x + at[1]), pair_at(x + at[0])));
        __m256 t1 = _mm256_castsi256_ps(_mm256_set_epi64x(pair_at(x + at[7]), pair_at(x + at[6]), pair_at(x + at[5]), pair_at(x + at[4])));
        __m256 b0 = _mm256_castsi256_ps(_mm256_set_epi64x(pair_at(x + at[3] + w), pair_at(x + at[2] + w), pair_at(x + at[1] + w), pair_at(x + at[0] + w)));
        __m256 b1 = _mm256_castsi256_ps(_mm256_set_epi64x(pair_at(x + at[7] + w), pair_at(x + at[6] + w), pair_at(x + at[5] + w), pair_at(x + at[4] + w)));
        __m256 m = _mm256_shuffle_ps(t0, t1, 0x88), off = _mm256_setzero_ps();
        const __m256 steps[3] = { _mm256_shuffle_ps(t0, t1, 0xDD), _mm256_shuffle_ps(b0, b1, 0x88), _mm256_shuffle_ps(b0, b1, 0xDD) };
        const __m256 offsets[3] = { right, below, diagonal };
        for (int s = 0; s < 3; s++) {
            __m256 v = steps[s];
            __m256 t = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
            m = _mm256_blendv_ps(m, v, t);
            off = _mm256_blendv_ps(off, offsets[s], t);
        }
        _mm256_storeu_ps(y + k, in_order(m));
        __m256i base = _mm256_setr_epi32((int)local[0], (int)local[1], (int)local[2], (int)local[3], (int)local[4], (int)local[5], (int)local[6], (int)local[7]);
        _mm256_storeu_si256((__m256i *)(argmax + k), _mm256_add_epi32(base, _mm256_castps_si256(in_order(off))));
    }
    for (; k < total; k++) {
        size_t at; long local;
        window_start(&g, &at, &local);
        const float *r0 = x + at, *r1 = r0 + w;
        size_t idx = 0;
        float m = r0[0];
        MAX_STEP(m, idx, r0[1], 1);
        MAX_STEP(m, idx, r1[0], w);
        MAX_STEP(m, idx, r1[1], w + 1);
        y[k] = m;
        argmax[k] = (int32_t)(local + (long)idx);
    }
}

// Its backward: each of a window's four positions gets 0 + dy where it is the window's
// argmax, else 0, so nothing is cleared first; rows and columns no window covers get 0. An
// index that is none of its window's positions writes only zeros, as in the scalar kernel.
__attribute__((target("avx2")))
static void maxpool2x2_backward_avx2(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w) {
    windows2x2 g = { w / 2, h / 2, w, h * w, 0, 0, 0 };
    size_t total = planes * g.oh * g.ow, k = 0;
    const __m256i right = _mm256_set1_epi32(1), below = _mm256_set1_epi32((int)w), diagonal = _mm256_set1_epi32((int)w + 1);
    const __m256 zero = _mm256_setzero_ps();
    for (; k + 8 <= total; k += 8) {
        size_t at[8]; long local[8];
        for (int i = 0; i < 8; i++) window_start(&g, &at[i], &local[i]);
        __m256 v = _mm256_add_ps(zero, _mm256_loadu_ps(dy + k));
        __m256i base = _mm256_setr_epi32((int)local[0], (int)local[1], (int)local[2], (int)local[3], (int)local[4], (int)local[5], (int)local[6], (int)local[7]);
        __m256i off = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(argmax + k)), base);
        __m256 p00 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, _mm256_setzero_si256())));
        __m256 p01 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, right)));
        __m256 p10 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, below)));
        __m256 p11 = _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(off, diagonal)));
        // Per window its top pair (p00, p01) and bottom pair (p10, p11), in lanes 0 1 | 4 5 and 2 3 | 6 7.
        __m256 tlo = _mm256_unpacklo_ps(p00, p01), thi = _mm256_unpackhi_ps(p00, p01);
        __m256 blo = _mm256_unpacklo_ps(p10, p11), bhi = _mm256_unpackhi_ps(p10, p11);
        float top[16], bottom[16];
        _mm256_storeu_ps(top, _mm256_permute2f128_ps(tlo, thi, 0x20)); _mm256_storeu_ps(top + 8, _mm256_permute2f128_ps(tlo, thi, 0x31));
        _mm256_storeu_ps(bottom, _mm256_permute2f128_ps(blo, bhi, 0x20)); _mm256_storeu_ps(bottom + 8, _mm256_permute2f128_ps(blo, bhi, 0x31));
        for (int i = 0; i < 8; i++) { memcpy(dx + at[i], top + 2 * i, 8); memcpy(dx + at[i] + w, bottom + 2 * i, 8); }
    }
    for (; k < total; k++) {
        size_t at; long local;
        window_start(&g, &at, &local);
        long off = (long)argmax[k] - local;
        float v = 0.0f + dy[k];
        dx[at] = off == 0 ? v : 0.0f; dx[at + 1] = off == 1 ? v : 0.0f;
        dx[at + w] = off == (long)w ? v : 0.0f; dx[at + w + 1] = off == (long)w + 1 ? v : 0.0f;
    }
    if (h % 2 == 0 && w % 2 == 0) return;
    for (size_t p = 0; p < planes; p++) {                // an odd last column or row
        float *xp = dx + p * h * w;
        if (w % 2) for (size_t iy = 0; iy < 2 * g.oh; iy++) xp[iy * w + w - 1] = 0.0f;
        for (size_t i = 2 * g.oh * w; i < h * w; i++) xp[i] = 0.0f;
    }
}
#endif

// The widest 2x2 max-pooling kernel that may run: 16 lanes (AVX-512, maxpool_avx512.c), 8
// (AVX2) or 1 (the scalar loop). The tests narrow it to compare the three bit for bit, while
// other tests pool on other threads: hence the atomic reads and writes.
static int maxpool_max_lanes = 16;
void attrib_maxpool_set_max_lanes(int lanes) {
    __atomic_store_n(&maxpool_max_lanes, lanes >= 16 ? 16 : lanes >= 8 ? 8 : 1, __ATOMIC_RELAXED);
}
static int maxpool_cap(void) { return __atomic_load_n(&maxpool_max_lanes, __ATOMIC_RELAXED); }

void attrib_maxpool_tiled_forward_f32(const float *x, float *y, int32_t *argmax, size_t planes,
                                      size_t h, size_t w, size_t kh, size_t kw) {
    int cap = maxpool_cap();
    if (kh == 2 && kw == 2 && cap >= 16 && attrib_maxpool2x2_forward_avx512(x, y, argmax, planes, h, w)) return;
#ifdef POOL_AVX2
    if (kh == 2 && kw == 2 && h >= 2 && w >= 2 && cap >= 8 && cpu_has_avx2()) { maxpool2x2_forward_avx2(x, y, argmax, planes, h, w); return; }
#endif
    if (kh == 2 && kw == 2) maxpool_forward(x, y, argmax, planes, h, w, 2, 2);
    else maxpool_forward(x, y, argmax, planes, h, w, kh, kw);
}

// Its backward: windows do not overlap, so each pixel is the maximum of at most one
// window and the gather's sum has one term: 0 + dy (a -0 gradient becomes +0, as the
// gather's sum from 0 makes it). Pixels no window's maximum (and trailing rows and
// columns no window reaches) get 0. An argmax that is none of its window's positions is
// skipped (compared with each, no division), so a corrupted index cannot write outside
// the plane. Specialised for 2x2 as the forward is.
static inline void maxpool_backward(const float *dy, const int32_t *argmax, float *dx, size_t planes,
                                    size_t h, size_t w, size_t kh, size_t kw) {
    size_t oh = h / kh, ow = w / kw;
    for (size_t p = 0; p < planes; p++) {
        const float *dyp = dy + p * oh * ow;
        const int32_t *ap = argmax + p * oh * ow;
        float *xp = dx + p * h * w;
        for (size_t i = 0; i < h * w; i++) xp[i] = 0.0f;
        for (size_t oy = 0; oy < oh; oy++) {
            for (size_t ox = 0; ox < ow; ox++) {
                long a = ap[oy * ow + ox], first = (long)(oy * kh * w + ox * kw);
                int inside = 0;
                for (size_t ky = 0; ky < kh; ky++)
                    for (size_t kx = 0; kx < kw; kx++) inside |= a == first + (long)(ky * w + kx);
                if (inside) xp[a] = 0.0f + dyp[oy * ow + ox];
            }
        }
    }
}

void attrib_maxpool_tiled_backward_f32(const float *dy, const int32_t *argmax, float *dx, size_t planes,
                                       size_t h, size_t w, size_t kh, size_t kw) {
    int cap = maxpool_cap();
    if (kh == 2 && kw == 2 && cap >= 16 && attrib_maxpool2x2_backward_avx512(dy, argmax, dx, planes, h, w)) return;
#ifdef POOL_AVX2
    if (kh == 2 && kw == 2 && h >= 2 && w >= 2 && cap >= 8 && cpu_has_avx2()) { maxpool2x2_backward_avx2(dy, argmax, dx, planes, h, w); return; }
#endif
    if (kh == 2 && kw == 2) maxpool_backward(dy, argmax, dx, planes, h, w, 2, 2);
    else maxpool_backward(dy, argmax, dx, planes, h, w, kh, kw);
}
