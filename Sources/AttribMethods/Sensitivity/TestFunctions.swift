#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AttribCore

/// The Ishigami function (Ishigami & Homma 1990),
///     f(x) = sin x₁ + a sin² x₂ + b x₃⁴ sin x₁,  xᵢ ~ U[−π, π),
/// with closed-form Sobol' indices. `evaluate` takes points in [0, 1)³ and
/// maps each coordinate u to −π + 2πu.
public struct Ishigami: Sendable {
    public var a: Double
    public var b: Double
    public static let dimensions = 3

    public init(a: Double = 7, b: Double = 0.1) { self.a = a; self.b = b }

    /// f at x ∈ [−π, π)³.
    public func callAsFunction(_ x1: Double, _ x2: Double, _ x3: Double) -> Double {
        let s2 = sin(x2)
        return sin(x1) + a * s2 * s2 + b * x3 * x3 * x3 * x3 * sin(x1)
    }

    /// f on `count` rows of [0, 1)³ (row-major), mapped to [−π, π)³.
    public func evaluate(_ rows: [Double], count: Int) throws -> [Double] {
        guard rows.count == count * 3 else {
            throw AttribError.shapeMismatch(op: "Ishigami.evaluate", detail: "\(rows.count) values for \(count) rows of 3 inputs")
        }
        let map = { (u: Double) in -Double.pi + 2 * Double.pi * u }
        return (0..<count).map { n in self(map(rows[3 * n]), map(rows[3 * n + 1]), map(rows[3 * n + 2])) }
    }

    // Partial variances: V₁ = ½(1 + bπ⁴/5)², V₂ = a²/8, V₃ = 0,
    // V₁₃ = b²π⁸(1/18 − 1/50) = 8b²π⁸/225, V = V₁ + V₂ + V₁₃.
    var partials: (v1: Double, v2: Double, v13: Double) {
        let p4 = pow(Double.pi, 4), p8 = p4 * p4
        return (0.5 * (1 + b * p4 / 5) * (1 + b * p4 / 5), a * a / 8, 8 * b * b * p8 / 225)
    }
    /// The output variance a²/8 + bπ⁴/5 + b²π⁸/18 + ½.
    public var variance: Double { let p = partials; return p.v1 + p.v2 + p.v13 }
    /// (V₁, V₂, 0)/V; (0.3139, 0.4424, 0) at a = 7, b = 0.1.
    public var firstOrder: [Double] { let p = partials, v = variance; return [p.v1 / v, p.v2 / v, 0] }
    /// ((V₁ + V₁₃), V₂, V₁₃)/V; (0.5576, 0.4424, 0.2437) at a = 7, b = 0.1.
    public var totalOrder: [Double] { let p = partials, v = variance; return [(p.v1 + p.v13) / v, p.v2 / v, p.v13 / v] }
    /// S₁₃ = V₁₃/V; S₁₂ = S₂₃ = 0.
    public var secondOrder13: Double { partials.v13 / variance }
}

/// The Sobol' G function (Saltelli & Sobol' 1995),
///     f(x) = Πᵢ (|4xᵢ − 2| + aᵢ) / (1 + aᵢ),  xᵢ ~ U[0, 1),
/// with closed-form indices from the partial variances Vᵢ = 1 / (3(1 + aᵢ)²):
/// V = Π(1 + Vᵢ) − 1, Sᵢ = Vᵢ/V, STᵢ = Vᵢ Π_{j≠i}(1 + Vⱼ) / V.
public struct SobolG: Sendable {
    public var a: [Double]
    public var dimensions: Int { a.count }

    /// Small aᵢ make an input important; a common choice is (0, 1, 4.5, 9, 99, 99, 99, 99).
    public init(a: [Double] = [0, 1, 4.5, 9, 99, 99, 99, 99]) { self.a = a }

    public func evaluate(_ rows: [Double], count: Int) throws -> [Double] {
        let d = a.count
        guard rows.count == count * d else {
            throw AttribError.shapeMismatch(op: "SobolG.evaluate", detail: "\(rows.count) values for \(count) rows of \(d) inputs")
        }
        return (0..<count).map { n in
            var f = 1.0
            for i in 0..<d { f *= (abs(4 * rows[n * d + i] - 2) + a[i]) / (1 + a[i]) }
            return f
        }
    }

    var partials: [Double] { a.map { 1 / (3 * (1 + $0) * (1 + $0)) } }
    public var variance: Double { partials.reduce(1) { $0 * (1 + $1) } - 1 }
    public var firstOrder: [Double] { let v = variance; return partials.map { $0 / v } }
    public var totalOrder: [Double] {
        let p = partials, v = variance, all = p.reduce(1) { $0 * (1 + $1) }
        return p.map { $0 * all / (1 + $0) / v }
    }
}
