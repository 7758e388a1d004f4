// The activation formulas, written once for the CPU backend and for the
// Float64 references in the tests. The OpenCL kernels (Kernels/activation.cl)
// implement the same formulas.

enum ActivationMath<T: CPUScalar> {
    static var sqrt2OverPi: T { T(0.7978845608028654) }   // √(2/π)
    static var invSqrt2: T { T(0.7071067811865476) }      // 1/√2
    static var invSqrt2Pi: T { T(0.3989422804014327) }    // 1/√(2π)
    static var geluCubic: T { T(0.044715) }

    static func sigmoid(_ x: T) -> T {
        // Split on the sign so exp never overflows.
        if x >= 0 { return 1 / (1 + T.exp(-x)) }
        let e = T.exp(x)
        return e / (1 + e)
    }

    static func forward(_ kind: Activation, _ x: T) -> T {
        switch kind {
        case .relu: return x > 0 ? x : 0
        case .geluTanh: return T(0.5) * x * (1 + T.tanh(sqrt2OverPi * (x + geluCubic * x * x * x)))
        case .geluErf: return T(0.5) * x * (1 + T.erf(x * invSqrt2))
        case .tanh: return T.tanh(x)
        case .sigmoid: return sigmoid(x)
        case .softplus: return Swift.max(x, 0) + T.log1p(T.exp(-Swift.abs(x)))
        }
    }

    /// f′(x).
    static func derivative(_ kind: Activation, _ x: T) -> T {
        switch kind {
        case .relu: return x > 0 ? 1 : 0
        case .geluTanh:
            let t = T.tanh(sqrt2OverPi * (x + geluCubic * x * x * x))
            return T(0.5) * (1 + t) + T(0.5) * x * (1 - t * t) * sqrt2OverPi * (1 + 3 * geluCubic * x * x)
        case .geluErf: return T(0.5) * (1 + T.erf(x * invSqrt2)) + x * invSqrt2Pi * T.exp(-T(0.5) * x * x)
        case .tanh: let t = T.tanh(x); return 1 - t * t
        case .sigmoid: let s = sigmoid(x); return s * (1 - s)
        case .softplus: return sigmoid(x)
        }
    }
}
