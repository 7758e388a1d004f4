// The lanes of a tile: 8 small images (or 8 steps of one IG path) side by side, one per
// AVX2 lane, each element [..][8]. The direct 3×3 convolution, the 2×2 pooling and the
// transposes in and out, shared by conv3x3.c (op by op) and cnn_path.c (a whole IG path).
// Every function is static: each file that includes this gets its own copy, inlined
// where it is called.
#ifndef ATTRIB_LANES_H
#define ATTRIB_LANES_H
#include <stddef.h>
#include "cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>

// One output block: NO output channels (o, o + 1) × NX output columns from ox0, on output
// row oy, summed over kernel rows [kh0, kh1). LEFT: the block starts at column 0 (no tap at
// ix = ox0 − 1); RIGHT: it ends at column W (no tap at ix = ox0 + NX). Every argument in
// capitals is a constant at each call site, so each copy is straight-line code with its
// accumulators in registers and no test per tap.
__attribute__((target("avx2,fma"), always_inline))
static inline void conv_block(const float *restrict xt, float *restrict yt, const float *restrict wt,
                              const float *restrict bias, size_t c, size_t w, size_t oc,
                              size_t oy, size_t kh0, size_t kh1, size_t o, size_t ox0,
                              const int NO, const int NX, const int LEFT, const int RIGHT) {
    __m256 acc[2][4];
#pragma clang loop unroll(full)
    for (int a = 0; a < 2; a++) {
        __m256 b0 = bias && a < NO ? _mm256_set1_ps(bias[o + a]) : _mm256_setzero_ps();
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++) acc[a][j] = b0;
    }
    for (size_t kh = kh0; kh < kh1; kh++) {
        const size_t iy = oy + kh - 1;
        for (size_t ic = 0; ic < c; ic++) {
            const float *xr = xt + ((iy * c + ic) * w + ox0) * 8;     // lanes of input column ox0
            const float *w0 = wt + ((o * c + ic) * 3 + kh) * 3, *w1 = w0 + c * 9;
#pragma clang loop unroll(full)
            for (int kw = 0; kw < 3; kw++) {
                const __m256 b0 = _mm256_broadcast_ss(w0 + kw);
                const __m256 b1 = NO > 1 ? _mm256_broadcast_ss(w1 + kw) : b0;
#pragma clang loop unroll(full)
                for (int j = 0; j < 4; j++) {
                    const int r = j + kw - 1;                            // input column ox0 + r
                    if (j >= NX || (LEFT && r < 0) || (RIGHT && r >= NX)) continue;
                    const __m256 xv = _mm256_load_ps(xr + r * 8);
                    acc[0][j] = _mm256_fmadd_ps(b0, xv, acc[0][j]);
                    if (NO > 1) acc[1][j] = _mm256_fmadd_ps(b1, xv, acc[1][j]);
                }
            }
        }
    }
#pragma clang loop unroll(full)
    for (int a = 0; a < 2; a++)
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++)
            if (a < NO && j < NX) _mm256_store_ps(yt + ((oy * oc + o + a) * w + ox0 + j) * 8, acc[a][j]);
}

#define CONV_BLOCK(NO, NX, L, R) conv_block(xt, yt, wt, bias, c, w, oc, oy, kh0, kh1, o, ox0, NO, NX, L, R)
#define CONV_BLOCK_LR(NO, NX) \
    (left ? (right ? CONV_BLOCK(NO, NX, 1, 1) : CONV_BLOCK(NO, NX, 1, 0)) \
          : (right ? CONV_BLOCK(NO, NX, 0, 1) : CONV_BLOCK(NO, NX, 0, 0)))
#define CONV_BLOCK_X(NO) \
    switch (nx) { case 1: CONV_BLOCK_LR(NO, 1); break; case 2: CONV_BLOCK_LR(NO, 2); break; \
                  case 3: CONV_BLOCK_LR(NO, 3); break; default: CONV_BLOCK_LR(NO, 4); break; }

// yt [H][OC][W][8] from xt [H][C][W][8].
__attribute__((target("avx2,fma")))
static void conv_tile(const float *restrict xt, float *restrict yt, const float *restrict wt, const float *restrict bias,
                      size_t c, size_t h, size_t w, size_t oc) {
    for (size_t oy = 0; oy < h; oy++) {
        const size_t kh0 = oy == 0 ? 1 : 0, kh1 = oy + 1 < h ? 3 : 2;   // rows iy = oy + kh − 1 inside the image
        for (size_t o = 0; o < oc; o += 2) {
            for (size_t ox0 = 0; ox0 < w; ox0 += 4) {
                const size_t nx = w - ox0 < 4 ? w - ox0 : 4;
                const int left = ox0 == 0, right = ox0 + nx == w;
                if (o + 1 < oc) { CONV_BLOCK_X(2) } else { CONV_BLOCK_X(1) }
            }
        }
    }
}

// The 8×8 block transpose: rows r[0..7] of 8 floats in, columns out.
__attribute__((target("avx2")))
static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20); r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20); r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31); r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31); r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// t [d][8] from `lanes` rows of d floats, row stride d; the lanes after `lanes` are 0.
__attribute__((target("avx2")))
static void to_lanes(const float *x, size_t lanes, size_t d, float *restrict t) {
    size_t e = 0;
    if (lanes == 8) {
        for (; e + 8 <= d; e += 8) {
            __m256 r[8];
            for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(x + l * d + e);
            transpose8(r);
            for (int k = 0; k < 8; k++) _mm256_store_ps(t + (e + k) * 8, r[k]);
        }
    }
    for (; e < d; e++)
        for (size_t l = 0; l < 8; l++) t[e * 8 + l] = l < lanes ? x[l * d + e] : 0.0f;
}

// `lanes` rows of d floats, row stride d, from t [d][8].
__attribute__((target("avx2")))
static void from_lanes(const float *restrict t, size_t lanes, size_t d, float *y) {
    size_t e = 0;
    if (lanes == 8) {
        for (; e + 8 <= d; e += 8) {
            __m256 r[8];
            for (int k = 0; k < 8; k++) r[k] = _mm256_load_ps(t + (e + k) * 8);
            transpose8(r);
            for (int l = 0; l < 8; l++) _mm256_storeu_ps(y + l * d + e, r[l]);
        }
    }
    for (; e < d; e++)
        for (size_t l = 0; l < lanes; l++) y[l * d + e] = t[e * 8 + l];
}

#endif

#if defined(__x86_64__)
// How many images of [i, i1) fill the tile starting at image i: 8 but for the last.
static inline size_t tile_lanes(size_t i, size_t i1) { return i1 - i < 8 ? i1 - i : 8; }

// The shapes the fused conv + GELU + 2×2 pooling pair takes, forward and backward:
// those of the convolution with whole 2×2 windows.
static int fused_shape_ok(size_t c, size_t h, size_t w, size_t oc) {
    return cpu_has_avx2_fma() && c > 0 && oc > 0 && h >= 2 && w >= 2 && h % 2 == 0 && w % 2 == 0;
}

// pt [h/2][oc][w/2][8] = the 2×2 average pooling (stride 2) of gt [h][oc][w][8] in the
// lanes, each window summed as the pooling op sums it: ((((0 + x00) + x01) + x10) + x11)·¼.
__attribute__((target("avx2")))
static void pool2_lanes(const float *restrict gt, float *restrict pt, size_t h, size_t oc, size_t w) {
    const __m256 quarter = _mm256_set1_ps(0.25f);
    for (size_t oy = 0; oy < h / 2; oy++)
        for (size_t o = 0; o < oc; o++)
            for (size_t ox = 0; ox < w / 2; ox++) {
                const float *r0 = gt + ((2 * oy * oc + o) * w + 2 * ox) * 8, *r1 = r0 + oc * w * 8;
                __m256 s = _mm256_add_ps(_mm256_setzero_ps(), _mm256_load_ps(r0));
                s = _mm256_add_ps(s, _mm256_load_ps(r0 + 8));
                s = _mm256_add_ps(s, _mm256_load_ps(r1));
                s = _mm256_add_ps(s, _mm256_load_ps(r1 + 8));
                _mm256_store_ps(pt + ((oy * oc + o) * (w / 2) + ox) * 8, _mm256_mul_ps(s, quarter));
            }
}

// zt [h][oc][w][8] = the 2×2 pooling's backward of gt [h/2][oc][w/2][8] times mt, as the
// pooling op computes it: ((0 + g)·¼)·m.
__attribute__((target("avx2")))
static void unpool2_mul_lanes(const float *restrict gt, const float *restrict mt, float *restrict zt, size_t h, size_t oc, size_t w) {
    const __m256 quarter = _mm256_set1_ps(0.25f);
    for (size_t y = 0; y < h; y++)
        for (size_t o = 0; o < oc; o++)
            for (size_t x = 0; x < w; x++) {
                const size_t e = ((y * oc + o) * w + x) * 8;
                const __m256 g = _mm256_mul_ps(_mm256_add_ps(_mm256_setzero_ps(), _mm256_load_ps(gt + (((y / 2) * oc + o) * (w / 2) + x / 2) * 8)), quarter);
                _mm256_store_ps(zt + e, _mm256_mul_ps(g, _mm256_load_ps(mt + e)));
            }
}
#endif

#endif
