#if canImport(Glibc)
import Glibc
#endif
import AttribCore

/// The baseline-sampling density of path-sampled IG (methods.md): baselines
/// b = x' + β(x − x') with β ~ p. Its CDF W weights the path integral,
/// PS-IG = (x − x') ⊙ ∫₀¹ W(α) g(α) dα.
public enum PathDensity: Sendable, Equatable, CustomStringConvertible {
    /// β ~ U(0, 1): W(α) = α.
    case uniform
    /// β ~ Beta(a, b): W = the regularised incomplete beta function I_α(a, b).
    case beta(Double, Double)

    public var description: String {
        switch self {
        case .uniform: return "uniform"
        case let .beta(a, b): return "beta(\(a),\(b))"
        }
    }

    /// W(α), the CDF.
    public func cdf(_ x: Double) -> Double {
        switch self {
        case .uniform: return min(max(x, 0), 1)
        case let .beta(a, b): return IncompleteBeta.regularized(x, a, b)
        }
    }

    /// p(α), the density.
    public func density(_ x: Double) -> Double {
        switch self {
        case .uniform: return x >= 0 && x <= 1 ? 1 : 0
        case let .beta(a, b):
            guard x > 0, x < 1 else { return 0 }
            return exp((a - 1) * log(x) + (b - 1) * log(1 - x) - IncompleteBeta.logBeta(a, b))
        }
    }

    /// A draw of β.
    public func sample(_ rng: inout SplitMix64) -> Double {
        switch self {
        case .uniform: return Double.random(in: 0..<1, using: &rng)
        case let .beta(a, b):
            // Inverse CDF by bisection: exact to 1e-12 and dependency-free.
            let u = Double.random(in: 0..<1, using: &rng)
            var lo = 0.0, hi = 1.0
            for _ in 0..<45 { let mid = (lo + hi) / 2; if IncompleteBeta.regularized(mid, a, b) < u { lo = mid } else { hi = mid } }
            return (lo + hi) / 2
        }
    }

    /// Parses "uniform" or "beta:A,B".
    public init?(name: String) {
        if name == "uniform" { self = .uniform; return }
        guard name.hasPrefix("beta:") else { return nil }
        let parts = name.dropFirst(5).split(separator: ",").compactMap { Double($0) }
        guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { return nil }
        self = .beta(parts[0], parts[1])
    }
}

/// The regularised incomplete beta function I_x(a, b), by the continued
/// fraction of DLMF 8.17.22 evaluated with the modified Lentz method.
enum IncompleteBeta {
    static func logBeta(_ a: Double, _ b: Double) -> Double { lgamma(a) + lgamma(b) - lgamma(a + b) }

    static func regularized(_ x: Double, _ a: Double, _ b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let front = exp(a * log(x) + b * log(1 - x) - logBeta(a, b))
        // The fraction converges fast for x < (a + 1)/(a + b + 2); use the symmetry otherwise.
        if x > (a + 1) / (a + b + 2) { return 1 - regularized(1 - x, b, a) }
        let tiny = 1e-300
        var f = 1.0, c = 1.0, d = 0.0
        for i in 0...400 {
            let m = Double(i / 2)
            let numerator: Double
            if i == 0 { numerator = 1 }
            else if i % 2 == 0 { numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)) }
            else { numerator = -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)) }
            d = 1 + numerator * d
            if abs(d) < tiny { d = tiny }
            d = 1 / d
            c = 1 + numerator / c
            if abs(c) < tiny { c = tiny }
            let cd = c * d
            f *= cd
            if abs(1 - cd) < 1e-15 { break }
        }
        return front * (f - 1) / a
    }
}
