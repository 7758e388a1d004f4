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
        var x = [Double](repeating: 0, count: m), w = [Double](repeating: 0, count: m)
        let dm = Double(m)
        for i in 0..<(m + 1) / 2 {
            // Tricomi's approximation to the (i+1)-th largest root.
            let theta = Double.pi * (Double(i) + 0.75) / (dm + 0.5)
            var z = cos(theta) * (1 - (dm - 1) / (8 * dm * dm * dm))
            var dp = 0.0
            for _ in 0..<100 {
                var p0 = 1.0, p1 = z
                if m == 1 { p1 = z; p0 = 1 }
                var pm = z
                if m == 1 { pm = z; dp = 1 } else {
                    for k in 2...m {
                        let pk = ((2 * Double(k) - 1) * z * p1 - (Double(k) - 1) * p0) / Double(k)
                        p0 = p1; p1 = pk
                    }
                    pm = p1
                    dp = dm * (z * pm - p0) / (z * z - 1)
                }
                let dz = pm / dp
                z -= dz
                if abs(dz) < 1e-16 { break }
            }
            x[i] = -z; x[m - 1 - i] = z
            let wi = 2 / ((1 - z * z) * dp * dp)
            w[i] = wi; w[m - 1 - i] = wi
        }
        if m % 2 == 1 { x[m / 2] = 0 }
        return (x, w)
    }
}

#if canImport(Glibc)
import Glibc
#endif
