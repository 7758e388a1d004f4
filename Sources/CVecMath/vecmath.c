#include "vecmath.h"
#include <math.h>

#define INV_SQRT2 0.70710678118654752440f
#define INV_SQRT_2PI 0.39894228040143267794f

static inline float gelu_f(float x) {
    float cdf = 0.5f * erfcf(-x * INV_SQRT2);
    return cdf == 0.0f ? 0.0f : x * cdf;
}

static inline float gelu_df(float x) {
    float cdf = 0.5f * erfcf(-x * INV_SQRT2);
    float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
    return pdf == 0.0f ? cdf : cdf + x * pdf;
}

#if defined(__x86_64__) && defined(__GLIBC__)
#include <immintrin.h>
__attribute__((target("avx2"))) __m256 _ZGVdN8v_erfcf(__m256);
__attribute__((target("avx2"))) __m256 _ZGVdN8v_expf(__m256);

// The scalar formulas lane-wise, zero tests included, so both paths give the same
// edge cases; every AVX2 loop below is built from these three.
__attribute__((target("avx2,fma")))
static inline __m256 cdf8(__m256 v) {
    return _mm256_mul_ps(_mm256_set1_ps(0.5f), _ZGVdN8v_erfcf(_mm256_mul_ps(v, _mm256_set1_ps(-INV_SQRT2))));
}

__attribute__((target("avx2,fma")))
static inline __m256 gelu8(__m256 v, __m256 cdf) {
    const __m256 zero = _mm256_setzero_ps();
    return _mm256_blendv_ps(_mm256_mul_ps(v, cdf), zero, _mm256_cmp_ps(cdf, zero, _CMP_EQ_OQ));
}

__attribute__((target("avx2,fma")))
static inline __m256 dgelu8(__m256 v, __m256 cdf) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 pdf = _mm256_mul_ps(_mm256_set1_ps(INV_SQRT_2PI),
                               _ZGVdN8v_expf(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(-0.5f), v), v)));
    __m256 d = _mm256_add_ps(cdf, _mm256_mul_ps(v, pdf));
    return _mm256_blendv_ps(d, cdf, _mm256_cmp_ps(pdf, zero, _CMP_EQ_OQ));
}

// Each loop runs its last n mod 8 elements through the same 8-lane formula, padded
// with zeros: every element gets the vector result wherever a call's range starts
// and ends (parallel chunks, planes of a fused pooling), so results never depend
// on how an array was split.
static inline size_t tail_copy(float *dst, const float *src, size_t i, size_t n) {
    size_t k = 0;
    for (; i + k < n; k++) dst[k] = src[i + k];
    for (size_t j = k; j < 8; j++) dst[j] = 0.0f;
    return k;
}

__attribute__((target("avx2,fma")))
static size_t forward_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, gelu8(v, cdf8(v)));
    }
    if (i < n) {
        float xb[8], yb[8];
        size_t k = tail_copy(xb, x, i, n);
        __m256 v = _mm256_loadu_ps(xb);
        _mm256_storeu_ps(yb, gelu8(v, cdf8(v)));
        for (size_t j = 0; j < k; j++) y[i + j] = yb[j];
    }
    return n;
}

__attribute__((target("avx2,fma")))
static size_t backward_avx2(const float *x, const float *dy, float *dx, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), dgelu8(v, cdf8(v))));
    }
    if (i < n) {
        float xb[8], db[8], rb[8];
        size_t k = tail_copy(xb, x, i, n);
        tail_copy(db, dy, i, n);
        __m256 v = _mm256_loadu_ps(xb);
        _mm256_storeu_ps(rb, _mm256_mul_ps(_mm256_loadu_ps(db), dgelu8(v, cdf8(v))));
        for (size_t j = 0; j < k; j++) dx[i + j] = rb[j];
    }
    return n;
}

// Both at once: one erfc serves y and the derivative (the backward pass then
// only multiplies), with the same lane-wise formulas, so results are bitwise the same.
__attribute__((target("avx2,fma")))
static size_t forward_derivative_avx2(const float *x, float *y, float *dydx, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i), cdf = cdf8(v);
        _mm256_storeu_ps(y + i, gelu8(v, cdf));
        _mm256_storeu_ps(dydx + i, dgelu8(v, cdf));
    }
    if (i < n) {
        float xb[8], yb[8], db[8];
        size_t k = tail_copy(xb, x, i, n);
        __m256 v = _mm256_loadu_ps(xb), cdf = cdf8(v);
        _mm256_storeu_ps(yb, gelu8(v, cdf));
        _mm256_storeu_ps(db, dgelu8(v, cdf));
        for (size_t j = 0; j < k; j++) { y[i + j] = yb[j]; dydx[i + j] = db[j]; }
    }
    return n;
}

static int has_avx2(void) {
    static int cached = -1;
    if (cached < 0) cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
}
#endif

void attrib_gelu_erf_forward_f32(const float *x, float *y, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (has_avx2()) i = forward_avx2(x, y, n);
#endif
    for (; i < n; i++) y[i] = gelu_f(x[i]);
}

void attrib_gelu_erf_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (has_avx2()) i = backward_avx2(x, dy, dx, n);
#endif
    for (; i < n; i++) dx[i] = dy[i] * gelu_df(x[i]);
}

void attrib_gelu_erf_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (has_avx2()) i = forward_derivative_avx2(x, y, dydx, n);
#endif
    for (; i < n; i++) { y[i] = gelu_f(x[i]); dydx[i] = gelu_df(x[i]); }
}

// Fused with average pooling (stride = kernel): GELU and its derivative per group
// of planes into a buffer on the stack, then the pooling of that buffer, so GELU's
// output never reaches memory. Same element results and the same summation order
// as the two passes apart, hence bitwise the same.
#define FUSED_GROUP_FLOATS ATTRIB_FUSED_PLANE_MAX

int attrib_gelu_erf_avgpool_forward_f32(const float *x, float *pooled, float *dydx, size_t planes,
                                        size_t h, size_t w, size_t kh, size_t kw) {
    size_t hw = h * w, ohw = (h / kh) * (w / kw);
    if (hw == 0 || hw > FUSED_GROUP_FLOATS || kh == 0 || kw == 0) return 0;   // nothing written
    size_t group = FUSED_GROUP_FLOATS / hw;
    float buf[FUSED_GROUP_FLOATS];
    for (size_t p = 0; p < planes; p += group) {
        size_t g = planes - p < group ? planes - p : group;
        attrib_gelu_erf_forward_derivative_f32(x + p * hw, buf, dydx + p * hw, g * hw);
        attrib_avgpool_tiled_forward_f32(buf, pooled + p * ohw, g, h, w, kh, kw);
    }
    return 1;
}

// dx = avgPoolBackward(dy) ⊙ m per group of planes, the product taken while the
// group is still in L1: the same two roundings as the passes apart.
void attrib_avgpool_tiled_backward_mul_f32(const float *dy, const float *m, float *dx, size_t planes,
                                           size_t h, size_t w, size_t kh, size_t kw) {
    if (kh == 2 && kw == 2) { attrib_avgpool_2x2_backward_mul_f32(dy, m, dx, planes, h, w); return; }
    size_t hw = h * w, ohw = (h / kh) * (w / kw);
    size_t group = hw >= FUSED_GROUP_FLOATS ? 1 : FUSED_GROUP_FLOATS / hw;
    for (size_t p = 0; p < planes; p += group) {
        size_t g = planes - p < group ? planes - p : group;
        float *out = dx + p * hw;
        const float *mp = m + p * hw;
        attrib_avgpool_tiled_backward_f32(dy + p * ohw, out, g, h, w, kh, kw);
        for (size_t i = 0; i < g * hw; i++) out[i] = out[i] * mp[i];
    }
}
