// The direct 3×3 convolution of lanes.h with 16 images per tile, one per AVX-512 lane, each
// element [..][16]. Why: on an AVX-512 CPU the 8-lane tiles use half of each FMA; relu-cnn's
// convolutions were 65% of its IG op time on the Emerald Rapids VM.
//
// The same sum as lanes.h's conv_block in every lane: the bias (or 0), then kernel rows kh
// ascending, input channels ascending, kernel columns kw ascending, each term one FMA. So a
// result does not depend on the tile width either: 16-lane and 8-lane tiles give the same
// bits (ConvTileWidthTests).
#ifndef ATTRIB_LANES16_H
#define ATTRIB_LANES16_H
#include "lanes.h"

#if defined(__x86_64__)

__attribute__((target("avx512f"), always_inline))
static inline void conv_block16(const float *restrict xt, float *restrict yt, const float *restrict wt,
                                const float *restrict bias, size_t c, size_t w, size_t oc,
                                size_t oy, size_t kh0, size_t kh1, size_t o, size_t ox0,
                                const int NO, const int NX, const int LEFT, const int RIGHT) {
    __m512 acc[2][4];
#pragma clang loop unroll(full)
    for (int a = 0; a < 2; a++) {
        __m512 b0 = bias && a < NO ? _mm512_set1_ps(bias[o + a]) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++) acc[a][j] = b0;
    }
    for (size_t kh = kh0; kh < kh1; kh++) {
        const size_t iy = oy + kh - 1;
        for (size_t ic = 0; ic < c; ic++) {
            const float *xr = xt + ((iy * c + ic) * w + ox0) * 16;    // lanes of input column ox0
            const float *w0 = wt + ((o * c + ic) * 3 + kh) * 3, *w1 = w0 + c * 9;
#pragma clang loop unroll(full)
            for (int kw = 0; kw < 3; kw++) {
                const __m512 b0 = _mm512_set1_ps(w0[kw]);
                const __m512 b1 = NO > 1 ? _mm512_set1_ps(w1[kw]) : b0;
#pragma clang loop unroll(full)
                for (int j = 0; j < 4; j++) {
                    const int r = j + kw - 1;                            // input column ox0 + r
                    if (j >= NX || (LEFT && r < 0) || (RIGHT && r >= NX)) continue;
                    const __m512 xv = _mm512_load_ps(xr + r * 16);
                    acc[0][j] = _mm512_fmadd_ps(b0, xv, acc[0][j]);
                    if (NO > 1) acc[1][j] = _mm512_fmadd_ps(b1, xv, acc[1][j]);
                }
            }
        }
    }
#pragma clang loop unroll(full)
    for (int a = 0; a < 2; a++)
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++)
            if (a < NO && j < NX) _mm512_store_ps(yt + ((oy * oc + o + a) * w + ox0 + j) * 16, acc[a][j]);
}

#define CONV_BLOCK16(NO, NX, L, R) conv_block16(xt, yt, wt, bias, c, w, oc, oy, kh0, kh1, o, ox0, NO, NX, L, R)
#define CONV_BLOCK16_LR(NO, NX) \
    (left ? (right ? CONV_BLOCK16(NO, NX, 1, 1) : CONV_BLOCK16(NO, NX, 1, 0)) \
          : (right ? CONV_BLOCK16(NO, NX, 0, 1) : CONV_BLOCK16(NO, NX, 0, 0)))
#define CONV_BLOCK16_X(NO) \
    switch (nx) { case 1: CONV_BLOCK16_LR(NO, 1); break; case 2: CONV_BLOCK16_LR(NO, 2); break; \
                  case 3: CONV_BLOCK16_LR(NO, 3); break; default: CONV_BLOCK16_LR(NO, 4); break; }

// yt [H][OC][W][16] from xt [H][C][W][16]: conv_tile's loops over 16-lane blocks.
__attribute__((target("avx512f")))
static void conv_tile16(const float *restrict xt, float *restrict yt, const float *restrict wt, const float *restrict bias,
                        size_t c, size_t h, size_t w, size_t oc) {
    for (size_t oy = 0; oy < h; oy++) {
        const size_t kh0 = oy == 0 ? 1 : 0, kh1 = oy + 1 < h ? 3 : 2;
        for (size_t o = 0; o < oc; o += 2) {
            for (size_t ox0 = 0; ox0 < w; ox0 += 4) {
                const size_t nx = w - ox0 < 4 ? w - ox0 : 4;
                const int left = ox0 == 0, right = ox0 + nx == w;
                if (o + 1 < oc) { CONV_BLOCK16_X(2) } else { CONV_BLOCK16_X(1) }
            }
        }
    }
}

// t [d][16] from `lanes` rows of d floats, row stride d; lanes after `lanes` are 0. Whole
// tiles go as two 8 × 8 register transposes per 8 elements (lanes 0–7, then 8–15).
__attribute__((target("avx2")))
static void to_lanes16(const float *x, size_t lanes, size_t d, float *restrict t) {
    size_t e = 0;
    if (lanes == 16) {
        for (; e + 8 <= d; e += 8)
            for (int half = 0; half < 2; half++) {
                __m256 r[8];
                for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(x + (half * 8 + l) * d + e);
                transpose8(r);
                for (int k = 0; k < 8; k++) _mm256_store_ps(t + (e + k) * 16 + half * 8, r[k]);
            }
    }
    for (; e < d; e++)
        for (size_t l = 0; l < 16; l++) t[e * 16 + l] = l < lanes ? x[l * d + e] : 0.0f;
}

// `lanes` rows of d floats, row stride d, from t [d][16].
__attribute__((target("avx2")))
static void from_lanes16(const float *restrict t, size_t lanes, size_t d, float *y) {
    size_t e = 0;
    if (lanes == 16) {
        for (; e + 8 <= d; e += 8)
            for (int half = 0; half < 2; half++) {
                __m256 r[8];
                for (int k = 0; k < 8; k++) r[k] = _mm256_load_ps(t + (e + k) * 16 + half * 8);
                transpose8(r);
                for (int l = 0; l < 8; l++) _mm256_storeu_ps(y + (half * 8 + l) * d + e, r[l]);
            }
    }
    for (; e < d; e++)
        for (size_t l = 0; l < lanes; l++) y[l * d + e] = t[e * 16 + l];
}

#endif
#endif
