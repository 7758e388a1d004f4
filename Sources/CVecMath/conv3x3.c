// The 3×3, stride-1, padding-1 convolution of small images held rows-outer ([n, H, C, W],
// Sequential's rows-outer span), computed directly on the CPU with images in the lanes.
//
// Why: the banded products (Conv2dUnrolled.Band) multiply the zeros of the dense map
// inside each band: on the digits CNN's 16×4×4 → 32×4×4 that is 82k multiply-adds an
// image where the convolution has 51k (edge pixels have 4 or 6 taps, not 9), and
// OpenBLAS packs the band's operands on every call. Here every multiply-add is one of
// the convolution's, and nothing is packed: 8 images are transposed into the lanes of a
// tile [H][C][W][8], each output (oy, oc, ox) is summed in a register over its valid taps,
// and the tile [H][OC][W][8] is transposed back.
//
// Order of the sum, per output and the same in every lane: the bias (or 0), then kernel
// rows kh ascending, input channels ascending, kernel columns kw ascending, each term
// fused (one FMA). A lane's result does not depend on the other lanes, so it does not
// depend on how images are grouped into tiles, chunks or batches.
//
// The backward (dx from dy) is the same convolution of dy with the weight flipped in both
// spatial axes and its channel axes swapped, which the caller builds once.
#include "vecmath.h"
#include <stdlib.h>
#include <string.h>

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

static int conv3x3_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
}
#endif

#if defined(__x86_64__)
// How many images of [i, i1) fill the tile starting at image i: 8 but for the last.
static inline size_t tile_lanes(size_t i, size_t i1) { return i1 - i < 8 ? i1 - i : 8; }

// The shapes the fused conv + GELU + 2×2 pooling pair takes, forward and backward:
// those of the convolution with whole 2×2 windows.
static int fused_shape_ok(size_t c, size_t h, size_t w, size_t oc) {
    return conv3x3_has_avx2_fma() && c > 0 && oc > 0 && h >= 2 && w >= 2 && h % 2 == 0 && w % 2 == 0;
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

int attrib_conv3x3_gelu_avgpool2_rows_outer_f32(const float *x, const float *weight, const float *bias, float *pooled, float *dydx,
                                                size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc) {
#if defined(__x86_64__)
    if (!fused_shape_ok(c, h, w, oc)) return 0;
    const size_t din = h * c * w, dout = h * oc * w, dpool = dout / 4;
    float *xt = aligned_alloc(32, (din + dout + dout + dpool) * 8 * sizeof(float));
    if (!xt) return 0;
    float *yt = xt + din * 8, *dt = yt + dout * 8, *pt = dt + dout * 8;
    for (size_t i = i0; i < i1; i += 8) {
        const size_t lanes = tile_lanes(i, i1);
        to_lanes(x + i * din, lanes, din, xt);
        conv_tile(xt, yt, weight, bias, c, h, w, oc);
        attrib_gelu_erf_forward_derivative_f32(yt, yt, dt, dout * 8);   // elementwise: the lanes do not matter
        pool2_lanes(yt, pt, h, oc, w);
        from_lanes(pt, lanes, dpool, pooled + i * dpool);
        from_lanes(dt, lanes, dout, dydx + i * dout);
    }
    free(xt);
    return 1;
#else
    (void)x; (void)weight; (void)bias; (void)pooled; (void)dydx; (void)i0; (void)i1; (void)c; (void)h; (void)w; (void)oc;
    return 0;
#endif
}

int attrib_avgpool2_mul_conv3x3_backward_rows_outer_f32(const float *g, const float *m, const float *flipped, float *dx,
                                                        size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc) {
#if defined(__x86_64__)
    if (!fused_shape_ok(c, h, w, oc)) return 0;
    const size_t din = h * c * w, dout = h * oc * w, dpool = dout / 4;
    float *gt = aligned_alloc(32, (dpool + dout + dout + din) * 8 * sizeof(float));
    if (!gt) return 0;
    float *mt = gt + dpool * 8, *zt = mt + dout * 8, *xt = zt + dout * 8;
    for (size_t i = i0; i < i1; i += 8) {
        const size_t lanes = tile_lanes(i, i1);
        to_lanes(g + i * dpool, lanes, dpool, gt);
        to_lanes(m + i * dout, lanes, dout, mt);
        unpool2_mul_lanes(gt, mt, zt, h, oc, w);
        conv_tile(zt, xt, flipped, NULL, oc, h, w, c);
        from_lanes(xt, lanes, din, dx + i * din);
    }
    free(gt);
    return 1;
#else
    (void)g; (void)m; (void)flipped; (void)dx; (void)i0; (void)i1; (void)c; (void)h; (void)w; (void)oc;
    return 0;
#endif
}

int attrib_conv3x3_supported(void) {
#if defined(__x86_64__)
    return conv3x3_has_avx2_fma();
#else
    return 0;
#endif
}

int attrib_conv3x3_rows_outer_f32(const float *x, const float *weight, const float *bias, float *y,
                                  size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc) {
#if defined(__x86_64__)
    if (!conv3x3_has_avx2_fma() || c == 0 || h == 0 || w == 0 || oc == 0) return 0;
    const size_t din = h * c * w, dout = h * oc * w;
    // One input tile and one output tile, 32-byte aligned for the lanes' loads and stores.
    float *xt = aligned_alloc(32, (din + dout) * 8 * sizeof(float));
    if (!xt) return 0;
    float *yt = xt + din * 8;
    for (size_t i = i0; i < i1; i += 8) {
        const size_t lanes = tile_lanes(i, i1);
        to_lanes(x + i * din, lanes, din, xt);
        conv_tile(xt, yt, weight, bias, c, h, w, oc);
        from_lanes(yt, lanes, dout, y + i * dout);
    }
    free(xt);
    return 1;
#else
    (void)x; (void)weight; (void)bias; (void)y; (void)i0; (void)i1; (void)c; (void)h; (void)w; (void)oc;
    return 0;
#endif
}
