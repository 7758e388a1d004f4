// Hardswish and Hardsigmoid (MobileNetV3's), ReLU6 (MobileNetV2's) and their backward over Float32 arrays
// (vecmath.h), as relu.c does for ReLU: plain float loops the compiler vectorises, where
// Swift's generic loop switched on the kind per element (MobileNetV3-small's sweep spent 40%
// of its time in them). The arithmetic is ActivationMath's, in its order, with Swift.min and
// Swift.max written as their comparisons (NaN passes as it does there), so the bits are the
// same.
#include "vecmath.h"

// min(max(x + 3, 0), 6), as Swift.min(Swift.max(x + 3, 0), 6).
static inline float relu6_shifted(float x) {
    float t = x + 3.0f;
    t = 0.0f >= t ? 0.0f : t;
    return 6.0f < t ? 6.0f : t;
}

void attrib_hardsigmoid_forward_f32(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = relu6_shifted(x[i]) / 6.0f;
}

void attrib_hardsigmoid_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    const float sixth = 1.0f / 6.0f;
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (x[i] > -3.0f && x[i] < 3.0f ? sixth : 0.0f);
}

void attrib_hardswish_forward_f32(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] * relu6_shifted(x[i]) / 6.0f;
}

void attrib_hardswish_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float d = x[i] < -3.0f ? 0.0f : x[i] <= 3.0f ? x[i] / 3.0f + 0.5f : 1.0f;
        dx[i] = dy[i] * d;
    }
}

// min(max(x, 0), 6), as Swift.min(Swift.max(x, 0), 6) (NaN passes).
void attrib_relu6_forward_f32(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float t = 0.0f >= x[i] ? 0.0f : x[i];
        y[i] = 6.0f < t ? 6.0f : t;
    }
}

void attrib_relu6_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (x[i] > 0.0f && x[i] < 6.0f ? 1.0f : 0.0f);
}
