// A whole IG path through a small CNN in one pass per input (CPU Float32, AVX2 + FMA):
// after the fused first convolution, GELU → 2×2 average pooling, then stages of 3×3
// convolution → GELU → 2×2 average pooling, then Flatten and a Linear head; the lanes of a
// tile hold 8 steps of one input's path, where conv3x3.c holds 8 images.
//
// Why: run op by op, every batch writes each layer's activations, GELU′ and gradients to
// memory, transposes them into the lanes and back for each convolution, and waits for the
// worker threads after every op; on the digits CNN those passes and waits were a third of
// the sweep. Here a tile goes forward and back while it sits in cache, and:
//   - the path needs no transpose in: step k's pre-activation is b + α_k·(x − b), element
//     by element, so x − b and b are broadcast and α is the lane vector;
//   - the head needs no product: the objective is one logit of a Linear layer, whose
//     gradient at the last pooling's output is the target's weight row whatever the step;
//   - the step-weighted sum of the first layer's gradients is added up from the lanes.
//
// The arithmetic is that of the ops apart (conv3x3.c, vecmath.c, pathpool.c, pool.c), in
// the same order: the path as b + α·(x − b), three roundings (no FMA contraction, hence
// the pragma below); each convolution's sums as conv_tile8's; GELU as vecmath.c's; each
// pooling window as ((((0 + x00) + x01) + x10) + x11)·¼, its backward as ((0 + g)·¼)·f′;
// and Σ_k w_k·g_k as y = 0, then y += w_k·g_k for k ascending. So the sums are bitwise
// those of the layer-by-layer sweep, wherever an input's steps are not split between
// batches.
#include "vecmath.h"
#include "lanes.h"
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
// z [d][8] = b + α·(x − b) per element, α the lanes.
__attribute__((target("avx2")))
static void path_lanes(const float *restrict x, const float *restrict b, __m256 alpha, float *restrict z, size_t d) {
    for (size_t e = 0; e < d; e++) {
        const float diff = x[e] - b[e];
        _mm256_store_ps(z + e * 8, _mm256_add_ps(_mm256_set1_ps(b[e]), _mm256_mul_ps(alpha, _mm256_set1_ps(diff))));
    }
}

// t [d][8] = g [d] in every lane.
__attribute__((target("avx2")))
static void broadcast_lanes(const float *restrict g, float *restrict t, size_t d) {
    for (size_t e = 0; e < d; e++) _mm256_store_ps(t + e * 8, _mm256_set1_ps(g[e]));
}

// y [d] += w_l·g [d][l] for lanes l = 0 ..< valid in order, each product rounded before
// its sum (pathpool.c's accumulate, one step per lane).
__attribute__((target("avx2")))
static void add_weighted_lanes(float *restrict y, const float *restrict g, __m256 w, size_t d, size_t valid) {
    size_t e = 0;
    for (; e + 8 <= d; e += 8) {
        __m256 r[8];
        for (int k = 0; k < 8; k++) r[k] = _mm256_mul_ps(w, _mm256_load_ps(g + (e + k) * 8));
        transpose8(r);                                              // r[l]: lane l of elements e ..< e + 8
        __m256 s = _mm256_loadu_ps(y + e);
        for (size_t l = 0; l < valid; l++) s = _mm256_add_ps(s, r[l]);
        _mm256_storeu_ps(y + e, s);
    }
    float wl[8];
    _mm256_storeu_ps(wl, w);
    for (; e < d; e++) {
        float s = y[e];
        for (size_t l = 0; l < valid; l++) { const float t = wl[l] * g[e * 8 + l]; s = s + t; }
        y[e] = s;
    }
}
#endif

// The stages' extents chain (each stage's input is the previous one's pooled output) and
// every pooling has whole 2×2 windows.
static int chain_ok(size_t h0, size_t c0, size_t w0, const attrib_conv_gelu_pool_stage *st, size_t ns) {
    if (h0 == 0 || w0 == 0 || c0 == 0 || h0 % 2 || w0 % 2 || ns == 0 || ns > ATTRIB_PATH_STAGES_MAX) return 0;
    size_t h = h0 / 2, c = c0, w = w0 / 2;
    for (size_t s = 0; s < ns; s++) {
        if (st[s].h != h || st[s].c != c || st[s].w != w || st[s].oc == 0 || h % 2 || w % 2 || h == 0 || w == 0) return 0;
        if (!st[s].weight || !st[s].flipped) return 0;
        c = st[s].oc; h /= 2; w /= 2;
    }
    return 1;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static int path_sum_avx2(const float *zx, const float *zb, size_t zb_stride, size_t h0, size_t c0, size_t w0,
                         const attrib_conv_gelu_pool_stage *st, size_t ns, const float *head, const int32_t *targets,
                         size_t tcount, const float *alpha, const float *weight, size_t steps,
                         size_t i0, size_t i1, float *const *out) {
    const size_t d0 = h0 * c0 * w0, L = ns - 1;
    const size_t dlast = (st[L].h / 2) * st[L].oc * (st[L].w / 2);
    // Tile buffers, each [elements][8]: the path and its gradient (t0), GELU′ (f0); per
    // stage its input (in), GELU's output (y) and GELU′ (f); the backward's gradients
    // (ga, gb) and the pooling's backward times GELU′ (z).
    size_t total = 2 * d0, gmax = dlast, zmax = 0;
    for (size_t s = 0; s < ns; s++) {
        const size_t din = st[s].h * st[s].c * st[s].w, dout = st[s].h * st[s].oc * st[s].w;
        total += din + 2 * dout;
        if (din > gmax) gmax = din;
        if (dout > zmax) zmax = dout;
    }
    total += 2 * gmax + zmax;
    float *base = aligned_alloc(32, total * 8 * sizeof(float));
    if (!base) return 0;
    float *t0 = base, *f0 = t0 + d0 * 8, *p = f0 + d0 * 8;
    float *in[ATTRIB_PATH_STAGES_MAX], *y[ATTRIB_PATH_STAGES_MAX], *f[ATTRIB_PATH_STAGES_MAX];
    for (size_t s = 0; s < ns; s++) {
        const size_t din = st[s].h * st[s].c * st[s].w, dout = st[s].h * st[s].oc * st[s].w;
        in[s] = p; y[s] = in[s] + din * 8; f[s] = y[s] + dout * 8; p = f[s] + dout * 8;
    }
    float *ga = p, *gb = ga + gmax * 8, *z = gb + gmax * 8;

    for (size_t i = i0; i < i1; i++) {
        const float *xi = zx + i * d0, *bi = zb + i * zb_stride;
        for (size_t t = 0; t < tcount; t++)
            for (size_t e = 0; e < d0; e++) out[t][i * d0 + e] = 0.0f;
        for (size_t k0 = 0; k0 < steps; k0 += 8) {
            const size_t valid = steps - k0 < 8 ? steps - k0 : 8;
            float al[8] = {0}, wl[8] = {0};                        // lanes past the path: α = 0, weight 0
            for (size_t l = 0; l < valid; l++) { al[l] = alpha[k0 + l]; wl[l] = weight[k0 + l]; }
            const __m256 av = _mm256_loadu_ps(al), wv = _mm256_loadu_ps(wl);
            // Forward: the path, GELU and pooling, then each stage.
            path_lanes(xi, bi, av, t0, d0);
            attrib_gelu_erf_forward_derivative_f32(t0, t0, f0, d0 * 8);
            pool2_lanes(t0, in[0], h0, c0, w0);
            for (size_t s = 0; s < ns; s++) {
                const size_t dout = st[s].h * st[s].oc * st[s].w;
                conv_tile8(in[s], y[s], st[s].weight, st[s].bias, st[s].c, st[s].h, st[s].w, st[s].oc);
                attrib_gelu_erf_forward_derivative_f32(y[s], y[s], f[s], dout * 8);
                if (s < L) pool2_lanes(y[s], in[s + 1], st[s].h, st[s].oc, st[s].w);
            }
            // Backward per target, from the head's weight row down to the first layer's output.
            for (size_t t = 0; t < tcount; t++) {
                broadcast_lanes(head + (size_t)targets[i * tcount + t] * dlast, ga, dlast);
                for (size_t s = ns; s-- > 0;) {
                    unpool2_mul_lanes(ga, f[s], z, st[s].h, st[s].oc, st[s].w);
                    conv_tile8(z, gb, st[s].flipped, NULL, st[s].oc, st[s].h, st[s].w, st[s].c);
                    float *swap = ga; ga = gb; gb = swap;
                }
                unpool2_mul_lanes(ga, f0, t0, h0, c0, w0);
                add_weighted_lanes(out[t] + i * d0, t0, wv, d0, valid);
            }
        }
    }
    free(base);
    return 1;
}
#endif

int attrib_ig_conv_gelu_pool_path_sum_f32(const float *zx, const float *zb, size_t zb_stride,
                                          size_t h0, size_t c0, size_t w0,
                                          const attrib_conv_gelu_pool_stage *st, size_t ns,
                                          const float *head, const int32_t *targets, size_t tcount,
                                          const float *alpha, const float *weight, size_t steps,
                                          size_t i0, size_t i1, float *const *out) {
#if defined(__x86_64__)
    if (!cpu_has_avx2_fma() || steps == 0 || tcount == 0 || !chain_ok(h0, c0, w0, st, ns)) return 0;
    return path_sum_avx2(zx, zb, zb_stride, h0, c0, w0, st, ns, head, targets, tcount, alpha, weight, steps, i0, i1, out);
#else
    (void)zx; (void)zb; (void)zb_stride; (void)h0; (void)c0; (void)w0; (void)st; (void)ns; (void)head; (void)targets;
    (void)tcount; (void)alpha; (void)weight; (void)steps; (void)i0; (void)i1; (void)out;
    return 0;
#endif
}
