// gemm_db.cl: the GPU GEMM: double-buffered local memory, register tiles read
// from local memory as vectors. Same kernel signature, semantics and NDRange
// rule as gemm.cl (docs/kernel-contract.md):
//
//   __kernel void gemm(int M, int N, int K, real alpha,
//                      __global const real* A, int A_off, int lda, int strideA,
//                      __global const real* B, int B_off, int ldb, int strideB,
//                      real beta, __global real* C, int C_off, int ldc, int strideC)
//
//   C(MxN) = alpha * op(A) * op(B) + beta * C per batch b = get_group_id(2);
//   beta == 0 never reads C; alpha == 0 never reads A or B.
//
// Why a second kernel: gemm.cl gives each work-item rows ty + MDIMC*i, so every
// operand it takes from local memory is a scalar load: 16 loads per 64 FMAs at
// 8x8 per item, which on an H200 held it at 45% of the FP32 peak (local memory
// bandwidth, not arithmetic, was the limit). Here an item owns runs of VWM
// consecutive rows and VWN consecutive columns, read with one vector load each
// (4 loads per 64 FMAs at 8x8 and VWM = VWN = 4), and the next K step's tiles are
// fetched from global memory into registers while the current one is multiplied,
// then stored into the other of two local buffers: one barrier per K step, and
// global latency hidden behind arithmetic.
//
// Ownership: item (ty, tx) computes rows (s*MDIMC + ty)*VWM + v, s < MWI/VWM,
// v < VWM, and columns (s*NDIMC + tx)*VWN + v likewise. Across neighbouring tx
// the column runs are contiguous, so C's stores and B's local reads are
// coalesced / conflict-free; all items of a row read the same A vector (a
// broadcast).
//
// Build options (-D): REAL, USE_FP64, TRANS_A, TRANS_B as in gemm.cl, and
//   MWG, NWG, KWG, MDIMC, NDIMC   as in gemm.cl
//   VW      vector width of the global loads (1, 2, 4, 8)
//   VWM     rows per run of an item (1, 2, 4, 8)
//   VWN     columns per run of an item (1, 2, 4, 8)
//   PAD     extra elements per local row; a multiple of VWM and of VWN keeps the
//           vector reads aligned
//   ROUND   operand rounding before the product (--precision on devices without
//           tensor cores): 0 none, 1 TF32 (10-bit mantissa, nearest, ties away,
//           as PTX cvt.rna.tf32.f32), 2 BF16 (7-bit mantissa, nearest even);
//           RND is defined by operand_round.cl, prepended to this file
// Constraints (checked by GEMMParameters.problem):
//   MWG % (MDIMC*VWM) == 0, NWG % (NDIMC*VWN) == 0, PAD % VWM == 0, PAD % VWN == 0
//   (MWG*KWG) % (MDIMC*NDIMC*VW) == 0, (NWG*KWG) % (MDIMC*NDIMC*VW) == 0
//   KWG % VW == 0, MWG % VW == 0, NWG % VW == 0
//   2*KWG*(MWG+PAD + NWG+PAD)*sizeof(real) <= local memory
//
// NDRange: local = (NDIMC, MDIMC, 1), global = (ceil(N/NWG)*NDIMC, ceil(M/MWG)*MDIMC, batch)
// `real`, RND and the fused epilogue come from the files prepended to this one
// (activation_math.cl, operand_round.cl, gemm_epilogue.cl).

#ifndef TRANS_A
#define TRANS_A 0
#endif
#ifndef TRANS_B
#define TRANS_B 0
#endif

#if (MWG % (MDIMC * VWM)) != 0 || (NWG % (NDIMC * VWN)) != 0
#error "gemm_db.cl: MWG must be a multiple of MDIMC*VWM and NWG of NDIMC*VWN"
#endif
#if ((MWG * KWG) % (MDIMC * NDIMC * VW)) != 0 || ((NWG * KWG) % (MDIMC * NDIMC * VW)) != 0
#error "gemm_db.cl: each tile must split evenly into VW-vectors over the work-group"
#endif
#if (KWG % VW) != 0 || (MWG % VW) != 0 || (NWG % VW) != 0 || (PAD % VWM) != 0 || (PAD % VWN) != 0
#error "gemm_db.cl: KWG, MWG and NWG must be multiples of VW, PAD of VWM and VWN"
#endif

#pragma OPENCL FP_CONTRACT ON

#define MWI (MWG / MDIMC)
#define NWI (NWG / NDIMC)
#define WGS (MDIMC * NDIMC)
#define LDAS (MWG + PAD)
#define LDBS (NWG + PAD)
#define A_PER_ITEM ((MWG * KWG) / (WGS * VW))   // VW-vectors of A each item fetches per K step
#define B_PER_ITEM ((NWG * KWG) / (WGS * VW))

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#if VW == 1
#define GLOADV(dst, p) ((dst)[0] = (p)[0])
#else
#define GLOADV(dst, p) CAT(vstore, VW)(CAT(vload, VW)(0, (p)), 0, (dst))
#endif
#if VWM == 1
#define LLOADM(dst, p) ((dst)[0] = (p)[0])
#else
#define LLOADM(dst, p) CAT(vstore, VWM)(CAT(vload, VWM)(0, (p)), 0, (dst))
#endif
#if VWN == 1
#define LLOADN(dst, p) ((dst)[0] = (p)[0])
#else
#define LLOADN(dst, p) CAT(vstore, VWN)(CAT(vload, VWN)(0, (p)), 0, (dst))
#endif


// Fetches this item's share of an R x S tile (rows r0.., columns s0.. of the
// row-major G, valid rows < rmax and columns < smax; outside is 0) into regs:
// vector `it` covers row idx / (S/VW), columns (idx % (S/VW))*VW.., idx = tid + it*WGS.
#define FETCH(G, ld, r0, s0, rmax, smax, regs, R, S, PER, CHECK, MUL)           \
    {                                                                            \
        _Pragma("unroll")                                                        \
        for (int it = 0; it < (PER); ++it) {                                     \
            const int idx = tid + it * WGS;                                      \
            const int r = idx / ((S) / VW);                                      \
            const int s = (idx - r * ((S) / VW)) * VW;                           \
            const int gr = (r0) + r, gs = (s0) + s;                              \
            if (!(CHECK) || (gr < (rmax) && gs + VW <= (smax))) {                \
                GLOADV((regs) + it * VW, (G) + (gr * (ld) + gs));                \
                _Pragma("unroll")                                                \
                for (int e = 0; e < VW; ++e)                                     \
                    (regs)[it * VW + e] = MUL((regs)[it * VW + e], gr * (ld) + gs + e); \
            } else {                                                             \
                _Pragma("unroll")                                                \
                for (int e = 0; e < VW; ++e)                                     \
                    (regs)[it * VW + e] = (gr < (rmax) && gs + e < (smax))       \
                        ? MUL(((G) + (gr * (ld) + gs))[e], gr * (ld) + gs + e) : (real)0; \
            }                                                                    \
        }                                                                        \
    }
// Stores what FETCH fetched: element (r, s) to L[r*LR + s*LS].
#define STASH(regs, L, LR, LS, S, PER)                                           \
    {                                                                            \
        _Pragma("unroll")                                                        \
        for (int it = 0; it < (PER); ++it) {                                     \
            const int idx = tid + it * WGS;                                      \
            const int r = idx / ((S) / VW);                                      \
            const int s = (idx - r * ((S) / VW)) * VW;                           \
            _Pragma("unroll")                                                    \
            for (int e = 0; e < VW; ++e)                                         \
                (L)[r * (LR) + (s + e) * (LS)] = RND((regs)[it * VW + e]);       \
        }                                                                        \
    }

// op(A) tile (m0.., k0..) -> As[k*LDAS + m]; op(B) tile (k0.., n0..) -> Bs[k*LDBS + n]
#if TRANS_A == 0
#define FETCH_A(k0, CHECK) FETCH(A, lda, m0, k0, M, K, ra, MWG, KWG, A_PER_ITEM, CHECK, MUL_A)
#define STASH_A(L) STASH(ra, L, 1, LDAS, KWG, A_PER_ITEM)
#else
#define FETCH_A(k0, CHECK) FETCH(A, lda, k0, m0, K, M, ra, KWG, MWG, A_PER_ITEM, CHECK, MUL_A)
#define STASH_A(L) STASH(ra, L, LDAS, 1, MWG, A_PER_ITEM)
#endif
#if TRANS_B == 0
#define FETCH_B(k0, CHECK) FETCH(B, ldb, k0, n0, K, N, rb, KWG, NWG, B_PER_ITEM, CHECK, MUL_B)
#define STASH_B(L) STASH(rb, L, LDBS, 1, NWG, B_PER_ITEM)
#else
#define FETCH_B(k0, CHECK) FETCH(B, ldb, n0, k0, N, K, rb, NWG, KWG, B_PER_ITEM, CHECK, MUL_B)
#define STASH_B(L) STASH(rb, L, 1, LDBS, KWG, B_PER_ITEM)
#endif

__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void gemm(int M, int N, int K, real alpha,
          __global const real* restrict A, int A_off, int lda, int strideA,
          __global const real* restrict B, int B_off, int ldb, int strideB,
          real beta, __global real* restrict C, int C_off, int ldc, int strideC
          GEMM_FUSED_ARGS)
{
    __local real As[2 * KWG * LDAS];
    __local real Bs[2 * KWG * LDBS];

    const int tx = (int)get_local_id(0);
    const int ty = (int)get_local_id(1);
    const int tid = ty * NDIMC + tx;
    const int n0 = (int)get_group_id(0) * NWG;
    const int m0 = (int)get_group_id(1) * MWG;
    const long batch = (long)get_group_id(2);
    A += (long)A_off + batch * (long)strideA;
    B += (long)B_off + batch * (long)strideB;
    C += (long)C_off + batch * (long)strideC;
    GEMM_FUSED_OFFSETS

    real acc[MWI][NWI];
    #pragma unroll
    for (int i = 0; i < MWI; ++i)
        #pragma unroll
        for (int j = 0; j < NWI; ++j) acc[i][j] = (real)0;

    const int fullM = (m0 + MWG <= M), fullN = (n0 + NWG <= N);
    // Uniform over the group: every barrier below is reached by all items or none.
    const int tiles = (alpha == (real)0) ? 0 : (K + KWG - 1) / KWG;
    real ra[A_PER_ITEM * VW], rb[B_PER_ITEM * VW];

    if (tiles > 0) {
        const int fullK = (KWG <= K);
        if (fullM && fullK) FETCH_A(0, 0) else FETCH_A(0, 1)
        if (fullN && fullK) FETCH_B(0, 0) else FETCH_B(0, 1)
        STASH_A(As)
        STASH_B(Bs)
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int t = 0; t < tiles; ++t) {
        const int cur = (t & 1), more = (t + 1 < tiles);
        if (more) {
            const int k1 = (t + 1) * KWG, fullK = (k1 + KWG <= K);
            if (fullM && fullK) FETCH_A(k1, 0) else FETCH_A(k1, 1)
            if (fullN && fullK) FETCH_B(k1, 0) else FETCH_B(k1, 1)
        }
        __local const real* Al = As + cur * (KWG * LDAS) + ty * VWM;
        __local const real* Bl = Bs + cur * (KWG * LDBS) + tx * VWN;
        #pragma unroll
        for (int k = 0; k < KWG; ++k) {
            real a[MWI], b[NWI];
            #pragma unroll
            for (int s = 0; s < MWI / VWM; ++s) LLOADM(a + s * VWM, Al + (k * LDAS + s * MDIMC * VWM));
            #pragma unroll
            for (int s = 0; s < NWI / VWN; ++s) LLOADN(b + s * VWN, Bl + (k * LDBS + s * NDIMC * VWN));
            #pragma unroll
            for (int i = 0; i < MWI; ++i)
                #pragma unroll
                for (int j = 0; j < NWI; ++j) acc[i][j] += a[i] * b[j];
        }
        if (more) {
            __local real* An = As + (1 - cur) * (KWG * LDAS);
            __local real* Bn = Bs + (1 - cur) * (KWG * LDBS);
            STASH_A(An)
            STASH_B(Bn)
        }
        // Orders this step's reads of `cur` before the next step's stores into it,
        // and this step's stores into the other buffer before the next step's reads.
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    const int full = fullM && fullN;
    #pragma unroll
    for (int i = 0; i < MWI; ++i) {
        const int row = m0 + ((i / VWM) * MDIMC + ty) * VWM + (i % VWM);
        #pragma unroll
        for (int sj = 0; sj < NWI / VWN; ++sj) {
            const int col = n0 + (sj * NDIMC + tx) * VWN;
            __global real* Cp = C + ((long)row * ldc + col);
            #pragma unroll
            for (int v = 0; v < VWN; ++v) {
                if (full || (row < M && col + v < N)) {
                    const real r = alpha * acc[i][sj * VWN + v];
                    Cp[v] = (beta == (real)0) ? EPILOGUE(r, col + v, (long)row * ldc + col + v) : r + beta * Cp[v];
                }
            }
        }
    }
}
