import AttribCore

/// Plain Monte Carlo: independent uniform points in [0, 1)^d from SplitMix64(seed).
public struct MonteCarloSampler: PointSampler {
    public let seed: UInt64
    public init(seed: UInt64 = 0) { self.seed = seed }
    public var name: String { "mc" }

    public func points(count: Int, dimensions: Int) throws -> [Double] {
        try checkSamplerArguments("MonteCarloSampler.points", count: count, dimensions: dimensions)
        var rng = SplitMix64(seed: seed)
        return rng.uniform(count * dimensions, 0, 1)
    }
}
