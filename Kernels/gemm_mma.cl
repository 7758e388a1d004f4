// gemm_mma.cl: Float32 GEMM on NVIDIA tensor cores (compute capability >= 8.0)
// through inline PTX mma.sync, for --precision tf32 and bf16. NVIDIA's OpenCL
// compiler passes asm statements through to PTX; no other vendor's does, so
// this file is built only on NVIDIA devices that passed the probe below, and
// every other device rounds the operands in gemm.cl / gemm_db.cl instead
// (ROUND), which gives the same products up to the order of the sums.
//
// Same signature and semantics as gemm.cl (docs/kernel-contract.md), Float32
// only; the operands are rounded once, as they are staged into local memory:
//   PREC 1: TF32, nearest with ties away (cvt.rna's rounding), mma.m16n8k8
//   PREC 2: BF16, nearest even, mma.m16n8k16
// Products of rounded operands are exact in Float32 and every sum is Float32.
//
// Tiling: a work-group of 32*WM*WN items (1-D) computes a BM x BN tile of C;
// warp w = (wm, wn) computes rows wm*(BM/WM).., columns wn*(BN/WN).. as
// MT x NT mma tiles of 16 x 8. Per K step of BK, op(A) is staged as As[m][k] and
// op(B) as Bs[n][k] (both k-contiguous: the "row.col" operand layouts), rows
// padded so that a warp's fragment reads hit 32 distinct banks. The next step's
// tiles are fetched into registers during the current step's products and then
// stored into the other of two local buffers (one barrier per step).
//
// Build options (-D): TRANS_A, TRANS_B (0/1), PREC (1/2), BM, BN, BK, WM, WN, EMULATE_MMA
// (defined: the mma's semantics in plain OpenCL C through local memory, so that this
// file's tiling is tested on any device; see mma_emulated), and
// NBUF: 2 local buffers (the next step stored while this one multiplies, one barrier
// per step) or 1 (half the local memory, so twice the K step fits: a second barrier).
// Constraints: BM % (16*WM) == 0, BN % (8*WN) == 0, BK % (8*PREC) == 0,
//   (BM*BK) % (32*WM*WN*4) == 0, (BN*BK) % (32*WM*WN*4) == 0, BM, BN % 4 == 0.
// NDRange: local = (32*WM*WN, 1, 1), global = (ceil(N/BN)*32*WM*WN, ceil(M/BM), batch).
#ifndef TRANS_A
#define TRANS_A 0
#endif
#ifndef TRANS_B
#define TRANS_B 0
#endif

#ifndef NBUF
#define NBUF 2
#endif
#define THREADS (32 * WM * WN)
#define WTM (BM / WM)
#define WTN (BN / WN)
#define MT (WTM / 16)
#define NT (WTN / 8)
#define VW 4
#define A_PER_ITEM ((BM * BK) / (THREADS * VW))
#define B_PER_ITEM ((BN * BK) / (THREADS * VW))

#if PREC == 1
// One 32-bit word per operand: TF32 bits. Row length BK + 4 words: the fragment
// read (row g, column t) of lane 4g + t lands in bank (4g + t) mod 32.
typedef uint elem_t;
#define LDK (BK + 4)
#define KSTEP 8
inline elem_t to_elem(float x) { return as_uint(round_tf32(x)); }
#else
// Two BF16 per 32-bit word; row length BK + 8 halves = BK/2 + 4 words.
typedef ushort elem_t;
#define LDK (BK + 8)
#define KSTEP 16
inline elem_t to_elem(float x) { return (ushort)(as_uint(round_bf16(x)) >> 16); }
#endif

#if (BM % (16 * WM)) != 0 || (BN % (8 * WN)) != 0 || (BK % KSTEP) != 0
#error "gemm_mma.cl: BM must be a multiple of 16*WM, BN of 8*WN, BK of the mma's K"
#endif
#if ((BM * BK) % (THREADS * VW)) != 0 || ((BN * BK) % (THREADS * VW)) != 0
#error "gemm_mma.cl: each tile must split evenly into 4-vectors over the work-group"
#endif

// Fetches this item's share of an R x S tile of the row-major G (rows r0..,
// columns s0.., valid < rmax, smax; outside is 0) as 4-vectors.
#define FETCH(G, ld, r0, s0, rmax, smax, regs, S, PER, CHECK, MUL)              \
    {                                                                            \
        _Pragma("unroll")                                                        \
        for (int it = 0; it < (PER); ++it) {                                     \
            const int idx = tid + it * THREADS;                                  \
            const int r = idx / ((S) / VW);                                      \
            const int s = (idx - r * ((S) / VW)) * VW;                           \
            const int gr = (r0) + r, gs = (s0) + s;                              \
            if (!(CHECK) || (gr < (rmax) && gs + VW <= (smax))) {                \
                vstore4(vload4(0, (G) + ((long)gr * (ld) + gs)), 0, (regs) + it * VW); \
                _Pragma("unroll")                                                \
                for (int e = 0; e < VW; ++e)                                     \
                    (regs)[it * VW + e] = MUL((regs)[it * VW + e], (long)gr * (ld) + gs + e); \
            } else {                                                             \
                _Pragma("unroll")                                                \
                for (int e = 0; e < VW; ++e)                                     \
                    (regs)[it * VW + e] = (gr < (rmax) && gs + e < (smax))       \
                        ? MUL(((G) + ((long)gr * (ld) + gs))[e], (long)gr * (ld) + gs + e) : 0.0f; \
            }                                                                    \
        }                                                                        \
    }
// Element (r, s) of the fetched tile to L[r*LR + s*LS], rounded.
#define STASH(regs, L, LR, LS, S, PER)                                           \
    {                                                                            \
        _Pragma("unroll")                                                        \
        for (int it = 0; it < (PER); ++it) {                                     \
            const int idx = tid + it * THREADS;                                  \
            const int r = idx / ((S) / VW);                                      \
            const int s = (idx - r * ((S) / VW)) * VW;                           \
            _Pragma("unroll")                                                    \
            for (int e = 0; e < VW; ++e)                                         \
                (L)[r * (LR) + (s + e) * (LS)] = to_elem((regs)[it * VW + e]);   \
        }                                                                        \
    }

#if TRANS_A == 0   // A stored M x K: rows are m
#define FETCH_A(k0, CHECK) FETCH(A, lda, m0, k0, M, K, ra, BK, A_PER_ITEM, CHECK, MUL_A)
#define STASH_A(L) STASH(ra, L, LDK, 1, BK, A_PER_ITEM)
#else              // A stored K x M: rows are k
#define FETCH_A(k0, CHECK) FETCH(A, lda, k0, m0, K, M, ra, BM, A_PER_ITEM, CHECK, MUL_A)
#define STASH_A(L) STASH(ra, L, 1, LDK, BM, A_PER_ITEM)
#endif
#if TRANS_B == 1   // B stored N x K: rows are n
#define FETCH_B(k0, CHECK) FETCH(B, ldb, n0, k0, N, K, rb, BK, B_PER_ITEM, CHECK, MUL_B)
#define STASH_B(L) STASH(rb, L, LDK, 1, BK, B_PER_ITEM)
#else              // B stored K x N: rows are k
#define FETCH_B(k0, CHECK) FETCH(B, ldb, k0, n0, K, N, rb, BN, B_PER_ITEM, CHECK, MUL_B)
#define STASH_B(L) STASH(rb, L, 1, LDK, BN, B_PER_ITEM)
#endif

#ifdef EMULATE_MMA
// The mma's semantics without tensor cores, for testing this file's tiling on any OpenCL
// device (PoCL): each lane puts its fragment elements into its warp's scratch in local
// memory, and after a barrier computes its four D elements as Float32 sums of exact
// products. Every work-item reaches every MMA (uniform control flow), so the barriers
// are legal; the scratch is MMA_SCRATCH floats per warp.
#define MMA_SCRATCH (16 * KSTEP + KSTEP * 8)
inline float elem_value_lo(uint r) {
#if PREC == 1
    return as_float(r);
#else
    return as_float(r << 16);
#endif
}
inline float elem_value_hi(uint r) { return as_float(r & 0xffff0000u); }
void mma_emulated(float* d, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1, __local float* scratch, int lane) {
    const int g = lane >> 2, t = lane & 3;
    __local float* As_ = scratch;                  // [16][KSTEP]
    __local float* Bs_ = scratch + 16 * KSTEP;     // [KSTEP][8]
#if PREC == 1
    As_[g * 8 + t] = elem_value_lo(a0); As_[(g + 8) * 8 + t] = elem_value_lo(a1);
    As_[g * 8 + t + 4] = elem_value_lo(a2); As_[(g + 8) * 8 + t + 4] = elem_value_lo(a3);
    Bs_[t * 8 + g] = elem_value_lo(b0); Bs_[(t + 4) * 8 + g] = elem_value_lo(b1);
#else
    const uint ar[4] = {a0, a1, a2, a3};
    for (int q = 0; q < 4; ++q) {
        const int row = g + (q & 1) * 8, col = 2 * t + (q >> 1) * 8;
        As_[row * 16 + col] = elem_value_lo(ar[q]); As_[row * 16 + col + 1] = elem_value_hi(ar[q]);
    }
    Bs_[(2 * t) * 8 + g] = elem_value_lo(b0); Bs_[(2 * t + 1) * 8 + g] = elem_value_hi(b0);
    Bs_[(2 * t + 8) * 8 + g] = elem_value_lo(b1); Bs_[(2 * t + 9) * 8 + g] = elem_value_hi(b1);
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = 0; e < 4; ++e) {
        const int row = g + (e >> 1) * 8, col = 2 * t + (e & 1);
        float sum = d[e];
        for (int k = 0; k < KSTEP; ++k) sum = fma(As_[row * KSTEP + k], Bs_[k * 8 + col], sum);
        d[e] = sum;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
#define MMA(d, a0, a1, a2, a3, b0, b1) mma_emulated((d), (a0), (a1), (a2), (a3), (b0), (b1), mma_scratch + (get_local_id(0) >> 5) * MMA_SCRATCH, (int)(get_local_id(0) & 31))
#define MMA_SCRATCH_DECL(warps) __local float mma_scratch[(warps) * MMA_SCRATCH];
#else
#define MMA_SCRATCH_DECL(warps)
#if PREC == 1
#define MMA_SHAPE "m16n8k8.row.col.f32.tf32.tf32.f32"
#else
#define MMA_SHAPE "m16n8k16.row.col.f32.bf16.bf16.f32"
#endif
#define MMA(d, a0, a1, a2, a3, b0, b1)                                           \
    __asm__("mma.sync.aligned." MMA_SHAPE " "                                    \
            "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"               \
            : "+f"((d)[0]), "+f"((d)[1]), "+f"((d)[2]), "+f"((d)[3])             \
            : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1))
#endif

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1)))
void gemm(int M, int N, int K, float alpha,
          __global const float* restrict A, int A_off, int lda, int strideA,
          __global const float* restrict B, int B_off, int ldb, int strideB,
          float beta, __global float* restrict C, int C_off, int ldc, int strideC
          GEMM_FUSED_ARGS)
{
    // Declared as 32-bit words: fragments are read as words, and a ushort array may be
    // placed at a 2-byte boundary (NVIDIA did, and the BF16 reads then faulted).
    __local uint Aw32[(NBUF * BM * LDK * sizeof(elem_t) + 3) / 4];
    __local uint Bw32[(NBUF * BN * LDK * sizeof(elem_t) + 3) / 4];
    __local elem_t* As = (__local elem_t*)Aw32;
    __local elem_t* Bs = (__local elem_t*)Bw32;
    MMA_SCRATCH_DECL(WM * WN)

    const int tid = (int)get_local_id(0);
    const int lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm = warp / WN, wn = warp % WN;
    const int n0 = (int)get_group_id(0) * BN;
    const int m0 = (int)get_group_id(1) * BM;
    const long batch = (long)get_group_id(2);
    A += (long)A_off + batch * (long)strideA;
    B += (long)B_off + batch * (long)strideB;
    C += (long)C_off + batch * (long)strideC;
    GEMM_FUSED_OFFSETS

    float acc[MT][NT][4];
    #pragma unroll
    for (int i = 0; i < MT; ++i)
        #pragma unroll
        for (int j = 0; j < NT; ++j)
            #pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;

    const int fullM = (m0 + BM <= M), fullN = (n0 + BN <= N);
    const int tiles = (alpha == 0.0f) ? 0 : (K + BK - 1) / BK;   // uniform over the group
    float ra[A_PER_ITEM * VW], rb[B_PER_ITEM * VW];

    if (tiles > 0) {
        const int fullK = (BK <= K);
        if (fullM && fullK) FETCH_A(0, 0) else FETCH_A(0, 1)
        if (fullN && fullK) FETCH_B(0, 0) else FETCH_B(0, 1)
        STASH_A(As)
        STASH_B(Bs)
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int tile = 0; tile < tiles; ++tile) {
        const int cur = (NBUF == 2) ? (tile & 1) : 0, more = (tile + 1 < tiles);
        if (more) {
            const int k1 = (tile + 1) * BK, fullK = (k1 + BK <= K);
            if (fullM && fullK) FETCH_A(k1, 0) else FETCH_A(k1, 1)
            if (fullN && fullK) FETCH_B(k1, 0) else FETCH_B(k1, 1)
        }
#if PREC == 1
        __local const uint* Aw = (__local const uint*)(As + cur * BM * LDK) + (wm * WTM + g) * LDK + t;
        __local const uint* Bw = (__local const uint*)(Bs + cur * BN * LDK) + (wn * WTN + g) * LDK + t;
        #define LDW LDK
#else
        __local const uint* Aw = (__local const uint*)(As + cur * BM * LDK) + (wm * WTM + g) * (LDK / 2) + t;
        __local const uint* Bw = (__local const uint*)(Bs + cur * BN * LDK) + (wn * WTN + g) * (LDK / 2) + t;
        #define LDW (LDK / 2)
#endif
        #ifdef EMULATE_MMA
        #pragma unroll 1
        #else
        #pragma unroll
        #endif
        for (int kk = 0; kk < BK / KSTEP; ++kk) {
            // Word offset of this K sub-step within a row: 8 TF32 or 16 BF16 = 8 words.
            const int kw = kk * 8;
            uint a[MT][4], b[NT][2];
            #pragma unroll
            for (int i = 0; i < MT; ++i) {
                __local const uint* p = Aw + i * 16 * LDW + kw;
                a[i][0] = p[0]; a[i][1] = p[8 * LDW]; a[i][2] = p[4]; a[i][3] = p[8 * LDW + 4];
            }
            #pragma unroll
            for (int j = 0; j < NT; ++j) {
                __local const uint* p = Bw + j * 8 * LDW + kw;
                b[j][0] = p[0]; b[j][1] = p[4];
            }
            #ifdef EMULATE_MMA
            #pragma unroll 1
            #else
            #pragma unroll
            #endif
            for (int i = 0; i < MT; ++i)
                #ifdef EMULATE_MMA
                #pragma unroll 1
                #else
                #pragma unroll
                #endif
                for (int j = 0; j < NT; ++j)
                    MMA(acc[i][j], a[i][0], a[i][1], a[i][2], a[i][3], b[j][0], b[j][1]);
        }
        #undef LDW
#if NBUF == 1
        barrier(CLK_LOCAL_MEM_FENCE);   // every read of the one buffer before it is refilled
#endif
        if (more) {
            __local elem_t* An = As + (NBUF == 2 ? 1 - cur : 0) * BM * LDK;
            __local elem_t* Bn = Bs + (NBUF == 2 ? 1 - cur : 0) * BN * LDK;
            STASH_A(An)
            STASH_B(Bn)
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    // acc[i][j][e]: row g (+8 for e >= 2), column 2t + (e & 1) of mma tile (i, j).
    const int full = fullM && fullN;
    #pragma unroll
    for (int i = 0; i < MT; ++i)
        #pragma unroll
        for (int j = 0; j < NT; ++j)
            #pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int row = m0 + wm * WTM + i * 16 + g + (e >> 1) * 8;
                const int col = n0 + wn * WTN + j * 8 + 2 * t + (e & 1);
                if (full || (row < M && col < N)) {
                    __global float* Cp = C + ((long)row * ldc + col);
                    const float r = alpha * acc[i][j][e];
                    *Cp = (beta == 0.0f) ? EPILOGUE(r, col, (long)row * ldc + col) : r + beta * *Cp;
                }
            }
}

// The probe: one warp, one mma of each kind, A row-major and B as [k][n]:
//   TF32: A 16x8, B 8x8 -> D 16x8;  BF16: A 16x16, B 16x8 -> D 16x8.
// The host checks D against the product of the rounded operands.
__kernel __attribute__((reqd_work_group_size(32, 1, 1)))
void mma_probe(__global const float* A, __global const float* B, __global float* D)
{
    const int lane = (int)get_local_id(0), g = lane >> 2, t = lane & 3;
    MMA_SCRATCH_DECL(1)
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#if PREC == 1
    MMA(d, to_elem(A[g * 8 + t]), to_elem(A[(g + 8) * 8 + t]), to_elem(A[g * 8 + t + 4]),
        to_elem(A[(g + 8) * 8 + t + 4]), to_elem(B[t * 8 + g]), to_elem(B[(t + 4) * 8 + g]));
#else
    #define PAIR(x, y) ((uint)to_elem(x) | ((uint)to_elem(y) << 16))
    MMA(d, PAIR(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]), PAIR(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]),
        PAIR(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]), PAIR(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9]),
        PAIR(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]), PAIR(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g]));
#endif
    for (int e = 0; e < 4; ++e) D[(g + (e >> 1) * 8) * 8 + 2 * t + (e & 1)] = d[e];
}
