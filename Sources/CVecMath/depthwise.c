// Depthwise convolutions in Float32 (one filter per channel; CPUDevice+Depthwise.swift says
// why they run apart from the grouped path), plane by plane.
//
// Each plane is first laid out padded and split by column phase: with stride sw, phase φ holds
// the padded columns φ, φ + sw, φ + 2sw, …, so that tap (ki, kj) of output row oy reads
// phase kj mod sw, row oy·sh + ki, columns kj / sw + ox for ox = 0 ..< ow: contiguous, in range,
// no per-tap bounds. Every tap is then one loop the compiler vectorises. The backward is the same
// walk with the roles swapped, summed into phase planes and folded back into dx.
#include "vecmath.h"
#include "cpu_features.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

// Extents of the phase layout of an h × w plane padded by (ph, pw) for stride sw.
typedef struct { size_t rows, cols, phase; } phases;
static phases layout(size_t h, size_t w, size_t ph, size_t pw, size_t sw) {
    const size_t pcols = w + 2 * pw;
    phases p = { h + 2 * ph, (pcols + sw - 1) / sw, 0 };
    p.phase = p.rows * p.cols;
    return p;
}

// 0 turns the AVX-512 rows off (the tests compare both ways); 1, the default, uses them where the CPU has them.
static int avx512_allowed = 1;
void attrib_depthwise_set_avx512(int allowed) { avx512_allowed = allowed; }

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f")))
static inline __mmask16 tail_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// The forward's output rows with AVX-512: 16 columns at a time held in a register across all
// kh·kw taps (FMAs), the last group under a mask; the bias first, as the scalar loop.
AVX512 static void forward_rows_avx512(const float *buf, const phases *L, const float *wp, float b, float *yp,
                                       size_t oh, size_t ow, size_t kh, size_t kw, size_t sh, size_t sw) {
    for (size_t oy = 0; oy < oh; oy++)
        for (size_t ox = 0; ox < ow; ox += 16) {
            const __mmask16 m = tail_mask(ow - ox);
            __m512 acc = _mm512_set1_ps(b);
            for (size_t ki = 0; ki < kh; ki++) {
                const float *row = buf + (oy * sh + ki) * L->cols + ox;
                for (size_t kj = 0; kj < kw; kj++) {
                    const float *src = row + (kj % sw) * L->phase + kj / sw;
                    acc = _mm512_fmadd_ps(_mm512_set1_ps(wp[ki * kw + kj]), _mm512_maskz_loadu_ps(m, src), acc);
                }
            }
            _mm512_mask_storeu_ps(yp + oy * ow + ox, m, acc);
        }
}

// The backward's spread into the phase planes with AVX-512, 16 columns at a time under a mask.
// Taps outermost: consecutive stores then go to rows sh apart. With the taps innermost, each
// load overlapped the masked store of the tap before it by all but one lane, which the store
// buffer cannot forward: slower than the scalar loop.
AVX512 static void backward_rows_avx512(float *buf, const phases *L, const float *wp, const float *dyp,
                                        size_t oh, size_t ow, size_t kh, size_t kw, size_t sh, size_t sw) {
    for (size_t ki = 0; ki < kh; ki++)
        for (size_t kj = 0; kj < kw; kj++) {
            const __m512 wv = _mm512_set1_ps(wp[ki * kw + kj]);
            float *base = buf + (kj % sw) * L->phase + ki * L->cols + kj / sw;
            for (size_t oy = 0; oy < oh; oy++) {
                float *dst = base + oy * sh * L->cols;
                const float *g = dyp + oy * ow;
                for (size_t ox = 0; ox < ow; ox += 16) {
                    const __mmask16 m = tail_mask(ow - ox);
                    const __m512 v = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, g + ox), _mm512_maskz_loadu_ps(m, dst + ox));
                    _mm512_mask_storeu_ps(dst + ox, m, v);
                }
            }
        }
}
#endif

// Positions [q0, q1) of phase f whose padded column q·sw + f is a column of the plane:
// pw ≤ q·sw + f ≤ w − 1 + pw. Spelled without integer division in the copy loops' bodies.
static inline void span(size_t f, size_t w, size_t pw, size_t sw, size_t cols, size_t *q0, size_t *q1) {
    *q0 = f >= pw ? 0 : (pw - f + sw - 1) / sw;
    const size_t last = w - 1 + pw;                            // the last padded column of the plane
    *q1 = f > last ? 0 : (last - f) / sw + 1;
    if (*q1 > cols) *q1 = cols;
    if (*q0 > *q1) *q0 = *q1;
}

// A plane [h][w] into its phase layout in buf (from `in`), or buf's plane entries back out
// (into `out`): the forward's copy in and the backward's fold out, one walk. Exactly one of
// `in` and `out` is given; the padding in buf is left as it is.
static void phase_copy(float *buf, const phases *L, const float *in, float *out,
                       size_t h, size_t w, size_t ph, size_t pw, size_t sw) {
    for (size_t i = 0; i < h; i++)
        for (size_t f = 0; f < sw; f++) {
            size_t q0, q1;
            span(f, w, pw, sw, L->cols, &q0, &q1);
            float *restrict ph_row = buf + f * L->phase + (i + ph) * L->cols;
            // Plane column q·sw + f − pw: never negative from q0 on.
            if (in) { const float *restrict row = in + i * w; for (size_t q = q0; q < q1; q++) ph_row[q] = row[q * sw + f - pw]; }
            else { float *restrict row = out + i * w; for (size_t q = q0; q < q1; q++) row[q * sw + f - pw] = ph_row[q]; }
        }
}

int attrib_depthwise_forward_f32(const float *x, const float *weight, const float *bias, float *y,
                                 size_t plane0, size_t plane1, size_t c, size_t h, size_t w,
                                 size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw) {
    const size_t oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
    const phases L = layout(h, w, ph, pw, sw);
    float *buf = malloc(L.phase * sw * sizeof(float));
    if (!buf) return 0;
    for (size_t plane = plane0; plane < plane1; plane++) {
        const float *xp = x + plane * h * w, *wp = weight + (plane % c) * kh * kw;
        float *yp = y + plane * oh * ow;
        memset(buf, 0, L.phase * sw * sizeof(float));
        phase_copy(buf, &L, xp, NULL, h, w, ph, pw, sw);
        const float b = bias ? bias[plane % c] : 0.0f;
#if defined(__x86_64__)
        if (avx512_allowed && cpu_has_avx512f()) { forward_rows_avx512(buf, &L, wp, b, yp, oh, ow, kh, kw, sh, sw); continue; }
#endif
        for (size_t oy = 0; oy < oh; oy++) {
            float *restrict yr = yp + oy * ow;
            for (size_t ox = 0; ox < ow; ox++) yr[ox] = b;
            for (size_t ki = 0; ki < kh; ki++)
                for (size_t kj = 0; kj < kw; kj++) {
                    const float wv = wp[ki * kw + kj];
                    const float *restrict src = buf + (kj % sw) * L.phase + (oy * sh + ki) * L.cols + kj / sw;
                    for (size_t ox = 0; ox < ow; ox++) yr[ox] += wv * src[ox];
                }
        }
    }
    free(buf);
    return 1;
}

int attrib_depthwise_backward_f32(const float *dy, const float *weight, float *dx,
                                  size_t plane0, size_t plane1, size_t c, size_t h, size_t w,
                                  size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw) {
    const size_t oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
    const phases L = layout(h, w, ph, pw, sw);
    float *buf = malloc(L.phase * sw * sizeof(float));
    if (!buf) return 0;
    for (size_t plane = plane0; plane < plane1; plane++) {
        const float *dyp = dy + plane * oh * ow, *wp = weight + (plane % c) * kh * kw;
        float *dxp = dx + plane * h * w;
        memset(buf, 0, L.phase * sw * sizeof(float));
#if defined(__x86_64__)
        if (avx512_allowed && cpu_has_avx512f()) backward_rows_avx512(buf, &L, wp, dyp, oh, ow, kh, kw, sh, sw);
        else
#endif
        for (size_t oy = 0; oy < oh; oy++) {
            const float *restrict g = dyp + oy * ow;
            for (size_t ki = 0; ki < kh; ki++)
                for (size_t kj = 0; kj < kw; kj++) {
                    const float wv = wp[ki * kw + kj];
                    float *restrict dst = buf + (kj % sw) * L.phase + (oy * sh + ki) * L.cols + kj / sw;
                    for (size_t ox = 0; ox < ow; ox++) dst[ox] += wv * g[ox];
                }
        }
        phase_copy(buf, &L, NULL, dxp, h, w, ph, pw, sw);
    }
    free(buf);
    return 1;
}
