import AttribCore

/// Latin hypercube sampling (McKay, Beckman & Conover 1979), seeded: in each
/// dimension the n points fall one in each stratum [i/n, (i+1)/n), the strata
/// assigned by an independent random permutation per dimension and the point
/// placed uniformly inside its stratum (scipy's `qmc.LatinHypercube` default).
public struct LatinHypercube: PointSampler {
    public let seed: UInt64
    public init(seed: UInt64 = 0) { self.seed = seed }
    public var name: String { "lhs" }

    public func points(count: Int, dimensions: Int) throws -> [Double] {
        try checkSamplerArguments("LatinHypercube.points", count: count, dimensions: dimensions)
        let d = dimensions, n = count
        var out = [Double](repeating: 0, count: n * d)
        var rng = SplitMix64(seed: seed)
        for k in 0..<d {
            let strata = Array(0..<n).shuffled(using: &rng)
            for i in 0..<n {
                let u = Double.random(in: 0..<1, using: &rng)
                // The division can round up to the next stratum edge; keep it inside.
                let x = (Double(strata[i]) + u) / Double(n)
                out[i * d + k] = min(x, (Double(strata[i] + 1) / Double(n)).nextDown, belowOne)
            }
        }
        return out
    }
}
