#if canImport(Glibc)
import Glibc
#endif
import AttribCore

/// The reference input x' of a path method (methods.md), resolved on the host
/// into one baseline per input (or one shared by all) before upload.
public enum Baseline: Sendable, Equatable, CustomStringConvertible {
    case zero
    case constant(Double)
    /// Each input blurred by a Gaussian of this σ (pixels) over its last two dimensions.
    case blur(Double)
    /// Uniform noise in [lo, hi), one draw per input element, seeded.
    case uniform(Double, Double, seed: UInt64)
    /// Given values: [N] + input shape, or [1] + input shape (shared).
    case values([Double], count: Int)

    public var description: String {
        switch self {
        case .zero: return "zero"
        case .constant(let v): return "constant:\(v)"
        case .blur(let s): return "blur:\(s)"
        case let .uniform(lo, hi, seed): return "uniform:\(lo),\(hi) (seed \(seed))"
        case .values(_, let n): return "file (\(n) baseline\(n == 1 ? "" : "s"))"
        }
    }

    /// The baseline of inputs `r` of an n-input sweep, as the whole sweep resolves it for them:
    /// per-input values sliced, seeded uniform noise drawn from where those inputs' draws start.
    public func forInputs(_ r: Range<Int>, of n: Int, d: Int) -> Baseline {
        switch self {
        case .uniform(let lo, let hi, let seed):
            var rng = SplitMix64(seed: seed, skipping: r.lowerBound * d)
            return .values(rng.uniform(r.count * d, lo, hi), count: r.count)
        case .values(let v, let rows) where rows == n && n > 1:
            return .values(Array(v[(r.lowerBound * d)..<(r.upperBound * d)]), count: r.count)
        default:
            return self
        }
    }

    /// Baselines for inputs [n, d] of per-sample shape `sampleShape`: (values, rows) with
    /// rows = 1 (shared) or n.
    public func resolve(inputs: [Double], n: Int, sampleShape: [Int]) throws -> (values: [Double], rows: Int) {
        let d = sampleShape.reduce(1, *)
        switch self {
        case .zero: return ([Double](repeating: 0, count: d), 1)
        case .constant(let v): return ([Double](repeating: v, count: d), 1)
        case .uniform(let lo, let hi, let seed):
            var rng = SplitMix64(seed: seed)
            return (rng.uniform(n * d, lo, hi), n)
        case .values(let v, let rows):
            guard rows == 1 || rows == n, v.count == rows * d else {
                throw AttribError.shapeMismatch(op: "baseline", detail: "\(rows) baselines of \(v.count / max(rows, 1)) values for \(n) inputs of \(d) values (shape \(sampleShape)); give one shared baseline or one per input")
            }
            return (v, rows)
        case .blur(let sigma):
            guard sigma > 0, sampleShape.count >= 2 else {
                throw AttribError.invalidArgument(op: "baseline blur", detail: "needs σ > 0 and inputs with at least two dimensions (got σ = \(sigma), shape \(sampleShape))")
            }
            return (Self.gaussianBlur(inputs, n: n, shape: sampleShape, sigma: sigma), n)
        }
    }

    /// Separable Gaussian blur over the last two dimensions, edges clamped; kernel radius 3σ.
    static func gaussianBlur(_ x: [Double], n: Int, shape: [Int], sigma: Double) -> [Double] {
        let h = shape[shape.count - 2], w = shape[shape.count - 1]
        let planes = n * shape.dropLast(2).reduce(1, *)
        let r = max(1, Int((3 * sigma).rounded(.up)))
        var k = (-r...r).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let s = k.reduce(0, +); k = k.map { $0 / s }
        var out = x, tmp = x
        for p in 0..<planes {
            let base = p * h * w
            for y in 0..<h { for xx in 0..<w {
                var acc = 0.0
                for (j, kv) in k.enumerated() { acc += kv * x[base + y * w + min(max(xx + j - r, 0), w - 1)] }
                tmp[base + y * w + xx] = acc
            } }
            for y in 0..<h { for xx in 0..<w {
                var acc = 0.0
                for (j, kv) in k.enumerated() { acc += kv * tmp[base + min(max(y + j - r, 0), h - 1) * w + xx] }
                out[base + y * w + xx] = acc
            } }
        }
        return out
    }
}
