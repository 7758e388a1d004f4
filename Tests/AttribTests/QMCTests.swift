import Attrib
import Testing

/// Points of a fixture stored as float64 (scipy's values as they are).
private func fixturePoints(_ name: String) throws -> [Double] {
    try NPY.read(fixturePath("qmc/" + name)).doubles()
}

/// Points of a fixture stored as int32 numerators k, point = k·2^−30 (exact:
/// scipy's 30-bit Sobol points are such fractions; make_qmc_fixtures.py asserts it).
private func fixtureNumerators(_ name: String) throws -> [Double] {
    try NPY.read(fixturePath("qmc/" + name)).doubles().map { $0 * 0x1p-30 }
}

/// Expects every 1-D projection of the first 2^k points (k = 0…log2 n) to hold
/// exactly one point in each interval [j/2^k, (j+1)/2^k).
private func expectStratified(_ x: [Double], count n: Int, dimensions d: Int, _ what: String,
                              sourceLocation: SourceLocation = #_sourceLocation) {
    var k = 0
    while 1 << k <= n {
        let m = 1 << k
        for dim in 0..<d {
            var seen = [Bool](repeating: false, count: m)
            for p in 0..<m {
                let v = x[p * d + dim]
                guard v >= 0 && v < 1 else {
                    Issue.record("\(what): point \(p) dim \(dim) is \(v), outside [0, 1)", sourceLocation: sourceLocation); return
                }
                seen[Int(v * Double(m))] = true
            }
            if seen.contains(false) {
                Issue.record("\(what): first \(m) points leave an interval of width 2^-\(k) empty in dimension \(dim)", sourceLocation: sourceLocation)
                return
            }
        }
        k += 1
    }
}

@Suite struct QMCTests {
    // MARK: Sobol against scipy (bit for bit)

    @Test func sobolMatchesScipyD64() throws {
        let got = try SobolSequence().points(count: 1024, dimensions: 64)
        expectEqual(got, try fixtureNumerators("sobol_d64_n1024_k30.npy"), "Sobol d=64 n=1024 vs scipy")
    }

    @Test(arguments: [(1, 1024, "sobol_d1_n1024.npy"), (2, 256, "sobol_d2_n256.npy"), (7, 128, "sobol_d7_n128.npy")])
    func sobolMatchesScipySmall(d: Int, n: Int, file: String) throws {
        let got = try SobolSequence().points(count: n, dimensions: d)
        expectEqual(got, try fixturePoints(file), "Sobol d=\(d) n=\(n) vs scipy")
    }

    @Test func sobolMatchesScipyD2048() throws {
        let all = try SobolSequence().points(count: 8, dimensions: 2048)
        expectEqual(all, try fixtureNumerators("sobol_d2048_n8_k30.npy"), "Sobol d=2048 n=8 vs scipy")
        // The last 8 of 2048 dimensions over 1024 points.
        let deep = try SobolSequence().points(count: 1024, dimensions: 2048)
        let last8 = (0..<1024).flatMap { n in deep[(n * 2048 + 2040)..<(n * 2048 + 2048)] }
        expectEqual(last8, try fixtureNumerators("sobol_d2048_n1024_last8_k30.npy"), "Sobol d=2048 dims 2041…2048 vs scipy")
    }

    @Test func sobolFirstPointsByHand() throws {
        // Dimension 1 is van der Corput in Gray-code order; dimension 2 has m = 1, 3, 5, ….
        let x = try SobolSequence().points(count: 4, dimensions: 2)
        expectEqual(x, [0, 0, 0.5, 0.5, 0.75, 0.25, 0.25, 0.75], "first Sobol points")
    }

    @Test func sobolUnbalancedCountsStillPrefix() throws {
        // Any count is allowed (scipy only warns); it is a prefix of the longer run.
        let a = try SobolSequence().points(count: 100, dimensions: 5)
        let b = try SobolSequence().points(count: 128, dimensions: 5)
        expectEqual(a, Array(b[..<500]), "Sobol n=100 prefix of n=128")
    }

    @Test func sobolBeyondTheTableNamesTheLimit() {
        expectAttribError(["2049 dimensions", "2048"]) { _ = try SobolSequence().points(count: 4, dimensions: 2049) }
        expectAttribError(["2049", "2048"]) { _ = try SobolSequence(scrambled: true, seed: 1).points(count: 4, dimensions: 2049) }
    }

    @Test func sobolTooManyPoints() {
        expectAttribError(["1073741825", "2^30"]) { _ = try SobolSequence().points(count: (1 << 30) + 1, dimensions: 1) }
    }

    @Test func zeroDimensionsOrNegativeCount() throws {
        let samplers: [any PointSampler] = SamplerKind.allCases.map { $0.sampler(seed: 1) }
        for s in samplers {
            expectAttribError(["dimensions is 0", "at least 1"]) { _ = try s.points(count: 4, dimensions: 0) }
            expectAttribError(["count is -1"]) { _ = try s.points(count: -1, dimensions: 2) }
            #expect(try s.points(count: 0, dimensions: 3).isEmpty, "\(s.name): zero points")
        }
    }

    // MARK: Scrambled Sobol

    @Test(arguments: [UInt64(1), 2, 12345])
    func scrambledSobolIsStratified(seed: UInt64) throws {
        let n = 1024, d = 40
        let x = try SobolSequence(scrambled: true, seed: seed).points(count: n, dimensions: d)
        expectStratified(x, count: n, dimensions: d, "scrambled Sobol seed \(seed)")
    }

    @Test func scrambledSobolIsSeededAndScrambled() throws {
        let s1 = try SobolSequence(scrambled: true, seed: 7).points(count: 64, dimensions: 6)
        let again = try SobolSequence(scrambled: true, seed: 7).points(count: 64, dimensions: 6)
        let s2 = try SobolSequence(scrambled: true, seed: 8).points(count: 64, dimensions: 6)
        let plain = try SobolSequence().points(count: 64, dimensions: 6)
        expectEqual(s1, again, "same seed, same points")
        #expect(s1 != s2, "different seeds give different scrambles")
        #expect(s1 != plain, "scrambled differs from plain")
        #expect(s1[0..<6].contains { $0 != 0 }, "the digital shift moves the first point off the origin")
        // A dimension's scramble does not depend on how many dimensions are asked for.
        let wide = try SobolSequence(scrambled: true, seed: 7).points(count: 64, dimensions: 9)
        expectEqual(s1, (0..<64).flatMap { wide[($0 * 9)..<($0 * 9 + 6)] }, "first 6 of 9 scrambled dimensions")
    }

    // MARK: Halton

    @Test func haltonFirstPointsByHand() throws {
        // Bases 2, 3, 5: radical inverses of n = 0…4 (scipy starts at n = 0).
        let x = try HaltonSequence().points(count: 5, dimensions: 3)
        let want: [Double] = [0, 0, 0,
                              1.0 / 2, 1.0 / 3, 1.0 / 5,
                              1.0 / 4, 2.0 / 3, 2.0 / 5,
                              3.0 / 4, 1.0 / 9, 3.0 / 5,
                              1.0 / 8, 4.0 / 9, 4.0 / 5]
        expectEqual(x, want, "first Halton points")
        #expect(HaltonSequence.primes(10) == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29])
        #expect(HaltonSequence.radicalInverse(11, base: 2) == 13.0 / 16)   // 1011 → 0.1101
    }

    @Test func scrambledHaltonIsStratified() throws {
        // Base 2 (dimension 0): the first 2^k points; base 3 (dimension 1): the first 3^k.
        let x = try HaltonSequence(scrambled: true, seed: 5).points(count: 729, dimensions: 2)
        expectStratified((0..<512).map { x[$0 * 2] }, count: 512, dimensions: 1, "scrambled Halton base 2")
        for k in 1...6 {
            let m = Int(pow3(k))
            var seen = Set<Int>()
            for p in 0..<m { seen.insert(Int(x[p * 2 + 1] * Double(m))) }
            #expect(seen.count == m, "scrambled Halton base 3: first \(m) points not one per interval")
        }
        #expect(x != (try HaltonSequence().points(count: 729, dimensions: 2)))
    }

    private func pow3(_ k: Int) -> Double { (0..<k).reduce(1.0) { r, _ in r * 3 } }

    // MARK: Latin hypercube and Monte Carlo

    @Test(arguments: [1, 7, 100, 1000])
    func latinHypercubeOnePointPerStratum(n: Int) throws {
        let d = 5
        let x = try LatinHypercube(seed: UInt64(n)).points(count: n, dimensions: d)
        for dim in 0..<d {
            let strata = Set((0..<n).map { Int(x[$0 * d + dim] * Double(n)) })
            #expect(strata.count == n && strata.allSatisfy { $0 >= 0 && $0 < n },
                    "LHS n=\(n) dim \(dim): \(strata.count) distinct strata")
        }
        #expect(x == (try LatinHypercube(seed: UInt64(n)).points(count: n, dimensions: d)), "seeded")
    }

    @Test func monteCarloIsSeededUniform() throws {
        let x = try MonteCarloSampler(seed: 3).points(count: 4096, dimensions: 2)
        #expect(x.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(x == (try MonteCarloSampler(seed: 3).points(count: 4096, dimensions: 2)))
        // Mean of 8192 U(0,1) draws: σ = √(1/12 / 8192) ≈ 0.0032; 0.015 is over 4σ.
        #expect(abs(x.reduce(0, +) / Double(x.count) - 0.5) < 0.015)
    }

    // MARK: Names

    @Test func samplerKindNames() {
        for (name, kind) in [("sobol", SamplerKind.sobol), ("sobol-scrambled", .sobolScrambled),
                             ("halton", .halton), ("lhs", .lhs), ("mc", .mc)] {
            #expect(SamplerKind(name: name) == kind)
            #expect(kind.name == name)
            #expect(kind.sampler(seed: 1).name == name)
        }
        #expect(SamplerKind(name: "Sobol") == nil)
        #expect(SamplerKind(name: "random") == nil)
    }
}
