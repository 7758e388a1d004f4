// [a, b, c, d] → [a, c, b, d] on Float32: the transposes around the banded small
// convolution (Conv2dUnrolled) and at a rows-outer span's Flatten, where d is an image
// row of a few pixels. The Swift
// loop copied each d-element row with a division, two remainders and a memmove call,
// which cost more than the products it served.
#include "vecmath.h"
#include <string.h>

void attrib_transpose12_f32(const float *x, float *y, size_t a, size_t b, size_t c, size_t d) {
    for (size_t i = 0; i < a; i++) {
        const float *xi = x + i * b * c * d;
        float *yi = y + i * b * c * d;
        if (d == 4) {
            for (size_t k = 0; k < c; k++)
                for (size_t j = 0; j < b; j++) {
                    const float *s = xi + (j * c + k) * 4;
                    float *t = yi + (k * b + j) * 4;
                    t[0] = s[0]; t[1] = s[1]; t[2] = s[2]; t[3] = s[3];
                }
        } else if (d < 16) {   // short rows (the rows-outer Flatten's 2): a memcpy call per row costs more than the copy
            for (size_t k = 0; k < c; k++)
                for (size_t j = 0; j < b; j++) {
                    const float *s = xi + (j * c + k) * d;
                    float *t = yi + (k * b + j) * d;
                    for (size_t e = 0; e < d; e++) t[e] = s[e];
                }
        } else {
            for (size_t k = 0; k < c; k++)
                for (size_t j = 0; j < b; j++) memcpy(yi + (k * b + j) * d, xi + (j * c + k) * d, d * sizeof(float));
        }
    }
}
