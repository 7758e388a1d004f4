// C = X·B for few rows of X (an IG path of one input: 66 rows) against a large B packed
// once (a Linear layer's weight), on the CPU with AVX2 and FMA.
//
// Why: OpenBLAS packs B on every call. With hundreds of rows that copy is shared by all of
// them; with 66 it was a fifth of the product's time (the wide MLP's 66 × 4096 × 4096, in
// perf: sgemm_itcopy 17% beside sgemm_kernel 60%). A weight does not change, so it is
// packed here once, in the order the kernel reads it. Measured on the 2-core VM, median
// of 16 paired rounds against OpenBLAS split over the same 2 threads, 4096 × 4096:
// 1.55× at 6 rows, 1.27× at 30, 1.19× at 66, 1.03× at 128.
//
// Layout of the packed B [K][N]: blocks of SM_KC rows of K (the last one shorter), each as
// N/16 panels of [rows of the block][16]. Loops: for a group of SM_PG
// panels (C's block of 66 × 256 stays in L2), for each K block (X's packed block stays in
// L2, B's panels stream from memory once), for each panel and each group of 6 rows of X:
// the 6 × 16 kernel, 12 accumulators in registers.
#include "vecmath.h"
#include "cpu_features.h"
#include <stdlib.h>
#include <string.h>

#define SM_KC 512
#define SM_PG 16

size_t attrib_sgemm_small_rows_packed_count(size_t k, size_t n) {
#if defined(__x86_64__)
    if (!cpu_has_avx2_fma() || n % 16 != 0 || k == 0) return 0;
    return k * n;
#else
    (void)k; (void)n;
    return 0;
#endif
}

size_t attrib_sgemm_small_rows_k_blocks(size_t k) { return (k + SM_KC - 1) / SM_KC; }

// Row by row of B, each row's 16-float runs to their panels: B is read in order, once.
void attrib_sgemm_small_rows_pack_f32(const float *b, size_t ldb, size_t k, size_t n, size_t q0, size_t q1, float *packed) {
    const size_t panels = n / 16;
    for (size_t q = q0; q < q1; q++) {
        const size_t kc = k - q * SM_KC < SM_KC ? k - q * SM_KC : SM_KC;
        for (size_t kk = 0; kk < kc; kk++) {
            const float *row = b + (q * SM_KC + kk) * ldb;
            for (size_t p = 0; p < panels; p++) memcpy(packed + q * SM_KC * n + (p * kc + kk) * 16, row + p * 16, 16 * sizeof(float));
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

// X's K block [k0, k0 + kc) as groups of 6 rows, [group][kk][6], zeros past m.
static void pack_rows(const float *x, size_t ldx, size_t m, size_t k0, size_t kc, float *xp) {
    const size_t groups = (m + 5) / 6;
    for (size_t g = 0; g < groups; g++)
        for (size_t kk = 0; kk < kc; kk++)
            for (size_t r = 0; r < 6; r++) {
                const size_t row = g * 6 + r;
                xp[(g * kc + kk) * 6 + r] = row < m ? x[row * ldx + k0 + kk] : 0.0f;
            }
}

// c[rows][16] (=, or += where !first) the 6 × 16 product over one K block.
__attribute__((target("avx2,fma")))
static void kernel6x16(size_t kc, const float *restrict xp, const float *restrict bp, float *restrict c, size_t ldc, size_t rows, int first) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    for (size_t kk = 0; kk < kc; kk++) {
        const __m256 b0 = _mm256_load_ps(bp + kk * 16), b1 = _mm256_load_ps(bp + kk * 16 + 8);
        const float *xr = xp + kk * 6;
        __m256 v;
        v = _mm256_broadcast_ss(xr + 0); a0 = _mm256_fmadd_ps(v, b0, a0); a1 = _mm256_fmadd_ps(v, b1, a1);
        v = _mm256_broadcast_ss(xr + 1); a2 = _mm256_fmadd_ps(v, b0, a2); a3 = _mm256_fmadd_ps(v, b1, a3);
        v = _mm256_broadcast_ss(xr + 2); a4 = _mm256_fmadd_ps(v, b0, a4); a5 = _mm256_fmadd_ps(v, b1, a5);
        v = _mm256_broadcast_ss(xr + 3); a6 = _mm256_fmadd_ps(v, b0, a6); a7 = _mm256_fmadd_ps(v, b1, a7);
        v = _mm256_broadcast_ss(xr + 4); a8 = _mm256_fmadd_ps(v, b0, a8); a9 = _mm256_fmadd_ps(v, b1, a9);
        v = _mm256_broadcast_ss(xr + 5); a10 = _mm256_fmadd_ps(v, b0, a10); a11 = _mm256_fmadd_ps(v, b1, a11);
    }
    const __m256 acc[12] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
    for (size_t r = 0; r < rows; r++) {
        float *cr = c + r * ldc;
        if (first) {
            _mm256_storeu_ps(cr, acc[2 * r]); _mm256_storeu_ps(cr + 8, acc[2 * r + 1]);
        } else {
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), acc[2 * r]));
            _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[2 * r + 1]));
        }
    }
}

#endif

int attrib_sgemm_small_rows_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n,
                                size_t p0, size_t p1, float *c, size_t ldc) {
#if defined(__x86_64__)
    if (!cpu_has_avx2_fma() || m == 0 || k == 0 || n % 16 != 0 || p1 > n / 16 || p0 >= p1) return 0;
    const size_t groups = (m + 5) / 6, kb = (k + SM_KC - 1) / SM_KC;
    float *xp = aligned_alloc(32, groups * 6 * k * sizeof(float));              // X packed for every K block
    if (!xp) return 0;
    for (size_t q = 0; q < kb; q++) {
        const size_t kc = k - q * SM_KC < SM_KC ? k - q * SM_KC : SM_KC;
        pack_rows(x, ldx, m, q * SM_KC, kc, xp + q * groups * SM_KC * 6);
    }
    for (size_t pg = p0; pg < p1; pg += SM_PG) {
        const size_t pe = pg + SM_PG < p1 ? pg + SM_PG : p1;
        for (size_t q = 0; q < kb; q++) {
            const size_t kc = k - q * SM_KC < SM_KC ? k - q * SM_KC : SM_KC;
            const float *xq = xp + q * groups * SM_KC * 6;
            for (size_t p = pg; p < pe; p++) {
                const float *bp = packed + q * SM_KC * n + p * kc * 16;
                for (size_t g = 0; g < groups; g++) {
                    const size_t rows = m - g * 6 < 6 ? m - g * 6 : 6;
                    kernel6x16(kc, xq + g * kc * 6, bp, c + g * 6 * ldc + p * 16, ldc, rows, q == 0);
                }
            }
        }
    }
    free(xp);
    return 1;
#else
    (void)x; (void)ldx; (void)m; (void)k; (void)packed; (void)n; (void)p0; (void)p1; (void)c; (void)ldc;
    return 0;
#endif
}
