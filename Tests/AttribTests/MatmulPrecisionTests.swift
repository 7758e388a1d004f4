import Attrib
import FoundationEssentials
import Testing

/// --precision tf32 / bf16: the operand rounding, the products on every OpenCL
/// device (tensor cores on NVIDIA ≥ 8.0, the portable kernels' rounding elsewhere),
/// and the CPU backend's refusal.
///
/// Tolerance: with the operands rounded as MatmulPrecision.round does (on the host,
/// bit for bit as the kernels do), each product of two rounded Float32 values is
/// exact in Float32 (at most 11 + 11 significand bits), so the device's result and
/// the CPU backend's FP32 product of the rounded operands differ only in the order
/// of k Float32 additions: each within γ_{k+2}·Σ|ab| + 2u·|βC| of the exact value,
/// so within twice that of each other. A kernel that skipped or misplaced the
/// rounding would be off by ~2^−11 (TF32) or ~2^−8 (BF16) of Σ|ab|, far outside.
@Suite struct MatmulPrecisionTests {
    @Test("Operand rounding: TF32 nearest with ties away, BF16 nearest even, Inf and NaN unchanged")
    func rounding() {
        // 1 + 2^−11 lies halfway between TF32 neighbours 1 and 1 + 2^−10: ties away.
        #expect(MatmulPrecision.tf32.round(1 + 0x1p-11) == 1 + 0x1p-10)
        #expect(MatmulPrecision.tf32.round(-(1 + 0x1p-11)) == -(1 + 0x1p-10))
        #expect(MatmulPrecision.tf32.round(1 + 0x1p-12) == 1)
        // 1 + 2^−8 lies halfway between BF16 neighbours 1 and 1 + 2^−7: ties to even (1).
        #expect(MatmulPrecision.bf16.round(1 + 0x1p-8) == 1)
        // 1 + 3·2^−8 lies halfway between 1 + 2^−7 (odd) and 1 + 2^−6 (even): to even.
        #expect(MatmulPrecision.bf16.round(1 + 3 * 0x1p-8) == 1 + 0x1p-6)
        for p in MatmulPrecision.allCases {
            #expect(p.round(.infinity) == .infinity && p.round(-.infinity) == -.infinity && p.round(.nan).isNaN)
            #expect(p.round(0.3).bitPattern & ((1 << (24 - p.significandBits)) - 1) == 0, "\(p): low bits cleared")
        }
        #expect(MatmulPrecision.fp32.round(0.1) == 0.1)
    }

    static let cases: [GEMMTests.Case] = [
        .init(m: 67, n: 45, k: 37, alpha: 1.5, beta: 0.5), .init(m: 67, n: 45, k: 37, tA: true),
        .init(m: 130, n: 129, k: 70, tB: true, batch: 2), .init(m: 29, n: 31, k: 70, tA: true, tB: true, padLD: 3, offset: 5),
        .init(m: 1, n: 300, k: 257), .init(m: 200, n: 7, k: 64, alpha: -1, beta: 1),
    ]

    @Test("tf32 and bf16 products on every OpenCL device equal the CPU's FP32 product of the rounded operands", arguments: cases)
    func roundedProducts(_ c: GEMMTests.Case) throws {
        // A handle of its own: the precision is a device setting, and tests beside this
        // one use the shared handles at FP32.
        for device in openCLDevices.map({ $0.independentHandle() }) {
            let exact = try GEMMTests.run(c, on: device, dtype: .float32)
            for p in [MatmulPrecision.tf32, .bf16] {
                try device.setMatmulPrecision(p)
                let got = try GEMMTests.run(c, on: device, dtype: .float32)
                try device.setMatmulPrecision(.fp32)
                let want = try Self.roundedReference(c, p)
                let u = DType.float32.unitRoundoff, gamma = Double(c.k + 2) * u / (1 - Double(c.k + 2) * u)
                expectClose(got.got, want.value, bound: { 2 * (gamma * want.absAB[$0] + 2 * u * want.absC[$0]) },
                            "\(device.id) \(p) [\(device.gemmPath(transA: c.tA, transB: c.tB))] \(c.testDescription)")
                // The rounding took place: the FP32 product differs by more than FP32's own bound somewhere.
                let moved = got.got.indices.contains { abs(got.got[$0] - exact.got[$0]) > 2 * gamma * want.absAB[$0] + 1e-30 }
                #expect(moved || c.k < 2, "\(device.id) \(p): the product equals the FP32 one; the operands were not rounded")
            }
        }
    }

    /// Every tile Benchmarks/mma_tiles.sh times on a GPU, per precision (BM, BN, BK, WM, WN, NBUF).
    static let mmaTiles: [(MatmulPrecision, [Int])] =
        [[128, 128, 16, 2, 4, 2], [128, 128, 32, 2, 4, 1], [128, 128, 32, 2, 2, 1], [128, 128, 8, 2, 4, 2], [128, 64, 32, 2, 2, 1],
         [256, 128, 16, 4, 2, 1], [128, 256, 16, 2, 4, 1]].map { (.tf32, $0) }
        + [[128, 128, 32, 2, 4, 2], [128, 128, 64, 2, 4, 1], [128, 128, 32, 2, 2, 2], [256, 128, 32, 4, 2, 1], [128, 256, 32, 2, 4, 1],
           [128, 128, 16, 2, 4, 2]].map { (.bf16, $0) }

    /// The tiles run here: TF32's default, TF32 with 64×64 warp tiles in one buffer, BF16's
    /// default (all 13 passed on PoCL in 368 s, too long for every run: arguments 0..<13).
    static let testedTiles = [0, 2, 7]

    @Test("gemm_mma.cl's tiling with the mma emulated (EMULATE_MMA): tiles mma_tiles.sh times, on every OpenCL device, give the rounded operands' product",
          arguments: testedTiles)
    func emulatedTensorCoreTiles(_ index: Int) throws {
        let (p, v) = Self.mmaTiles[index]
        let tile = MMATile(bm: v[0], bn: v[1], bk: v[2], wm: v[3], wn: v[4], nbuf: v[5])
        // BF16's K steps of 8 are not a whole mma (k16): the tile must be refused, not run.
        if p == .bf16 && tile.bk % 16 != 0 {
            #expect(tile.problem(p, localMemoryBytes: nil) != nil, "\(tile) accepted for bf16")
            return
        }
        for device in openCLDevices.map({ $0.independentHandle() }) {
            device.setTensorCoreEmulation(true)
            try device.setMMATile(tile, for: p)
            try device.setMatmulPrecision(p)
            #expect(device.tensorCoreStatus(p).usable, "\(device.id): \(device.tensorCoreStatus(p))")
            // Before these, the device's own check ran NN on 67×45×37 with both tile sizes.
            for c in [GEMMTests.Case(m: 130, n: 129, k: 70, tB: true, batch: 2),
                      GEMMTests.Case(m: 29, n: 31, k: 70, tA: true, tB: true, padLD: 3, offset: 5)] {
                #expect(device.gemmPath(transA: c.tA, transB: c.tB).hasPrefix("gemm_mma"), "\(device.id) \(tile): not on the mma kernel")
                let got = try GEMMTests.run(c, on: device, dtype: .float32)
                let want = try Self.roundedReference(c, p)
                let u = DType.float32.unitRoundoff, gamma = Double(c.k + 2) * u / (1 - Double(c.k + 2) * u)
                expectClose(got.got, want.value, bound: { 2 * (gamma * want.absAB[$0] + 2 * u * want.absC[$0]) },
                            "\(device.id) \(p) emulated mma \(tile) \(c.testDescription)")
            }
        }
    }

    /// The CPU backend's FP32 product of the operands rounded on the host, with Σ|ab| and |βC|.
    static func roundedReference(_ c: GEMMTests.Case, _ p: MatmulPrecision) throws -> (value: [Double], absAB: [Double], absC: [Double]) {
        let (ar, ac) = c.tA ? (c.k, c.m) : (c.m, c.k)
        let (br, bc) = c.tB ? (c.n, c.k) : (c.k, c.n)
        let lda = ac + c.padLD, ldb = bc + c.padLD, ldc = c.n + c.padLD
        let sA = ar * lda, sB = br * ldb, sC = c.m * ldc
        // The same values GEMMTests.run draws, rounded as the kernels round them.
        let a = randomValues(c.offset + c.batch * sA, seed: 1).map { Double(p.round(Float($0))) }
        let b = randomValues(c.offset + c.batch * sB, seed: 2).map { Double(p.round(Float($0))) }
        let c0 = c.beta == 0 ? [Double](repeating: 0, count: c.offset + c.batch * sC)
            : randomValues(c.offset + c.batch * sC, seed: 3).map { Double(Float($0)) }
        var value: [Double] = [], absAB: [Double] = [], absC: [Double] = []
        for bi in 0..<c.batch {
            for i in 0..<c.m {
                for j in 0..<c.n {
                    var s = 0.0, sa = 0.0
                    for q in 0..<c.k {
                        let x = a[c.offset + bi * sA + (c.tA ? q * lda + i : i * lda + q)] * b[c.offset + bi * sB + (c.tB ? j * ldb + q : q * ldb + j)]
                        s += x; sa += abs(x)
                    }
                    let cv = c0[c.offset + bi * sC + i * ldc + j]
                    value.append(c.alpha * s + c.beta * cv); absAB.append(abs(c.alpha) * sa); absC.append(abs(c.beta * cv))
                }
            }
        }
        return (value, absAB, absC)
    }

    @Test("The tensor-core probe says why it is not used off NVIDIA ≥ 8.0, and runs mma.sync where it is")
    func probe() throws {
        for device in openCLDevices.map({ $0.independentHandle() }) {
            for p in [MatmulPrecision.tf32, .bf16] {
                let s = device.tensorCoreStatus(p)
                let bf16Off = p == .bf16 && ProcessInfo.processInfo.environment["ATTRIB_TENSOR_CORES_BF16"] != "1"
                if !device.info.vendor.contains("NVIDIA") {
                    #expect(!s.usable && s.detail.contains("NVIDIA"), "\(device.id): \(s)")
                } else if bf16Off {
                    #expect(!s.usable && s.detail.contains("ATTRIB_TENSOR_CORES_BF16"), "\(device.id): \(s)")
                } else if device.tensorPeakGFLOPS(p) != nil {
                    // A tabled NVIDIA GPU (compute capability 8.0 or 9.0): the probe must pass.
                    #expect(s.usable, "\(device.id): \(s)")
                    #expect(device.gemmPath().hasPrefix("gemm_mma") == false, "precision fp32 never takes the tensor cores")
                }
            }
        }
    }

    @Test("The CPU backend refuses tf32 and bf16, naming itself; fp32 is accepted")
    func cpuRefuses() throws {
        #expect(throws: AttribError.self) { try cpu.setMatmulPrecision(.tf32) }
        do { try cpu.setMatmulPrecision(.bf16) } catch { #expect("\(error)".contains("cpu") && "\(error)".contains("FP32 only")) }
        try cpu.setMatmulPrecision(.fp32)
        #expect(cpu.matmulPrecision == .fp32)
    }
}
