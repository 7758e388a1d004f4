// The lane math of the activations, written once for a vector width: included by act_lanes.h
// with LN = 8 (AVX2 + FMA) and LN = 16 (AVX-512F). Every function takes and returns whole
// vectors and uses only lane-wise IEEE operations (add, mul, div, FMA, compare-select, integer
// shifts for 2^k), in the same order at both widths, so a lane's result is the same bits
// whichever width computed it. The parameters (VEC, MASK, SUF, V_TARGET and the V_ macros)
// are undefined at the end.
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

// exp(x) for x ≤ 0 (or NaN, which it keeps). Cody–Waite reduction x = k·ln2 + r, |r| ≤ ln2/2,
// a degree-6 fit of exp(r) (0.8 ulp evaluated in float32), and 2^k applied in two halves so
// that results down to the subnormals come out right.
__attribute__((target(V_TARGET)))
static inline VEC CAT(exp_v, SUF)(VEC x) {
    x = V_MAX(V_SET1(-110.0f), x);                      // exp(−110) is 0 in float; NaN stays (MAX returns x)
    VEC k = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
    VEC r = V_FNMADD(k, V_SET1(0.693145751953125f), x);
    r = V_FNMADD(k, V_SET1(1.42860682030941723212e-6f), r);
    VEC p = V_SET1(1.382940914e-03f);
    p = V_FMADD(p, r, V_SET1(8.374779485e-03f));
    p = V_FMADD(p, r, V_SET1(4.166835919e-02f));
    p = V_FMADD(p, r, V_SET1(1.666642129e-01f));
    p = V_FMADD(p, r, V_SET1(4.999999106e-01f));
    p = V_FMADD(p, r, V_SET1(1.0f));
    p = V_FMADD(p, r, V_SET1(1.0f));
    VEC s1, s2;
    V_POW2_HALVES(k, s1, s2);
    return V_MUL(V_MUL(p, s1), s2);
}

// σ(x) from one exp, with e = exp(−|x|) and d = 1 + e for the derivatives: σ = 1/d for x ≥ 0
// and e/d below, σ(1 − σ) = e/d², the forms of Kernels/activation.cl (no overflow, no cancellation).
__attribute__((target(V_TARGET)))
static inline VEC CAT(sigmoid_v, SUF)(VEC v, VEC *e_out, VEC *d_out) {
    const VEC one = V_SET1(1.0f);
    VEC e = CAT(exp_v, SUF)(V_SUB(V_ZERO(), V_ABS(v)));
    VEC d = V_ADD(one, e);
    *e_out = e; *d_out = d;
    // select(1/d, e/d) as select(1, e)/d: one correctly rounded division, the same bits.
    return V_DIV(V_SELECT(V_GE(v, V_ZERO()), one, e), d);
}

// tanh and tanh′ = 1 − tanh². Below |x| = 0.3125 the odd Taylor series to x¹¹ (its first
// dropped term is 3e-9 relative there) and 1 − t² = (1 − t)(1 + t) (no cancellation, t² < 0.1).
// Above, e = exp(−2|x|): tanh|x| = (1 − e)/(1 + e), where 1 − e ≥ 0.46 loses nothing, and
// tanh′ = 4e/(1 + e)², accurate relative to itself out to the tails where 1 − t² would be 0.
__attribute__((target(V_TARGET)))
static inline VEC CAT(tanh_v, SUF)(VEC v, VEC *deriv) {
    const VEC one = V_SET1(1.0f);
    VEC a = V_ABS(v), z = V_MUL(v, v);
    VEC p = V_SET1(-1382.0f / 155925.0f);
    p = V_FMADD(p, z, V_SET1(62.0f / 2835.0f));
    p = V_FMADD(p, z, V_SET1(-17.0f / 315.0f));
    p = V_FMADD(p, z, V_SET1(2.0f / 15.0f));
    p = V_FMADD(p, z, V_SET1(-1.0f / 3.0f));
    VEC ts = V_FMADD(V_MUL(p, z), v, v);                               // v + v·z·P(z), sign and −0 kept
    VEC e = CAT(exp_v, SUF)(V_MUL(V_SET1(-2.0f), a));
    VEC d = V_ADD(one, e);
    VEC tl = V_WITH_SIGN(V_DIV(V_SUB(one, e), d), v);
    MASK small = V_LT(a, V_SET1(0.3125f));
    VEC gs = V_MUL(V_SUB(one, ts), V_ADD(one, ts));
    VEC gl = V_DIV(V_MUL(V_SET1(4.0f), e), V_MUL(d, d));
    *deriv = V_SELECT(small, gs, gl);
    return V_SELECT(small, ts, tl);
}

// GELU, tanh form: u = √(2/π)(x + 0.044715x³), f = x·σ(2u) (= ½x(1 + tanh u), without its
// cancellation for x ≪ 0), f′ = σ(2u) + x·2σ′(2u)·u′, u′ = √(2/π)(1 + 3·0.044715x²): the
// formulas of ActivationMath and Kernels/activation.cl.
__attribute__((target(V_TARGET)))
static inline VEC CAT(gelu_tanh_v, SUF)(VEC v, VEC *deriv) {
    const VEC c = V_SET1(0.7978845608028654f), k = V_SET1(0.044715f);
    VEC x2 = V_MUL(v, v);
    VEC u = V_MUL(c, V_FMADD(V_MUL(k, x2), v, v));
    VEC e, d, s = CAT(sigmoid_v, SUF)(V_ADD(u, u), &e, &d);
    VEC ds = V_DIV(e, V_MUL(d, d));
    VEC du = V_MUL(c, V_FMADD(V_MUL(V_SET1(3.0f), k), x2, V_SET1(1.0f)));
    *deriv = V_FMADD(V_MUL(v, V_ADD(ds, ds)), du, s);
    return V_MUL(v, s);
}

// GELU, erf form: Φ(x) and φ(x) from one exp:
//   E = exp(−x²/2), with x² split exactly into s + e (s = fl(x·x), e = fma(x, x, −s)),
//       so that E is as accurate as expf, however large x² is; φ = E/√(2π);
//   Φ = ½·E·R(|z|) for x < 0 and 1 − ½·E·R(|z|) for x ≥ 0 (z = x/√2), R a (4, 4)
//       rational fit of erfcx(a) = erfc(a)·exp(a²) on [0, 10.5] (1.8e-7 in double,
//       3.7e-7 evaluated in float32, 6u; scripts/fit_gelu.py). Φ near ½ loses nothing:
//       1 − t for t ≤ ½ is exact to within u of Φ. Beyond |z| = 10.5, E is 0 and Φ is 0 or 1.
// f = x·Φ and f′ = Φ + x·φ, with the scalar formulas' zero tests lane-wise.
__attribute__((target(V_TARGET)))
static inline VEC CAT(horner5_v, SUF)(VEC x, float c0, float c1, float c2, float c3, float c4) {
    VEC r = V_SET1(c4);
    r = V_FMADD(r, x, V_SET1(c3));
    r = V_FMADD(r, x, V_SET1(c2));
    r = V_FMADD(r, x, V_SET1(c1));
    return V_FMADD(r, x, V_SET1(c0));
}

__attribute__((target(V_TARGET)))
static inline VEC CAT(gelu_erf_v, SUF)(VEC v, VEC *deriv) {
    const VEC half = V_SET1(0.5f), zero = V_ZERO();
    VEC s = V_MUL(v, v);
    VEC e = V_SELECT(V_LT(s, V_SET1(1e30f)), V_FMSUB(v, v, s), zero);   // x² = ∞ or NaN: no correction
    VEC E = CAT(exp_v, SUF)(V_MUL(V_SET1(-0.5f), s));
    E = V_FNMADD(V_MUL(half, e), E, E);                                  // E·(1 − e/2) = exp(−(s + e)/2)
    VEC pdf = V_MUL(E, V_SET1(0.39894228040143267794f));
    VEC a = V_ABS(V_MUL(v, V_SET1(0.70710678118654752440f)));
    VEC r = V_DIV(CAT(horner5_v, SUF)(a, 9.999998212e-01f, 9.763615727e-01f, 4.418083429e-01f, 8.483696729e-02f, 1.373652708e-06f),
                  CAT(horner5_v, SUF)(a, 1.000000000e+00f, 2.104727507e+00f, 1.816897035e+00f, 7.817637324e-01f, 1.504572034e-01f));
    VEC t = V_SELECT(V_EQ(E, zero), zero, V_MUL(V_MUL(half, E), r));     // R(∞) is NaN; E = 0 wins
    VEC cdf = V_SELECT(V_LT(v, zero), t, V_SUB(V_SET1(1.0f), t));
    *deriv = V_SELECT(V_EQ(pdf, zero), cdf, V_ADD(cdf, V_MUL(v, pdf)));
    return V_SELECT(V_EQ(cdf, zero), zero, V_MUL(v, cdf));
}

// SiLU x·σ(x) and its derivative σ + x·σ(1 − σ) = σ + x·e/d².
__attribute__((target(V_TARGET)))
static inline VEC CAT(silu_v, SUF)(VEC v, VEC *deriv) {
    VEC e, d, s = CAT(sigmoid_v, SUF)(v, &e, &d);
    *deriv = V_FMADD(v, V_DIV(e, V_MUL(d, d)), s);
    return V_MUL(v, s);
}

// One group of LN elements of activation `kind` (ATTRIB_ACT_*): y = f, dydx = f′, dx = dy·f′,
// each skipped where NULL. Always inlined with a constant kind, so the switch folds away.
__attribute__((target(V_TARGET), always_inline))
static inline void CAT(act_group_v, SUF)(int kind, VEC v, const float *dy, float *y, float *dydx, float *dx) {
    VEC g, f;
    switch (kind) {
    case ATTRIB_ACT_TANH: f = CAT(tanh_v, SUF)(v, &g); break;
    case ATTRIB_ACT_SIGMOID: { VEC e, d; f = CAT(sigmoid_v, SUF)(v, &e, &d); g = V_DIV(e, V_MUL(d, d)); break; }
    case ATTRIB_ACT_GELU_TANH: f = CAT(gelu_tanh_v, SUF)(v, &g); break;
    case ATTRIB_ACT_GELU_ERF: f = CAT(gelu_erf_v, SUF)(v, &g); break;
    default: f = CAT(silu_v, SUF)(v, &g); break;
    }
    if (y) V_STOREU(y, f);
    if (dydx) V_STOREU(dydx, g);
    if (dx) V_STOREU(dx, V_MUL(V_LOADU(dy), g));
}

// n elements, LN at a time; the last partial group through zero-padded copies, so every element
// gets the lanes' code wherever a call's range starts and ends (parallel chunks, the planes of a
// fused pooling) and a result never depends on how an array was split.
__attribute__((target(V_TARGET), always_inline))
static inline void CAT(act_loop_v, SUF)(const int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
    size_t i = 0;
    for (; i + LN <= n; i += LN)
        CAT(act_group_v, SUF)(kind, V_LOADU(x + i), dy ? dy + i : NULL, y ? y + i : NULL, dydx ? dydx + i : NULL, dx ? dx + i : NULL);
    if (i == n) return;
    float xb[LN] = {0}, dyb[LN] = {0}, yb[LN], gb[LN], dxb[LN];
    size_t k = n - i;
    for (size_t j = 0; j < k; j++) { xb[j] = x[i + j]; if (dy) dyb[j] = dy[i + j]; }
    CAT(act_group_v, SUF)(kind, V_LOADU(xb), dyb, yb, gb, dy ? dxb : NULL);
    for (size_t j = 0; j < k; j++) {
        if (y) y[i + j] = yb[j];
        if (dydx) dydx[i + j] = gb[j];
        if (dx) dx[i + j] = dxb[j];
    }
}

// The loop specialised per kind: a call per group with the switch inside it cost a fifth of
// GELU's time.
__attribute__((target(V_TARGET)))
static void CAT(act_run_v, SUF)(int kind, const float *x, const float *dy, float *y, float *dydx, float *dx, size_t n) {
    switch (kind) {
    case ATTRIB_ACT_TANH: CAT(act_loop_v, SUF)(ATTRIB_ACT_TANH, x, dy, y, dydx, dx, n); break;
    case ATTRIB_ACT_SIGMOID: CAT(act_loop_v, SUF)(ATTRIB_ACT_SIGMOID, x, dy, y, dydx, dx, n); break;
    case ATTRIB_ACT_GELU_TANH: CAT(act_loop_v, SUF)(ATTRIB_ACT_GELU_TANH, x, dy, y, dydx, dx, n); break;
    case ATTRIB_ACT_GELU_ERF: CAT(act_loop_v, SUF)(ATTRIB_ACT_GELU_ERF, x, dy, y, dydx, dx, n); break;
    default: CAT(act_loop_v, SUF)(ATTRIB_ACT_SILU, x, dy, y, dydx, dx, n); break;
    }
}

#undef CAT
#undef CAT_
#undef LN
#undef SUF
#undef VEC
#undef MASK
#undef V_TARGET
#undef V_LOADU
#undef V_STOREU
#undef V_SET1
#undef V_ZERO
#undef V_ADD
#undef V_SUB
#undef V_MUL
#undef V_DIV
#undef V_MAX
#undef V_FMADD
#undef V_FNMADD
#undef V_FMSUB
#undef V_ROUND
#undef V_ABS
#undef V_WITH_SIGN
#undef V_LT
#undef V_GE
#undef V_EQ
#undef V_SELECT
#undef V_POW2_HALVES
