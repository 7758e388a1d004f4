// The max-pooling rule every CPU kernel follows (pool.c, maxpool_avx512.c, maxpool_general.c),
// that of CPUKernels.maxPool2d and pool.cl: a value wins where it is greater than the running
// maximum or is NaN, so the kernels give bitwise the same values and argmax.
#ifndef ATTRIB_MAXPOOL_RULE_H
#define ATTRIB_MAXPOOL_RULE_H

// One step, as selects rather than branches: on random data a branch per comparison is
// mispredicted half the time, which made the pass a third of a ReLU CNN's sweep.
// (v > m) | (v != v): greater, or NaN.
#define MAX_STEP(m, idx, v, q) do { int t_ = ((v) > (m)) | ((v) != (v)); (m) = t_ ? (v) : (m); (idx) = t_ ? (q) : (idx); } while (0)

#if defined(__x86_64__)
#include <immintrin.h>
// The same step for 16 windows: v wins where v > m or v is NaN, and its position `offset`
// (from the window's first element) with it.
__attribute__((target("avx512f")))
static inline void maxpool_step16(__m512 *m, __m512i *pos, __m512 v, int offset) {
    __mmask16 t = _mm512_cmp_ps_mask(v, *m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    *m = _mm512_mask_blend_ps(t, *m, v);
    *pos = _mm512_mask_blend_epi32(t, *pos, _mm512_set1_epi32(offset));
}
#endif
#endif
