// gemm.cl: batched SGEMM/DGEMM, row-major, with transposes, alpha/beta,
// leading dimensions, element offsets and strided batches.
//
//   __kernel void gemm(int M, int N, int K, real alpha,
//                      __global const real* A, int A_off, int lda, int strideA,
//                      __global const real* B, int B_off, int ldb, int strideB,
//                      real beta, __global real* C, int C_off, int ldc, int strideC)
//
//   C(MxN) = alpha * op(A)(MxK) * op(B)(KxN) + beta * C, for every batch b =
//   get_group_id(2); batch b uses A + A_off + b*strideA (same for B and C).
//   op(A)(i,p) = A[i*lda + p]  (TRANS_A == 0)   or  A[p*lda + i]  (TRANS_A == 1)
//   op(B)(p,j) = B[p*ldb + j]  (TRANS_B == 0)   or  B[j*ldb + p]  (TRANS_B == 1)
//   C(i,j)     = C[i*ldc + j]
//   beta == 0: C is only written, never read (it may hold NaN).
//   alpha == 0: A and B are not read (C = beta*C, or 0 when beta == 0).
//   K == 0 is allowed (C = beta*C). M == 0 or N == 0: do not launch.
//
// Design: each work-group computes an MWG x NWG tile of C with MDIMC x NDIMC
// work-items; each item keeps an (MWG/MDIMC) x (NWG/NDIMC) accumulator tile in
// registers. Per K step of KWG, the group copies an MWG x KWG tile of op(A)
// and a KWG x NWG tile of op(B) into local memory (k-major, row length padded
// by PAD), reading global memory with vloadVW along the contiguous direction
// of the stored matrix (element-aligned, so any offset / ld works).
// Work-item (ty, tx) owns rows ty + MDIMC*i and columns tx + NDIMC*j
// ("strided" assignment): local reads of B and global stores of C are
// contiguous across neighbouring items (coalesced on GPUs, vectorizable by
// PoCL), and local reads of A are broadcasts.
// Tiles that lie fully inside the matrices take an unchecked fast path; edge
// tiles (M, N or K not a multiple of the tile) use bounds-checked loads with
// zero fill, and bounds-checked stores.
//
// Build options (-D):
//   REAL, USE_FP64    see docs/kernel-contract.md
//   TRANS_A, TRANS_B  0 or 1 (default 0); separate programs per combination
//   MWG    rows of C per work-group                         (default 64)
//   NWG    columns of C per work-group                      (default 64)
//   KWG    K step held in local memory                      (default 16)
//   MDIMC  work-items along M (local size, dimension 1)     (default 8)
//   NDIMC  work-items along N (local size, dimension 0)     (default 8)
//   VW     vector width of the global loads: 1, 2, 4, 8, 16 (default 4)
//   PAD    extra elements per local-memory row             (default 1)
//   LOCAL_A 1: stage op(A) tiles through local memory (GPUs).   (default 1)
//           0: interior tiles read op(A) straight from global memory
//              (CPUs; best with MDIMC == NDIMC == 1). Edge tiles always
//              go through local memory.
//   LOCAL_B same for op(B); only honoured with TRANS_B == 0 (with
//           TRANS_B == 1 B is always staged).                (default 1)
//   ROUND   operands rounded as staged (--precision without tensor cores):
//           0 none, 1 TF32, 2 BF16 (operand_round.cl, prepended to this file);
//           forces LOCAL_A = LOCAL_B = 1.
//
// Constraints (every combination satisfying them is valid for any M, N, K):
//   MWG % MDIMC == 0, NWG % NDIMC == 0
//   MWG % VW == 0, NWG % VW == 0, KWG % VW == 0, VW in {1, 2, 4, 8, 16}
//   PAD >= 0, LOCAL_A and LOCAL_B in {0, 1}
//   MDIMC*NDIMC <= CL_DEVICE_MAX_WORK_GROUP_SIZE (and the kernel's
//                  CL_KERNEL_WORK_GROUP_SIZE)
//   KWG*(MWG+PAD + NWG+PAD) * sizeof(real) <= CL_DEVICE_LOCAL_MEM_SIZE
//   Registers: (MWG/MDIMC)*(NWG/NDIMC) accumulators per item; keep <= 64
//   (float) on GPUs to avoid spills.
//
// NDRange (exact; the kernel has reqd_work_group_size(NDIMC, MDIMC, 1)):
//   local  = (NDIMC, MDIMC, 1)
//   global = (ceil(N/NWG)*NDIMC, ceil(M/MWG)*MDIMC, batch)
// `real`, act_f/act_df, RND and the fused epilogue (FUSED, EPI_*, MASK_A) come from the
// files prepended to this one: activation_math.cl, operand_round.cl, gemm_epilogue.cl.

#ifndef TRANS_A
#define TRANS_A 0
#endif
#ifndef TRANS_B
#define TRANS_B 0
#endif
#ifndef MWG
#define MWG 64
#endif
#ifndef NWG
#define NWG 64
#endif
#ifndef KWG
#define KWG 16
#endif
#ifndef MDIMC
#define MDIMC 8
#endif
#ifndef NDIMC
#define NDIMC 8
#endif
#ifndef VW
#define VW 4
#endif
#ifndef PAD
#define PAD 1
#endif
#ifndef LOCAL_A
#define LOCAL_A 1
#endif
#ifndef LOCAL_B
#define LOCAL_B 1
#endif
#if ROUND != 0 || MASK_A
// Operand rounding and the multiplier of A (MASK_A) are applied as tiles are staged, so
// every operand goes through local memory.
// Operand rounding (--precision tf32|bf16 without tensor cores) happens as tiles are
// staged, so every operand goes through local memory.
#undef LOCAL_A
#define LOCAL_A 1
#undef LOCAL_B
#define LOCAL_B 1
#endif
#if TRANS_B == 1 && LOCAL_B == 0
// Direct reads of a stored N x K B would be strided across neighbouring
// work-items (gathers on CPUs, uncoalesced on GPUs): always stage it.
#undef LOCAL_B
#define LOCAL_B 1
#endif

#if (MWG % MDIMC) != 0 || (NWG % NDIMC) != 0
#error "gemm.cl: MWG must be a multiple of MDIMC and NWG of NDIMC"
#endif
#if VW != 1 && VW != 2 && VW != 4 && VW != 8 && VW != 16
#error "gemm.cl: VW must be 1, 2, 4, 8 or 16"
#endif
#if (MWG % VW) != 0 || (NWG % VW) != 0 || (KWG % VW) != 0
#error "gemm.cl: MWG, NWG and KWG must be multiples of VW"
#endif
#if PAD < 0
#error "gemm.cl: PAD must be >= 0"
#endif
#if (LOCAL_A != 0 && LOCAL_A != 1) || (LOCAL_B != 0 && LOCAL_B != 1)
#error "gemm.cl: LOCAL_A and LOCAL_B must be 0 or 1"
#endif

#pragma OPENCL FP_CONTRACT ON


#define MWI (MWG / MDIMC)          // accumulator rows per work-item
#define NWI (NWG / NDIMC)          // accumulator columns per work-item
#define WGS (MDIMC * NDIMC)        // work-group size
#define LDAS (MWG + PAD)           // local row length of the A tile (k-major)
#define LDBS (NWG + PAD)           // local row length of the B tile (k-major)

// vloadVW into a private array (element-aligned global pointer).
#if VW == 1
#define LOADV(dst, p) ((dst)[0] = (p)[0])
#else
#define GEMM_CAT_(a, b) a##b
#define GEMM_CAT(a, b) GEMM_CAT_(a, b)
#define LOADV(dst, p) GEMM_CAT(vstore, VW)(GEMM_CAT(vload, VW)(0, (p)), 0, (dst))
#endif

// Copies an R x S tile, rows r0.., columns s0.. of the row-major matrix G
// (leading dimension ld, valid rows < rmax, valid columns < smax) into local
// memory: element (r, s) goes to L[r*LR + s*LS]. Elements outside the matrix
// become 0. Loads run along s (the contiguous direction) in vectors of VW;
// consecutive work-items take consecutive vectors (coalesced).
// R, S, LR, LS, CHECK are compile-time constants; CHECK == 0 (tile fully
// inside the matrix) drops every bounds check. A macro, so that each of the
// four loaders below is fully specialized without relying on inlining.
#define LOAD_TILE(G, ld, r0, s0, rmax, smax, L, LR, LS, R, S, CHECK, MUL)       \
    {                                                                           \
        for (int it = 0; it < ((R) * ((S) / VW) + WGS - 1) / WGS; ++it) {       \
            const int idx = tid + it * WGS;                                     \
            if ((((R) * ((S) / VW)) % WGS) == 0 || idx < (R) * ((S) / VW)) {    \
                const int r = idx / ((S) / VW);                                 \
                const int s = (idx - r * ((S) / VW)) * VW;                      \
                const int gr = (r0) + r;                                        \
                const int gs = (s0) + s;                                        \
                real v[VW];                                                     \
                if (!(CHECK) || (gr < (rmax) && gs + VW <= (smax))) {           \
                    LOADV(v, (G) + (gr * (ld) + gs));                           \
                    for (int e = 0; e < VW; ++e)                                \
                        v[e] = MUL(v[e], gr * (ld) + gs + e);                   \
                } else {                                                        \
                    for (int e = 0; e < VW; ++e)                                \
                        v[e] = (gr < (rmax) && gs + e < (smax))                 \
                             ? MUL(((G) + (gr * (ld) + gs))[e], gr * (ld) + gs + e) : (real)0; \
                }                                                               \
                for (int e = 0; e < VW; ++e)                                    \
                    ((L) + (r * (LR) + s * (LS)))[e * (LS)] = RND(v[e]);             \
            }                                                                   \
        }                                                                       \
    }

// op(A) tile (rows m0.., k0..) -> As[k*LDAS + m]
#if TRANS_A == 0
// stored M x K, contiguous along k
#define LOAD_A(CHECK) LOAD_TILE(A, lda, m0, k0, M, K, As, 1, LDAS, MWG, KWG, CHECK, MUL_A)
#else
// stored K x M, contiguous along m
#define LOAD_A(CHECK) LOAD_TILE(A, lda, k0, m0, K, M, As, LDAS, 1, KWG, MWG, CHECK, MUL_A)
#endif

// op(B) tile (k0.., columns n0..) -> Bs[k*LDBS + n]
#if TRANS_B == 0
// stored K x N, contiguous along n
#define LOAD_B(CHECK) LOAD_TILE(B, ldb, k0, n0, K, N, Bs, LDBS, 1, KWG, NWG, CHECK, MUL_B)
#else
// stored N x K, contiguous along k
#define LOAD_B(CHECK) LOAD_TILE(B, ldb, n0, k0, N, K, Bs, 1, LDBS, NWG, KWG, CHECK, MUL_B)
#endif

// Operand fetch for the direct (LOCAL_x == 0) path on interior tiles:
// element (k0+k, ...) of the current K step, for accumulator row i / column j.
// (Index arithmetic is split so that offsets that are compile-time constants
// after unrolling are added to pointers last: neighbouring elements then
// differ by a constant and the compiler can vectorize / fold them.)
#if LOCAL_A
#define A_DIRECT(k, i) Al[(k) * LDAS + (i) * MDIMC]
#elif TRANS_A == 0
#define A_DIRECT(k, i) (Ag + (i) * MDIMC * lda)[k]
#else
#define A_DIRECT(k, i) (Ag + (k) * lda)[(i) * MDIMC]
#endif
#if LOCAL_B
#define B_DIRECT(k, j) Bl[(k) * LDBS + (j) * NDIMC]
#elif TRANS_B == 0
#define B_DIRECT(k, j) (Bg + (k) * ldb)[(j) * NDIMC]
#else
#define B_DIRECT(k, j) (Bg + (j) * NDIMC * ldb)[k]
#endif

__kernel __attribute__((reqd_work_group_size(NDIMC, MDIMC, 1)))
void gemm(int M, int N, int K, real alpha,
          __global const real* restrict A, int A_off, int lda, int strideA,
          __global const real* restrict B, int B_off, int ldb, int strideB,
          real beta, __global real* restrict C, int C_off, int ldc, int strideC
          GEMM_FUSED_ARGS)
{
    __local real As[KWG * LDAS];
    __local real Bs[KWG * LDBS];

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

    __local const real* Al = As + ty;   // this item's first row / column
    __local const real* Bl = Bs + tx;

    real acc[MWI][NWI];
#pragma unroll
    for (int i = 0; i < MWI; ++i)
#pragma unroll
        for (int j = 0; j < NWI; ++j)
            acc[i][j] = (real)0;

    const int fullM = (m0 + MWG <= M);
    const int fullN = (n0 + NWG <= N);
    const int Kloop = (alpha == (real)0) ? 0 : K;   // uniform over the group

    for (int k0 = 0; k0 < Kloop; k0 += KWG) {
        const int fullK = (k0 + KWG <= K);
#if LOCAL_A == 0 || LOCAL_B == 0
        // Interior tile: operands with LOCAL_x == 0 are read straight from
        // global memory. `direct` is uniform over the work-group, so the
        // barriers below are reached by all items or by none.
        const int direct = fullM && fullN && fullK;
#else
        const int direct = 0;
#endif
        if (!direct || LOCAL_A) {
            if (fullM && fullK) LOAD_A(0) else LOAD_A(1)
        }
        if (!direct || LOCAL_B) {
            if (fullN && fullK) LOAD_B(0) else LOAD_B(1)
        }
        if (!direct || LOCAL_A || LOCAL_B) barrier(CLK_LOCAL_MEM_FENCE);

#if LOCAL_A == 0 || LOCAL_B == 0
        if (direct) {
#if TRANS_A == 0
            __global const real* Ag = A + ((m0 + ty) * lda + k0);
#else
            __global const real* Ag = A + (k0 * lda + m0 + ty);
#endif
#if TRANS_B == 0
            __global const real* Bg = B + (k0 * ldb + n0 + tx);
#else
            __global const real* Bg = B + ((n0 + tx) * ldb + k0);
#endif
#pragma unroll
            for (int k = 0; k < KWG; ++k) {
                real a[MWI], b[NWI];
#pragma unroll
                for (int i = 0; i < MWI; ++i) a[i] = A_DIRECT(k, i);
#pragma unroll
                for (int j = 0; j < NWI; ++j) b[j] = B_DIRECT(k, j);
#pragma unroll
                for (int i = 0; i < MWI; ++i)
#pragma unroll
                    for (int j = 0; j < NWI; ++j)
                        acc[i][j] += a[i] * b[j];
            }
        } else
#endif
        {
#pragma unroll
            for (int k = 0; k < KWG; ++k) {
                real a[MWI], b[NWI];
#pragma unroll
                for (int i = 0; i < MWI; ++i) a[i] = Al[k * LDAS + i * MDIMC];
#pragma unroll
                for (int j = 0; j < NWI; ++j) b[j] = Bl[k * LDBS + j * NDIMC];
#pragma unroll
                for (int i = 0; i < MWI; ++i)
#pragma unroll
                    for (int j = 0; j < NWI; ++j)
                        acc[i][j] += a[i] * b[j];
            }
        }
        if (!direct || LOCAL_A || LOCAL_B) barrier(CLK_LOCAL_MEM_FENCE);
    }

    // Store. beta == 0 never reads C.
    const int full = fullM && fullN;
#pragma unroll
    for (int i = 0; i < MWI; ++i) {
        const int row = m0 + ty + i * MDIMC;
        __global real* Crow = C + (row * ldc + n0 + tx);
#pragma unroll
        for (int j = 0; j < NWI; ++j) {
            const int col = n0 + tx + j * NDIMC;
            if (full || (row < M && col < N)) {
                if (beta == (real)0) Crow[j * NDIMC] = EPILOGUE(alpha * acc[i][j], col, (long)row * ldc + col);
                else Crow[j * NDIMC] = alpha * acc[i][j] + beta * Crow[j * NDIMC];
            }
        }
    }
}
