// The lanes of a tile: 8 small images (or 8 steps of one IG path) side by side, one per
// AVX2 lane, each element [..][8] (16 per AVX-512 lane for conv3x3.c's op). The direct 3×3
// convolution (conv_lanes_body.h, for both widths: conv_tile8, conv_tile16, …), the 2×2
// pooling and the transposes in and out, shared by conv3x3.c (op by op) and cnn_path.c (a
// whole IG path).
// Every function is static: each file that includes this gets its own copy, inlined
// where it is called.
#ifndef ATTRIB_LANES_H
#define ATTRIB_LANES_H
#include <stddef.h>
#include <stdlib.h>
#include "cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>

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

#define LN 8
#define SUF 8
#define VEC __m256
#define V_TARGET "avx2,fma"
#define V_LOAD _mm256_load_ps
#define V_STORE _mm256_store_ps
#define V_SET1 _mm256_set1_ps
#define V_ZERO _mm256_setzero_ps
#define V_FMA _mm256_fmadd_ps
#include "conv_lanes_body.h"

// 16 images per tile, one per AVX-512 lane (conv3x3.c where the CPU has AVX-512 Foundation):
// on such a CPU the 8-lane tiles use half of each FMA.
#define LN 16
#define SUF 16
#define VEC __m512
#define V_TARGET "avx512f"
#define V_LOAD _mm512_load_ps
#define V_STORE _mm512_store_ps
#define V_SET1 _mm512_set1_ps
#define V_ZERO _mm512_setzero_ps
#define V_FMA _mm512_fmadd_ps
#include "conv_lanes_body.h"

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
