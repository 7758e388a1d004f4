// conv_igemm.cl: 2-D convolution (cross-correlation, NCHW, as PyTorch's conv2d) and its
// input gradient as implicit GEMMs: the im2col matrix is never written; each K step's
// tile of it is gathered from the image straight into local memory.
//
//   MODE 0, conv2d_igemm: y[i, o, p, q] = bias[o] + sum_{c, r, s} W[o, c, r, s] *
//           x[i, c, p*sh - ph + r, q*sw - pw + s]  (zero outside the image)
//           as C(M x N) = A(M x K) B(K x N): M = OC, N = n*OH*OW, K = C*KH*KW,
//           A = W as [OC, C*KH*KW], B(k, j) gathered from x.
//   MODE 1, conv2d_dgrad_igemm: dx[i, c, h, w] = sum_{o, r, s} W[o, c, r, s] *
//           dy[i, o, (h + ph - r)/sh, (w + pw - s)/sw]  (terms whose division is
//           inexact or lands outside dy are absent): the adjoint of MODE 0, as
//           M = C, N = n*H*W, K = OC*KH*KW, A(c, k) gathered from W, B(k, j) from dy.
//
//   __kernel void conv_igemm(int n, int c, int h, int w, int oc, int kh, int kw,
//                            int sh, int sw, int ph, int pw, int oh, int ow,
//                            __global const real* Wt, int W_off,
//                            __global const real* X, int X_off,      // x (MODE 0) or dy (MODE 1)
//                            __global const real* bias, int bias_off, int has_bias,   // MODE 0
//                            __global real* Y, int Y_off)            // y (MODE 0) or dx (MODE 1)
//
// Tiles: 64 x 64 of C per work-group of 16 x 16 items, each item a 4 x 4 block (rows
// ty*4.., columns tx*4..) read from local memory as 4-vectors; K steps of 16 in two
// local buffers, the next step gathered into registers during the current step's
// products (as gemm_db.cl). Gathers run with neighbouring items on neighbouring
// columns j (output pixels), so stride-1 rows of the image are read coalesced.
// ROUND (0, 1, 2): operands rounded to TF32 or BF16 as staged (--precision), as gemm_db.cl.
// CONV_FUSED 1 (a sweep's Conv -> activation, as gemm_epilogue.cl does for products) appends
//   __global real* D, int D_off, __global const real* MB, int MB_off
// and, MODE 0: CONV_ACT k >= 0 stores y = f_k(z), z = the sum + bias, and D = f'_k(z) (laid
// out as y) where CONV_D is 1; MODE 1: CONV_MASK 1 reads dy as dy (.) MB (MB laid out as dy),
// the backward's dy (.) f' never written. Unused arguments may be any buffer. Bitwise the
// kernel without them followed by act_forward / act_backward, or preceded by ew_mul.
// NDRange: local (16, 16, 1), global (ceil(N/64)*16, ceil(M/64)*16, 1).
// `real` and RND come from the files prepended to this one (activation_math.cl,
// operand_round.cl).
#ifndef MODE
#define MODE 0
#endif
#ifndef CONV_FUSED
#define CONV_FUSED 0
#endif
#ifndef CONV_ACT
#define CONV_ACT -1
#endif
#ifndef CONV_D
#define CONV_D 0
#endif
#ifndef CONV_MASK
#define CONV_MASK 0
#endif
#if CONV_FUSED
#define CONV_FUSED_ARGS , __global real* restrict D, int D_off, __global const real* restrict MB, int MB_off
#else
#define CONV_FUSED_ARGS
#endif
#pragma OPENCL FP_CONTRACT ON

#define TM 64
#define TN 64
#define TK 16
#define PER 4                      // elements of each tile an item gathers per K step
#define LDT (TM + 4)               // local row length (keeps the 4-vector reads aligned)

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void conv_igemm(int n, int c, int h, int w, int oc, int kh, int kw,
                int sh, int sw, int ph, int pw, int oh, int ow,
                __global const real* restrict Wt, int W_off,
                __global const real* restrict X, int X_off,
                __global const real* restrict bias, int bias_off, int has_bias,
                __global real* restrict Y, int Y_off
                CONV_FUSED_ARGS)
{
    __local real As[2 * TK * LDT];   // As[k][m]
    __local real Bs[2 * TK * LDT];   // Bs[k][j]
    const int tx = (int)get_local_id(0), ty = (int)get_local_id(1), tid = ty * 16 + tx;
    const int khw = kh * kw;
#if MODE == 0
    const int M = oc, N = n * oh * ow, K = c * khw, plane = oh * ow;
#else
    const int M = c, N = n * h * w, K = oc * khw, plane = h * w;
#endif
    const int m0 = (int)get_group_id(1) * TM, j0 = (int)get_group_id(0) * TN;
    Wt += W_off; X += X_off;

    // This item's gathered columns j (fixed for the sweep): image and pixel decomposed once.
    // Element e = tid + i*256 of a 16 x 64 tile is (k = e / 64, j = e % 64): j = tid % 64.
    const int jl = tid % 64, kb = tid / 64;          // kb + 4*i: this item's k rows
    const int j = j0 + jl;
    const int jv = j < N;
    const int img = jv ? j / plane : 0, pix = jv ? j % plane : 0;
#if MODE == 0
    const int p = pix / ow, q = pix % ow;
    const int ih0 = p * sh - ph, iw0 = q * sw - pw;
    __global const real* ximg = X + (long)img * c * h * w;
#else
    const int hh = pix / w, ww = pix % w;
    __global const real* dyimg = X + (long)img * oc * oh * ow;
#if CONV_MASK
    __global const real* mbimg = MB + MB_off + (long)img * oc * oh * ow;
#endif
#endif
    // A: element e = tid + i*256 of a 64 x 16 tile is (m = e / 16, k = e % 16).
    const int ml = tid / 16, ka = tid % 16;          // ml + 16*i: this item's m rows

    real ra[PER], rb[PER];
#define GATHER(k0)                                                                        \
    {                                                                                     \
        for (int i = 0; i < PER; ++i) {                                                   \
            const int m = m0 + ml + 16 * i, k = (k0) + ka;                                 \
            real v = (real)0;                                                             \
            if (m < M && k < K) {                                                         \
                A_AT(v, m, k)                                                             \
            }                                                                             \
            ra[i] = v;                                                                    \
            const int kk = (k0) + kb + 4 * i;                                             \
            real u = (real)0;                                                             \
            if (jv && kk < K) {                                                           \
                B_AT(u, kk)                                                               \
            }                                                                             \
            rb[i] = u;                                                                    \
        }                                                                                 \
    }
#if MODE == 0
    // A(m, k) = W[m*K + k]
#define A_AT(v, m, k) v = Wt[(long)(m) * K + (k)];
    // B(k, j) = x[img, ci, ih0 + r, iw0 + s]
#define B_AT(u, kk)                                                                       \
        const int ci = (kk) / khw, rs = (kk) - ci * khw, r = rs / kw, s = rs - r * kw;    \
        const int ih = ih0 + r, iw = iw0 + s;                                             \
        if (ih >= 0 && ih < h && iw >= 0 && iw < w) u = ximg[((long)ci * h + ih) * w + iw];
#else
    // A(ci, k) = W[o, ci, r, s] with k = o*khw + rs
#define A_AT(v, m, k)                                                                     \
        const int o = (k) / khw, rs = (k) - o * khw;                                      \
        v = Wt[((long)o * c + (m)) * khw + rs];
    // B(k, j) = dy[img, o, (hh + ph - r)/sh, (ww + pw - s)/sw] where exact and inside
#define B_AT(u, kk)                                                                       \
        const int o = (kk) / khw, rs = (kk) - o * khw, r = rs / kw, s = rs - r * kw;      \
        const int pn = hh + ph - r, qn = ww + pw - s;                                     \
        if (pn >= 0 && qn >= 0 && pn % sh == 0 && qn % sw == 0) {                         \
            const int pp = pn / sh, qq = qn / sw;                                         \
            if (pp < oh && qq < ow) u = DY_AT(((long)o * oh + pp) * ow + qq);            \
        }
#if CONV_MASK
#define DY_AT(i) (dyimg[i] * mbimg[i])
#else
#define DY_AT(i) dyimg[i]
#endif
#endif
#define STASH(buf)                                                                        \
    {                                                                                     \
        for (int i = 0; i < PER; ++i) {                                                   \
            As[(buf) * TK * LDT + ka * LDT + ml + 16 * i] = RND(ra[i]);                   \
            Bs[(buf) * TK * LDT + (kb + 4 * i) * LDT + jl] = RND(rb[i]);                  \
        }                                                                                 \
    }

    real acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) acc[i][jj] = (real)0;

    const int tiles = (K + TK - 1) / TK;
    GATHER(0)
    STASH(0)
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int t = 0; t < tiles; ++t) {
        const int cur = t & 1, more = t + 1 < tiles;
        if (more) GATHER((t + 1) * TK)
        __local const real* Al = As + cur * TK * LDT + ty * 4;
        __local const real* Bl = Bs + cur * TK * LDT + tx * 4;
#pragma unroll
        for (int k = 0; k < TK; ++k) {
            real a[4], b[4];
            vstore4(vload4(0, Al + k * LDT), 0, a);
            vstore4(vload4(0, Bl + k * LDT), 0, b);
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int jj = 0; jj < 4; ++jj) acc[i][jj] += a[i] * b[jj];
        }
        if (more) STASH(1 - cur)
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    Y += Y_off;
#pragma unroll
    for (int jj = 0; jj < 4; ++jj) {
        const int jo = j0 + tx * 4 + jj;
        if (jo >= N) continue;
        const int im = jo / plane, px = jo - im * plane;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int m = m0 + ty * 4 + i;
            if (m >= M) continue;
            real v = acc[i][jj];
            const long at = ((long)im * M + m) * plane + px;
#if MODE == 0
            if (has_bias) v += bias[bias_off + m];
#if CONV_D
            D[D_off + at] = act_df(CONV_ACT, v);
#endif
#if CONV_ACT >= 0
            v = act_f(CONV_ACT, v);
#endif
#endif
            Y[at] = v;
        }
    }
}
