// GELU (erf form) and its derivative over Float32 arrays: with AVX2, 8 lanes at a time
// from one exp and one rational fit (vecmath.c: within 16u of Float64, about 6u at worst, in the
// far negative tail); without, libm's erfcf and expf one element at a time. The formulas
// are those of Kernels/activation.cl: 0.5·x·erfc(−x/√2) and Φ(x) + x·φ(x), free of
// cancellation for negative x.
#pragma once
#include <stddef.h>
#include <stdint.h>

void attrib_gelu_erf_forward_f32(const float *x, float *y, size_t n);
/// dx = dy · GELU′(x).
void attrib_gelu_erf_backward_f32(const float *x, const float *dy, float *dx, size_t n);
/// y = GELU(x) and dydx = GELU′(x) with one erfc per element.
void attrib_gelu_erf_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n);

/// SiLU x·σ(x) (Llama's gate) and dx = dy·SiLU′(x) over Float32 arrays, 8 lanes from one exp
/// with AVX2 (vecmath.c), libm's expf element by element without.
void attrib_silu_forward_f32(const float *x, float *y, size_t n);
void attrib_silu_backward_f32(const float *x, const float *dy, float *dx, size_t n);

/// ReLU as ActivationMath's scalar rule, in loops the compiler vectorises: y = x < 0 ? 0 : x
/// (NaN passes), and dx = dy · (x > 0 ? 1 : 0) (so an infinite dy at x ≤ 0 gives NaN, as apart).
void attrib_relu_forward_f32(const float *x, float *y, size_t n);
void attrib_relu_backward_f32(const float *x, const float *dy, float *dx, size_t n);
void attrib_relu_forward_derivative_f32(const float *x, float *y, float *d, size_t n);
// A gate s [cols] over one sample's a [rows, cols] (channels-last squeeze-and-excitation;
// gate.c): y = a ⊙ s per row, and da = dy ⊙ s, ds = Σ_r dy ⊙ a (either pointer may be NULL).
void attrib_gate_mul_f32(const float *a, const float *s, float *y, size_t rows, size_t cols);
void attrib_gate_mul_backward_f32(const float *a, const float *s, const float *dy, float *da, float *ds,
                                  size_t rows, size_t cols);
// Hardsigmoid min(max(x + 3, 0), 6)/6 and Hardswish x·that (hard_activations.c).
void attrib_hardsigmoid_forward_f32(const float *x, float *y, size_t n);
void attrib_hardsigmoid_backward_f32(const float *x, const float *dy, float *dx, size_t n);
void attrib_hardswish_forward_f32(const float *x, float *y, size_t n);
void attrib_hardswish_backward_f32(const float *x, const float *dy, float *dx, size_t n);
void attrib_relu6_forward_f32(const float *x, float *y, size_t n);
void attrib_relu6_backward_f32(const float *x, const float *dy, float *dx, size_t n);

/// Average pooling with stride = kernel (kh × kw windows that tile each h × w
/// plane; the last rows and columns that no window covers are skipped forward
/// and get 0 backward), over `planes` consecutive planes.
void attrib_avgpool_tiled_forward_f32(const float *x, float *y, size_t planes, size_t h, size_t w,
                                       size_t kh, size_t kw);
void attrib_avgpool_tiled_backward_f32(const float *dy, float *dx, size_t planes, size_t h, size_t w,
                                        size_t kh, size_t kw);

/// Max pooling with stride = kernel over `planes` planes: y and argmax (iy·w + ix in the
/// plane) bitwise CPUKernels.maxPool2d's; its backward overwrites dx as the gather does.
void attrib_maxpool_tiled_forward_f32(const float *x, float *y, int32_t *argmax, size_t planes,
                                      size_t h, size_t w, size_t kh, size_t kw);
void attrib_maxpool_tiled_backward_f32(const float *dy, const int32_t *argmax, float *dx, size_t planes,
                                       size_t h, size_t w, size_t kh, size_t kw);
/// Max pooling with any kh × kw window and sh × sw stride (windows may overlap) over `planes`
/// planes, no padding: y and argmax bitwise CPUKernels.maxPool2d's general loop (maxpool_general.c).
void attrib_maxpool_forward_f32(const float *x, float *y, int32_t *argmax, size_t planes, size_t h, size_t w,
                                size_t kh, size_t kw, size_t sh, size_t sw);
/// Its backward: dx overwritten with the gather's sums (each window's dy at its argmax).
void attrib_maxpool_backward_f32(const float *dy, const int32_t *argmax, float *dx, size_t planes, size_t h, size_t w,
                                 size_t kh, size_t kw, size_t sh, size_t sw);
/// Caps the general kernel at 16 lanes (AVX-512, the default) or 1 (scalar), for the tests.
void attrib_maxpool_general_set_max_lanes(int lanes);
/// Caps the 2x2 max-pooling kernels' width: 16 (AVX-512 where present, the default), 8
/// (AVX2) or 1 (scalar). Every width gives the same bits; the tests compare them.
void attrib_maxpool_set_max_lanes(int lanes);

/// Largest plane (h·w floats) the fused GELU + pooling forward takes.
#define ATTRIB_FUSED_PLANE_MAX 4096
/// pooled = avgPool(GELU(x)) with stride = kernel, and dydx = GELU′(x), without
/// writing GELU(x); bitwise what the two passes apart give. Returns 0, with nothing
/// written, unless 1 ≤ h·w ≤ ATTRIB_FUSED_PLANE_MAX.
int attrib_gelu_erf_avgpool_forward_f32(const float *x, float *pooled, float *dydx, size_t planes,
                                         size_t h, size_t w, size_t kh, size_t kw);
/// dx = avgPoolBackward(dy) ⊙ m (stride = kernel); bitwise the two passes apart.
void attrib_avgpool_tiled_backward_mul_f32(const float *dy, const float *m, float *dx, size_t planes,
                                           size_t h, size_t w, size_t kh, size_t kw);
/// y = x with dimensions 1 and 2 swapped: [a, b, c, d] → [a, c, b, d].
void attrib_transpose12_f32(const float *x, float *y, size_t a, size_t b, size_t c, size_t d);
/// y = x with dimensions 0 and 1 swapped, [a, b, c] → [b, a, c], output rows j0 ..< j1 only.
void attrib_transpose01_f32(const float *x, float *y, size_t a, size_t b, size_t c, size_t j0, size_t j1);

/// The IG path fused into GELU + tiling average pooling (pathpool.c). For rows r in
/// [r0, r1) of an inputs × steps batch, row r = (i, k) = (r / steps, r % steps):
/// z = base_i + alpha_k·(x_i − base_i) (base_i at base + i·base_stride; each row holds
/// `planes` planes of h × w), then pooled and dydx as attrib_gelu_erf_avgpool_forward_f32
/// gives for z. Bitwise the path op and the fused pass apart. Returns 0, with nothing
/// written, unless 1 ≤ h·w ≤ ATTRIB_FUSED_PLANE_MAX.
int attrib_gelu_erf_avgpool_path_forward_f32(const float *x, const float *base, size_t base_stride, const float *alpha,
                                             size_t steps, size_t r0, size_t r1, float *pooled, float *dydx,
                                             size_t planes, size_t h, size_t w, size_t kh, size_t kw);
/// y_i = Σ_k weights_k · (avgPoolBackward(dy_(i,k)) ⊙ m_(i,k)), k ascending, for one input
/// i and its planes [p0, p1): the pooling backward times GELU′ of each step, summed over
/// the steps as the path's weighted sum sums them. Bitwise the ops apart.
int attrib_avgpool_tiled_backward_mul_pathsum_f32(const float *dy, const float *m, const float *weights, size_t steps,
                                                  size_t input, size_t p0, size_t p1, float *y,
                                                  size_t planes, size_t h, size_t w, size_t kh, size_t kw);

/// y = bias + the 3×3, stride-1, padding-1 convolution of x, for images [i0, i1) of a
/// batch held rows-outer: x [n, h, c, w], y [n, h, oc, w], weight [oc, c, 3, 3] (PyTorch's
/// layout), bias [oc] or NULL (conv3x3.c). Every multiply-add is one of the convolution's,
/// summed per output as bias, then kh, input channel, kw ascending, each an FMA. Returns
/// 0, with nothing written, without AVX2 and FMA (or on a failed allocation).
/// 1 where attrib_conv3x3_rows_outer_f32 runs (x86-64 with AVX2 and FMA), else 0.
int attrib_conv3x3_supported(void);
/// The tile width attrib_conv3x3_rows_outer_f32 runs: 16 images (AVX-512) or 8 (AVX2). The
/// sums are the same in either: the outputs do not depend on it.
int attrib_conv3x3_lanes(void);
/// Caps that width at 8 (lanes < 16) or lets it be 16 again: for the tests that compare them.
void attrib_conv3x3_set_max_lanes(int lanes);
int attrib_conv3x3_rows_outer_f32(const float *x, const float *weight, const float *bias, float *y,
                                  size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc);

/// The direct convolution above, then GELU (erf) and 2×2 average pooling with stride 2, for
/// images [i0, i1), h and w even: pooled [n, h/2, oc, w/2] and dydx [n, h, oc, w] (GELU′ of
/// the convolution's output), that output and GELU's never written. Bitwise the three ops
/// apart (the same FMA chains, GELU blocks and window sums). Returns 0, with nothing
/// written, where the convolution alone would, or for odd h or w.
int attrib_conv3x3_gelu_avgpool2_rows_outer_f32(const float *x, const float *weight, const float *bias, float *pooled, float *dydx,
                                                size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc);
/// Its backward: dx [n, h, c, w] of the convolution for the upstream avgPoolBackward(g) ⊙ m,
/// g [n, h/2, oc, w/2] the pooled gradient and m [n, h, oc, w] GELU′, with the flipped weight
/// [c, oc, 3, 3] (see Conv2d+Direct.swift), the upstream never written. Bitwise the ops apart.
int attrib_avgpool2_mul_conv3x3_backward_rows_outer_f32(const float *g, const float *m, const float *flipped, float *dx,
                                                        size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc);

/// One stage of a small CNN after its first layer: the 3×3, stride-1, padding-1
/// convolution of an input [h, c, w] held rows-outer to [h, oc, w] (weight [oc, c, 3, 3],
/// bias [oc] or NULL, flipped [c, oc, 3, 3] its backward weight, see Conv2d+Direct.swift),
/// then GELU (erf), then 2×2 average pooling with stride 2.
typedef struct attrib_conv_gelu_pool_stage {
    size_t c, h, w, oc;
    const float *weight, *bias, *flipped;
} attrib_conv_gelu_pool_stage;
/// Most stages attrib_ig_conv_gelu_pool_path_sum_f32 takes.
#define ATTRIB_PATH_STAGES_MAX 8
/// The IG path of inputs [i0, i1) through GELU → 2×2 pooling → the stages → Flatten →
/// Linear (cnn_path.c): for each input i and target t, out[t][i, :] = Σ_k weight[k]·∂F_t/∂z
/// at z = zb_i + alpha[k]·(zx_i − zb_i), k < steps, where z [h0, c0, w0] (rows-outer) is the
/// first layer's output, zx [n, h0, c0, w0], zb rows zb_stride apart (0: one for all), F_t
/// the head's logit targets[i·tcount + t] and head [classes, dlast] the head's weight rows
/// in the rows-outer order of the last pooling's output [h/2, oc, w/2]. Bitwise the sums of
/// the ops apart. Returns 0, with nothing written, without AVX2 and FMA, on extents that do
/// not chain or pool evenly, more than ATTRIB_PATH_STAGES_MAX stages, or a failed allocation.
int attrib_ig_conv_gelu_pool_path_sum_f32(const float *zx, const float *zb, size_t zb_stride,
                                          size_t h0, size_t c0, size_t w0,
                                          const attrib_conv_gelu_pool_stage *stages, size_t nstages,
                                          const float *head, const int32_t *targets, size_t tcount,
                                          const float *alpha, const float *weight, size_t steps,
                                          size_t i0, size_t i1, float *const *out);

/// C = X·B for few rows of X against a B packed once (smallrows_gemm.c). Floats the packed
/// form of a B [k, n] takes: 0, where the product does not run, unless n is a multiple of 16
/// and the CPU has AVX2 and FMA.
size_t attrib_sgemm_small_rows_packed_count(size_t k, size_t n);
/// Blocks of rows of k the packed form holds.
size_t attrib_sgemm_small_rows_k_blocks(size_t k);
/// Packs blocks [q0, q1) of B [k, n] (b[row·ldb + col]) into `packed`,
/// attrib_sgemm_small_rows_packed_count(k, n) floats in all, 32-byte aligned; the blocks may
/// be packed by different threads.
void attrib_sgemm_small_rows_pack_f32(const float *b, size_t ldb, size_t k, size_t n, size_t q0, size_t q1, float *packed);
/// The same packed form of B = Wᵀ [k, n], made from W [n, k] (w[row·ldw + col]) without a
/// stored Wᵀ: panels [p0, p1) of it (columns 16·p0 ..< 16·p1 of B), all K blocks; the
/// panels may be packed by different threads.
void attrib_sgemm_small_rows_pack_transposed_f32(const float *w, size_t ldw, size_t k, size_t n, size_t p0, size_t p1, float *packed);
/// The widest kernel the packed products have here: 16 (AVX-512, packed_gemm_avx512.c), 8
/// (AVX2 and FMA, the 6 × 16 kernel), 0 (none: no AVX2 and FMA, which the packing needs).
int attrib_sgemm_packed_lanes(void);
/// c[i, 16·p0 ..< 16·p1] = Σ_j x[i, j]·B[j, ·] (+ bias[col] where bias is not NULL) for rows
/// i < m (x[i·ldx + j], c[i·ldc + col]), the columns of panels [p0, p1) of a packed B [k, n],
/// by the kernel of `lanes` lanes (16 or 8, at most attrib_sgemm_packed_lanes()). Returns 0,
/// with nothing written, where that kernel does not run here, for n not a multiple of 16, or
/// on a failed allocation.
int attrib_sgemm_small_rows_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n,
                                size_t p0, size_t p1, float *c, size_t ldc, const float *bias, int lanes);
/// The AVX-512 kernel of attrib_sgemm_small_rows_f32 (lanes 16), for any number of rows.
int attrib_sgemm_packed_avx512_f32(const float *x, size_t ldx, size_t m, size_t k, const float *packed, size_t n,
                                   size_t p0, size_t p1, float *c, size_t ldc, const float *bias);

/// Depthwise convolution, Float32 (depthwise.c): planes [plane0, plane1) of x [planes, h, w]
/// (channel = plane mod c) with weight [c, kh, kw] and bias [c] (NULL: none), stride (sh, sw),
/// zero padding (ph, pw), into y [planes, oh, ow]; and the input gradient dx [planes, h, w] from
/// dy [planes, oh, ow]. Every element of the planes' y or dx written. 0 on a failed allocation.
int attrib_depthwise_forward_f32(const float *x, const float *weight, const float *bias, float *y,
                                 size_t plane0, size_t plane1, size_t c, size_t h, size_t w,
                                 size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw);
int attrib_depthwise_backward_f32(const float *dy, const float *weight, float *dx,
                                  size_t plane0, size_t plane1, size_t c, size_t h, size_t w,
                                  size_t kh, size_t kw, size_t sh, size_t sw, size_t ph, size_t pw);
/// 0: the scalar loops even where the CPU has AVX-512 (tests); 1 (default): AVX-512 where it has it.
void attrib_depthwise_set_avx512(int allowed);

/// Softmax (or log-softmax) of `rows` rows of `cols` Float32 values with AVX2: exp from one
/// degree-6 fit (0.8 ulp), sums in 8 lanes. Returns 0, with nothing written, without AVX2/FMA.
int attrib_softmax_rows_f32(const float *x, float *y, size_t rows, size_t cols, int log_softmax);

/// Float16 bits → Float32 (exact) and Float32 → Float16 bits (nearest, ties to even; NaN kept
/// quiet; past 65504 ∞), the scalar forms (half.c).
float attrib_half_to_float(uint16_t h);
uint16_t attrib_float_to_half(float f);
/// Float32 → BFloat16 bits (nearest, ties to even; NaN kept quiet; overflow to ∞).
uint16_t attrib_float_to_bfloat16(float f);
/// y[i] = x[i] widened to Float32, x BFloat16 (bfloat16 ≠ 0) or Float16 bits: exact.
void attrib_widen_half(int bfloat16, size_t n, const uint16_t *x, float *y);
/// y[i] = x[i] rounded to BFloat16 or Float16 bits, to nearest with ties to even.
void attrib_narrow_half(int bfloat16, size_t n, const float *x, uint16_t *y);
/// y[i, :] = table[idx[i], :] widened to Float32 (indices checked by the caller).
void attrib_gather_rows_half(int bfloat16, size_t n, size_t cols, const int32_t *idx,
                             const uint16_t *table, float *y);

/// Float32 tanh, logistic sigmoid and tanh-form GELU, their backward dx = dy·f′, and (tanh,
/// sigmoid) f with f′ in one pass (logistic.c): AVX2 and FMA, 8 lanes from one exp, the same
/// bits from every form wherever a range is split; libm without AVX2.
void attrib_tanh_forward_f32(const float *x, float *y, size_t n);
void attrib_tanh_backward_f32(const float *x, const float *dy, float *dx, size_t n);
void attrib_tanh_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n);
void attrib_sigmoid_forward_f32(const float *x, float *y, size_t n);
void attrib_sigmoid_backward_f32(const float *x, const float *dy, float *dx, size_t n);
void attrib_sigmoid_forward_derivative_f32(const float *x, float *y, float *dydx, size_t n);
void attrib_gelu_tanh_forward_f32(const float *x, float *y, size_t n);
void attrib_gelu_tanh_backward_f32(const float *x, const float *dy, float *dx, size_t n);

/// Caps the vector activations' width (tanh, sigmoid, both GELUs, SiLU): 16 (AVX-512F where
/// present, the default), 8 (AVX2 + FMA) or 1 (libm). 16 and 8 give the same bits; the tests
/// compare them.
void attrib_activation_set_max_lanes(int lanes);
/// The width the vector activations run at now: 16, 8 or 1.
int attrib_activation_lanes(void);
