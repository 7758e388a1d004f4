/// A small seeded generator (SplitMix64): every random draw in the engine
/// takes a seed, so runs repeat exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    /// The generator `seed` gives after `skipping` draws (each draw adds a constant to the state,
    /// so this is O(1)): a unit of a sweep draws exactly the values a whole-sweep run draws for its
    /// inputs, however the sweep is cut.
    public init(seed: UInt64, skipping draws: Int) {
        state = seed &+ UInt64(draws) &* 0x9E37_79B9_7F4A_7C15
    }

    /// Skips `draws` draws.
    public mutating func advance(by draws: Int) { state &+= UInt64(draws) &* 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// n values uniform in [lo, hi).
    public mutating func uniform(_ n: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
        (0..<n).map { _ in Double.random(in: lo..<hi, using: &self) }
    }
}

/// Passes draws through from a SplitMix64 and counts them, so a caller can skip past a draw of
/// uneven length (Int.random's rejection step) on a copy of the generator.
public struct CountingGenerator: RandomNumberGenerator {
    public var base: SplitMix64
    public private(set) var draws = 0
    public init(base: SplitMix64) { self.base = base }
    public mutating func next() -> UInt64 { draws += 1; return base.next() }
}
