// 2x2 max pooling (stride 2) with AVX-512, forward and backward, 16 windows a step: the
// kernels pool.c dispatches to where the CPU has AVX-512F. The rule is pool.c's, in its
// order (first, right, below, below-right; a value wins where it is greater than the
// running maximum or is NaN), so values, indices and gradients are bitwise the AVX2 and
// scalar kernels'. Where the AVX2 kernel loads each window's two pairs on their own (8
// windows: 32 loads and the index arithmetic per window), these load whole vectors and
// take the windows apart with two-source permutes, which cost about a cycle each:
//
// - Narrow planes, w in {2, 4, 8, 16, 32} and h even (a ReLU CNN's 8x8 and 4x4 planes):
//   16 windows in output order, across rows and planes, cover exactly 64 consecutive
//   floats (32/w row pairs), in a pattern fixed by w. Four loads; each of a window's four
//   positions is a permute of two of them. The backward is the inverse permute.
// - Wide planes, w >= 16 not covered above (VGG's 224..28): a row pair at a time, 16
//   windows from 32 floats of each row, the last ones masked.
// Others (w < 16 not a power of two, odd h with narrow w) return 0 and pool.c's AVX2
// kernel runs.
#include "maxpool_avx512.h"
#include "cpu_features.h"
#include "maxpool_rule.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f")))

// The scalar rule (maxpool_rule.h) for one window at `at` (top-left in x), for the blocks' remainders.
static inline void window_scalar(const float *x, size_t at, size_t w, long local, float *y, int32_t *argmax) {
    const float *r0 = x + at, *r1 = r0 + w;
    size_t idx = 0;
    float m = r0[0];
    MAX_STEP(m, idx, r0[1], 1);
    MAX_STEP(m, idx, r1[0], w);
    MAX_STEP(m, idx, r1[1], w + 1);
    *y = m;
    *argmax = (int32_t)(local + (long)idx);
}

// MARK: narrow planes, 16 windows in 64 floats

// The pattern for a width w: window i of a block (row pair i / ow, column i % ow) has its
// top-left at tl[i] = (i / ow)·2w + 2·(i % ow) in the block's 64 floats.
typedef struct { int32_t tl[16]; size_t ow, shift; } pattern64;

static int narrow_pattern(size_t h, size_t w, pattern64 *p) {
    if (h % 2 || !(w == 2 || w == 4 || w == 8 || w == 16 || w == 32)) return 0;
    p->ow = w / 2;
    p->shift = (size_t)__builtin_ctzl(p->ow);
    for (int i = 0; i < 16; i++) p->tl[i] = (int32_t)((i / p->ow) * 2 * w + 2 * (i % p->ow));
    return 1;
}

// Window k's top-left offset in its plane (the argmax's origin): k mod (oh·ow) as a row
// and column of the plane's windows. `r` is the first window's k mod `per`, carried from
// block to block so that no division runs per window.
AVX512 static inline __m512i plane_local(size_t r, size_t per, const pattern64 *p) {
    __m512i q = _mm512_add_epi32(_mm512_set1_epi32((int)r), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m512i perv = _mm512_set1_epi32((int)per);
    for (__mmask16 over; (over = _mm512_cmpge_epi32_mask(q, perv)); ) q = _mm512_mask_sub_epi32(q, over, q, perv);
    __m512i row = _mm512_srli_epi32(q, (unsigned)p->shift), col = _mm512_and_si512(q, _mm512_set1_epi32((int)p->ow - 1));
    return _mm512_add_epi32(_mm512_slli_epi32(row, (unsigned)p->shift + 2), _mm512_slli_epi32(col, 1));
}

// The 16 values at offsets `at` (0..63) of z0..z3: a permute of each half, then a blend.
AVX512 static inline __m512 pick(__m512 z0, __m512 z1, __m512 z2, __m512 z3, __m512i at) {
    __mmask16 high = _mm512_cmpge_epi32_mask(at, _mm512_set1_epi32(32));
    return _mm512_mask_blend_ps(high, _mm512_permutex2var_ps(z0, at, z1), _mm512_permutex2var_ps(z2, at, z3));
}

AVX512 static void forward_narrow(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w,
                                  const pattern64 *p) {
    size_t per = (h / 2) * p->ow, total = planes * per, k = 0, r = 0;
    const __m512i tl = _mm512_loadu_si512(p->tl), one = _mm512_set1_epi32(1), down = _mm512_set1_epi32((int)w);
    const __m512i tr = _mm512_add_epi32(tl, one), bl = _mm512_add_epi32(tl, down), br = _mm512_add_epi32(bl, one);
    for (; k + 16 <= total; k += 16) {
        const float *b = x + 4 * k;
        __m512 z0 = _mm512_loadu_ps(b), z1 = _mm512_loadu_ps(b + 16), z2 = _mm512_loadu_ps(b + 32), z3 = _mm512_loadu_ps(b + 48);
        __m512 m = pick(z0, z1, z2, z3, tl);
        __m512i pos = _mm512_setzero_si512();
        maxpool_step16(&m, &pos, pick(z0, z1, z2, z3, tr), 1);
        maxpool_step16(&m, &pos, pick(z0, z1, z2, z3, bl), (int)w);
        maxpool_step16(&m, &pos, pick(z0, z1, z2, z3, br), (int)w + 1);
        _mm512_storeu_ps(y + k, m);
        _mm512_storeu_si512(argmax + k, _mm512_add_epi32(plane_local(r, per, p), pos));
        for (r += 16; r >= per; r -= per) {}
    }
    for (; k < total; k++) {
        size_t q = k % per, at = (k / p->ow) * 2 * w + 2 * (k % p->ow);
        window_scalar(x, at, w, (long)((q / p->ow) * 2 * w + 2 * (q % p->ow)), y + k, argmax + k);
    }
}

// The backward's inverse pattern: float o of a block is position (below, right) of window
// i, so it is lane i (+16 where right) of the top pair (TL, TR) or of the bottom pair.
typedef struct { int32_t lane[64]; uint16_t below[4]; } inverse64;

static void inverse_pattern(size_t w, const pattern64 *p, inverse64 *inv) {
    memset(inv->below, 0, sizeof inv->below);
    for (int o = 0; o < 64; o++) {
        size_t rp = (size_t)o / (2 * w), within = (size_t)o % (2 * w), below = within >= w, col = within % w;
        inv->lane[o] = (int32_t)(rp * p->ow + col / 2 + 16 * (col % 2));
        if (below) inv->below[o / 16] |= (uint16_t)(1u << (o % 16));
    }
}

AVX512 static void backward_narrow(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w,
                                   const pattern64 *p) {
    inverse64 inv;
    inverse_pattern(w, p, &inv);
    size_t per = (h / 2) * p->ow, total = planes * per, k = 0, r = 0;
    const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32((int)w), diagonal = _mm512_set1_epi32((int)w + 1);
    for (; k + 16 <= total; k += 16) {
        // 0 + dy: a -0 gradient becomes +0, as the gather's sum from 0 makes it.
        __m512 v = _mm512_add_ps(_mm512_setzero_ps(), _mm512_loadu_ps(dy + k));
        __m512i off = _mm512_sub_epi32(_mm512_loadu_si512(argmax + k), plane_local(r, per, p));
        __m512 ptl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, _mm512_setzero_si512()), v);
        __m512 ptr = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, one), v);
        __m512 pbl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, down), v);
        __m512 pbr = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, diagonal), v);
        float *b = dx + 4 * k;
        for (int j = 0; j < 4; j++) {
            __m512i lane = _mm512_loadu_si512(inv.lane + 16 * j);
            _mm512_storeu_ps(b + 16 * j, _mm512_mask_blend_ps(inv.below[j], _mm512_permutex2var_ps(ptl, lane, ptr),
                                                              _mm512_permutex2var_ps(pbl, lane, pbr)));
        }
        for (r += 16; r >= per; r -= per) {}
    }
    for (; k < total; k++) {
        size_t q = k % per, at = (k / p->ow) * 2 * w + 2 * (k % p->ow);
        long off = (long)argmax[k] - (long)((q / p->ow) * 2 * w + 2 * (q % p->ow));
        float v = 0.0f + dy[k];
        dx[at] = off == 0 ? v : 0.0f; dx[at + 1] = off == 1 ? v : 0.0f;
        dx[at + w] = off == (long)w ? v : 0.0f; dx[at + w + 1] = off == (long)w + 1 ? v : 0.0f;
    }
}

// MARK: wide planes, a row pair at a time

static const int32_t even_odd[32] = { 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                      1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31 };
static const int32_t interleave[32] = { 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31 };

// The low n bits (n ≤ 32) as two 16-lane masks.
static inline void masks32(size_t n, __mmask16 *lo, __mmask16 *hi) {
    uint32_t bits = n >= 32 ? 0xFFFFFFFFu : (1u << n) - 1;
    *lo = (__mmask16)bits; *hi = (__mmask16)(bits >> 16);
}

AVX512 static void forward_wide(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w) {
    size_t oh = h / 2, ow = w / 2;
    const __m512i even = _mm512_loadu_si512(even_odd), odd = _mm512_loadu_si512(even_odd + 16);
    const __m512i iota2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * h * w;
        for (size_t oy = 0; oy < oh; oy++) {
            const float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            float *yl = y + (pl * oh + oy) * ow;
            int32_t *al = argmax + (pl * oh + oy) * ow;
            for (size_t ox = 0; ox < ow; ox += 16) {
                size_t n = ow - ox < 16 ? ow - ox : 16;
                __mmask16 lo, hi, out = (__mmask16)((1u << n) - 1);
                masks32(2 * n, &lo, &hi);
                const float *t = r0 + 2 * ox, *d = r1 + 2 * ox;
                __m512 t0 = _mm512_maskz_loadu_ps(lo, t), t1 = _mm512_maskz_loadu_ps(hi, t + 16);
                __m512 d0 = _mm512_maskz_loadu_ps(lo, d), d1 = _mm512_maskz_loadu_ps(hi, d + 16);
                __m512 m = _mm512_permutex2var_ps(t0, even, t1);
                __m512i pos = _mm512_setzero_si512();
                maxpool_step16(&m, &pos, _mm512_permutex2var_ps(t0, odd, t1), 1);
                maxpool_step16(&m, &pos, _mm512_permutex2var_ps(d0, even, d1), (int)w);
                maxpool_step16(&m, &pos, _mm512_permutex2var_ps(d0, odd, d1), (int)w + 1);
                __m512i local = _mm512_add_epi32(_mm512_set1_epi32((int)(2 * oy * w + 2 * ox)), iota2);
                _mm512_mask_storeu_ps(yl + ox, out, m);
                _mm512_mask_storeu_epi32(al + ox, out, _mm512_add_epi32(local, pos));
            }
        }
    }
}

AVX512 static void backward_wide(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w) {
    size_t oh = h / 2, ow = w / 2;
    const __m512i lo_half = _mm512_loadu_si512(interleave), hi_half = _mm512_loadu_si512(interleave + 16);
    const __m512i iota2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i one = _mm512_set1_epi32(1), down = _mm512_set1_epi32((int)w), diagonal = _mm512_set1_epi32((int)w + 1);
    for (size_t pl = 0; pl < planes; pl++) {
        float *xp = dx + pl * h * w;
        for (size_t oy = 0; oy < oh; oy++) {
            float *r0 = xp + 2 * oy * w, *r1 = r0 + w;
            const float *dl = dy + (pl * oh + oy) * ow;
            const int32_t *al = argmax + (pl * oh + oy) * ow;
            for (size_t ox = 0; ox < ow; ox += 16) {
                size_t n = ow - ox < 16 ? ow - ox : 16;
                __mmask16 lo, hi, in = (__mmask16)((1u << n) - 1);
                masks32(2 * n, &lo, &hi);
                __m512 v = _mm512_add_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(in, dl + ox));
                __m512i local = _mm512_add_epi32(_mm512_set1_epi32((int)(2 * oy * w + 2 * ox)), iota2);
                __m512i off = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(in, al + ox), local);
                __m512 ptl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, _mm512_setzero_si512()), v);
                __m512 ptr = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, one), v);
                __m512 pbl = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, down), v);
                __m512 pbr = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(off, diagonal), v);
                _mm512_mask_storeu_ps(r0 + 2 * ox, lo, _mm512_permutex2var_ps(ptl, lo_half, ptr));
                _mm512_mask_storeu_ps(r0 + 2 * ox + 16, hi, _mm512_permutex2var_ps(ptl, hi_half, ptr));
                _mm512_mask_storeu_ps(r1 + 2 * ox, lo, _mm512_permutex2var_ps(pbl, lo_half, pbr));
                _mm512_mask_storeu_ps(r1 + 2 * ox + 16, hi, _mm512_permutex2var_ps(pbl, hi_half, pbr));
            }
            if (w % 2) { r0[w - 1] = 0.0f; r1[w - 1] = 0.0f; }     // the column no window covers
        }
        for (size_t i = 2 * oh * w; i < h * w; i++) xp[i] = 0.0f;  // and the row
    }
}

int attrib_maxpool2x2_forward_avx512(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w) {
    if (!cpu_has_avx512f() || h < 2 || w < 2) return 0;
    pattern64 p;
    if (narrow_pattern(h, w, &p)) { forward_narrow(x, y, argmax, planes, h, w, &p); return 1; }
    if (w >= 16) { forward_wide(x, y, argmax, planes, h, w); return 1; }
    return 0;
}

int attrib_maxpool2x2_backward_avx512(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w) {
    if (!cpu_has_avx512f() || h < 2 || w < 2) return 0;
    pattern64 p;
    if (narrow_pattern(h, w, &p)) { backward_narrow(dy, argmax, dx, planes, h, w, &p); return 1; }
    if (w >= 16) { backward_wide(dy, argmax, dx, planes, h, w); return 1; }
    return 0;
}
#else
int attrib_maxpool2x2_forward_avx512(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w) {
    (void)x; (void)y; (void)argmax; (void)planes; (void)h; (void)w;
    return 0;
}
int attrib_maxpool2x2_backward_avx512(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w) {
    (void)dy; (void)argmax; (void)dx; (void)planes; (void)h; (void)w;
    return 0;
}
#endif
