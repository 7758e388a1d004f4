// gemm_epilogue.cl: what a product can do besides C = alpha*op(A)*op(B) + beta*C,
// prepended (after activation_math.cl and operand_round.cl) to gemm.cl, gemm_db.cl and
// gemm_mma.cl. Why: a layer y = f(x*W^T + b) of an attribution sweep otherwise writes z,
// reads it for the bias, writes it, reads it for f and f', and its backward reads dy and
// f' to write dy*f' before the product reads that again; fused, z never leaves
// registers and dy*f' is formed as the product stages its operand.
//
// Build options (-D), all default 0; with FUSED 0 the kernels are exactly the plain ones:
//   FUSED    1: the kernel takes six more arguments, after strideC:
//              __global const real* bias, int bias_off,   [N], added to every row of C
//              __global real* D, int D_off,               f'(z), laid out as C (ldc, strideC)
//              __global const real* MA, int MA_off        multiplier of A, laid out as A
//              (lda, strideA); arguments a variant does not use may be any buffer.
//   EPI_BIAS 1: z = alpha*acc + bias[col]   (beta must be 0: the host enforces it)
//   EPI_ACT  k >= 0: C = f_k(z) (activation_math.cl's kinds); -1 (default): C = z
//   EPI_D    1: D = f'_k(z) (needs EPI_ACT >= 0)
//   MASK_A   1: op(A) is read as A (.) MA, each product's operand multiplied as staged,
//              so the backward dz = dy (.) f'(z) feeds dz*W without being written.
// With alpha = 1 every value is bitwise what the separate kernels give: the same sums
// in the same order, one rounding for the bias add, the same f and f' (the tests hold it).
#ifndef FUSED
#define FUSED 0
#endif
#ifndef EPI_BIAS
#define EPI_BIAS 0
#endif
#ifndef EPI_ACT
#define EPI_ACT -1
#endif
#ifndef EPI_D
#define EPI_D 0
#endif
#ifndef MASK_A
#define MASK_A 0
#endif
#if !FUSED && (EPI_BIAS || EPI_ACT >= 0 || EPI_D || MASK_A)
#error "gemm_epilogue.cl: EPI_BIAS, EPI_ACT, EPI_D and MASK_A need FUSED=1"
#endif
#if EPI_D && EPI_ACT < 0
#error "gemm_epilogue.cl: EPI_D needs an activation (EPI_ACT)"
#endif

#if FUSED
#define GEMM_FUSED_ARGS , __global const real* restrict bias, int bias_off,  \
                          __global real* restrict D, int D_off,             \
                          __global const real* restrict MA, int MA_off
// Moves the fused operands to this batch, as the kernel moves A and C.
#define GEMM_FUSED_OFFSETS                                                   \
    bias += bias_off;                                                        \
    D += (long)D_off + batch * (long)strideC;                                \
    MA += (long)MA_off + batch * (long)strideA;
#else
#define GEMM_FUSED_ARGS
#define GEMM_FUSED_OFFSETS
#endif

// An element of A at offset `off` from the batch's A, as the product reads it.
#if MASK_A
#define MUL_A(v, off) ((v) * MA[off])
#else
#define MUL_A(v, off) (v)
#endif
// B is never multiplied; FETCH macros take MUL_A or MUL_B.
#define MUL_B(v, off) (v)

// The value stored at C[off] for the scaled sum z = alpha*acc at column col, writing
// f'(z) to D[off] where asked. Only called with beta == 0 when FUSED.
#if FUSED
inline real epilogue(real z, int col, __global const real* restrict bias, __global real* restrict D, long off) {
#if EPI_BIAS
    z += bias[col];
#endif
#if EPI_D
    D[off] = act_df(EPI_ACT, z);
#endif
#if EPI_ACT >= 0
    z = act_f(EPI_ACT, z);
#endif
    return z;
}
#define EPILOGUE(z, col, off) epilogue((z), (col), bias, D, (off))
#else
#define EPILOGUE(z, col, off) (z)
#endif
