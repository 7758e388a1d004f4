// A squeeze-and-excitation gate on one channels-last sample (vecmath.h): a [rows, cols] times
// s [cols] spread over the rows, and its backward. One pass each way, where the op's portable
// form (ChannelsLastBroadcastMulGraphOp) spreads s into a full buffer by a product first and
// then multiplies: 5 passes over the activation forward and 7 back against 2 and 3 here.
#include "vecmath.h"

void attrib_gate_mul_f32(const float *a, const float *s, float *y, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) {
        const float *ar = a + r * cols;
        float *yr = y + r * cols;
        for (size_t c = 0; c < cols; c++) yr[c] = ar[c] * s[c];
    }
}

// da = dy ⊙ spread(s) where da is not NULL; ds[c] = Σ_r dy[r, c]·a[r, c], r in order, where
// ds is not NULL. The branch sits outside the loops, so each loop vectorises over c.
void attrib_gate_mul_backward_f32(const float *a, const float *s, const float *dy, float *da, float *ds,
                                  size_t rows, size_t cols) {
    if (ds) for (size_t c = 0; c < cols; c++) ds[c] = 0.0f;
    for (size_t r = 0; r < rows; r++) {
        const float *ar = a + r * cols, *gr = dy + r * cols;
        if (da) {
            float *dr = da + r * cols;
            for (size_t c = 0; c < cols; c++) dr[c] = gr[c] * s[c];
        }
        if (ds) for (size_t c = 0; c < cols; c++) ds[c] += gr[c] * ar[c];
    }
}
