// operand_round.cl: the rounding --precision applies to the operands of Float32 products,
// prepended to gemm.cl, gemm_db.cl, gemm_mma.cl and conv_igemm.cl (KernelSources.swift), so
// the four kernels and MatmulPrecision.round (Swift) share one definition. On the bits;
// Inf and NaN pass unchanged.
//   round_tf32: 10 explicit significand bits, nearest with ties away (PTX cvt.rna.tf32.f32)
//   round_bf16: 7 explicit significand bits, nearest even
// ROUND (0 none, 1 TF32, 2 BF16; default 0) selects RND(x), the rounding the portable
// kernels apply as they stage operands; Float64 programs never round.
inline float round_tf32(float x) {
    uint u = as_uint(x);
    return ((u & 0x7f800000u) == 0x7f800000u) ? x : as_float((u + 0x1000u) & 0xffffe000u);
}
inline float round_bf16(float x) {
    uint u = as_uint(x);
    return ((u & 0x7f800000u) == 0x7f800000u) ? x : as_float((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}
#ifndef ROUND
#define ROUND 0
#endif
#if ROUND == 0 || defined(USE_FP64)
#define RND(x) (x)
#elif ROUND == 1
#define RND(x) round_tf32(x)
#else
#define RND(x) round_bf16(x)
#endif
