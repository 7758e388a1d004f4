// The 3×3, stride-1, padding-1 convolution of small images held rows-outer ([n, H, C, W],
// Sequential's rows-outer span), computed directly on the CPU with images in the lanes.
//
// Why: the banded products (Conv2dUnrolled.Band) multiply the zeros of the dense map
// inside each band: on the digits CNN's 16×4×4 → 32×4×4 that is 82k multiply-adds an
// image where the convolution has 51k (edge pixels have 4 or 6 taps, not 9), and
// OpenBLAS packs the band's operands on every call. Here every multiply-add is one of
// the convolution's, and nothing is packed: 8 images are transposed into the lanes of a
// tile [H][C][W][8], each output (oy, oc, ox) is summed in a register over its valid taps,
// and the tile [H][OC][W][8] is transposed back.
//
// Order of the sum, per output and the same in every lane: the bias (or 0), then kernel
// rows kh ascending, input channels ascending, kernel columns kw ascending, each term
// fused (one FMA). A lane's result does not depend on the other lanes, so it does not
// depend on how images are grouped into tiles, chunks or batches.
//
// The backward (dx from dy) is the same convolution of dy with the weight flipped in both
// spatial axes and its channel axes swapped, which the caller builds once.
#include "vecmath.h"
#include "lanes.h"
#include <stdlib.h>
#include <string.h>

int attrib_conv3x3_gelu_avgpool2_rows_outer_f32(const float *x, const float *weight, const float *bias, float *pooled, float *dydx,
                                                size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc) {
#if defined(__x86_64__)
    if (!fused_shape_ok(c, h, w, oc)) return 0;
    const size_t din = h * c * w, dout = h * oc * w, dpool = dout / 4;
    float *xt = aligned_alloc(32, (din + dout + dout + dpool) * 8 * sizeof(float));
    if (!xt) return 0;
    float *yt = xt + din * 8, *dt = yt + dout * 8, *pt = dt + dout * 8;
    for (size_t i = i0; i < i1; i += 8) {
        const size_t lanes = tile_lanes(i, i1);
        to_lanes8(x + i * din, lanes, din, xt);
        conv_tile8(xt, yt, weight, bias, c, h, w, oc);
        attrib_gelu_erf_forward_derivative_f32(yt, yt, dt, dout * 8);   // elementwise: the lanes do not matter
        pool2_lanes(yt, pt, h, oc, w);
        from_lanes8(pt, lanes, dpool, pooled + i * dpool);
        from_lanes8(dt, lanes, dout, dydx + i * dout);
    }
    free(xt);
    return 1;
#else
    (void)x; (void)weight; (void)bias; (void)pooled; (void)dydx; (void)i0; (void)i1; (void)c; (void)h; (void)w; (void)oc;
    return 0;
#endif
}

int attrib_avgpool2_mul_conv3x3_backward_rows_outer_f32(const float *g, const float *m, const float *flipped, float *dx,
                                                        size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc) {
#if defined(__x86_64__)
    if (!fused_shape_ok(c, h, w, oc)) return 0;
    const size_t din = h * c * w, dout = h * oc * w, dpool = dout / 4;
    float *gt = aligned_alloc(32, (dpool + dout + dout + din) * 8 * sizeof(float));
    if (!gt) return 0;
    float *mt = gt + dpool * 8, *zt = mt + dout * 8, *xt = zt + dout * 8;
    for (size_t i = i0; i < i1; i += 8) {
        const size_t lanes = tile_lanes(i, i1);
        to_lanes8(g + i * dpool, lanes, dpool, gt);
        to_lanes8(m + i * dout, lanes, dout, mt);
        unpool2_mul_lanes(gt, mt, zt, h, oc, w);
        conv_tile8(zt, xt, flipped, NULL, oc, h, w, c);
        from_lanes8(xt, lanes, din, dx + i * din);
    }
    free(gt);
    return 1;
#else
    (void)g; (void)m; (void)flipped; (void)dx; (void)i0; (void)i1; (void)c; (void)h; (void)w; (void)oc;
    return 0;
#endif
}

int attrib_conv3x3_supported(void) {
#if defined(__x86_64__)
    return cpu_has_avx2_fma();
#else
    return 0;
#endif
}

// The widest tile attrib_conv3x3_rows_outer_f32 may use: 16 (AVX-512 where present) or 8.
// The tests narrow it to compare the two widths bit for bit (while other tests run
// convolutions on other threads: hence the atomic reads and writes).
static int max_lanes = 16;
void attrib_conv3x3_set_max_lanes(int lanes) { __atomic_store_n(&max_lanes, lanes >= 16 ? 16 : 8, __ATOMIC_RELAXED); }
int attrib_conv3x3_lanes(void) {
#if defined(__x86_64__)
    return __atomic_load_n(&max_lanes, __ATOMIC_RELAXED) >= 16 && cpu_has_avx512f() ? 16 : 8;
#else
    return 8;
#endif
}

int attrib_conv3x3_rows_outer_f32(const float *x, const float *weight, const float *bias, float *y,
                                  size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc) {
#if defined(__x86_64__)
    if (!cpu_has_avx2_fma() || c == 0 || h == 0 || w == 0 || oc == 0) return 0;
    return attrib_conv3x3_lanes() == 16 ? conv_rows_outer16(x, weight, bias, y, i0, i1, c, h, w, oc)
                                        : conv_rows_outer8(x, weight, bias, y, i0, i1, c, h, w, oc);
#else
    (void)x; (void)weight; (void)bias; (void)y; (void)i0; (void)i1; (void)c; (void)h; (void)w; (void)oc;
    return 0;
#endif
}
