#if canImport(Glibc)
import Glibc
#endif
import AttribCore
import AttribModels

/// The PS-IG paper's two claims, measured (methods.md, "Path-sampled IG"):
/// 1. against a high-m reference, the deterministic path-weighted Riemann sum's
///    error falls as O(1/m) and the stochastic estimate's (β ~ p, t ~ U(0,1), m
///    samples) as O(m^-1/2), on a smooth model;
/// 2. under i.i.d. gradient noise, PS-IG with uniform β has 1/3 of IG's variance.
public enum PathSampledIGExperiment {
    public struct Row: Codable, Sendable {
        public var m: Int
        /// Mean over inputs of ‖A_m − A*‖ / ‖A*‖.
        public var deterministicError: Double
        /// The same for the stochastic estimate, root-mean-square over repeats.
        public var stochasticError: Double
    }

    public struct Report: Codable, Sendable {
        public var rows: [Row]
        public var rule: String
        public var referenceSteps: Int
        /// Least-squares slopes of log error against log m (the paper: −1 and −½).
        public var deterministicSlope: Double
        public var stochasticSlope: Double
        /// Var(PS-IG) / Var(IG) under gradient noise, simulated, and the quadrature's exact value Σw²α²/Σw².
        public var varianceRatio: Double
        public var varianceRatioExpected: Double
        public var noiseDraws: Int
        public var inputs: Int
    }

    public static func run(_ model: any AttributionModel, inputs x: [Double], count n: Int, targets: [[Int]],
                           stepCounts: [Int] = [4, 8, 16, 32, 64, 128, 256, 512], rule: IntegrationRule = .riemannLeft,
                           referenceSteps: Int = 2048, repeats: Int = 8, noiseDraws: Int = 4000, seed: UInt64 = 0) throws -> Report {
        let reference = try IntegratedGradients(rule: .gaussLegendre, steps: referenceSteps, density: .uniform)
            .attribute(model, inputs: x, count: n, baseline: .zero, targets: targets).attributions
        let d = model.inputSize
        func error(_ a: [Double]) -> Double {
            (0..<n).reduce(0.0) { acc, i in
                var num = 0.0, den = 0.0
                for j in i * d..<(i + 1) * d { num += (a[j] - reference[j]) * (a[j] - reference[j]); den += reference[j] * reference[j] }
                return acc + (num / max(den, .leastNormalMagnitude)).squareRoot() / Double(n)
            }
        }
        var rows: [Row] = []
        for m in stepCounts {
            let det = try IntegratedGradients(rule: rule, steps: m, density: .uniform)
                .attribute(model, inputs: x, count: n, baseline: .zero, targets: targets).attributions
            var sq = 0.0
            for r in 0..<repeats {
                let s = try GradientMethods.stochasticPathSampledIG(model, inputs: x, count: n, baseline: .zero, targets: targets,
                                                                    density: .uniform, samples: m, seed: seed &+ UInt64(r * 7919 + m))
                let e = error(s.attributions)
                sq += e * e / Double(repeats)
            }
            rows.append(Row(m: m, deterministicError: error(det), stochasticError: sq.squareRoot()))
        }
        // Variance under i.i.d. gradient noise η_k ~ N(0, 1) per step: the attribution's noise is
        // (x − x') ⊙ Σₖ cₖ ηₖ with cₖ = wₖ (IG) or wₖ W(αₖ) (PS-IG). Simulated with the quadrature
        // of the deterministic rule at m = 64.
        let (alphas, w) = try rule.nodes(64)
        var rng = SplitMix64(seed: seed &+ 99)
        var sumIG = 0.0, sumIG2 = 0.0, sumPS = 0.0, sumPS2 = 0.0
        for _ in 0..<noiseDraws {
            let eta = gaussianDraws(64, sigma: 1, &rng)
            var ig = 0.0, ps = 0.0
            for k in 0..<64 { ig += w[k] * eta[k]; ps += w[k] * alphas[k] * eta[k] }
            sumIG += ig; sumIG2 += ig * ig; sumPS += ps; sumPS2 += ps * ps
        }
        let dn = Double(noiseDraws)
        let varIG = sumIG2 / dn - (sumIG / dn) * (sumIG / dn), varPS = sumPS2 / dn - (sumPS / dn) * (sumPS / dn)
        let expected = zip(w, alphas).reduce(0.0) { $0 + $1.0 * $1.0 * $1.1 * $1.1 } / w.reduce(0.0) { $0 + $1 * $1 }
        return Report(rows: rows, rule: rule.rawValue, referenceSteps: referenceSteps,
                      deterministicSlope: slope(rows.map { (Double($0.m), $0.deterministicError) }),
                      stochasticSlope: slope(rows.map { (Double($0.m), $0.stochasticError) }),
                      varianceRatio: varPS / varIG, varianceRatioExpected: expected, noiseDraws: noiseDraws, inputs: n)
    }

    /// The least-squares slope of log y against log x.
    static func slope(_ points: [(Double, Double)]) -> Double {
        let p = points.filter { $0.1 > 0 }.map { (log($0.0), log($0.1)) }
        let mx = p.reduce(0) { $0 + $1.0 } / Double(p.count), my = p.reduce(0) { $0 + $1.1 } / Double(p.count)
        let num = p.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }, den = p.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
        return num / den
    }
}
