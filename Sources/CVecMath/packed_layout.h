// The layout both packed-product kernels share (smallrows_gemm.c, 6 × 16 with AVX2;
// packed_gemm_avx512.c, 12 × 32): B [k, n] packed as K blocks of SM_KC rows, each as n/16
// panels of [rows][16]; X packed per K block as groups of rows, [group][kk][group size].
#ifndef ATTRIB_PACKED_LAYOUT_H
#define ATTRIB_PACKED_LAYOUT_H
#include <stddef.h>

#define SM_KC 512

// Rows of K in block q: SM_KC, the last one fewer.
static inline size_t block_rows(size_t k, size_t q) { return k - q * SM_KC < SM_KC ? k - q * SM_KC : SM_KC; }

// X rows [0, rows) for K block [k0, k0 + kc) as groups of `group` rows, [g][kk][group], zeros
// past `rows`. Inlined with a constant group at each call, so the inner loop is of fixed length.
__attribute__((always_inline))
static inline void pack_row_groups(const float *x, size_t ldx, size_t rows, size_t k0, size_t kc, size_t group, float *xp) {
    const size_t groups = (rows + group - 1) / group;
    for (size_t g = 0; g < groups; g++)
        for (size_t kk = 0; kk < kc; kk++) {
            float *dst = xp + (g * kc + kk) * group;
            for (size_t r = 0; r < group; r++) {
                const size_t row = g * group + r;
                dst[r] = row < rows ? x[row * ldx + k0 + kk] : 0.0f;
            }
        }
}
#endif
