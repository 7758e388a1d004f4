// The direct 3×3 convolution of a tile of LN small images, one per vector lane, each element
// [..][LN], and the transposes in and out of the lanes: written once for both tile widths.
// lanes.h includes this file once per width, after defining
//   LN      8 (AVX2) or 16 (AVX-512)           SUF     the names' suffix (8, 16)
//   VEC     __m256 or __m512                   V_TARGET the target attribute ("avx2,fma", "avx512f")
//   V_LOAD, V_STORE, V_SET1, V_ZERO, V_FMA     the aligned load and store, broadcast, zero, FMA
// and this file undefines them at its end. No include guard: that is the point.
//
// Order of the sum, per output and the same in every lane and at every width: the bias (or
// 0), then kernel rows kh ascending, input channels ascending, kernel columns kw ascending,
// each term fused (one FMA). A lane's result depends neither on the other lanes nor on LN,
// so 16-lane and 8-lane tiles give the same bits (Conv2dDirectTests.tileWidths).

#define LANES_CAT_(a, b) a##b
#define LANES_CAT(a, b) LANES_CAT_(a, b)
#define NAME(n) LANES_CAT(n, SUF)

// One output block: NO output channels (o, o + 1) × NX output columns from ox0, on output
// row oy, summed over kernel rows [kh0, kh1). LEFT: the block starts at column 0 (no tap at
// ix = ox0 − 1); RIGHT: it ends at column W (no tap at ix = ox0 + NX). Every argument in
// capitals is a constant at each call site, so each copy is straight-line code with its
// accumulators in registers and no test per tap.
__attribute__((target(V_TARGET), always_inline))
static inline void NAME(conv_block)(const float *restrict xt, float *restrict yt, const float *restrict wt,
                                    const float *restrict bias, size_t c, size_t w, size_t oc,
                                    size_t oy, size_t kh0, size_t kh1, size_t o, size_t ox0,
                                    const int NO, const int NX, const int LEFT, const int RIGHT) {
    VEC acc[2][4];
#pragma clang loop unroll(full)
    for (int a = 0; a < 2; a++) {
        VEC b0 = bias && a < NO ? V_SET1(bias[o + a]) : V_ZERO();
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++) acc[a][j] = b0;
    }
    for (size_t kh = kh0; kh < kh1; kh++) {
        const size_t iy = oy + kh - 1;
        for (size_t ic = 0; ic < c; ic++) {
            const float *xr = xt + ((iy * c + ic) * w + ox0) * LN;   // lanes of input column ox0
            const float *w0 = wt + ((o * c + ic) * 3 + kh) * 3, *w1 = w0 + c * 9;
#pragma clang loop unroll(full)
            for (int kw = 0; kw < 3; kw++) {
                const VEC b0 = V_SET1(w0[kw]);
                const VEC b1 = NO > 1 ? V_SET1(w1[kw]) : b0;
#pragma clang loop unroll(full)
                for (int j = 0; j < 4; j++) {
                    const int r = j + kw - 1;                            // input column ox0 + r
                    if (j >= NX || (LEFT && r < 0) || (RIGHT && r >= NX)) continue;
                    const VEC xv = V_LOAD(xr + r * LN);
                    acc[0][j] = V_FMA(b0, xv, acc[0][j]);
                    if (NO > 1) acc[1][j] = V_FMA(b1, xv, acc[1][j]);
                }
            }
        }
    }
#pragma clang loop unroll(full)
    for (int a = 0; a < 2; a++)
#pragma clang loop unroll(full)
        for (int j = 0; j < 4; j++)
            if (a < NO && j < NX) V_STORE(yt + ((oy * oc + o + a) * w + ox0 + j) * LN, acc[a][j]);
}

#define CONV_BLOCK(NO, NX, L, R) NAME(conv_block)(xt, yt, wt, bias, c, w, oc, oy, kh0, kh1, o, ox0, NO, NX, L, R)
#define CONV_BLOCK_LR(NO, NX) \
    (left ? (right ? CONV_BLOCK(NO, NX, 1, 1) : CONV_BLOCK(NO, NX, 1, 0)) \
          : (right ? CONV_BLOCK(NO, NX, 0, 1) : CONV_BLOCK(NO, NX, 0, 0)))
#define CONV_BLOCK_X(NO) \
    switch (nx) { case 1: CONV_BLOCK_LR(NO, 1); break; case 2: CONV_BLOCK_LR(NO, 2); break; \
                  case 3: CONV_BLOCK_LR(NO, 3); break; default: CONV_BLOCK_LR(NO, 4); break; }

// yt [H][OC][W][LN] from xt [H][C][W][LN].
__attribute__((target(V_TARGET)))
static void NAME(conv_tile)(const float *restrict xt, float *restrict yt, const float *restrict wt, const float *restrict bias,
                            size_t c, size_t h, size_t w, size_t oc) {
    for (size_t oy = 0; oy < h; oy++) {
        const size_t kh0 = oy == 0 ? 1 : 0, kh1 = oy + 1 < h ? 3 : 2;   // rows iy = oy + kh − 1 inside the image
        for (size_t o = 0; o < oc; o += 2) {
            for (size_t ox0 = 0; ox0 < w; ox0 += 4) {
                const size_t nx = w - ox0 < 4 ? w - ox0 : 4;
                const int left = ox0 == 0, right = ox0 + nx == w;
                if (o + 1 < oc) { CONV_BLOCK_X(2) } else { CONV_BLOCK_X(1) }
            }
        }
    }
}

#undef CONV_BLOCK_X
#undef CONV_BLOCK_LR
#undef CONV_BLOCK

// t [d][LN] from `lanes` rows of d floats, row stride d; the lanes after `lanes` are 0. A
// whole tile goes as LN/8 register transposes of 8 × 8 per 8 elements.
__attribute__((target("avx2")))
static void NAME(to_lanes)(const float *x, size_t lanes, size_t d, float *restrict t) {
    size_t e = 0;
    if (lanes == LN) {
        for (; e + 8 <= d; e += 8)
            for (int half = 0; half < LN / 8; half++) {
                __m256 r[8];
                for (int l = 0; l < 8; l++) r[l] = _mm256_loadu_ps(x + (half * 8 + l) * d + e);
                transpose8(r);
                for (int k = 0; k < 8; k++) _mm256_store_ps(t + (e + k) * LN + half * 8, r[k]);
            }
    }
    for (; e < d; e++)
        for (size_t l = 0; l < LN; l++) t[e * LN + l] = l < lanes ? x[l * d + e] : 0.0f;
}

// `lanes` rows of d floats, row stride d, from t [d][LN].
__attribute__((target("avx2")))
static void NAME(from_lanes)(const float *restrict t, size_t lanes, size_t d, float *y) {
    size_t e = 0;
    if (lanes == LN) {
        for (; e + 8 <= d; e += 8)
            for (int half = 0; half < LN / 8; half++) {
                __m256 r[8];
                for (int k = 0; k < 8; k++) r[k] = _mm256_load_ps(t + (e + k) * LN + half * 8);
                transpose8(r);
                for (int l = 0; l < 8; l++) _mm256_storeu_ps(y + (half * 8 + l) * d + e, r[l]);
            }
    }
    for (; e < d; e++)
        for (size_t l = 0; l < lanes; l++) y[l * d + e] = t[e * LN + l];
}

// y [n][H][OC][W] for images [i0, i1) of x [n][H][C][W] (rows-outer), a tile of LN images
// at a time through one input and one output tile; 0 where the tiles cannot be allocated.
static inline int NAME(conv_rows_outer)(const float *x, const float *weight, const float *bias, float *y,
                                        size_t i0, size_t i1, size_t c, size_t h, size_t w, size_t oc) {
    const size_t din = h * c * w, dout = h * oc * w;
    // Aligned for the vector loads and stores: LN floats; the byte count is a multiple of it.
    float *xt = aligned_alloc(LN * sizeof(float), (din + dout) * LN * sizeof(float));
    if (!xt) return 0;
    float *yt = xt + din * LN;
    for (size_t i = i0; i < i1; i += LN) {
        const size_t lanes = i1 - i < LN ? i1 - i : LN;
        NAME(to_lanes)(x + i * din, lanes, din, xt);
        NAME(conv_tile)(xt, yt, weight, bias, c, h, w, oc);
        NAME(from_lanes)(yt, lanes, dout, y + i * dout);
    }
    free(xt);
    return 1;
}

#undef NAME
#undef LANES_CAT
#undef LANES_CAT_
// The parameters too, so that lanes.h defines the next width's afresh.
#undef LN
#undef SUF
#undef VEC
#undef V_TARGET
#undef V_LOAD
#undef V_STORE
#undef V_SET1
#undef V_ZERO
#undef V_FMA
