// [a, b, c, d] → [a, c, b, d] on Float32: the transposes around the banded small
// convolution (Conv2dUnrolled) and at a rows-outer span's Flatten, where d is an image
// row of a few pixels. The Swift
// loop copied each d-element row with a division, two remainders and a memmove call,
// which cost more than the products it served.
#include "vecmath.h"
#include <string.h>

// One image [b, c, d] → [c, b, d] with rows of D floats, D a constant at each call: clang
// turns a copy loop over a run-time d into a memcpy call per row, which cost 500–700 ns
// a 128-float image of the rows-outer Flatten (d = 2); these copies are inline.
__attribute__((always_inline))
static inline void transpose_short(const float *restrict xi, float *restrict yi, size_t b, size_t c, const size_t D) {
    for (size_t k = 0; k < c; k++)
        for (size_t j = 0; j < b; j++) {
            const float *s = xi + (j * c + k) * D;
            float *t = yi + (k * b + j) * D;
            for (size_t e = 0; e < D; e++) t[e] = s[e];
        }
}

void attrib_transpose12_f32(const float *x, float *y, size_t a, size_t b, size_t c, size_t d) {
    for (size_t i = 0; i < a; i++) {
        const float *xi = x + i * b * c * d;
        float *yi = y + i * b * c * d;
        switch (d) {
        case 1: transpose_short(xi, yi, b, c, 1); break;
        case 2: transpose_short(xi, yi, b, c, 2); break;
        case 3: transpose_short(xi, yi, b, c, 3); break;
        case 4: transpose_short(xi, yi, b, c, 4); break;
        default:
            for (size_t k = 0; k < c; k++)
                for (size_t j = 0; j < b; j++) memcpy(yi + (k * b + j) * d, xi + (j * c + k) * d, d * sizeof(float));
        }
    }
}

// [a, b, c] → [b, a, c] on Float32, output rows j in [j0, j1) (y[j, i, :] = x[i, j, :]): a
// 2-D transpose when c = 1 (a Linear's stored weight turned into the product's operand, at
// load), in 32 × 32 tiles so that both sides stay in cache lines; rows of c > 1 copied whole.
// The Swift loop copied each c-element row with a memmove call: one call per float when
// c = 1 (ViT-B/16's load spent more in it than in reading the file).
void attrib_transpose01_f32(const float *x, float *y, size_t a, size_t b, size_t c, size_t j0, size_t j1) {
    if (c > 1) {
        for (size_t j = j0; j < j1; j++)
            for (size_t i = 0; i < a; i++) memcpy(y + (j * a + i) * c, x + (i * b + j) * c, c * sizeof(float));
        return;
    }
    const size_t T = 32;
    for (size_t jt = j0; jt < j1; jt += T) {
        size_t je = jt + T < j1 ? jt + T : j1;
        for (size_t it = 0; it < a; it += T) {
            size_t ie = it + T < a ? it + T : a;
            for (size_t j = jt; j < je; j++)
                for (size_t i = it; i < ie; i++) y[j * a + i] = x[i * b + j];
        }
    }
}
