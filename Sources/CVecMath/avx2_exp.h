// The 8-lane exp and logistic sigmoid that vecmath.c (GELU, softmax, SiLU) and logistic.c
// (tanh, sigmoid, tanh-form GELU) build on: one copy of each, inline in both.
// Include only where x86-64 with glibc is checked (AVX2 and FMA are chosen at run time).
#ifndef ATTRIB_AVX2_EXP_H
#define ATTRIB_AVX2_EXP_H
#include <immintrin.h>

// exp(x) for x ≤ 0 (or NaN, which it keeps), inline: libmvec's _ZGVdN8v_expf cost a
// call through the PLT per 8 lanes and a third of GELU's time. Cody–Waite reduction
// x = k·ln2 + r, |r| ≤ ln2/2, a degree-6 fit of exp(r) (0.8 ulp evaluated in float32),
// and 2^k applied in two halves so that results down to the subnormals come out right.
__attribute__((target("avx2,fma")))
static inline __m256 exp8(__m256 x) {
    x = _mm256_max_ps(_mm256_set1_ps(-110.0f), x);                  // exp(−110) is 0 in float; NaN stays (MAXPS returns x)
    __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.42860682030941723212e-6f), r);
    __m256 p = _mm256_set1_ps(1.382940914e-03f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.374779485e-03f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.166835919e-02f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.666642129e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.999999106e-01f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i ki = _mm256_cvtps_epi32(k), k1 = _mm256_srai_epi32(ki, 1), k2 = _mm256_sub_epi32(ki, k1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

// σ(x) for 8 lanes from one exp, with e = exp(−|x|) and d = 1 + e for the derivatives:
// σ = 1/d for x ≥ 0 and e/d below, σ(1 − σ) = e/d², the forms of Kernels/activation.cl (no
// overflow, no cancellation).
__attribute__((target("avx2,fma")))
static inline __m256 sigmoid8(__m256 v, __m256 *e_out, __m256 *d_out) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
    __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), a));
    __m256 d = _mm256_add_ps(one, e);
    __m256 pos = _mm256_div_ps(one, d), neg = _mm256_div_ps(e, d);
    *e_out = e; *d_out = d;
    return _mm256_blendv_ps(neg, pos, _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_GE_OQ));
}

#endif
