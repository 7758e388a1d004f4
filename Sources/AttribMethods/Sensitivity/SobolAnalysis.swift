import AttribCore

/// Bootstrap settings for confidence intervals (SALib's defaults).
public struct BootstrapOptions: Sendable, Equatable {
    /// Resamples of the N base points, drawn with replacement (SALib's `num_resamples`).
    public var resamples: Int
    /// Two-sided level of the interval (SALib's `conf_level`).
    public var confidenceLevel: Double

    public init(resamples: Int = 100, confidenceLevel: Double = 0.95) {
        self.resamples = resamples
        self.confidenceLevel = confidenceLevel
    }
}

/// Sobol' indices with their confidence half-widths.
public struct SobolIndices: Sendable {
    public let dimensions: Int
    public let baseSamples: Int
    public let totalOrderEstimator: TotalOrderEstimator
    /// S_i, i = 0…d−1.
    public let firstOrder: [Double]
    /// ST_i by `totalOrderEstimator`.
    public let totalOrder: [Double]
    /// S_jk row-major `[d, d]`, set for j < k and NaN elsewhere (as SALib's S2);
    /// nil without second order.
    public let secondOrder: [Double]?
    /// Half-widths z·σ_bootstrap (SALib's `S1_conf`, `ST_conf`, `S2_conf`);
    /// nil without bootstrap.
    public let firstOrderConfidence: [Double]?
    public let totalOrderConfidence: [Double]?
    public let secondOrderConfidence: [Double]?
    /// The bootstrap settings used; nil without bootstrap.
    public let bootstrap: BootstrapOptions?
    /// Conditions a caller should know of (constant output, …); never printed.
    public let warnings: [String]

    /// S_jk for j ≠ k (either order); nil without second order.
    public func secondOrder(_ j: Int, _ k: Int) -> Double? {
        guard let s = secondOrder, j != k else { return nil }
        return s[min(j, k) * dimensions + max(j, k)]
    }
}

/// Variance-based (Sobol') sensitivity analysis of a batched function, with
/// SALib's conventions (`SALib.analyze.sobol.analyze`).
public enum SobolAnalysis {
    /// Indices from outputs evaluated on `design`'s rows, in its order.
    ///
    /// As SALib does, the outputs are first standardised over all of them,
    /// Y ← (Y − mean Y) / std Y (population std); the ratio estimators are
    /// invariant to this except first and second order and Homma, whose
    /// values then equal SALib's exactly.
    ///
    /// Constant output (std Y = 0): every index and half-width is 0 and
    /// `warnings` says so. SALib returns the same zeros (its guards turn the
    /// 0/0 of the standardisation into 0) with a printed warning. A bootstrap
    /// resample whose f(A) ∪ f(B) is constant contributes 0, as in SALib.
    ///
    /// The bootstrap resamples the N base points with replacement
    /// (SplitMix64(seed)); each half-width is z·s, z = Φ⁻¹(½ + level/2) and s
    /// the sample standard deviation (n − 1) of the resampled estimates, as
    /// SALib computes it. The draws differ from SALib's (different RNG).
    public static func estimate(outputs: [Double], design: SaltelliDesign,
                                totalOrder: TotalOrderEstimator = .jansen,
                                bootstrap: BootstrapOptions? = BootstrapOptions(),
                                seed: UInt64 = 0) throws -> SobolIndices {
        guard outputs.count == design.rowCount else {
            throw AttribError.shapeMismatch(
                op: "SobolAnalysis.estimate",
                detail: "\(outputs.count) outputs for a design of \(design.rowCount) rows (N = \(design.baseSamples) × \(design.rowsPerSample) rows per base point, d = \(design.dimensions))")
        }
        return try estimate(outputs: outputs, dimensions: design.dimensions, secondOrder: design.secondOrder,
                            totalOrder: totalOrder, bootstrap: bootstrap, seed: seed)
    }

    /// Indices from outputs laid out as SALib lays them out (N blocks of
    /// d + 2 values, or 2d + 2 with second order).
    public static func estimate(outputs: [Double], dimensions: Int, secondOrder: Bool,
                                totalOrder: TotalOrderEstimator = .jansen,
                                bootstrap: BootstrapOptions? = BootstrapOptions(),
                                seed: UInt64 = 0) throws -> SobolIndices {
        let op = "SobolAnalysis.estimate"
        if let bs = bootstrap {
            guard bs.resamples >= 2 else {
                throw AttribError.invalidArgument(op: op, detail: "bootstrap resamples is \(bs.resamples); at least 2 are needed for a standard deviation")
            }
            guard bs.confidenceLevel > 0 && bs.confidenceLevel < 1 else {
                throw AttribError.invalidArgument(op: op, detail: "confidence level \(bs.confidenceLevel) is not strictly between 0 and 1")
            }
        }
        if let bad = outputs.firstIndex(where: { !$0.isFinite }) {
            throw AttribError.invalidArgument(op: op, detail: "output \(bad) is \(outputs[bad]); every output must be finite")
        }
        let d = dimensions
        var warnings: [String] = []
        // SALib: Y = (Y - Y.mean()) / Y.std()
        let count = Double(outputs.count)
        let mean = outputs.reduce(0, +) / count
        let std = (outputs.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / count).squareRoot()
        let constant = !(std > 0)
        if constant {
            warnings.append("the output is constant (every evaluation gave \(outputs.first ?? 0)): its variance is 0, so every index is reported as 0 (SALib's convention)")
        }
        let y = constant ? outputs.map { _ in 0.0 } : outputs.map { ($0 - mean) / std }
        let split = try SaltelliOutputs(outputs: y, dimensions: d, secondOrder: secondOrder)
        if !constant && SobolEstimators.isConstant(a: split.a, b: split.b) {
            warnings.append("f(A) and f(B) are constant though other evaluations vary: the variance estimate is 0, so every index is reported as 0")
        }

        let point = indices(split, totalOrder: totalOrder)
        var conf: (s1: [Double], st: [Double], s2: [Double]?)? = nil
        if let bs = bootstrap {
            var rng = SplitMix64(seed: seed)
            let n = split.baseSamples
            var s1 = [[Double]](repeating: [], count: d), st = s1
            var s2 = [[Double]](repeating: [], count: d * d)
            var constantResamples = 0
            for _ in 0..<bs.resamples {
                let rows = (0..<n).map { _ in Int.random(in: 0..<n, using: &rng) }
                let r = split.resampled(rows)
                if SobolEstimators.isConstant(a: r.a, b: r.b) { constantResamples += 1 }
                let e = indices(r, totalOrder: totalOrder)
                for i in 0..<d { s1[i].append(e.s1[i]); st[i].append(e.st[i]) }
                if let e2 = e.s2 { for j in 0..<d { for k in (j + 1)..<max(j + 1, d) { s2[j * d + k].append(e2[j * d + k]) } } }
            }
            if constantResamples > 0 && !constant {
                warnings.append("\(constantResamples) of \(bs.resamples) bootstrap resamples had constant f(A) ∪ f(B); their estimates count as 0")
            }
            let z = standardNormalQuantile(0.5 + bs.confidenceLevel / 2)
            let allConstant = constantResamples == bs.resamples   // SALib: ptp over all resamples = 0 → conf 0
            let half = { (v: [Double]) in allConstant ? 0 : z * sampleStd(v) }
            conf = (s1.map(half), st.map(half),
                    secondOrder ? (0..<(d * d)).map { $0 / d < $0 % d ? z * sampleStd(s2[$0]) : .nan } : nil)
        }
        return SobolIndices(dimensions: d, baseSamples: split.baseSamples, totalOrderEstimator: totalOrder,
                            firstOrder: point.s1, totalOrder: point.st, secondOrder: point.s2,
                            firstOrderConfidence: conf?.s1, totalOrderConfidence: conf?.st,
                            secondOrderConfidence: conf?.s2, bootstrap: bootstrap, warnings: warnings)
    }

    /// Builds the design, evaluates `function` on it (all rows at once, or
    /// `chunkSize` rows per call), and estimates the indices.
    ///
    /// `function(rows, count)` gets `count` points row-major `[count, dimensions]`
    /// in [0, 1) and returns `count` outputs. `seed` drives a randomised
    /// sampler's draws (pass the sampler made with it) and the bootstrap.
    public static func analyze(function: ([Double], Int) throws -> [Double],
                               dimensions: Int, baseSamples: Int,
                               sampler: any PointSampler = SobolSequence(),
                               secondOrder: Bool = false,
                               totalOrder: TotalOrderEstimator = .jansen,
                               bootstrap: BootstrapOptions? = BootstrapOptions(),
                               seed: UInt64 = 0,
                               chunkSize: Int? = nil) throws -> SobolIndices {
        let op = "SobolAnalysis.analyze"
        let design = try SaltelliDesign(baseSamples: baseSamples, dimensions: dimensions,
                                        secondOrder: secondOrder, sampler: sampler)
        let rows = design.rowCount, d = dimensions
        let chunk = chunkSize ?? rows
        guard chunk >= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "chunk size is \(chunk); it must be at least 1")
        }
        var outputs: [Double] = []
        outputs.reserveCapacity(rows)
        var start = 0
        while start < rows {
            let count = min(chunk, rows - start)
            let got = try function(Array(design.matrix[(start * d)..<((start + count) * d)]), count)
            guard got.count == count else {
                throw AttribError.shapeMismatch(
                    op: op, detail: "the function returned \(got.count) outputs for \(count) input rows (rows \(start)..<\(start + count) of the \(rows)-row design)")
            }
            outputs += got
            start += count
        }
        return try estimate(outputs: outputs, design: design, totalOrder: totalOrder,
                            bootstrap: bootstrap, seed: seed ^ 0x5EED_B007_57A9_0000)
    }

    /// `analyze` with a sampler named by kind, made with `seed`.
    public static func analyze(function: ([Double], Int) throws -> [Double],
                               dimensions: Int, baseSamples: Int, sampler kind: SamplerKind,
                               secondOrder: Bool = false,
                               totalOrder: TotalOrderEstimator = .jansen,
                               bootstrap: BootstrapOptions? = BootstrapOptions(),
                               seed: UInt64 = 0,
                               chunkSize: Int? = nil) throws -> SobolIndices {
        try analyze(function: function, dimensions: dimensions, baseSamples: baseSamples,
                    sampler: kind.sampler(seed: seed), secondOrder: secondOrder, totalOrder: totalOrder,
                    bootstrap: bootstrap, seed: seed, chunkSize: chunkSize)
    }

    /// Point estimates of every index on one set of (standardised) outputs.
    static func indices(_ o: SaltelliOutputs, totalOrder: TotalOrderEstimator)
        -> (s1: [Double], st: [Double], s2: [Double]?) {
        let d = o.dimensions
        let s1 = (0..<d).map { SobolEstimators.firstOrder(a: o.a, b: o.b, ab: o.ab[$0]) }
        let st = (0..<d).map { SobolEstimators.totalOrder(totalOrder, a: o.a, b: o.b, ab: o.ab[$0]) }
        guard let ba = o.ba else { return (s1, st, nil) }
        var s2 = [Double](repeating: .nan, count: d * d)
        for j in 0..<d {
            for k in (j + 1)..<max(j + 1, d) {
                s2[j * d + k] = SobolEstimators.secondOrder(a: o.a, b: o.b, abJ: o.ab[j], abK: o.ab[k], baJ: ba[j])
            }
        }
        return (s1, st, s2)
    }

    /// The sample standard deviation (n − 1), NumPy's `std(ddof=1)`.
    static func sampleStd(_ v: [Double]) -> Double {
        guard v.count > 1 else { return 0 }
        let m = v.reduce(0, +) / Double(v.count)
        return (v.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(v.count - 1)).squareRoot()
    }
}
