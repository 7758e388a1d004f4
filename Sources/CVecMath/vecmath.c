#include "vecmath.h"
#include "cpu_features.h"
#include "act_lanes_dispatch.h"
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
#include "act_lanes.h"

__attribute__((target("avx2,fma")))
static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One row's softmax (or log-softmax) with exp_v8 (act_lanes.h): the max, then exp(x − max) written and summed
// in 8 lanes, then scaled by 1/sum (or x − max − log sum). exp_v8 takes x ≤ 0, which x − max is.
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
        __m256 e = exp_v8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m8));
        acc = _mm256_add_ps(acc, e);
        if (!log_softmax) _mm256_storeu_ps(y + i, e);
    }
    if (i < cols) {
        float xb[8], eb[8];
        size_t k = 0;
        for (; i + k < cols; k++) xb[k] = x[i + k] - mx;
        for (size_t j = k; j < 8; j++) xb[j] = -INFINITY;
        _mm256_storeu_ps(eb, exp_v8(_mm256_loadu_ps(xb)));
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

#endif

static inline float sigmoid_f(float x) {
    float e = expf(-fabsf(x));
    return x >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
}

void attrib_silu_forward_f32(const float *x, float *y, size_t n) {
    if (attrib_act_run(ATTRIB_ACT_SILU, x, NULL, y, NULL, NULL, n)) return;
    for (size_t i = 0; i < n; i++) y[i] = x[i] * sigmoid_f(x[i]);
}

void attrib_silu_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    if (attrib_act_run(ATTRIB_ACT_SILU, x, dy, NULL, NULL, dx, n)) return;
    for (size_t i = 0; i < n; i++) {
        float e = expf(-fabsf(x[i])), d = 1.0f + e;
        dx[i] = dy[i] * (sigmoid_f(x[i]) + x[i] * e / (d * d));
    }
}

void attrib_gelu_erf_forward_f32(const float *x, float *y, size_t n) {
    if (attrib_act_run(ATTRIB_ACT_GELU_ERF, x, NULL, y, NULL, NULL, n)) return;
    for (size_t i = 0; i < n; i++) y[i] = gelu_f(x[i]);
}

void attrib_gelu_erf_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    if (attrib_act_run(ATTRIB_ACT_GELU_ERF, x, dy, NULL, NULL, dx, n)) return;
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gelu_df(x[i]);
}

void attrib_gelu_erf_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n) {
    if (attrib_act_run(ATTRIB_ACT_GELU_ERF, x, NULL, y, dydx, NULL, n)) return;
    for (size_t i = 0; i < n; i++) { y[i] = gelu_f(x[i]); dydx[i] = gelu_df(x[i]); }
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
