// The activations built on the logistic function over Float32: tanh, the sigmoid, and GPT-2's
// (and Gemma's) tanh-form GELU x·σ(2u). With AVX2 + FMA or AVX-512F, the vector code of
// act_lanes_body.h (value and derivative from one inline exp, where libm's tanhf and expf were
// one scalar call per element: the whole cost of IG on a tanh MLP, a seventh of AtP on GPT-2):
// every element goes through the lanes, the last partial group through a padded copy, so a
// result never depends on where a call's range starts or ends, and the forward, the backward
// (dy·f′) and the fused forward-with-derivative give the same bits. Without: libm, as the Swift
// reference (ActivationMath) computes it.
#include "vecmath.h"
#include "act_lanes_dispatch.h"
#include <math.h>

static void run_scalar(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float f, g;
        if (kind == ATTRIB_ACT_TANH) {
            f = fabsf(x[i]) > 20.0f ? (x[i] > 0 ? 1.0f : -1.0f) : tanhf(x[i]);
            g = (1.0f - f) * (1.0f + f);
        } else if (kind == ATTRIB_ACT_GELU_TANH) {
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
    if (!attrib_act_run(kind, x, dy, y, dydx, dx, n)) run_scalar(kind, x, dy, y, dydx, dx, n);
}

void attrib_tanh_forward_f32(const float *x, float *y, size_t n) { run(ATTRIB_ACT_TANH, x, NULL, y, NULL, NULL, n); }
void attrib_tanh_backward_f32(const float *x, const float *dy, float *dx, size_t n) { run(ATTRIB_ACT_TANH, x, dy, NULL, NULL, dx, n); }
void attrib_tanh_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n) { run(ATTRIB_ACT_TANH, x, NULL, y, dydx, NULL, n); }
void attrib_sigmoid_forward_f32(const float *x, float *y, size_t n) { run(ATTRIB_ACT_SIGMOID, x, NULL, y, NULL, NULL, n); }
void attrib_sigmoid_backward_f32(const float *x, const float *dy, float *dx, size_t n) { run(ATTRIB_ACT_SIGMOID, x, dy, NULL, NULL, dx, n); }
void attrib_sigmoid_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n) { run(ATTRIB_ACT_SIGMOID, x, NULL, y, dydx, NULL, n); }
void attrib_gelu_tanh_forward_f32(const float *x, float *y, size_t n) { run(ATTRIB_ACT_GELU_TANH, x, NULL, y, NULL, NULL, n); }
void attrib_gelu_tanh_backward_f32(const float *x, const float *dy, float *dx, size_t n) { run(ATTRIB_ACT_GELU_TANH, x, dy, NULL, NULL, dx, n); }
