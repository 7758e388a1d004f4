import Attrib
import Testing
import FoundationEssentials

/// GEMM: parity with OpenBLAS on every OpenCL device, and truth against a
/// naive Float64 product.
///
/// Tolerance: each backend's entry (i, j) carries a rounding error of at most
/// γ_k·(|op(A)|·|op(B)|)_ij with γ_k = k·u/(1 − k·u) (Higham, Accuracy and
/// Stability, §3.5), plus u·|C| for the final scaling and beta term, so two
/// backends differ by at most twice that. Any indexing bug gives O(1) errors.
@Suite struct GEMMTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var m: Int, n: Int, k: Int
        var tA = false, tB = false
        var alpha = 1.0, beta = 0.0
        var batch = 1
        var padLD = 0      // extra elements per row of every operand
        var offset = 0     // leading elements before each operand
        var testDescription: String {
            "\(m)×\(n)×\(k)\(tA ? " Aᵀ" : "")\(tB ? " Bᵀ" : "") α=\(alpha) β=\(beta) batch=\(batch) ld+\(padLD) off=\(offset)"
        }
    }

    static let shapes: [(Int, Int, Int)] = [(1, 1, 1), (1, 7, 13), (13, 1, 7), (7, 13, 1), (31, 37, 41),
                                            (64, 64, 64), (65, 63, 17), (127, 129, 131), (257, 3, 96)]
    static let cases: [Case] =
        shapes.flatMap { s in [false, true].flatMap { tA in [false, true].map { tB in Case(m: s.0, n: s.1, k: s.2, tA: tA, tB: tB) } } }
        + [Case(m: 33, n: 47, k: 29, tA: true, alpha: -0.75, beta: 0.5),
           Case(m: 33, n: 47, k: 29, tB: true, alpha: 2, beta: 1, padLD: 5, offset: 3),
           Case(m: 17, n: 19, k: 23, tA: true, tB: true, alpha: 1, beta: 0, batch: 3, padLD: 2, offset: 11),
           Case(m: 70, n: 66, k: 35, beta: -1, batch: 4)]

    /// Runs a case on `device`, with C initialised to NaN when beta = 0 (C must not be read).
    static func run(_ c: Case, on device: any Device, dtype: DType) throws -> (got: [Double], want: [Double], absAB: [Double], absC: [Double]) {
        let (ar, ac) = c.tA ? (c.k, c.m) : (c.m, c.k)
        let (br, bc) = c.tB ? (c.n, c.k) : (c.k, c.n)
        let lda = ac + c.padLD, ldb = bc + c.padLD, ldc = c.n + c.padLD
        let sA = ar * lda, sB = br * ldb, sC = c.m * ldc
        let a = randomValues(c.offset + c.batch * sA, seed: 1), b = randomValues(c.offset + c.batch * sB, seed: 2)
        let c0 = c.beta == 0 ? [Double](repeating: .nan, count: c.offset + c.batch * sC) : randomValues(c.offset + c.batch * sC, seed: 3)
        let ta = try Tensor(a, shape: [a.count], dtype: dtype, on: device)
        let tb = try Tensor(b, shape: [b.count], dtype: dtype, on: device)
        let tc = try Tensor(c0, shape: [c0.count], dtype: dtype, on: device)
        try device.gemm(GEMMArguments(transA: c.tA, transB: c.tB, m: c.m, n: c.n, k: c.k, alpha: c.alpha,
                                      a: BufferView(ta.storage.buffer, offset: c.offset), lda: lda, strideA: sA,
                                      b: BufferView(tb.storage.buffer, offset: c.offset), ldb: ldb, strideB: sB,
                                      beta: c.beta, c: BufferView(tc.storage.buffer, offset: c.offset), ldc: ldc, strideC: sC,
                                      batch: c.batch))
        let out = try tc.doubles()
        // The naive Float64 product of the values as stored in `dtype`, and Σ|a||b| for the bound.
        let ra = try ta.doubles(), rb = try tb.doubles(), rc = try Tensor(c0, shape: [c0.count], dtype: dtype, on: cpu).doubles()
        var got: [Double] = [], want: [Double] = [], absAB: [Double] = [], absC: [Double] = []
        for bi in 0..<c.batch {
            for i in 0..<c.m {
                for j in 0..<c.n {
                    var s = 0.0, sa = 0.0
                    for p in 0..<c.k {
                        let av = ra[c.offset + bi * sA + (c.tA ? p * lda + i : i * lda + p)]
                        let bv = rb[c.offset + bi * sB + (c.tB ? j * ldb + p : p * ldb + j)]
                        s += av * bv; sa += abs(av * bv)
                    }
                    let ci = c.offset + bi * sC + i * ldc + j
                    got.append(out[ci])
                    want.append(c.alpha * s + (c.beta == 0 ? 0 : c.beta * rc[ci]))
                    absAB.append(abs(c.alpha) * sa); absC.append(c.beta == 0 ? 0 : abs(c.beta * rc[ci]))
                }
            }
        }
        // Padding between rows must be untouched.
        if c.padLD > 0 {
            for bi in 0..<c.batch { for i in 0..<c.m { for j in c.n..<ldc {
                let ci = c.offset + bi * sC + i * ldc + j
                #expect(out[ci].isNaN == rc[ci].isNaN && (out[ci].isNaN || out[ci] == rc[ci]), "padding element \(ci) was written")
            } } }
        }
        return (got, want, absAB, absC)
    }

    static func bound(_ k: Int, _ dtype: DType, _ absAB: [Double], _ absC: [Double]) -> (Int) -> Double {
        let u = dtype.unitRoundoff, gamma = Double(k + 2) * u / (1 - Double(k + 2) * u)
        return { i in gamma * absAB[i] + 2 * u * absC[i] }
    }

    @Test("CPU backend against a naive Float64 product", arguments: cases)
    func cpuTruth(_ c: Case) throws {
        for dtype in [DType.float32, .float64] {
            let r = try Self.run(c, on: cpu, dtype: dtype)
            expectClose(r.got, r.want, bound: Self.bound(c.k, dtype, r.absAB, r.absC), "cpu \(dtype) \(c.testDescription)")
        }
    }

    @Test("OpenCL against a naive Float64 product, and the CPU backend", arguments: cases)
    func openCLParity(_ c: Case) throws {
        for device in openCLDevices {
            for dtype in dtypes(device) {
                let r = try Self.run(c, on: device, dtype: dtype)
                let truth = Self.bound(c.k, dtype, r.absAB, r.absC)
                expectClose(r.got, r.want, bound: truth, "\(device.id) \(dtype) \(c.testDescription) vs Float64")
                let ref = try Self.run(c, on: cpu, dtype: dtype)
                expectClose(r.got, ref.got, bound: { 2 * truth($0) }, "\(device.id) \(dtype) \(c.testDescription) vs cpu")
            }
        }
    }

    @Test("Large 1031×2053×517 product: OpenCL against the CPU backend")
    func large() throws {
        let (m, n, k) = (1031, 2053, 517)
        let a = randomValues(m * k, seed: 4), b = randomValues(k * n, seed: 5)
        let ref = try Tensor(a, shape: [m, k], dtype: .float32, on: cpu).matmul(Tensor(b, shape: [k, n], dtype: .float32, on: cpu)).doubles()
        // |A|·|B| in Float64 on the CPU backend, for the bound.
        let absAB = try Tensor(a.map(abs), shape: [m, k], on: cpu).matmul(Tensor(b.map(abs), shape: [k, n], on: cpu)).doubles()
        let gamma = Double(k) * DType.float32.unitRoundoff / (1 - Double(k) * DType.float32.unitRoundoff)
        for device in openCLDevices {
            let got = try Tensor(a, shape: [m, k], dtype: .float32, on: device).matmul(Tensor(b, shape: [k, n], dtype: .float32, on: device)).doubles()
            expectClose(got, ref, bound: { 2 * gamma * absAB[$0] }, "\(device.id) 1031×2053×517")
        }
    }

    @Test("Tuning on a GPU times work-group shapes only; CPU devices time every candidate")
    func candidatesPerKind() {
        let gpu = GEMMParameters.candidates(for: .gpu), cpuDevice = GEMMParameters.candidates(for: .cpu)
        #expect(cpuDevice == GEMMParameters.candidates)
        #expect(!gpu.isEmpty && gpu.allSatisfy { $0.MDIMC * $0.NDIMC > 1 })
        #expect(gpu.count == GEMMParameters.candidates.filter { $0.MDIMC * $0.NDIMC > 1 }.count && gpu.count < cpuDevice.count)
        #expect(gpu.contains(GEMMParameters.defaults(for: .gpu)), "the untuned GPU default is among them")
    }

    @Test("Split-K (K cut into chunks, one batched launch, then splitk_sum with β): the one-pass product within its bound, every transpose",
          arguments: [2, 3, 7])
    func splitK(_ splits: Int) throws {
        // A handle of its own: the forced split is a device setting.
        for device in openCLDevices.map({ $0.independentHandle() }) {
            device.setSplitK(splits)
            // K = 70 with 7 chunks of 16: four full chunks and a rest of 6; β ≠ 0 reads C in the sum.
            for c in [Case(m: 67, n: 45, k: 70, alpha: 1.5, beta: 0.5), Case(m: 33, n: 129, k: 257, tA: true),
                      Case(m: 5, n: 300, k: 64, tB: true, beta: -1), Case(m: 29, n: 31, k: 70, tA: true, tB: true, padLD: 3, offset: 5)] {
                let r = try Self.run(c, on: device, dtype: .float32)
                expectClose(r.got, r.want, bound: Self.bound(c.k, .float32, r.absAB, r.absC), "\(device.id) split \(splits) \(c.testDescription)")
            }
        }
    }

    @Test("The tuner's budget bounds its search: once spent, candidates are reported untried and none is chosen from them")
    func tuningBudget() throws {
        guard let device = openCLDevices.first else { return }
        let v = GEMMVariant(dtype: .float32)
        let saved = device.currentGEMMParameters(v)
        defer { try? device.setGEMMParameters(saved, for: v) }
        let some = Array(GEMMParameters.candidates(for: device.info.kind).prefix(2))
        let (none, spent) = try GEMMTuner.tune(device, size: 64, variant: v, candidates: some, budgetSeconds: 0)
        #expect(none == nil && spent.count == 2 && spent.allSatisfy { $0.gflops == nil && $0.problem?.contains("budget") == true })
        #expect(device.currentGEMMParameters(v) == saved, "no winner: the parameters in use stay")
    }

    @Test("Tuning-cache entries from before gemm_db.cl (no kernel, VWM, VWN) decode as gemm.cl sets")
    func oldCacheEntries() throws {
        let old = #"{"MWG":128,"NWG":128,"KWG":16,"MDIMC":16,"NDIMC":16,"VW":4,"PAD":1,"LOCAL_A":1,"LOCAL_B":1}"#
        let p = try JSONDecoder().decode(GEMMParameters.self, from: Data(old.utf8))
        #expect(p == GEMMParameters(MWG: 128, NWG: 128, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, PAD: 1) && p.kernel == 0)
        let db = GEMMParameters.candidates[0]
        #expect(db.kernel == 1)
        #expect(try JSONDecoder().decode(GEMMParameters.self, from: JSONEncoder().encode(db)) == db)
    }

    @Test("Every tuning candidate computes the right product")
    func candidates() throws {
        for device in openCLDevices {
            let variants = GEMMVariant.all(.float32)
            let saved = variants.map { device.currentGEMMParameters($0) }
            defer { for (v, p) in zip(variants, saved) { try? device.setGEMMParameters(p, for: v) } }
            for p in GEMMParameters.candidates where p.problem(on: device.info, dtype: .float32) == nil {
                for v in variants { try device.setGEMMParameters(p, for: v) }
                for c in [Case(m: 67, n: 45, k: 37, tA: true, alpha: 1.5, beta: 0.5), Case(m: 130, n: 129, k: 33, tB: true, batch: 2),
                          Case(m: 1, n: 70, k: 9), Case(m: 29, n: 31, k: 70, tA: true, tB: true, padLD: 3, offset: 5)] {
                    let r = try Self.run(c, on: device, dtype: .float32)
                    expectClose(r.got, r.want, bound: Self.bound(c.k, .float32, r.absAB, r.absC), "\(device.id) [\(p)] \(c.testDescription)")
                }
            }
        }
    }

    @Test("gemmSequence equals the products one by one, bitwise, on every device: later products adding onto overlapping C with β = 1")
    func sequenceMatchesOneByOne() throws {
        // A banded convolution's backward: 600 rows (split over the CPU workers), four
        // bands whose C column ranges overlap, all adding into one zeroed C. Then the cases
        // the CPU runs one by one: a transposed A, and products too small to split.
        let ldc = 40
        for device in [cpu as any Device] + openCLDevices {
            for (m, transA) in [(600, false), (600, true), (40, false)] {
                let a = randomValues(m * 64, seed: 71), bs = (0..<4).map { randomValues(16 * 24, seed: 72 + UInt64($0)) }
                func run(_ sequence: Bool) throws -> [Double] {
                    let at = try Tensor(a, shape: [m * 64], dtype: .float32, on: device)
                    let bt = try bs.map { try Tensor($0, shape: [16 * 24], dtype: .float32, on: device) }
                    let c = try Tensor.zeros([m * ldc], dtype: .float32, on: device)
                    let gs = (0..<4).map { i in
                        GEMMArguments(transA: transA && i == 2, m: m, n: 24, k: 16,
                                      a: BufferView(at.storage.buffer, offset: at.storage.offset + 16 * i), lda: transA && i == 2 ? m : 64,
                                      b: bt[i].storage, ldb: 24, beta: 1,
                                      c: BufferView(c.storage.buffer, offset: c.storage.offset + 5 * i), ldc: ldc)
                    }
                    if sequence { try device.gemmSequence(gs) } else { for g in gs { try device.gemm(g) } }
                    return try c.doubles()
                }
                let (seq, each) = (try run(true), try run(false))
                #expect(seq.map(\.bitPattern) == each.map(\.bitPattern), "\(device.id) m \(m) transA \(transA)")
                #expect(seq.contains { $0 != 0 })
            }
        }
        // A bad product anywhere in the sequence is named before any runs.
        let z = try Tensor.zeros([4], dtype: .float32, on: cpu)
        let good = GEMMArguments(m: 2, n: 2, k: 1, a: z.storage, lda: 1, b: z.storage, ldb: 2, c: z.storage, ldc: 2)
        let bad = GEMMArguments(m: 3, n: 3, k: 3, a: z.storage, lda: 3, b: z.storage, ldb: 3, c: z.storage, ldc: 3)
        expectAttribError(["gemm"]) { try cpu.gemmSequence([good, bad]) }
    }

    @Test("Tensor matmul: 2-D, batched 3-D, and a shared right operand")
    func tensorMatmul() throws {
        for device in openCLDevices + [cpu] as [any Device] {
            let a = try Tensor(randomValues(2 * 3 * 4, seed: 6), shape: [2, 3, 4], dtype: .float32, on: device)
            let b = try Tensor(randomValues(4 * 5, seed: 7), shape: [4, 5], dtype: .float32, on: device)
            let c = try a.matmul(b)
            #expect(c.shape == [2, 3, 5])
            let av = try a.doubles(), bv = try b.doubles(), cv = try c.doubles()
            for e in 0..<30 {
                let (bi, i, j) = (e / 15, (e / 5) % 3, e % 5)
                let want = (0..<4).reduce(0.0) { $0 + av[bi * 12 + i * 4 + $1] * bv[$1 * 5 + j] }
                #expect(abs(cv[e] - want) <= 8 * DType.float32.unitRoundoff * 4, "\(device.id) element \(e)")
            }
        }
    }
}
