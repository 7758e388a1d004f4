#include "vecmath.h"
#include "cpu_features.h"
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
#include "avx2_exp.h"

// Φ(x) and φ(x) for 8 lanes from one exp, where libmvec's erfcf and expf took two:
//   E = exp(−x²/2), with x² split exactly into s + e (s = fl(x·x), e = fma(x, x, −s)),
//       so that E is as accurate as expf, however large x² is; φ = E/√(2π);
//   Φ = ½·E·R(|z|) for x < 0 and 1 − ½·E·R(|z|) for x ≥ 0 (z = x/√2), R a (4, 4)
//       rational fit of erfcx(a) = erfc(a)·exp(a²) on [0, 10.5] (1.8e-7 in double,
//       3.7e-7 evaluated in float32, 6u). One formula for every x: an earlier version took
//       |z| < ½ from a polynomial for erf as well, and computed both for every lane.
//       Φ near ½ loses nothing: 1 − t for t ≤ ½ is exact to within u of Φ.
// beyond |z| = 10.5, E is 0 and Φ is 0 or 1. The fit: scripts/fit_gelu.py.
__attribute__((target("avx2,fma")))
static inline __m256 horner5(__m256 x, float c0, float c1, float c2, float c3, float c4) {
    __m256 r = _mm256_set1_ps(c4);
    r = _mm256_fmadd_ps(r, x, _mm256_set1_ps(c3));
    r = _mm256_fmadd_ps(r, x, _mm256_set1_ps(c2));
    r = _mm256_fmadd_ps(r, x, _mm256_set1_ps(c1));
    return _mm256_fmadd_ps(r, x, _mm256_set1_ps(c0));
}

__attribute__((target("avx2,fma")))
static inline __m256 cdf_pdf8(__m256 v, __m256 *pdf) {
    const __m256 half = _mm256_set1_ps(0.5f), zero = _mm256_setzero_ps();
    __m256 s = _mm256_mul_ps(v, v);
    __m256 e = _mm256_fmsub_ps(v, v, s);
    e = _mm256_blendv_ps(zero, e, _mm256_cmp_ps(s, _mm256_set1_ps(1e30f), _CMP_LT_OQ));   // x² = ∞ or NaN: no correction
    __m256 E = exp8(_mm256_mul_ps(_mm256_set1_ps(-0.5f), s));
    E = _mm256_fnmadd_ps(_mm256_mul_ps(half, e), E, E);                                    // E·(1 − e/2) = exp(−(s + e)/2)
    *pdf = _mm256_mul_ps(E, _mm256_set1_ps(INV_SQRT_2PI));
    __m256 z = _mm256_mul_ps(v, _mm256_set1_ps(INV_SQRT2));
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 r = _mm256_div_ps(horner5(a, 9.999998212e-01f, 9.763615727e-01f, 4.418083429e-01f, 8.483696729e-02f, 1.373652708e-06f),
                             horner5(a, 1.000000000e+00f, 2.104727507e+00f, 1.816897035e+00f, 7.817637324e-01f, 1.504572034e-01f));
    __m256 t = _mm256_mul_ps(_mm256_mul_ps(half, E), r);
    t = _mm256_blendv_ps(t, zero, _mm256_cmp_ps(E, zero, _CMP_EQ_OQ));                    // R(∞) is NaN; E = 0 wins
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), t), t, _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
}

// The scalar formulas' zero tests lane-wise, so both paths give the same edge cases.
__attribute__((target("avx2,fma")))
static inline __m256 gelu8(__m256 v, __m256 cdf) {
    const __m256 zero = _mm256_setzero_ps();
    return _mm256_blendv_ps(_mm256_mul_ps(v, cdf), zero, _mm256_cmp_ps(cdf, zero, _CMP_EQ_OQ));
}

__attribute__((target("avx2,fma")))
static inline __m256 dgelu8(__m256 v, __m256 cdf, __m256 pdf) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 d = _mm256_add_ps(cdf, _mm256_mul_ps(v, pdf));
    return _mm256_blendv_ps(d, cdf, _mm256_cmp_ps(pdf, zero, _CMP_EQ_OQ));
}

// One block of 8 elements each: GELU; dy·GELU′; and both at once, where one exp
// serves y and the derivative (the backward pass then only multiplies), with the same
// lane-wise formulas, so results are bitwise the same.
__attribute__((target("avx2,fma")))
static inline void forward8(const float *x, float *y) {
    __m256 v = _mm256_loadu_ps(x), pdf;
    _mm256_storeu_ps(y, gelu8(v, cdf_pdf8(v, &pdf)));
}

__attribute__((target("avx2,fma")))
static inline void backward8(const float *x, const float *dy, float *dx) {
    __m256 v = _mm256_loadu_ps(x), pdf, cdf = cdf_pdf8(v, &pdf);
    _mm256_storeu_ps(dx, _mm256_mul_ps(_mm256_loadu_ps(dy), dgelu8(v, cdf, pdf)));
}

__attribute__((target("avx2,fma")))
static inline void forward_derivative8(const float *x, float *y, float *dydx) {
    __m256 v = _mm256_loadu_ps(x), pdf, cdf = cdf_pdf8(v, &pdf);
    _mm256_storeu_ps(y, gelu8(v, cdf));
    _mm256_storeu_ps(dydx, dgelu8(v, cdf, pdf));
}

// Each loop runs its last n mod 8 elements through the same block, padded with zeros:
// every element gets the vector result wherever a call's range starts and ends
// (parallel chunks, planes of a fused pooling), so results never depend on how an
// array was split. Returns how many elements of src from i were copied.
static inline size_t tail_copy(float *dst, const float *src, size_t i, size_t n) {
    size_t k = 0;
    for (; i + k < n; k++) dst[k] = src[i + k];
    for (size_t j = k; j < 8; j++) dst[j] = 0.0f;
    return k;
}

__attribute__((target("avx2,fma")))
static size_t forward_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) forward8(x + i, y + i);
    if (i < n) {
        float xb[8], yb[8];
        size_t k = tail_copy(xb, x, i, n);
        forward8(xb, yb);
        for (size_t j = 0; j < k; j++) y[i + j] = yb[j];
    }
    return n;
}

__attribute__((target("avx2,fma")))
static size_t backward_avx2(const float *x, const float *dy, float *dx, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) backward8(x + i, dy + i, dx + i);
    if (i < n) {
        float xb[8], db[8], rb[8];
        size_t k = tail_copy(xb, x, i, n);
        tail_copy(db, dy, i, n);
        backward8(xb, db, rb);
        for (size_t j = 0; j < k; j++) dx[i + j] = rb[j];
    }
    return n;
}

__attribute__((target("avx2,fma")))
static size_t forward_derivative_avx2(const float *x, float *y, float *dydx, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) forward_derivative8(x + i, y + i, dydx + i);
    if (i < n) {
        float xb[8], yb[8], db[8];
        size_t k = tail_copy(xb, x, i, n);
        forward_derivative8(xb, yb, db);
        for (size_t j = 0; j < k; j++) { y[i + j] = yb[j]; dydx[i + j] = db[j]; }
    }
    return n;
}

__attribute__((target("avx2,fma")))
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One row's softmax (or log-softmax) with exp8: the max, then exp(x − max) written and summed
// in 8 lanes, then scaled by 1/sum (or x − max − log sum). exp8 takes x ≤ 0, which x − max is.
__attribute__((target("avx2,fma")))
static void softmax_row_avx2(const float *x, float *y, size_t cols, int log_softmax) {
    size_t i = 0;
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (; i + 8 <= cols; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float mx = -INFINITY;
    { float b[8]; _mm256_storeu_ps(b, vm); for (int j = 0; j < 8; j++) if (b[j] > mx) mx = b[j]; }
    for (; i < cols; i++) if (x[i] > mx) mx = x[i];
    __m256 m8 = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    float tail = 0.0f;
    for (i = 0; i + 8 <= cols; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m8));
        acc = _mm256_add_ps(acc, e);
        if (!log_softmax) _mm256_storeu_ps(y + i, e);
    }
    if (i < cols) {
        float xb[8], eb[8];
        size_t k = 0;
        for (; i + k < cols; k++) xb[k] = x[i + k] - mx;
        for (size_t j = k; j < 8; j++) xb[j] = -INFINITY;
        _mm256_storeu_ps(eb, exp8(_mm256_loadu_ps(xb)));
        for (size_t j = 0; j < k; j++) { tail += eb[j]; if (!log_softmax) y[i + j] = eb[j]; }
    }
    float sum = hsum8(acc) + tail;
    if (log_softmax) {
        float lse = mx + logf(sum);
        for (i = 0; i < cols; i++) y[i] = x[i] - lse;
    } else {
        __m256 inv = _mm256_set1_ps(1.0f / sum);
        for (i = 0; i + 8 <= cols; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv));
        for (; i < cols; i++) y[i] *= 1.0f / sum;
    }
}

// SiLU x·σ(x) and its derivative σ + x·σ(1 − σ) for 8 lanes from one exp (sigmoid8, avx2_exp.h).
__attribute__((target("avx2,fma")))
static size_t silu_forward_avx2(const float *x, float *y, size_t n) {
    size_t i = 0;
    __m256 e, d;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(v, sigmoid8(v, &e, &d)));
    }
    return i;
}

__attribute__((target("avx2,fma")))
static size_t silu_backward_avx2(const float *x, const float *dy, float *dx, size_t n) {
    size_t i = 0;
    __m256 e, d;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 s = sigmoid8(v, &e, &d);
        __m256 g = _mm256_fmadd_ps(v, _mm256_div_ps(e, _mm256_mul_ps(d, d)), s);
        _mm256_storeu_ps(dx + i, _mm256_mul_ps(_mm256_loadu_ps(dy + i), g));
    }
    return i;
}

#endif

static inline float sigmoid_f(float x) {
    float e = expf(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

void attrib_silu_forward_f32(const float *x, float *y, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cpu_has_avx2_fma()) i = silu_forward_avx2(x, y, n);
#endif
    for (; i < n; i++) y[i] = x[i] * sigmoid_f(x[i]);
}

void attrib_silu_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cpu_has_avx2_fma()) i = silu_backward_avx2(x, dy, dx, n);
#endif
    for (; i < n; i++) {
        float e = expf(-fabsf(x[i])), d = 1.0f + e;
        dx[i] = dy[i] * (sigmoid_f(x[i]) + x[i] * e / (d * d));
    }
}

void attrib_gelu_erf_forward_f32(const float *x, float *y, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cpu_has_avx2_fma()) i = forward_avx2(x, y, n);
#endif
    for (; i < n; i++) y[i] = gelu_f(x[i]);
}

void attrib_gelu_erf_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cpu_has_avx2_fma()) i = backward_avx2(x, dy, dx, n);
#endif
    for (; i < n; i++) dx[i] = dy[i] * gelu_df(x[i]);
}

void attrib_gelu_erf_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n) {
    size_t i = 0;
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cpu_has_avx2_fma()) i = forward_derivative_avx2(x, y, dydx, n);
#endif
    for (; i < n; i++) { y[i] = gelu_f(x[i]); dydx[i] = gelu_df(x[i]); }
}

// Fused with average pooling (stride = kernel): GELU and its derivative per group
// of planes into a buffer on the stack, then the pooling of that buffer, so GELU's
// output never reaches memory. Same element results and the same summation order
// as the two passes apart, hence bitwise the same.
int attrib_gelu_erf_avgpool_forward_f32(const float *x, float *pooled, float *dydx, size_t planes,
                                        size_t h, size_t w, size_t kh, size_t kw) {
    size_t hw = h * w, ohw = (h / kh) * (w / kw);
    if (hw == 0 || hw > ATTRIB_FUSED_PLANE_MAX || kh == 0 || kw == 0) return 0;   // nothing written
    size_t group = ATTRIB_FUSED_PLANE_MAX / hw;
    float buf[ATTRIB_FUSED_PLANE_MAX];
    for (size_t p = 0; p < planes; p += group) {
        size_t g = planes - p < group ? planes - p : group;
        attrib_gelu_erf_forward_derivative_f32(x + p * hw, buf, dydx + p * hw, g * hw);
        attrib_avgpool_tiled_forward_f32(buf, pooled + p * ohw, g, h, w, kh, kw);
    }
    return 1;
}

int attrib_softmax_rows_f32(const float *x, float *y, size_t rows, size_t cols, int log_softmax) {
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cpu_has_avx2_fma() && cols > 0) {
        for (size_t r = 0; r < rows; r++) softmax_row_avx2(x + r * cols, y + r * cols, cols, log_softmax);
        return 1;
    }
#endif
    (void)x; (void)y; (void)rows; (void)cols; (void)log_softmax;
    return 0;
}
