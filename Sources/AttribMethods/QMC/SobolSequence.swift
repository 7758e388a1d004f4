import AttribCore

/// The Sobol' sequence from the Joe–Kuo direction numbers, as scipy's
/// `scipy.stats.qmc.Sobol` draws it.
///
/// Unscrambled, `points(count:dimensions:)` equals scipy's
/// `qmc.Sobol(d, scramble=False).random(count)` bit for bit:
/// - 30-bit direction numbers (scipy's default `bits=30`), built from the
///   table exactly as scipy's `_initialize_v` does (dimension 1 is van der Corput);
/// - points in Gray-code order: x_0 = 0 (the shift), x_n = x_(n−1) ⊕ v_c where
///   c is the index of the lowest set bit of n (so the first point is 0 and
///   nothing is skipped; the first 2^m points are the same set as natural order);
/// - each coordinate is the 30-bit integer times 2^−30, exact in a Double.
///
/// Scrambled, it applies Matoušek's linear matrix scramble plus a digital shift
/// (what scipy calls LMS+shift, after Owen 1998 / Matoušek 1998): per
/// dimension, a random lower-triangular binary matrix L with unit diagonal and a
/// random 30-bit shift e map the digit vector x of every point to L·x ⊕ e.
/// Because L is lower triangular and invertible, the first k digits of L·x ⊕ e
/// depend only (and bijectively) on the first k digits of x, so every 1-D
/// projection of the first 2^k points keeps one point in each interval
/// [j·2^−k, (j+1)·2^−k). The random bits come from SplitMix64(seed), drawn
/// dimension by dimension (shift, then the matrix rows), so a dimension's
/// scramble does not depend on how many dimensions are requested. The stream
/// is not scipy's (that would need NumPy's PCG64).
public struct SobolSequence: PointSampler {
    /// Bits per coordinate (scipy's default).
    public static let bits = 30
    /// The most points one call can return: 2^30, as in scipy.
    public static let maxCount = 1 << bits
    /// The highest dimension the embedded direction numbers cover (2048).
    public static var maxDimension: Int { JoeKuoDirectionNumbers.maxDimension }

    public let scrambled: Bool
    public let seed: UInt64

    public init(scrambled: Bool = false, seed: UInt64 = 0) {
        self.scrambled = scrambled
        self.seed = seed
    }

    public var name: String { scrambled ? "sobol-scrambled" : "sobol" }
    public var requiresPowerOfTwoCount: Bool { true }

    /// The first `count` points (any count up to 2^30; only powers of two are
    /// balanced, as scipy warns).
    public func points(count: Int, dimensions: Int) throws -> [Double] {
        let op = "SobolSequence.points"
        try checkSamplerArguments(op, count: count, dimensions: dimensions)
        guard dimensions <= Self.maxDimension else {
            throw AttribError.invalidArgument(
                op: op, detail: "\(dimensions) dimensions requested; the embedded Joe–Kuo direction numbers cover at most \(Self.maxDimension) dimensions")
        }
        guard count <= Self.maxCount else {
            throw AttribError.tooLarge(op: op, detail: "\(count) points requested; at most 2^\(Self.bits) = \(Self.maxCount) distinct Sobol points exist at \(Self.bits) bits")
        }
        let d = dimensions, bits = Self.bits
        // v[j·d + k]: direction number j of dimension k (j-major, so the
        // inner loop over dimensions walks memory in order).
        var v = [UInt32](repeating: 0, count: bits * d)
        var quasi = [UInt32](repeating: 0, count: d)
        var rng = SplitMix64(seed: seed)
        for k in 0..<d {
            var dirs = JoeKuoDirectionNumbers.directions(dimension: k + 1, bits: bits)
            if scrambled { quasi[k] = Self.scramble(&dirs, bits: bits, rng: &rng) }
            for j in 0..<bits { v[j * d + k] = dirs[j] }
        }
        let scale = 1.0 / Double(1 << bits)
        var out = [Double](repeating: 0, count: count * d)
        out.withUnsafeMutableBufferPointer { o in
            for n in 0..<count {
                if n > 0 {
                    let c = n.trailingZeroBitCount
                    for k in 0..<d { quasi[k] ^= v[c * d + k] }
                }
                let row = n * d
                for k in 0..<d { o[row + k] = Double(quasi[k]) * scale }
            }
        }
        return out
    }

    /// Applies a random linear matrix scramble to one dimension's direction
    /// numbers in place and returns its random digital shift.
    ///
    /// Digit i of a `bits`-bit value (i = 0 the most significant, weight
    /// 2^(bits−1−i)) becomes ⊕_(k ≤ i) L[i][k]·digit_k with L[i][i] = 1 and
    /// L[i][k] (k < i) uniform bits. Scrambling each direction number by L is
    /// the same as scrambling every point, since points are XORs of them.
    static func scramble(_ dirs: inout [UInt32], bits: Int, rng: inout SplitMix64) -> UInt32 {
        let width = UInt32(bits)
        let all: UInt32 = bits == 32 ? ~0 : (1 << width) - 1
        let shift = UInt32(truncatingIfNeeded: rng.next()) & all
        // rowMask[i]: the digits row i of L selects, in the value's bit layout.
        var rowMask = [UInt32](repeating: 0, count: bits)
        for i in 0..<bits {
            let diagonal: UInt32 = 1 << (width - 1 - UInt32(i))
            // Digits k < i sit at the bits above the diagonal bit.
            let above = all & ~((diagonal << 1) &- 1)
            rowMask[i] = diagonal | (UInt32(truncatingIfNeeded: rng.next()) & above)
        }
        for j in dirs.indices {
            var y: UInt32 = 0
            for i in 0..<bits where (rowMask[i] & dirs[j]).nonzeroBitCount & 1 == 1 {
                y |= 1 << (width - 1 - UInt32(i))
            }
            dirs[j] = y
        }
        return shift
    }
}
