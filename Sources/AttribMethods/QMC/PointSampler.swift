import AttribCore

/// A generator of points in the unit cube [0, 1)^d.
///
/// `points(count:dimensions:)` returns `count · dimensions` values, row-major
/// `[count, dimensions]`: point `n` is `values[n·d ..< (n+1)·d]`. A sampler is
/// deterministic: a randomised one draws from the seed it was made with, so
/// the same call returns the same points.
public protocol PointSampler: Sendable {
    func points(count: Int, dimensions: Int) throws -> [Double]
    /// True where the sequence is only balanced for counts that are powers of
    /// two (Sobol); sensitivity analysis then refuses other counts.
    var requiresPowerOfTwoCount: Bool { get }
    /// A short name for messages ("sobol", "halton", …).
    var name: String { get }
}

extension PointSampler {
    public var requiresPowerOfTwoCount: Bool { false }
}

/// The samplers by name, as the CLI spells them.
public enum SamplerKind: String, CaseIterable, Sendable {
    case sobol
    case sobolScrambled = "sobol-scrambled"
    case halton
    case lhs
    case mc

    /// `sobol`, `sobol-scrambled`, `halton`, `lhs` or `mc`; nil for anything else.
    public init?(name: String) { self.init(rawValue: name) }

    /// The CLI name.
    public var name: String { rawValue }

    /// The sampler of this kind; `seed` drives the randomised ones (scrambled
    /// Sobol, Latin hypercube, Monte Carlo) and is ignored by plain Sobol and Halton.
    public func sampler(seed: UInt64 = 0) -> any PointSampler {
        switch self {
        case .sobol: return SobolSequence(scrambled: false)
        case .sobolScrambled: return SobolSequence(scrambled: true, seed: seed)
        case .halton: return HaltonSequence()
        case .lhs: return LatinHypercube(seed: seed)
        case .mc: return MonteCarloSampler(seed: seed)
        }
    }
}

/// Checks shared by every sampler: count ≥ 0, dimensions ≥ 1, no overflow.
func checkSamplerArguments(_ op: String, count: Int, dimensions: Int) throws {
    guard dimensions >= 1 else {
        throw AttribError.invalidArgument(op: op, detail: "dimensions is \(dimensions); it must be at least 1")
    }
    guard count >= 0 else {
        throw AttribError.invalidArgument(op: op, detail: "count is \(count); it must be at least 0")
    }
    let (total, overflow) = count.multipliedReportingOverflow(by: dimensions)
    guard !overflow, total <= Int(Int32.max) * 64 else {
        throw AttribError.tooLarge(op: op, detail: "\(count) points × \(dimensions) dimensions is too many values")
    }
}

/// The largest Double below 1, where rounding could otherwise reach 1.
let belowOne = 1.0.nextDown
