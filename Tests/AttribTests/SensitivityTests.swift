import Attrib
import Testing

/// Ishigami's closed form at a = 7, b = 0.1, to the four places usually quoted.
private let ishigamiS: [Double] = [0.3139, 0.4424, 0]
private let ishigamiST: [Double] = [0.5576, 0.4424, 0.2437]

private func ishigami(_ rows: [Double], _ count: Int) throws -> [Double] { try Ishigami().evaluate(rows, count: count) }

private func meanAbsError(_ got: [Double], _ want: [Double]) -> Double {
    zip(got, want).reduce(0) { $0 + abs($1.0 - $1.1) } / Double(got.count)
}

/// A SALib fixture's results: rows S1, S1_conf, ST, ST_conf[, S2, S2_conf], padded with NaN.
private struct SALibResult {
    let rows: [[Double]]
    init(_ name: String) throws {
        let a = try NPY.read(fixturePath("salib/\(name)_S.npy"))
        let width = a.shape[1], v = a.doubles()
        rows = (0..<a.shape[0]).map { r in Array(v[(r * width)..<(r * width + width)]) }
    }
    func row(_ r: Int, _ count: Int) -> [Double] { Array(rows[r][..<count]) }
}

@Suite struct SensitivityTests {
    // MARK: Closed forms

    @Test func closedFormsMatchTheQuotedValues() {
        // The formulas against the values quoted in the spec (4 decimals → 5e-5).
        expectClose(Ishigami().firstOrder, ishigamiS, bound: { _ in 5e-5 }, "Ishigami S closed form")
        expectClose(Ishigami().totalOrder, ishigamiST, bound: { _ in 5e-5 }, "Ishigami ST closed form")
        // Sobol G with one input: S = ST = 1, up to the rounding of V = (1 + V₁) − 1
        // (a cancellation worth a few ulps of 1, so 1e-14).
        expectClose(SobolG(a: [2]).firstOrder + SobolG(a: [2]).totalOrder, [1, 1], bound: { _ in 1e-14 }, "G, d=1")
    }

    @Test func ishigamiAtN16384() throws {
        // Unscrambled Sobol design, N = 2^14: the spec's bound of 0.01 on every index.
        let r = try SobolAnalysis.analyze(function: ishigami, dimensions: 3, baseSamples: 1 << 14,
                                          secondOrder: true, bootstrap: nil)
        expectClose(r.firstOrder, Ishigami().firstOrder, bound: { _ in 0.01 }, "Ishigami S, N=2^14")
        expectClose(r.totalOrder, Ishigami().totalOrder, bound: { _ in 0.01 }, "Ishigami ST (Jansen), N=2^14")
        // SALib's second-order estimator (a difference of three estimates) gets
        // the same bound: S13 = V13/V and S12 = S23 = 0 (observed errors ≤ 0.0015).
        let s2 = [r.secondOrder(0, 1)!, r.secondOrder(0, 2)!, r.secondOrder(1, 2)!]
        expectClose(s2, [0, Ishigami().secondOrder13, 0], bound: { _ in 0.01 }, "Ishigami S2, N=2^14")
        #expect(r.warnings.isEmpty)
    }

    @Test(arguments: TotalOrderEstimator.allCases)
    func everyTotalOrderEstimatorOnIshigami(estimator: TotalOrderEstimator) throws {
        let r = try SobolAnalysis.analyze(function: ishigami, dimensions: 3, baseSamples: 1 << 14,
                                          totalOrder: estimator, bootstrap: nil)
        #expect(r.totalOrderEstimator == estimator)
        // All five are consistent estimators; at N = 2^14 the QMC error of each
        // is well under the 0.01 the spec asks of Jansen.
        expectClose(r.totalOrder, Ishigami().totalOrder, bound: { _ in 0.01 }, "Ishigami ST (\(estimator)), N=2^14")
    }

    @Test func sobolGAtN16384() throws {
        let g = SobolG()
        let r = try SobolAnalysis.analyze(function: { try g.evaluate($0, count: $1) }, dimensions: g.dimensions,
                                          baseSamples: 1 << 14, bootstrap: nil)
        expectClose(r.firstOrder, g.firstOrder, bound: { _ in 0.01 }, "Sobol G S, N=2^14")
        expectClose(r.totalOrder, g.totalOrder, bound: { _ in 0.01 }, "Sobol G ST, N=2^14")
    }

    @Test func errorFallsWithN() throws {
        // Mean absolute error of S and ST over 6 scrambles at N = 2^8 and 2^12.
        // Scrambled-Sobol error falls at least like N^-1/2 (16 times more points:
        // about 4× smaller); the check asks only that it falls.
        func error(_ n: Int) throws -> Double {
            var total = 0.0
            for seed in UInt64(1)...6 {
                let r = try SobolAnalysis.analyze(function: ishigami, dimensions: 3, baseSamples: n,
                                                  sampler: .sobolScrambled, bootstrap: nil, seed: seed)
                total += meanAbsError(r.firstOrder + r.totalOrder, Ishigami().firstOrder + Ishigami().totalOrder)
            }
            return total / 6
        }
        let coarse = try error(1 << 8), fine = try error(1 << 12)
        #expect(coarse > fine, "mean |error| at N=2^8 is \(coarse), at N=2^12 \(fine)")
        #expect(fine < 0.01, "mean |error| at N=2^12 is \(fine)")
    }

    @Test(arguments: [SamplerKind.sobolScrambled, .halton, .lhs, .mc])
    func otherSamplersWork(kind: SamplerKind) throws {
        // N = 2^12 with any sampler. Plain Monte Carlo is the slowest: its standard
        // error is σ/√N ≈ 0.016·σ with σ, the spread of one term of the estimator,
        // of order 1–2 for Ishigami; 0.1 is several standard errors (observed
        // worst errors: scrambled Sobol 0.001, Halton 0.005, LHS 0.013, MC 0.026).
        let r = try SobolAnalysis.analyze(function: ishigami, dimensions: 3, baseSamples: 1 << 12,
                                          sampler: kind, bootstrap: nil, seed: 9)
        expectClose(r.firstOrder, Ishigami().firstOrder, bound: { _ in 0.1 }, "\(kind.name) S")
        expectClose(r.totalOrder, Ishigami().totalOrder, bound: { _ in 0.1 }, "\(kind.name) ST")
    }

    // MARK: SALib parity

    @Test func designMatchesSALib() throws {
        // SALib.sample.sobol.sample(ishigami, 256, calc_second_order=True, scramble=False),
        // scaled by SALib to [−π, π]: u·(hi − lo) + lo.
        let x = try NPY.read(fixturePath("salib/ishigami_so_n256_X.npy"))
        let design = try SaltelliDesign(baseSamples: 256, dimensions: 3, secondOrder: true)
        #expect(x.shape == [design.rowCount, 3])
        let scaled = design.matrix.map { $0 * (Double.pi - -Double.pi) + -Double.pi }
        expectEqual(scaled, x.doubles(), "Saltelli design vs SALib's")
        // And without second order, the rows are SALib's minus the BA_i rows.
        let first = try SaltelliDesign(baseSamples: 256, dimensions: 3, secondOrder: false)
        let keep = (0..<(256 * 8)).filter { !(4...6).contains($0 % 8) }
        expectEqual(first.matrix, keep.flatMap { design.matrix[($0 * 3)..<($0 * 3 + 3)] }, "first-order design rows")
    }

    @Test func ishigamiEvaluationMatchesSALib() throws {
        let u = try SaltelliDesign(baseSamples: 256, dimensions: 3, secondOrder: true)
        let y = try NPY.read(fixturePath("salib/ishigami_so_n256_Y.npy")).doubles()
        // Same formula; the input mapping rounds differently by an ulp of π, so
        // outputs (|f| ≲ 20, |f'| ≲ 60) agree to ~1e-13; 1e-11 allows for libm.
        expectClose(try Ishigami().evaluate(u.matrix, count: u.rowCount), y, bound: { _ in 1e-11 }, "Ishigami vs SALib")
    }

    @Test func indicesMatchSALibSecondOrder() throws {
        let d = 3
        let y = try NPY.read(fixturePath("salib/ishigami_so_n256_Y.npy")).doubles()
        let design = try SaltelliDesign(baseSamples: 256, dimensions: d, secondOrder: true)
        let r = try SobolAnalysis.estimate(outputs: y, design: design, seed: 4)
        let s = try SALibResult("ishigami_so_n256")
        // Same formulas on the same numbers: only summation order differs
        // (observed |Δ| ≤ 1e-15); 1e-6 is the bound asked for.
        expectClose(r.firstOrder, s.row(0, d), bound: { _ in 1e-6 }, "S1 vs SALib")
        expectClose(r.totalOrder, s.row(2, d), bound: { _ in 1e-6 }, "ST (Jansen) vs SALib")
        expectClose(r.secondOrder!, s.row(4, d * d), bound: { _ in 1e-6 }, "S2 vs SALib")
        // Bootstrap half-widths use other draws: positive, and the same size as
        // SALib's. With 100 resamples each is an s.d. estimate good to ~7%
        // (1/√(2·99)); a factor of 2 either way is far outside that.
        for (got, want) in [(r.firstOrderConfidence!, s.row(1, d)), (r.totalOrderConfidence!, s.row(3, d))] {
            for i in 0..<d {
                #expect(got[i] > 0 && got[i] > want[i] / 2 && got[i] < want[i] * 2, "conf \(i): \(got[i]) vs SALib's \(want[i])")
            }
        }
        let c2 = r.secondOrderConfidence!
        #expect((0..<d).allSatisfy { j in (0..<d).allSatisfy { k in j < k ? c2[j * d + k] > 0 : c2[j * d + k].isNaN } })
    }

    @Test func indicesMatchSALibFirstOrderScrambled() throws {
        let d = 5
        let y = try NPY.read(fixturePath("salib/sobolg_n256_Y.npy")).doubles()
        let r = try SobolAnalysis.estimate(outputs: y, dimensions: d, secondOrder: false, bootstrap: nil)
        let s = try SALibResult("sobolg_n256")
        expectClose(r.firstOrder, s.row(0, d), bound: { _ in 1e-6 }, "Sobol G S1 vs SALib")
        expectClose(r.totalOrder, s.row(2, d), bound: { _ in 1e-6 }, "Sobol G ST vs SALib")
        #expect(r.firstOrderConfidence == nil && r.secondOrder == nil)
    }

    // MARK: Bootstrap

    @Test func confidenceIntervalsShrinkWithN() throws {
        // Half-widths scale like N^-1/2 at least: 2^12 vs 2^8 is 16×, about 4× narrower.
        func widths(_ n: Int) throws -> [Double] {
            let r = try SobolAnalysis.analyze(function: ishigami, dimensions: 3, baseSamples: n, seed: 2)
            return r.firstOrderConfidence! + r.totalOrderConfidence!
        }
        let wide = try widths(1 << 8), narrow = try widths(1 << 12)
        for i in wide.indices {
            #expect(narrow[i] > 0 && narrow[i] < wide[i], "half-width \(i): \(narrow[i]) at 2^12, \(wide[i]) at 2^8")
        }
    }

    @Test func bootstrapIsSeededAndLevelled() throws {
        let design = try SaltelliDesign(baseSamples: 128, dimensions: 3)
        let y = try ishigami(design.matrix, design.rowCount)
        let a = try SobolAnalysis.estimate(outputs: y, design: design, seed: 1)
        let b = try SobolAnalysis.estimate(outputs: y, design: design, seed: 1)
        #expect(a.totalOrderConfidence! == b.totalOrderConfidence!, "same seed, same intervals")
        // Same draws at another level: half-widths scale by z(0.99)/z(0.95).
        let c = try SobolAnalysis.estimate(outputs: y, design: design,
                                           bootstrap: BootstrapOptions(confidenceLevel: 0.99), seed: 1)
        let ratio = standardNormalQuantile(0.995) / standardNormalQuantile(0.975)
        expectClose(c.totalOrderConfidence!, a.totalOrderConfidence!.map { $0 * ratio }, bound: { _ in 1e-12 }, "99% vs 95%")
        // scipy's norm.ppf(0.975) = 1.959963984540054.
        #expect(abs(standardNormalQuantile(0.975) - 1.959963984540054) < 1e-15)
        #expect(abs(standardNormalQuantile(1e-10) + 6.361340902404056) < 1e-12)
    }

    // MARK: Edge cases and bad input

    @Test func constantOutputWarnsAndGivesZeros() throws {
        let r = try SobolAnalysis.analyze(function: { _, n in [Double](repeating: 3, count: n) },
                                          dimensions: 4, baseSamples: 64, secondOrder: true)
        #expect(r.firstOrder == [0, 0, 0, 0] && r.totalOrder == [0, 0, 0, 0])
        #expect(r.firstOrderConfidence! == [0, 0, 0, 0] && r.totalOrderConfidence! == [0, 0, 0, 0])
        #expect(r.secondOrder(0, 3) == 0)
        #expect(r.warnings.count == 1 && r.warnings[0].contains("constant"), "\(r.warnings)")
    }

    @Test func chunkedEvaluationIsTheSame() throws {
        var calls = 0
        let whole = try SobolAnalysis.analyze(function: ishigami, dimensions: 3, baseSamples: 64, secondOrder: true)
        let chunked = try SobolAnalysis.analyze(function: { calls += 1; return try ishigami($0, $1) },
                                                dimensions: 3, baseSamples: 64, secondOrder: true, chunkSize: 100)
        #expect(calls == (64 * 8 + 99) / 100)
        #expect(whole.firstOrder == chunked.firstOrder && whole.totalOrder == chunked.totalOrder)
        #expect(whole.totalOrderConfidence! == chunked.totalOrderConfidence!)
    }

    @Test func sobolNeedsAPowerOfTwo() {
        expectAttribError(["N = 100", "power of two", "128"]) {
            _ = try SobolAnalysis.analyze(function: ishigami, dimensions: 3, baseSamples: 100)
        }
        expectAttribError(["N = 100", "sobol-scrambled"]) {
            _ = try SaltelliDesign(baseSamples: 100, dimensions: 3, sampler: SobolSequence(scrambled: true))
        }
        // Other samplers take any N.
        #expect((try? SaltelliDesign(baseSamples: 100, dimensions: 3, sampler: LatinHypercube())) != nil)
    }

    @Test func dimensionsBeyondTheTable() {
        // The design needs 2d = 2050 Sobol dimensions; the table has 2048.
        expectAttribError(["2050 dimensions", "2048"]) {
            _ = try SaltelliDesign(baseSamples: 2, dimensions: 1025)
        }
    }

    @Test func zeroDimensionsOrTooFewSamples() {
        expectAttribError(["dimensions is 0"]) { _ = try SaltelliDesign(baseSamples: 4, dimensions: 0) }
        expectAttribError(["N = 1", "at least 2"]) { _ = try SaltelliDesign(baseSamples: 1, dimensions: 2) }
        expectAttribError(["dimensions is 0"]) {
            _ = try SobolAnalysis.estimate(outputs: [1, 2, 3], dimensions: 0, secondOrder: false)
        }
    }

    @Test func outputCountMustMatchTheDesign() throws {
        let design = try SaltelliDesign(baseSamples: 8, dimensions: 3)
        expectAttribError(["39 outputs", "40 rows"]) {
            _ = try SobolAnalysis.estimate(outputs: [Double](repeating: 1, count: 39), design: design)
        }
        expectAttribError(["41 outputs", "d = 3"]) {
            _ = try SobolAnalysis.estimate(outputs: [Double](repeating: 1, count: 41), dimensions: 3, secondOrder: false)
        }
        expectAttribError(["returned 7 outputs for 40 input rows"]) {
            _ = try SobolAnalysis.analyze(function: { _, _ in [Double](repeating: 0, count: 7) }, dimensions: 3, baseSamples: 8)
        }
        expectAttribError(["output 2 is nan", "finite"]) {
            var y = [Double](repeating: 1, count: 40); y[2] = .nan
            _ = try SobolAnalysis.estimate(outputs: y, design: design)
        }
    }

    @Test func badBootstrapOptions() throws {
        let design = try SaltelliDesign(baseSamples: 8, dimensions: 3)
        let y = try ishigami(design.matrix, design.rowCount)
        expectAttribError(["confidence level 1.0"]) {
            _ = try SobolAnalysis.estimate(outputs: y, design: design, bootstrap: BootstrapOptions(confidenceLevel: 1))
        }
        expectAttribError(["resamples is 1"]) {
            _ = try SobolAnalysis.estimate(outputs: y, design: design, bootstrap: BootstrapOptions(resamples: 1))
        }
    }
}
