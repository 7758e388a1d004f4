import AttribCore

/// The Halton sequence: coordinate k of point n is the radical inverse of n in
/// the k-th prime base (2, 3, 5, 7, …). Points start at n = 0 (the origin), as
/// scipy's `qmc.Halton(d, scramble=False)` does.
///
/// Unscrambled, each coordinate is the exact fraction r / b^m rounded once
/// to a Double. Scrambled (seeded), every digit position j of base b gets its
/// own random permutation π_j of {0,…,b−1} (applied to the trailing zeros
/// too, over as many positions as a Double resolves), the random-permutation
/// scramble of Braaten–Weller / Owen that scipy also uses:
/// x = Σ_j π_j(a_j) b^−(j+1).
public struct HaltonSequence: PointSampler {
    public let scrambled: Bool
    public let seed: UInt64

    public init(scrambled: Bool = false, seed: UInt64 = 0) {
        self.scrambled = scrambled
        self.seed = seed
    }

    public var name: String { scrambled ? "halton-scrambled" : "halton" }

    /// The first `count` primes.
    public static func primes(_ count: Int) -> [Int] {
        var ps: [Int] = []
        ps.reserveCapacity(count)
        var c = 2
        while ps.count < count {
            if ps.allSatisfy({ $0 * $0 > c || c % $0 != 0 }) { ps.append(c) }
            c += 1
        }
        return ps
    }

    /// The radical inverse of n in base b: the digits of n mirrored about the point.
    public static func radicalInverse(_ n: Int, base b: Int) -> Double {
        var n = UInt64(n), r: UInt64 = 0, scale: UInt64 = 1
        let b64 = UInt64(b)
        while n > 0 {
            r = r * b64 + n % b64
            n /= b64
            scale *= b64
        }
        return Double(r) / Double(scale)
    }

    public func points(count: Int, dimensions: Int) throws -> [Double] {
        try checkSamplerArguments("HaltonSequence.points", count: count, dimensions: dimensions)
        let d = dimensions
        let bases = Self.primes(d)
        var out = [Double](repeating: 0, count: count * d)
        var rng = SplitMix64(seed: seed)
        for k in 0..<d {
            let b = bases[k]
            if !scrambled {
                for n in 0..<count { out[n * d + k] = Self.radicalInverse(n, base: b) }
                continue
            }
            // Digit positions a Double can tell apart: b^positions ≥ 2^53.
            var positions = 0, reach = 1.0
            while reach < 0x1p53 { reach *= Double(b); positions += 1 }
            var perms: [[Int]] = []
            for _ in 0..<positions { perms.append(Array(0..<b).shuffled(using: &rng)) }
            for n in 0..<count {
                var digits = [Int](repeating: 0, count: positions)
                var m = n, j = 0
                while m > 0 && j < positions { digits[j] = m % b; m /= b; j += 1 }
                var x = 0.0
                for j in stride(from: positions - 1, through: 0, by: -1) {
                    x = (x + Double(perms[j][digits[j]])) / Double(b)
                }
                out[n * d + k] = min(x, belowOne)
            }
        }
        return out
    }
}
