import AttribCore

/// Quadrature rules for ∫₀¹ g(α) dα over the straight path: nodes αₖ and weights wₖ as
/// methods.md defines them. Captum's are the same for four rules; for riemann_trapezoid
/// Captum takes m nodes k/(m − 1) with weights 1/m halved at both ends, which sum to
/// 1 − 1/m, so its trapezoid IG is this one's times (m − 1)/m (GradientMethodTests checks both).
public enum IntegrationRule: String, Sendable, CaseIterable, Codable {
    case riemannLeft = "riemann_left"
    case riemannRight = "riemann_right"
    case riemannMiddle = "riemann_middle"
    case riemannTrapezoid = "riemann_trapezoid"
    case gaussLegendre = "gauss_legendre"

    /// Accepts Captum's spellings too ("gausslegendre").
    public init?(name: String) {
        if name == "gausslegendre" { self = .gaussLegendre; return }
        self.init(rawValue: name)
    }

    /// The fewest steps the rule is defined for.
    public var minimumSteps: Int { self == .riemannTrapezoid ? 2 : 1 }

    /// Below this many steps the completeness delta says little about the attributions: the
    /// rule's error on a smooth path, O(1/m) for left and right sums, O(1/m²) for the midpoint and
    /// trapezoid, faster for Gauss–Legendre, has not yet started to fall off, and with one or two
    /// gradient samples a small delta can be luck (a path whose gradient is constant except where
    /// no node lands). The CLI warns below it and prints the delta.
    public var meaningfulSteps: Int {
        switch self {
        case .riemannLeft, .riemannRight: return 16
        case .riemannMiddle, .riemannTrapezoid: return 8
        case .gaussLegendre: return 4
        }
    }

    /// The m nodes and weights on [0, 1].
    public func nodes(_ m: Int) throws -> (alphas: [Double], weights: [Double]) {
        guard m >= minimumSteps else {
            throw AttribError.invalidArgument(op: "integration rule \(rawValue)", detail: "needs at least \(minimumSteps) steps, got \(m)")
        }
        let dm = Double(m)
        switch self {
        case .riemannLeft: return ((0..<m).map { Double($0) / dm }, Array(repeating: 1 / dm, count: m))
        case .riemannRight: return ((1...m).map { Double($0) / dm }, Array(repeating: 1 / dm, count: m))
        case .riemannMiddle: return ((0..<m).map { (Double($0) + 0.5) / dm }, Array(repeating: 1 / dm, count: m))
        case .riemannTrapezoid:
            var w = Array(repeating: 1 / (dm - 1), count: m)
            w[0] /= 2; w[m - 1] /= 2
            return ((0..<m).map { Double($0) / (dm - 1) }, w)
        case .gaussLegendre:
            let (t, w) = GaussLegendre.nodes(m)
            return (t.map { ($0 + 1) / 2 }, w.map { $0 / 2 })
        }
    }
}

/// Gauss–Legendre nodes and weights on [−1, 1], by Newton's iteration on the
/// Legendre recurrence from Tricomi's initial guesses: converges to full
/// Float64 precision in a few steps for any m.
public enum GaussLegendre {
    public static func nodes(_ m: Int) -> (nodes: [Double], weights: [Double]) {
        let r = solved(m)
        return (r.nodes, r.weights)
    }

    /// Newton steps stop once a step moves every node of a block by at most this (absolute:
    /// the nodes become α = (t + 1)/2, so what matters is their distance from the exact roots,
    /// not relative to their size). Newton converges quadratically, so after a step below
    /// 1e-15 the error is far below one ulp of 1.
    static let stepTolerance = 1e-15

    /// Nodes solved at once, each its own chain of the recurrence.
    static let lanes = 8

    /// The nodes and weights, and the most Newton steps any block took (the tests hold it small).
    ///
    /// Each Newton step evaluates P_m by its three-term recurrence, m steps that each wait on
    /// the one before: one node at a time that chain's latency bounds the whole, and with a
    /// division in every step IG over 16,384 steps spent 2.3 s computing its nodes, 4,096 steps
    /// 0.11 s (digits-mlp, 2-core VM). Here the recurrence is P_k = a_k·z·P_{k−1} − b_k·P_{k−2}
    /// with a_k = (2k − 1)/k and b_k = (k − 1)/k computed once, and `lanes` nodes run side by
    /// side, so their chains overlap.
    static func solved(_ m: Int) -> (nodes: [Double], weights: [Double], maxSteps: Int) {
        var x = [Double](repeating: 0, count: m), w = [Double](repeating: 0, count: m)
        let dm = Double(m), half = (m + 1) / 2
        var a = [Double](repeating: 0, count: m + 1), b = a
        for k in stride(from: 2, through: m, by: 1) {
            let dk = Double(k)
            a[k] = (2 * dk - 1) / dk; b[k] = (dk - 1) / dk
        }
        var maxSteps = 0
        for i0 in stride(from: 0, to: half, by: lanes) {
            let count = min(lanes, half - i0)
            // Tricomi's approximation to the (i+1)-th largest root; lanes past the last node
            // repeat it.
            var z = SIMD8<Double>(repeating: 0)
            for l in 0..<lanes {
                let theta = Double.pi * (Double(i0 + min(l, count - 1)) + 0.75) / (dm + 0.5)
                z[l] = cos(theta) * (1 - (dm - 1) / (8 * dm * dm * dm))
            }
            var dp = SIMD8<Double>(repeating: 1), steps = 0
            while steps < 100 {
                steps += 1
                var p0 = SIMD8<Double>(repeating: 1), p1 = z
                if m > 1 {
                    a.withUnsafeBufferPointer { ak in
                        b.withUnsafeBufferPointer { bk in
                            for k in 2...m {
                                let pk = ak[k] * z * p1 - bk[k] * p0
                                p0 = p1; p1 = pk
                            }
                        }
                    }
                    dp = dm * (z * p1 - p0) / (z * z - 1)
                }
                let dz = p1 / dp
                z -= dz
                if dz.replacing(with: -dz, where: dz .< 0).max() <= stepTolerance { break }
            }
            maxSteps = max(maxSteps, steps)
            for l in 0..<count {
                let i = i0 + l, zl = z[l], dpl = dp[l]
                x[i] = -zl; x[m - 1 - i] = zl
                let wi = 2 / ((1 - zl * zl) * dpl * dpl)
                w[i] = wi; w[m - 1 - i] = wi
            }
        }
        if m % 2 == 1 { x[m / 2] = 0 }
        return (x, w, maxSteps)
    }
}

#if canImport(Glibc)
import Glibc
#endif
