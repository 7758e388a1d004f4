import AttribCore

/// Saltelli's sampling design for Sobol' indices, in SALib's row order.
///
/// From N base points of a 2d-dimensional sequence, A = the first d columns
/// and B = the last d. AB_i is A with column i taken from B; BA_i (second
/// order only) is B with column i taken from A. The design holds, for each
/// base point n in turn, the rows
///
///     A_n, AB_1,n, …, AB_d,n, [BA_1,n, …, BA_d,n,] B_n
///
/// — `d + 2` rows per base point, or `2d + 2` with second order — exactly as
/// `SALib.sample.sobol.sample(problem, N, calc_second_order=…)` lays them out
/// (before SALib scales them to the problem's bounds), so outputs evaluated on
/// this matrix and on SALib's give the same indices.
public struct SaltelliDesign: Sendable {
    public let dimensions: Int
    public let baseSamples: Int
    public let secondOrder: Bool
    /// Row-major `[rowCount, dimensions]`, values in [0, 1) when built from a sampler.
    public let matrix: [Double]

    /// Rows per base point: d + 2, or 2d + 2 with second order.
    public var rowsPerSample: Int { secondOrder ? 2 * dimensions + 2 : dimensions + 2 }
    /// Rows in all: N · rowsPerSample.
    public var rowCount: Int { baseSamples * rowsPerSample }

    /// Draws N points of dimension 2d from `sampler` and lays out the design.
    /// A sampler that is only balanced at powers of two (Sobol) needs N = 2^k.
    public init(baseSamples: Int, dimensions: Int, secondOrder: Bool = false,
                sampler: any PointSampler = SobolSequence()) throws {
        let op = "SaltelliDesign"
        try Self.check(op, baseSamples: baseSamples, dimensions: dimensions)
        if sampler.requiresPowerOfTwoCount && baseSamples & (baseSamples - 1) != 0 {
            throw AttribError.invalidArgument(
                op: op, detail: "N = \(baseSamples) base samples is not a power of two; the \(sampler.name) sequence is only balanced for N = 2^k (e.g. \(Self.nextPowerOfTwo(baseSamples)))")
        }
        let base = try sampler.points(count: baseSamples, dimensions: 2 * dimensions)
        try self.init(basePoints: base, dimensions: dimensions, secondOrder: secondOrder)
    }

    /// Lays out the design from base points given row-major `[N, 2·dimensions]`.
    public init(basePoints: [Double], dimensions: Int, secondOrder: Bool = false) throws {
        let op = "SaltelliDesign"
        guard dimensions >= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "dimensions is \(dimensions); it must be at least 1")
        }
        let width = 2 * dimensions
        guard basePoints.count % width == 0, basePoints.count > 0 else {
            throw AttribError.shapeMismatch(
                op: op, detail: "\(basePoints.count) base values do not form rows of 2·d = \(width) columns (d = \(dimensions))")
        }
        let n = basePoints.count / width
        try Self.check(op, baseSamples: n, dimensions: dimensions)
        self.dimensions = dimensions
        self.baseSamples = n
        self.secondOrder = secondOrder
        let d = dimensions
        let per = secondOrder ? 2 * d + 2 : d + 2
        var m = [Double](repeating: 0, count: n * per * d)
        for s in 0..<n {
            let a = s * width, b = a + d        // offsets of A_s and B_s in basePoints
            var row = s * per * d
            func put(_ source: (Int) -> Double) {
                for j in 0..<d { m[row + j] = source(j) }
                row += d
            }
            put { basePoints[a + $0] }                                   // A
            for i in 0..<d { put { $0 == i ? basePoints[b + $0] : basePoints[a + $0] } }   // AB_i
            if secondOrder {
                for i in 0..<d { put { $0 == i ? basePoints[a + $0] : basePoints[b + $0] } }  // BA_i
            }
            put { basePoints[b + $0] }                                   // B
        }
        self.matrix = m
    }

    static func check(_ op: String, baseSamples: Int, dimensions: Int) throws {
        guard dimensions >= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "dimensions is \(dimensions); it must be at least 1")
        }
        guard baseSamples >= 2 else {
            throw AttribError.invalidArgument(op: op, detail: "N = \(baseSamples) base samples; at least 2 are needed to estimate a variance")
        }
        let (rows, o1) = baseSamples.multipliedReportingOverflow(by: 2 * dimensions + 2)
        let (values, o2) = rows.multipliedReportingOverflow(by: dimensions)
        guard !o1, !o2, values <= 1 << 36 else {
            throw AttribError.tooLarge(op: op, detail: "N = \(baseSamples) base samples × \(dimensions) dimensions makes too large a design")
        }
    }

    static func nextPowerOfTwo(_ n: Int) -> Int {
        var p = 1
        while p < n { p <<= 1 }
        return p
    }
}

/// Evaluated outputs split by block: f(A), f(B), f(AB_i), f(BA_i).
public struct SaltelliOutputs: Sendable {
    public let a: [Double]
    public let b: [Double]
    /// ab[i] = f(AB_i) over the N base points.
    public let ab: [[Double]]
    /// ba[i] = f(BA_i); nil without second order.
    public let ba: [[Double]]?

    public var baseSamples: Int { a.count }
    public var dimensions: Int { ab.count }

    /// Splits outputs given in the design's row order (SALib's `separate_output_values`).
    public init(outputs: [Double], design: SaltelliDesign) throws {
        guard outputs.count == design.rowCount else {
            throw AttribError.shapeMismatch(
                op: "SaltelliOutputs",
                detail: "\(outputs.count) outputs for a design of \(design.rowCount) rows (N = \(design.baseSamples) × \(design.rowsPerSample) rows per base point, d = \(design.dimensions))")
        }
        try self.init(outputs: outputs, dimensions: design.dimensions, secondOrder: design.secondOrder)
    }

    /// Splits outputs laid out as SALib lays them out: N blocks of d + 2 (or
    /// 2d + 2) values. The count must be a multiple of the block size.
    public init(outputs: [Double], dimensions d: Int, secondOrder: Bool) throws {
        let op = "SaltelliOutputs"
        guard d >= 1 else { throw AttribError.invalidArgument(op: op, detail: "dimensions is \(d); it must be at least 1") }
        let step = secondOrder ? 2 * d + 2 : d + 2
        guard outputs.count % step == 0, outputs.count / step >= 2 else {
            throw AttribError.shapeMismatch(
                op: op, detail: "\(outputs.count) outputs do not match a Saltelli design of d = \(d)\(secondOrder ? " with second order" : ""): expected N·\(step) values with N ≥ 2")
        }
        let n = outputs.count / step
        a = (0..<n).map { outputs[$0 * step] }
        b = (0..<n).map { outputs[$0 * step + step - 1] }
        ab = (0..<d).map { i in (0..<n).map { outputs[$0 * step + 1 + i] } }
        ba = secondOrder ? (0..<d).map { i in (0..<n).map { outputs[$0 * step + 1 + d + i] } } : nil
    }

    init(a: [Double], b: [Double], ab: [[Double]], ba: [[Double]]?) {
        self.a = a; self.b = b; self.ab = ab; self.ba = ba
    }

    /// The same outputs at base-point indices `rows` (a bootstrap resample).
    func resampled(_ rows: [Int]) -> SaltelliOutputs {
        SaltelliOutputs(a: rows.map { a[$0] }, b: rows.map { b[$0] },
                        ab: ab.map { col in rows.map { col[$0] } },
                        ba: ba.map { cols in cols.map { col in rows.map { col[$0] } } })
    }
}
