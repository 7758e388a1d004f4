// The IG path fused into the first and last passes of a CNN's GELU + average pooling
// (CPU Float32): the interpolated path is built plane group by plane group in a stack
// buffer and pooled from there, and the step-weighted sum of the input gradients is
// taken as each step's gradient comes out of the pooling backward. Neither the path
// [rows, d] nor its gradient [rows, d] is written to memory, which saves a pass each
// way over the largest tensors of the batch.
//
// The arithmetic is that of CPUKernels.pathInterpolate (b + α·(x − b): a subtraction,
// a product and a sum, each rounded) and CPUKernels.pathWeightedSum (y = 0, then
// y += w_k·g_k for k ascending, the product rounded before the sum), so results are
// bitwise those of the ops apart. No FMA contraction may merge those roundings.
#pragma STDC FP_CONTRACT OFF
#include "vecmath.h"
#include "cpu_features.h"

// z = b + a·(x − b) and y += w·g from element j on, one element at a time: the whole
// loop without AVX2, and the AVX2 loops' last n mod 8 elements.
static void interpolate_from(size_t j, const float *x, const float *b, float a, float *z, size_t n) {
    for (; j < n; j++) { float d = x[j] - b[j]; float t = a * d; z[j] = b[j] + t; }
}

static void accumulate_from(size_t j, float *y, float wk, const float *g, size_t n) {
    for (; j < n; j++) { float t = wk * g[j]; y[j] = y[j] + t; }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2")))
static void interpolate_avx2(const float *x, const float *b, float a, float *z, size_t n) {
    size_t j = 0;
    __m256 av = _mm256_set1_ps(a);
    for (; j + 8 <= n; j += 8) {
        __m256 bv = _mm256_loadu_ps(b + j);
        _mm256_storeu_ps(z + j, _mm256_add_ps(bv, _mm256_mul_ps(av, _mm256_sub_ps(_mm256_loadu_ps(x + j), bv))));
    }
    interpolate_from(j, x, b, a, z, n);
}

__attribute__((target("avx2")))
static void accumulate_avx2(float *y, float wk, const float *g, size_t n) {
    size_t j = 0;
    __m256 wv = _mm256_set1_ps(wk);
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_loadu_ps(y + j), _mm256_mul_ps(wv, _mm256_loadu_ps(g + j))));
    accumulate_from(j, y, wk, g, n);
}

#endif

static void interpolate(const float *x, const float *b, float a, float *z, size_t n) {
#if defined(__x86_64__)
    if (cpu_has_avx2()) { interpolate_avx2(x, b, a, z, n); return; }
#endif
    interpolate_from(0, x, b, a, z, n);
}

static void accumulate(float *y, float wk, const float *g, size_t n) {
#if defined(__x86_64__)
    if (cpu_has_avx2()) { accumulate_avx2(y, wk, g, n); return; }
#endif
    accumulate_from(0, y, wk, g, n);
}

int attrib_gelu_erf_avgpool_path_forward_f32(const float *x, const float *base, size_t base_stride, const float *alpha,
                                             size_t steps, size_t r0, size_t r1, float *pooled, float *dydx,
                                             size_t planes, size_t h, size_t w, size_t kh, size_t kw) {
    size_t hw = h * w, ohw = (h / kh) * (w / kw), d = planes * hw;
    if (hw == 0 || hw > ATTRIB_FUSED_PLANE_MAX || kh == 0 || kw == 0 || steps == 0) return 0;
    size_t group = ATTRIB_FUSED_PLANE_MAX / hw;
    float z[ATTRIB_FUSED_PLANE_MAX];
    for (size_t r = r0; r < r1; r++) {
        size_t i = r / steps;
        const float *xi = x + i * d, *bi = base + i * base_stride;
        for (size_t p = 0; p < planes; p += group) {
            size_t g = planes - p < group ? planes - p : group;
            interpolate(xi + p * hw, bi + p * hw, alpha[r % steps], z, g * hw);
            attrib_gelu_erf_avgpool_forward_f32(z, pooled + (r * planes + p) * ohw, dydx + r * d + p * hw, g, h, w, kh, kw);
        }
    }
    return 1;
}

int attrib_avgpool_tiled_backward_mul_pathsum_f32(const float *dy, const float *m, const float *weights, size_t steps,
                                                  size_t input, size_t p0, size_t p1, float *y,
                                                  size_t planes, size_t h, size_t w, size_t kh, size_t kw) {
    size_t hw = h * w, ohw = (h / kh) * (w / kw), d = planes * hw;
    if (hw == 0 || hw > ATTRIB_FUSED_PLANE_MAX || kh == 0 || kw == 0) return 0;
    size_t group = ATTRIB_FUSED_PLANE_MAX / hw;
    float g[ATTRIB_FUSED_PLANE_MAX];
    for (size_t p = p0; p < p1; p += group) {
        size_t n = (p1 - p < group ? p1 - p : group);
        float *yi = y + input * d + p * hw;
        for (size_t j = 0; j < n * hw; j++) yi[j] = 0.0f;
        for (size_t k = 0; k < steps; k++) {
            size_t row = input * steps + k;
            attrib_avgpool_tiled_backward_mul_f32(dy + (row * planes + p) * ohw, m + row * d + p * hw, g, n, h, w, kh, kw);
            accumulate(yi, weights[k], g, n * hw);
        }
    }
    return 1;
}
