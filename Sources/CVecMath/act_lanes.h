// The activations' lane math (act_lanes_body.h) at both x86-64 vector widths: 8 lanes with
// AVX2 + FMA (exp_v8, tanh_v8, …, act_run_v8) and 16 with AVX-512F (…_v16). The two give the
// same bits lane for lane; activation_lanes.c picks the widest the CPU has. Every function is
// static: each file that includes this gets its own copy (vecmath.c's softmax uses exp_v8).
// Include only where x86-64 with glibc is checked.
#ifndef ATTRIB_ACT_LANES_H
#define ATTRIB_ACT_LANES_H
#include <stddef.h>
#include <immintrin.h>
#include "act_lanes_dispatch.h"

#define LN 8
#define SUF 8
#define VEC __m256
#define MASK __m256
#define V_TARGET "avx2,fma"
#define V_LOADU _mm256_loadu_ps
#define V_STOREU _mm256_storeu_ps
#define V_SET1 _mm256_set1_ps
#define V_ZERO _mm256_setzero_ps
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
#define V_MAX _mm256_max_ps
#define V_FMADD _mm256_fmadd_ps
#define V_FNMADD _mm256_fnmadd_ps
#define V_FMSUB _mm256_fmsub_ps
#define V_ROUND(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_ABS(x) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x)
#define V_WITH_SIGN(a, v) _mm256_or_ps(a, _mm256_and_ps(_mm256_set1_ps(-0.0f), v))
#define V_LT(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define V_GE(a, b) _mm256_cmp_ps(a, b, _CMP_GE_OQ)
#define V_EQ(a, b) _mm256_cmp_ps(a, b, _CMP_EQ_OQ)
#define V_SELECT(m, t, f) _mm256_blendv_ps(f, t, m)
#define V_POW2_HALVES(k, s1, s2) do { \
        __m256i ki_ = _mm256_cvtps_epi32(k), k1_ = _mm256_srai_epi32(ki_, 1), k2_ = _mm256_sub_epi32(ki_, k1_); \
        s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1_, _mm256_set1_epi32(127)), 23)); \
        s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2_, _mm256_set1_epi32(127)), 23)); \
    } while (0)
#include "act_lanes_body.h"

// AVX-512F: the sign-bit operations through the integer forms (the float ones are AVX-512DQ),
// compares into mask registers.
#define LN 16
#define SUF 16
#define VEC __m512
#define MASK __mmask16
#define V_TARGET "avx512f"
#define V_LOADU _mm512_loadu_ps
#define V_STOREU _mm512_storeu_ps
#define V_SET1 _mm512_set1_ps
#define V_ZERO _mm512_setzero_ps
#define V_ADD _mm512_add_ps
#define V_SUB _mm512_sub_ps
#define V_MUL _mm512_mul_ps
#define V_DIV _mm512_div_ps
#define V_MAX _mm512_max_ps
#define V_FMADD _mm512_fmadd_ps
#define V_FNMADD _mm512_fnmadd_ps
#define V_FMSUB _mm512_fmsub_ps
#define V_ROUND(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_ABS(x) _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_set1_epi32((int)0x80000000u), _mm512_castps_si512(x)))
#define V_WITH_SIGN(a, v) _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), \
        _mm512_and_si512(_mm512_set1_epi32((int)0x80000000u), _mm512_castps_si512(v))))
#define V_LT(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define V_GE(a, b) _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ)
#define V_EQ(a, b) _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ)
#define V_SELECT(m, t, f) _mm512_mask_blend_ps(m, f, t)
#define V_POW2_HALVES(k, s1, s2) do { \
        __m512i ki_ = _mm512_cvtps_epi32(k), k1_ = _mm512_srai_epi32(ki_, 1), k2_ = _mm512_sub_epi32(ki_, k1_); \
        s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k1_, _mm512_set1_epi32(127)), 23)); \
        s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k2_, _mm512_set1_epi32(127)), 23)); \
    } while (0)
#include "act_lanes_body.h"

#endif
