// The activation formulas of the CPU backend. They are the same functions,
// in the same numerically stable forms, as Kernels/activation.cl: no
// cancellation for large |x| (GELU as x·sigmoid(2u) and 0.5x·erfc(−x/√2)),
// no overflow in exp, analytic derivatives.

enum ActivationMath<T: CPUScalar> {
    static var sqrt2OverPi: T { T(0.7978845608028654) }   // √(2/π)
    static var invSqrt2: T { T(0.7071067811865476) }      // 1/√2
    static var invSqrt2Pi: T { T(0.3989422804014327) }    // 1/√(2π)
    static var geluCubic: T { T(0.044715) }

    /// Split on the sign so exp never overflows.
    static func sigmoid(_ x: T) -> T {
        if x >= 0 { return 1 / (1 + T.exp(-x)) }
        let e = T.exp(x)
        return e / (1 + e)
    }

    /// tanh that is exactly ±1 past |x| = 20, where it rounds there in both precisions.
    static func tanhSaturated(_ x: T) -> T { Swift.abs(x) > 20 ? (x > 0 ? 1 : -1) : T.tanh(x) }

    static func forward(_ kind: Activation, _ x: T) -> T {
        switch kind {
        case .relu: return x < 0 ? 0 : x
        case .geluTanh:
            // 0.5x(1 + tanh u) = x·sigmoid(2u).
            let s = sigmoid(2 * sqrt2OverPi * (x + geluCubic * x * x * x))
            return s == 0 ? 0 : x * s
        case .geluErf:
            // 0.5x(1 + erf(x/√2)) = 0.5x·erfc(−x/√2).
            let cdf = T(0.5) * T.erfc(-x * invSqrt2)
            return cdf == 0 ? 0 : x * cdf
        case .tanh: return tanhSaturated(x)
        case .sigmoid: return sigmoid(x)
        case .softplus: return Swift.max(x, 0) + T.log1p(T.exp(-Swift.abs(x)))
        case .relu6: return Swift.min(Swift.max(x, 0), 6)
        case .hardSigmoid: return Swift.min(Swift.max(x + 3, 0), 6) / 6
        case .hardSwish: return x * Swift.min(Swift.max(x + 3, 0), 6) / 6
        case .erf: return T.erf(x)
        case .silu: return x * sigmoid(x)
        }
    }

    /// (f(x), f′(x)) for the kinds whose f′ follows from the same transcendental as f:
    /// tanh and sigmoid, one tanh or one exp for both instead of one each in the forward and
    /// the backward. Bitwise `forward` and `derivative` (the same formulas on the same values).
    /// nil for the others.
    static func valueAndDerivative(_ kind: Activation, _ x: T) -> (T, T)? {
        switch kind {
        case .tanh:
            let t = tanhSaturated(x)
            return (t, (1 - t) * (1 + t))
        case .sigmoid:
            let e = T.exp(-Swift.abs(x)), d = 1 + e
            // sigmoid's own split: 1/(1 + e^−x) for x ≥ 0, e^x/(1 + e^x) below, both from e.
            return (x >= 0 ? 1 / d : e / d, e / (d * d))
        default:
            return nil
        }
    }

    /// f′(x).
    static func derivative(_ kind: Activation, _ x: T) -> T {
        switch kind {
        case .relu: return x > 0 ? 1 : 0
        case .geluTanh:
            // f = x·s, s = sigmoid(2u): f′ = s + x·2s(1 − s)·u′, with 1 − s = sigmoid(−2u).
            let u = sqrt2OverPi * (x + geluCubic * x * x * x)
            let s = sigmoid(2 * u), g = 2 * s * sigmoid(-2 * u)
            return g == 0 ? s : s + x * g * sqrt2OverPi * (1 + 3 * geluCubic * x * x)
        case .geluErf:
            let cdf = T(0.5) * T.erfc(-x * invSqrt2), pdf = invSqrt2Pi * T.exp(-T(0.5) * x * x)
            return pdf == 0 ? cdf : cdf + x * pdf
        case .tanh: let t = tanhSaturated(x); return (1 - t) * (1 + t)
        case .sigmoid: let e = T.exp(-Swift.abs(x)), d = 1 + e; return e / (d * d)
        case .softplus: return sigmoid(x)
        // PyTorch's backward conventions at the kinks: 1/6 strictly inside (−3, 3) for the
        // hard sigmoid; for the hard swish x/3 + ½ on [−3, 3], 0 below and 1 above.
        case .relu6: return x > 0 && x < 6 ? 1 : 0
        case .hardSigmoid: return x > -3 && x < 3 ? T(1) / 6 : 0
        case .hardSwish: return x < -3 ? 0 : x <= 3 ? x / 3 + T(0.5) : 1
        case .erf: return T(1.1283791670955126) * T.exp(-x * x)      // 2/√π
        // (x·s)′ = s + x·s(1 − s), s(1 − s) = e/(1 + e)² with e = e^−|x| (no cancellation).
        case .silu: let e = T.exp(-Swift.abs(x)), d = 1 + e; return sigmoid(x) + x * e / (d * d)
        }
    }
}
