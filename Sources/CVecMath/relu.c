// ReLU and its backward over Float32 arrays (vecmath.h). Separate from Swift's generic
// loop only so the compiler sees plain float arrays it can vectorise (the generic loop
// costs a ReLU CNN's sweep a sixth of its time on the CPU backend); the arithmetic is
// ActivationMath's, element by element, so the bits are the same.
#include "vecmath.h"

void attrib_relu_forward_f32(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void attrib_relu_backward_f32(const float *x, const float *dy, float *dx, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : 0.0f);
}

// f and f′ in one pass (IG's path through a ReLU: CPUKernels.pathActivationWithDerivative).
void attrib_relu_forward_derivative_f32(const float *x, float *y, float *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
        d[i] = x[i] > 0.0f ? 1.0f : 0.0f;
    }
}
