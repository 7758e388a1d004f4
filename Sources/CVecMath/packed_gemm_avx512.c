// C = X·B (+ bias) on a B packed once (packed_layout.h, as smallrows_gemm.c packs it), with AVX-512: the kernel
// that runs a Linear layer's products of any number of rows on the CPU backend where the CPU
// has AVX-512 Foundation.
//
// Why: OpenBLAS packs B (the weight) on every call, and a weight is read from memory each
// time: a sweep runs a layer's product once per batch with other layers' weights between.
// On a 197-row product (a ViT-B/16 image) of 768 × 3072, one thread of the 2-core VM (Emerald
// Rapids) with B out of cache: 148 GFLOP/s here against OpenBLAS's 131 (SkylakeX kernels),
// 93% of the core's 160; 66 rows of 768 × 768: 117 against 93.
//
// The packed B: K blocks of SM_KC = 512 rows, each as n/16 panels of [rows][16] in a row, so
// two adjacent panels are one 16 × 2 = 32-column slab (two zmm registers a row).
// Loops, per call (one worker's panels [p0, p1)):
//   M blocks of MC rows: X's block packed once for every K block ([group][kk][12], zeros past m)
//     groups of PG panels (C's block of MC × 256 floats stays in L2 across the K blocks)
//       K blocks, then panel pairs, then SUB-row slices of the K block (the pair's slice,
//       2 × 256 × 64 B = 32 KB, stays in L1 while every group of 12 rows of X runs over it)
//         the 12 × 32 kernel: 24 accumulators, two loads of B and 12 broadcasts of X per row
//         of K against 24 FMAs, so the FMA pipes, not the loads, bound it.
// While a slice runs, the next slice of B is prefetched, a share per group of X, so its first
// pass over the slice does not wait on memory: without, 138 GFLOP/s above instead of 148.
#include "vecmath.h"
#include "cpu_features.h"
#include "packed_layout.h"
#include <stdlib.h>

#define MR 12       // rows of X per kernel call
#define MC 240      // rows of X per M block (20 groups; X's K block of them is 480 KB, in L2)
#define PG 16       // panels per group of columns
#define SUB 256     // rows of K per slice

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f")))

// c[rows][16·w] (=, plus bias where first and bias; += where !first) the MR × 16·w product
// over kc rows of K; b0, b1 the two panels' slices (b1 unread where w = 1).
#define KERNEL(name, W)                                                                               \
AVX512 static void name(size_t kc, const float *restrict xp, const float *restrict b0,              \
                        const float *restrict b1, float *restrict c, size_t ldc, size_t rows,       \
                        int first, const float *restrict bias) {                                    \
    __m512 acc[MR][W];                                                                              \
    for (int i = 0; i < MR; i++) for (int j = 0; j < W; j++) acc[i][j] = _mm512_setzero_ps();       \
    for (size_t kk = 0; kk < kc; kk++) {                                                            \
        __m512 b[W];                                                                                \
        b[0] = _mm512_load_ps(b0 + kk * 16);                                                        \
        if (W == 2) b[W - 1] = _mm512_load_ps(b1 + kk * 16);                                        \
        const float *xr = xp + kk * MR;                                                             \
        _Pragma("clang loop unroll(full)")                                                          \
        for (int i = 0; i < MR; i++) {                                                              \
            const __m512 v = _mm512_set1_ps(xr[i]);                                                 \
            for (int j = 0; j < W; j++) acc[i][j] = _mm512_fmadd_ps(v, b[j], acc[i][j]);            \
        }                                                                                           \
    }                                                                                               \
    for (size_t r = 0; r < rows; r++) {                                                             \
        float *cr = c + r * ldc;                                                                    \
        for (int j = 0; j < W; j++) {                                                               \
            __m512 v = acc[r][j];                                                                   \
            if (!first) v = _mm512_add_ps(_mm512_loadu_ps(cr + 16 * j), v);                         \
            else if (bias) v = _mm512_add_ps(_mm512_loadu_ps(bias + 16 * j), v);                    \
            _mm512_storeu_ps(cr + 16 * j, v);                                                       \
        }                                                                                           \
    }                                                                                               \
}
KERNEL(kernel12x32, 2)
KERNEL(kernel12x16, 1)

// Prefetches lines [l0, l1) of a slice of `lines` 64-byte rows of one or two panels.
static inline void prefetch_lines(const float *b0, const float *b1, size_t l0, size_t l1) {
    for (size_t l = l0; l < l1; l++) {
        _mm_prefetch((const char *)(b0 + l * 16), _MM_HINT_T0);
        if (b1) _mm_prefetch((const char *)(b1 + l * 16), _MM_HINT_T0);
    }
}

int attrib_sgemm_packed_avx512_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n,
                                   size_t p0, size_t p1, float *c, size_t ldc, const float *bias) {
    if (!cpu_has_avx512f() || m == 0 || k == 0 || n % 16 != 0 || p1 > n / 16 || p0 >= p1) return 0;
    const size_t kb = attrib_sgemm_small_rows_k_blocks(k), mc_max = m < MC ? m : MC;
    const size_t groups_max = (mc_max + MR - 1) / MR;
    // aligned_alloc needs a size that is a multiple of the alignment (C11 7.22.3.1): rounded up.
    const size_t xp_bytes = (groups_max * MR * k * sizeof(float) + 63) & ~(size_t)63;
    float *xp = aligned_alloc(64, xp_bytes);
    if (!xp) return 0;
    for (size_t m0 = 0; m0 < m; m0 += MC) {
        const size_t mc = m - m0 < MC ? m - m0 : MC, groups = (mc + MR - 1) / MR;
        for (size_t q = 0; q < kb; q++) pack_row_groups(x + m0 * ldx, ldx, mc, q * SM_KC, block_rows(k, q), MR, xp + q * groups * SM_KC * MR);
        float *cm = c + m0 * ldc;
        for (size_t pg = p0; pg < p1; pg += PG) {
            const size_t pe = pg + PG < p1 ? pg + PG : p1;
            for (size_t q = 0; q < kb; q++) {
                const size_t kc = block_rows(k, q);
                const float *xq = xp + q * groups * SM_KC * MR, *bq = packed + q * SM_KC * n;
                for (size_t p = pg; p < pe; p += 2) {
                    const int pair = p + 1 < pe;
                    const float *b0 = bq + p * kc * 16, *b1 = pair ? b0 + kc * 16 : NULL;
                    for (size_t s = 0; s < kc; s += SUB) {
                        const size_t sc = kc - s < SUB ? kc - s : SUB;
                        // The next slice: this pair's next rows of K, else the next pair's (or
                        // panel's) first, which follow this pair's in memory; none past the group.
                        const float *n0 = NULL, *n1 = NULL;
                        size_t nlines = 0;
                        if (s + SUB < kc) { n0 = b0 + (s + SUB) * 16; n1 = pair ? b1 + (s + SUB) * 16 : NULL; nlines = kc - s - SUB < SUB ? kc - s - SUB : SUB; }
                        else if (p + 2 < pe) { n0 = bq + (p + 2) * kc * 16; n1 = p + 3 < pe ? n0 + kc * 16 : NULL; nlines = kc < SUB ? kc : SUB; }
                        const size_t share = (nlines + groups - 1) / groups;
                        for (size_t g = 0; g < groups; g++) {
                            const size_t rows = mc - g * MR < MR ? mc - g * MR : MR;
                            if (n0) {
                                const size_t l0 = g * share, l1 = l0 + share < nlines ? l0 + share : nlines;
                                if (l0 < l1) prefetch_lines(n0, n1, l0, l1);
                            }
                            const float *xg = xq + (g * kc + s) * MR;
                            float *cg = cm + g * MR * ldc + p * 16;
                            const int first = q == 0 && s == 0;
                            const float *bg = bias ? bias + p * 16 : NULL;
                            if (pair) kernel12x32(sc, xg, b0 + s * 16, b1 + s * 16, cg, ldc, rows, first, bg);
                            else kernel12x16(sc, xg, b0 + s * 16, NULL, cg, ldc, rows, first, bg);
                        }
                    }
                }
            }
        }
    }
    free(xp);
    return 1;
}
#else
int attrib_sgemm_packed_avx512_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n,
                                   size_t p0, size_t p1, float *c, size_t ldc, const float *bias) {
    (void)x; (void)ldx; (void)m; (void)k; (void)packed; (void)n; (void)p0; (void)p1; (void)c; (void)ldc; (void)bias;
    return 0;
}
#endif
