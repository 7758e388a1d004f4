// The activations built on the logistic function, for Float32 with AVX2 and FMA: tanh, the
// sigmoid, and GPT-2's (and Gemma's) tanh-form GELU x·σ(2u). 8 lanes from one inline exp,
// value and derivative together, where libm's tanhf and expf were one scalar call per element:
// the whole cost of IG on a tanh MLP (issue 16: the unlike models), a seventh of AtP on GPT-2. Every element goes
// through the 8-lane code, the last partial group through a padded copy, so a result never
// depends on where a call's range starts or ends, and the forward, the backward (dy·f′) and
// the fused forward-with-derivative give the same bits. Without AVX2/FMA: libm, as the Swift
// reference (ActivationMath) computes it.
#include "vecmath.h"
#include "cpu_features.h"
#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__)
#include <immintrin.h>
#include "avx2_exp.h"

// tanh and tanh′ = 1 − tanh². Below |x| = 0.3125 the odd Taylor series to x¹¹ (its first
// dropped term is 3e-9 relative there) and 1 − t² = (1 − t)(1 + t) (no cancellation, t² < 0.1).
// Above, e = exp(−2|x|): tanh|x| = (1 − e)/(1 + e), where 1 − e ≥ 0.46 loses nothing, and
// tanh′ = 4e/(1 + e)², accurate relative to itself out to the tails where 1 − t² would be 0.
__attribute__((target("avx2,fma")))
static inline __m256 tanh8(__m256 v, __m256 *deriv) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 a = _mm256_andnot_ps(sign, v), z = _mm256_mul_ps(v, v);
    __m256 p = _mm256_set1_ps(-1382.0f / 155925.0f);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(62.0f / 2835.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-17.0f / 315.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.0f / 15.0f));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-1.0f / 3.0f));
    __m256 ts = _mm256_fmadd_ps(_mm256_mul_ps(p, z), v, v);                  // v + v·z·P(z), sign and −0 kept
    __m256 e = exp8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), a));
    __m256 d = _mm256_add_ps(one, e);
    __m256 tl = _mm256_or_ps(_mm256_div_ps(_mm256_sub_ps(one, e), d), _mm256_and_ps(sign, v));
    __m256 small = _mm256_cmp_ps(a, _mm256_set1_ps(0.3125f), _CMP_LT_OQ);
    __m256 t = _mm256_blendv_ps(tl, ts, small);
    __m256 gs = _mm256_mul_ps(_mm256_sub_ps(one, ts), _mm256_add_ps(one, ts));
    __m256 gl = _mm256_div_ps(_mm256_mul_ps(_mm256_set1_ps(4.0f), e), _mm256_mul_ps(d, d));
    *deriv = _mm256_blendv_ps(gl, gs, small);
    return t;
}

// σ and σ′ = σ(1 − σ) = e/(1 + e)², e = exp(−|x|) (sigmoid8, avx2_exp.h).
__attribute__((target("avx2,fma")))
static inline __m256 sigmoid_d8(__m256 v, __m256 *deriv) {
    __m256 e, d, s = sigmoid8(v, &e, &d);
    *deriv = _mm256_div_ps(e, _mm256_mul_ps(d, d));
    return s;
}

// GELU, tanh form: u = √(2/π)(x + 0.044715x³), f = x·σ(2u) (= ½x(1 + tanh u), without its
// cancellation for x ≪ 0), f′ = σ(2u) + x·2σ′(2u)·u′, u′ = √(2/π)(1 + 3·0.044715x²): the
// formulas of ActivationMath and Kernels/activation.cl.
__attribute__((target("avx2,fma")))
static inline __m256 gelu_tanh8(__m256 v, __m256 *deriv) {
    const __m256 c = _mm256_set1_ps(0.7978845608028654f), k = _mm256_set1_ps(0.044715f);
    __m256 x2 = _mm256_mul_ps(v, v);
    __m256 u = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, x2), v, v));
    __m256 ds, s = sigmoid_d8(_mm256_add_ps(u, u), &ds);
    __m256 du = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(3.0f), k), x2, _mm256_set1_ps(1.0f)));
    *deriv = _mm256_fmadd_ps(_mm256_mul_ps(v, _mm256_add_ps(ds, ds)), du, s);
    return _mm256_mul_ps(v, s);
}

// kind 0: tanh, 1: sigmoid, 2: GELU (tanh form). y, dydx and dx may each be NULL; dx = dy·f′ needs dy.
__attribute__((target("avx2,fma")))
static inline void group8(int kind, __m256 v, const float *dy, float *y, float *dydx, float *dx) {
    __m256 g, f = kind == 0 ? tanh8(v, &g) : kind == 1 ? sigmoid_d8(v, &g) : gelu_tanh8(v, &g);
    if (y) _mm256_storeu_ps(y, f);
    if (dydx) _mm256_storeu_ps(dydx, g);
    if (dx) _mm256_storeu_ps(dx, _mm256_mul_ps(_mm256_loadu_ps(dy), g));
}

__attribute__((target("avx2,fma")))
static void run_avx2(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        group8(kind, _mm256_loadu_ps(x + i), dy ? dy + i : NULL, y ? y + i : NULL, dydx ? dydx + i : NULL, dx ? dx + i : NULL);
    if (i == n) return;
    // The last partial group through padded copies: the same lanes' code as every other element.
    float xb[8] = {0}, dyb[8] = {0}, yb[8], gb[8], dxb[8];
    size_t k = n - i;
    for (size_t j = 0; j < k; j++) { xb[j] = x[i + j]; if (dy) dyb[j] = dy[i + j]; }
    group8(kind, _mm256_loadu_ps(xb), dyb, yb, gb, dy ? dxb : NULL);
    for (size_t j = 0; j < k; j++) {
        if (y) y[i + j] = yb[j];
        if (dydx) dydx[i + j] = gb[j];
        if (dx) dx[i + j] = dxb[j];
    }
}
#endif

static void run_scalar(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float f, g;
        if (kind == 0) {
            f = fabsf(x[i]) > 20.0f ? (x[i] > 0 ? 1.0f : -1.0f) : tanhf(x[i]);
            g = (1.0f - f) * (1.0f + f);
        } else if (kind == 2) {
            float v = x[i], u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
            float e = expf(-fabsf(2.0f * u)), d = 1.0f + e, s = 2.0f * u >= 0.0f ? 1.0f / d : e / d;
            f = v * s;
            g = s + v * 2.0f * (e / (d * d)) * 0.7978845608028654f * (1.0f + 3.0f * 0.044715f * v * v);
        } else {
            float e = expf(-fabsf(x[i])), d = 1.0f + e;
            f = x[i] >= 0.0f ? 1.0f / d : e / d;
            g = e / (d * d);
        }
        if (y) y[i] = f;
        if (dydx) dydx[i] = g;
        if (dx) dx[i] = dy[i] * g;
    }
}

static void run(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
#if defined(__x86_64__) && defined(__GLIBC__)
    if (cpu_has_avx2_fma()) { run_avx2(kind, x, dy, y, dydx, dx, n); return; }
#endif
    run_scalar(kind, x, dy, y, dydx, dx, n);
}

void attrib_tanh_forward_f32(const float *x, float *y, size_t n) { run(0, x, NULL, y, NULL, NULL, n); }
void attrib_tanh_backward_f32(const float *x, const float *dy, float *dx, size_t n) { run(0, x, dy, NULL, NULL, dx, n); }
void attrib_tanh_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n) { run(0, x, NULL, y, dydx, NULL, n); }
void attrib_sigmoid_forward_f32(const float *x, float *y, size_t n) { run(1, x, NULL, y, NULL, NULL, n); }
void attrib_sigmoid_backward_f32(const float *x, const float *dy, float *dx, size_t n) { run(1, x, dy, NULL, NULL, dx, n); }
void attrib_sigmoid_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n) { run(1, x, NULL, y, dydx, NULL, n); }
void attrib_gelu_tanh_forward_f32(const float *x, float *y, size_t n) { run(2, x, NULL, y, NULL, NULL, n); }
void attrib_gelu_tanh_backward_f32(const float *x, const float *dy, float *dx, size_t n) { run(2, x, dy, NULL, NULL, dx, n); }
