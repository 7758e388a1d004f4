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
#include "packed_layout.h"
#include <stdlib.h>
#include <string.h>

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

#if defined(__x86_64__)
#include <immintrin.h>

// Eight rows of B at a time: eight read streams along B's rows, and each panel gets 8 × 64
// contiguous bytes, written with streaming stores (the packed copy is read much later, by
// products, so it need not pass through the cache; they also spare the read-for-ownership of
// every line). 3× the speed of copying one row's 16-float runs at a time on the 2-core VM
// (64 MB: 5–7 ms against 16 ms, both threads).
__attribute__((target("avx2")))
void attrib_sgemm_small_rows_pack_f32(const float *b, size_t ldb, size_t k, size_t n, size_t q0, size_t q1, float *packed) {
    const size_t panels = n / 16;
    for (size_t q = q0; q < q1; q++) {
        const size_t kc = block_rows(k, q);
        for (size_t r0 = 0; r0 < kc; r0 += 8) {
            const size_t rn = kc - r0 < 8 ? kc - r0 : 8;
            for (size_t p = 0; p < panels; p++) {
                const float *src = b + (q * SM_KC + r0) * ldb + p * 16;
                float *dst = packed + q * SM_KC * n + (p * kc + r0) * 16;
                for (size_t r = 0; r < rn; r++) {
                    _mm256_stream_ps(dst + r * 16, _mm256_loadu_ps(src + r * ldb));
                    _mm256_stream_ps(dst + r * 16 + 8, _mm256_loadu_ps(src + r * ldb + 8));
                }
            }
        }
    }
    _mm_sfence();   // the streaming stores are visible before the caller hands the copy to other threads
}
// 8 × 8 floats (rows r[0..7]) transposed in registers.
__attribute__((target("avx2")))
static inline void transpose8(__m256 r[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]), t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]), t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE), u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE), u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// B = Wᵀ packed straight from W [n, k] (w[row·ldw + col]), the same layout as packing a
// stored Wᵀ: panel p of B is rows 16p ..< 16p + 16 of W, so each K block of a panel is a
// 16 × kc slab of W transposed, 8 × 8 at a time in registers. W is read along its rows (16
// streams), the panel written in order with streaming stores. A Linear layer makes this copy
// instead of a plain Wᵀ, at the same cost (one pass over W into a new buffer).
__attribute__((target("avx2")))
void attrib_sgemm_small_rows_pack_transposed_f32(const float *w, size_t ldw, size_t k, size_t n, size_t p0, size_t p1, float *packed) {
    const size_t kb = attrib_sgemm_small_rows_k_blocks(k);
    for (size_t p = p0; p < p1; p++)
        for (size_t q = 0; q < kb; q++) {
            const size_t kc = block_rows(k, q), k0 = q * SM_KC;
            const float *src = w + p * 16 * ldw + k0;
            float *dst = packed + q * SM_KC * n + p * kc * 16;
            size_t kk = 0;
            for (; kk + 8 <= kc; kk += 8) {
                __m256 lo[8], hi[8];
                for (size_t j = 0; j < 8; j++) { lo[j] = _mm256_loadu_ps(src + j * ldw + kk); hi[j] = _mm256_loadu_ps(src + (j + 8) * ldw + kk); }
                transpose8(lo); transpose8(hi);
                for (size_t t = 0; t < 8; t++) { _mm256_stream_ps(dst + (kk + t) * 16, lo[t]); _mm256_stream_ps(dst + (kk + t) * 16 + 8, hi[t]); }
            }
            for (; kk < kc; kk++)
                for (size_t j = 0; j < 16; j++) dst[kk * 16 + j] = src[j * ldw + kk];
        }
    _mm_sfence();
}
#else
void attrib_sgemm_small_rows_pack_f32(const float *b, size_t ldb, size_t k, size_t n, size_t q0, size_t q1, float *packed) {
    (void)b; (void)ldb; (void)k; (void)n; (void)q0; (void)q1; (void)packed;   // packed_count is 0 here: never called
}
void attrib_sgemm_small_rows_pack_transposed_f32(const float *w, size_t ldw, size_t k, size_t n, size_t p0, size_t p1, float *packed) {
    (void)w; (void)ldw; (void)k; (void)n; (void)p0; (void)p1; (void)packed;
}
#endif

#if defined(__x86_64__)
#include <immintrin.h>

// c[rows][16] (=, plus bias where first and bias; += where !first) the 6 × 16 product over one K block.
__attribute__((target("avx2,fma")))
static void kernel6x16(size_t kc, const float *restrict xp, const float *restrict bp, float *restrict c, size_t ldc, size_t rows, int first,
                       const float *restrict bias) {
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
        if (first && bias) {
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(bias), acc[2 * r]));
            _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(bias + 8), acc[2 * r + 1]));
        } else if (first) {
            _mm256_storeu_ps(cr, acc[2 * r]); _mm256_storeu_ps(cr + 8, acc[2 * r + 1]);
        } else {
            _mm256_storeu_ps(cr, _mm256_add_ps(_mm256_loadu_ps(cr), acc[2 * r]));
            _mm256_storeu_ps(cr + 8, _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[2 * r + 1]));
        }
    }
}

#endif

int attrib_sgemm_packed_lanes(void) {
#if defined(__x86_64__)
    if (!cpu_has_avx2_fma()) return 0;          // packing is AVX2
    return cpu_has_avx512f() ? 16 : 8;
#else
    return 0;
#endif
}

int attrib_sgemm_small_rows_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n,
                                size_t p0, size_t p1, float *c, size_t ldc, const float *bias, int lanes) {
#if defined(__x86_64__)
    if (lanes == 16) return attrib_sgemm_packed_avx512_f32(x, ldx, m, k, packed, n, p0, p1, c, ldc, bias);
    if (lanes != 8 || !cpu_has_avx2_fma() || m == 0 || k == 0 || n % 16 != 0 || p1 > n / 16 || p0 >= p1) return 0;
    const size_t groups = (m + 5) / 6, kb = attrib_sgemm_small_rows_k_blocks(k);
    // X packed for every K block. aligned_alloc needs a size that is a multiple of the
    // alignment (C11 7.22.3.1; AddressSanitizer reports it, scripts/sanitize.sh): rounded up.
    const size_t xp_bytes = (groups * 6 * k * sizeof(float) + 31) & ~(size_t)31;
    float *xp = aligned_alloc(32, xp_bytes);
    if (!xp) return 0;
    for (size_t q = 0; q < kb; q++) {
        const size_t kc = block_rows(k, q);
        pack_row_groups(x, ldx, m, q * SM_KC, kc, 6, xp + q * groups * SM_KC * 6);
    }
    for (size_t pg = p0; pg < p1; pg += SM_PG) {
        const size_t pe = pg + SM_PG < p1 ? pg + SM_PG : p1;
        for (size_t q = 0; q < kb; q++) {
            const size_t kc = block_rows(k, q);
            const float *xq = xp + q * groups * SM_KC * 6;
            for (size_t p = pg; p < pe; p++) {
                const float *bp = packed + q * SM_KC * n + p * kc * 16;
                for (size_t g = 0; g < groups; g++) {
                    const size_t rows = m - g * 6 < 6 ? m - g * 6 : 6;
                    kernel6x16(kc, xq + g * kc * 6, bp, c + g * 6 * ldc + p * 16, ldc, rows, q == 0, bias ? bias + p * 16 : NULL);
                }
            }
        }
    }
    free(xp);
    return 1;
#else
    (void)x; (void)ldx; (void)m; (void)k; (void)packed; (void)n; (void)p0; (void)p1; (void)c; (void)ldc; (void)bias; (void)lanes;
    return 0;
#endif
}
