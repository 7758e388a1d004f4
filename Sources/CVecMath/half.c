// Float32 <-> BFloat16 / Float16 for weights stored at 16 bits (DType.bfloat16/.float16).
// Widening is exact. Narrowing rounds to nearest, ties to even, as PyTorch's casts do.
// F16C converts 8 Float16 values per instruction where the CPU has it; the scalar code
// below gives the same bits everywhere else.
#include "vecmath.h"
#include "cpu_features.h"
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static inline uint32_t bits_of(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static inline float float_of(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }

float attrib_half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        // Zero or subnormal: m·2^-24, exact in Float32.
        float v = (float)m * 0x1p-24f;
        return float_of(bits_of(v) | s);
    }
    if (e == 31) return float_of(s | 0x7f800000u | (m << 13));   // ±∞, NaN (payload kept)
    return float_of(s | ((e + 112) << 23) | (m << 13));          // rebias 15 → 127
}

uint16_t attrib_float_to_half(float f) {
    uint32_t x = bits_of(f), sign = (x >> 16) & 0x8000, ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)                                        // ∞ or NaN (quiet, top payload bits kept)
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);       // ≥ 65520 rounds to ∞
    if (ax >= 0x38800000u) {                                      // normal: ≥ 2^-14
        uint32_t h = (ax - 0x38000000u) >> 13, rem = ax & 0x1fff;
        h += (rem > 0x1000) || (rem == 0x1000 && (h & 1));
        return (uint16_t)(sign | h);
    }
    if (ax <= 0x33000000u) return (uint16_t)sign;                 // ≤ 2^-25 (the tie goes to even: 0)
    // Subnormal: the significand shifted to units of 2^-24.
    uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    h += (rem > halfway) || (rem == halfway && (h & 1));
    return (uint16_t)(sign | h);
}

uint16_t attrib_float_to_bfloat16(float f) {
    uint32_t b = bits_of(f);
    if ((b & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((b >> 16) | 0x40);
    return (uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16);
}

#if defined(__x86_64__)
__attribute__((target("avx,f16c")))
static void widen_f16c(size_t n, const uint16_t *x, float *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; ++i) y[i] = attrib_half_to_float(x[i]);
}

__attribute__((target("avx,f16c")))
static void narrow_f16c(size_t n, const float *x, uint16_t *y) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; ++i) y[i] = attrib_float_to_half(x[i]);
}
#endif

void attrib_widen_half(int bfloat16, size_t n, const uint16_t *x, float *y) {
    if (bfloat16) {
        for (size_t i = 0; i < n; ++i) y[i] = float_of((uint32_t)x[i] << 16);
        return;
    }
#if defined(__x86_64__)
    if (cpu_has_avx_f16c()) { widen_f16c(n, x, y); return; }
#endif
    for (size_t i = 0; i < n; ++i) y[i] = attrib_half_to_float(x[i]);
}

void attrib_narrow_half(int bfloat16, size_t n, const float *x, uint16_t *y) {
    if (bfloat16) {
        for (size_t i = 0; i < n; ++i) y[i] = attrib_float_to_bfloat16(x[i]);
        return;
    }
#if defined(__x86_64__)
    if (cpu_has_avx_f16c()) { narrow_f16c(n, x, y); return; }
#endif
    for (size_t i = 0; i < n; ++i) y[i] = attrib_float_to_half(x[i]);
}

void attrib_gather_rows_half(int bfloat16, size_t n, size_t cols, const int32_t *idx,
                             const uint16_t *table, float *y) {
    for (size_t i = 0; i < n; ++i)
        attrib_widen_half(bfloat16, cols, table + (size_t)idx[i] * cols, y + i * cols);
}
