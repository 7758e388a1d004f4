// activation_math.cl: the activations f and their derivatives f′, one definition,
// prepended (KernelSources.swift) to activation.cl's kernels and to the products'
// fused epilogues (gemm_epilogue.cl), so a fused GEMM and the pointwise kernels
// compute the same values bit for bit.
//   kind: 0 relu, 1 gelu_tanh, 2 gelu_erf, 3 tanh, 4 sigmoid, 5 softplus,
//         6 hard_sigmoid, 7 hard_swish, 8 erf, 9 silu, 10 relu6.
// act_f(kind, x) = f(x); act_df(kind, x) = f'(x).
// All formulas are written in numerically stable forms (no cancellation for
// large |x|, no overflow in exp) and the derivatives are analytic.
// An unknown kind yields NaN so a host bug is loud rather than silent.
#ifdef USE_FP64
#pragma OPENCL EXTENSION cl_khr_fp64 : enable
#endif
// The compute type, for every file this is prepended to (they do not typedef it again).
typedef REAL real;

#define ACT_RELU      0
#define ACT_GELU_TANH 1
#define ACT_GELU_ERF  2
#define ACT_TANH      3
#define ACT_SIGMOID   4
#define ACT_SOFTPLUS  5
#define ACT_HARD_SIGMOID 6
#define ACT_HARD_SWISH   7
#define ACT_ERF          8
#define ACT_SILU         9
#define ACT_RELU6        10

// Non-integer literal of type real: a float literal in the float build (no
// double constant, so no fp64 needed), a double literal in the double build.
#ifdef USE_FP64
#define RLIT(v) ((real)(v))
#else
#define RLIT(v) ((real)(v##f))
#endif

#define K_SQRT_2_OVER_PI   RLIT(0.79788456080286535588)  // sqrt(2/pi)
#define K_GELU_C           RLIT(0.044715)
#define K_INV_SQRT2        RLIT(0.70710678118654752440)  // 1/sqrt(2)
#define K_INV_SQRT_2PI     RLIT(0.39894228040143267794)  // 1/sqrt(2*pi)

// tanh with exact saturation: for |x| > 20 tanh(x) rounds to +-1 in both
// float and double, but some libms (PoCL 3.1 float) return 1 - ulp there.
real tanh_sat(real x)
{
    return fabs(x) > (real)20 ? copysign((real)1, x) : tanh(x);
}

// Stable logistic: never evaluates exp of a positive argument.
real sigmoid_stable(real x)
{
    if (x >= (real)0) {
        return (real)1 / ((real)1 + exp(-x));
    } else {
        real e = exp(x);
        return e / ((real)1 + e);
    }
}

// sigma'(x) = sigma(x) sigma(-x) = e / (1+e)^2 with e = exp(-|x|) (symmetric,
// no overflow, no cancellation).
real sigmoid_grad(real x)
{
    real e = exp(-fabs(x));
    real d = (real)1 + e;
    return e / (d * d);
}

real act_f(int kind, real x)
{
    switch (kind) {
    case ACT_RELU:
        return x < (real)0 ? (real)0 : x;          // NaN propagates
    case ACT_GELU_TANH: {
        // 0.5 x (1 + tanh(u)) == x * sigmoid(2u): same function, but without
        // the cancellation in 1 + tanh(u) for large negative x.
        real u = K_SQRT_2_OVER_PI * (x + K_GELU_C * x * x * x);
        real s = sigmoid_stable((real)2 * u);
        return s == (real)0 ? (real)0 : x * s;
    }
    case ACT_GELU_ERF: {
        // 0.5 x (1 + erf(x/sqrt2)) == 0.5 x erfc(-x/sqrt2) (no cancellation).
        real cdf = RLIT(0.5) * erfc(-x * K_INV_SQRT2);
        return cdf == (real)0 ? (real)0 : x * cdf;
    }
    case ACT_TANH:
        return tanh_sat(x);
    case ACT_SIGMOID:
        return sigmoid_stable(x);
    case ACT_SOFTPLUS:
        // log(1 + e^x) = max(x, 0) + log1p(exp(-|x|))
        return fmax(x, (real)0) + log1p(exp(-fabs(x)));
    case ACT_HARD_SIGMOID:
        // min(max(x + 3, 0), 6) / 6, as PyTorch computes it.
        return fmin(fmax(x + (real)3, (real)0), (real)6) / (real)6;
    case ACT_HARD_SWISH:
        return x * fmin(fmax(x + (real)3, (real)0), (real)6) / (real)6;
    case ACT_ERF:
        return erf(x);
    case ACT_SILU:
        // x sigmoid(x) (Llama's SwiGLU gate).
        return x * sigmoid_stable(x);
    case ACT_RELU6:
        // min(max(x, 0), 6), NaN passing as ReLU's does.
        return x > (real)6 ? (real)6 : (x < (real)0 ? (real)0 : x);
    default:
        return (real)NAN;
    }
}

real act_df(int kind, real x)
{
    switch (kind) {
    case ACT_RELU:
        return x > (real)0 ? (real)1 : (real)0;   // relu'(0) = 0
    case ACT_GELU_TANH: {
        // f  = x s,  s = sigmoid(2u),  u = k (x + c x^3)
        // f' = s + x * 2 s (1 - s) * k (1 + 3 c x^2)
        // (0.5 (1 + tanh u) = s and 0.5 sech^2 u = 2 s (1 - s)); 1 - s is
        // evaluated as sigmoid(-2u) to keep relative accuracy.
        real x2 = x * x;
        real u = K_SQRT_2_OVER_PI * (x + K_GELU_C * x2 * x);
        real s = sigmoid_stable((real)2 * u);
        real g = (real)2 * s * sigmoid_stable((real)-2 * u);  // 0.5 sech^2(u)
        real du = K_SQRT_2_OVER_PI * ((real)1 + (real)3 * K_GELU_C * x2);
        return g == (real)0 ? s : s + x * g * du;
    }
    case ACT_GELU_ERF: {
        // f' = Phi(x) + x phi(x),  Phi = 0.5 erfc(-x/sqrt2),
        // phi = exp(-x^2/2) / sqrt(2 pi)
        real cdf = RLIT(0.5) * erfc(-x * K_INV_SQRT2);
        real pdf = K_INV_SQRT_2PI * exp(-RLIT(0.5) * x * x);
        return pdf == (real)0 ? cdf : cdf + x * pdf;
    }
    case ACT_TANH: {
        real t = tanh_sat(x);
        return ((real)1 - t) * ((real)1 + t);      // 1 - tanh^2
    }
    case ACT_SIGMOID:
        return sigmoid_grad(x);
    case ACT_SOFTPLUS:
        return sigmoid_stable(x);                  // d/dx log(1+e^x)
    case ACT_HARD_SIGMOID:
        // PyTorch's convention at the kinks: 1/6 strictly inside (-3, 3).
        return (x > (real)-3 && x < (real)3) ? (real)1 / (real)6 : (real)0;
    case ACT_HARD_SWISH:
        // 0 below -3, x/3 + 1/2 on [-3, 3], 1 above (PyTorch's backward).
        return x < (real)-3 ? (real)0 : (x <= (real)3 ? x / (real)3 + RLIT(0.5) : (real)1);
    case ACT_ERF:
        return RLIT(1.1283791670955126) * exp(-x * x);   // 2/sqrt(pi)
    case ACT_SILU: {
        // (x s)' = s + x s (1 - s), with s (1 - s) = sigmoid_grad(x) (no cancellation).
        return sigmoid_stable(x) + x * sigmoid_grad(x);
    }
    case ACT_RELU6:
        return (x > (real)0 && x < (real)6) ? (real)1 : (real)0;
    default:
        return (real)NAN;
    }
}

