import AttribCore
import AttribKernels
import COpenCL
import FoundationEssentials

/// Whether this device runs --precision tf32 / bf16 products on tensor cores
/// (Kernels/gemm_mma.cl, inline PTX mma.sync), and why not where it does not.
public struct TensorCoreStatus: Sendable, CustomStringConvertible {
    public var precision: MatmulPrecision
    public var usable: Bool
    /// What was checked: the probe's result and the PTX target, or why the tensor
    /// cores are not used (the portable kernels then round the operands instead).
    public var detail: String
    public var description: String { "\(precision.rawValue): \(usable ? "tensor cores (mma.sync)" : "portable kernel, operands rounded") — \(detail)" }
}

extension OpenCLDevice {
    /// NVIDIA's compute capability (cl_nv_device_attribute_query), nil on other vendors.
    var nvidiaComputeCapability: (major: Int, minor: Int)? {
        guard extensions.contains("cl_nv_device_attribute_query") else { return nil }
        return (Int(CLInfo.value(id, 0x4000, cl_uint.self)), Int(CLInfo.value(id, 0x4001, cl_uint.self)))
    }

    public var matmulPrecision: MatmulPrecision { state.withLock { $0.precision } }

    /// Every precision is available: tensor cores where the probe passes, else the
    /// portable kernels with rounded operands (the same products up to summation order).
    public func setMatmulPrecision(_ p: MatmulPrecision) throws {
        state.withLock { $0.precision = p }
    }

    /// The tensor-core status for a precision, probing on first call: NVIDIA with
    /// compute capability ≥ 8.0, gemm_mma.cl built, and one mma of the precision
    /// checked against the host's product of the rounded operands. ATTRIB_TENSOR_CORES=0
    /// turns them off (to compare the two paths on one GPU).
    public func tensorCoreStatus(_ p: MatmulPrecision) -> TensorCoreStatus {
        if p == .fp32 { return TensorCoreStatus(precision: p, usable: false, detail: "FP32 products use the FP32 kernels") }
        if let s = state.withLock({ $0.tensorCores[p] }) { return s }
        let s = probeTensorCores(p)
        state.withLock { $0.tensorCores[p] = s }
        return s
    }

    /// Runs gemm_mma.cl with the mma emulated in plain OpenCL C (EMULATE_MMA) on this
    /// handle, whatever the device: its tiling, fragments, edge tiles and checks then run
    /// on PoCL in the tests. Never faster; for tests only.
    public func setTensorCoreEmulation(_ on: Bool) {
        state.withLock { $0.emulateMMA = on; $0.tensorCores = [:]; $0.verifiedMMA = [] }
    }

    /// The large tile of a precision for this handle (nil: the default or the environment's):
    /// tests of other tiles, and timings.
    public func setMMATile(_ tile: MMATile?, for p: MatmulPrecision) throws {
        if let tile, let why = tile.problem(p, localMemoryBytes: info.localMemoryBytes) {
            throw AttribError.invalidArgument(op: "mma tile", detail: "\(tile): \(why)")
        }
        state.withLock { $0.mmaTiles[p] = tile; $0.verifiedMMA = $0.verifiedMMA.filter { !$0.hasPrefix(p.rawValue) } }
    }

    private func probeTensorCores(_ p: MatmulPrecision) -> TensorCoreStatus {
        func no(_ why: String) -> TensorCoreStatus { TensorCoreStatus(precision: p, usable: false, detail: why) }
        let emulated = state.withLock { $0.emulateMMA }
        if emulated { return probeRun(p, label: "emulated mma (EMULATE_MMA), for tests") }
        guard let cc = nvidiaComputeCapability, cc.major >= 8 else {
            return no("mma.sync needs an NVIDIA GPU of compute capability ≥ 8.0; \(info.name) is "
                      + (nvidiaComputeCapability.map { "\($0.major).\($0.minor)" } ?? "not NVIDIA"))
        }
        let env = ProcessInfo.processInfo.environment
        if env["ATTRIB_TENSOR_CORES"] == "0" { return no("turned off by ATTRIB_TENSOR_CORES=0") }
        // BF16's kernel faulted on an H200 (its tiles, ushort arrays, sat at a 2-byte boundary);
        // they are 32-bit words now, and until a GPU run confirms it the BF16 tensor cores
        // stay off unless asked for: a fault ends every later OpenCL call of the process.
        if p == .bf16, env["ATTRIB_TENSOR_CORES_BF16"] != "1" {
            return no("BF16 tensor cores are off until a GPU run confirms the kernel (Benchmarks/results/2026-12-04-h200-issue20); ATTRIB_TENSOR_CORES_BF16=1 turns them on")
        }
        return probeRun(p, label: "probe passed on compute capability \(cc.major).\(cc.minor)")
    }

    /// The probe: one warp, one mma (TF32 m16n8k8 or BF16 m16n8k16), on values whose
    /// rounding matters (a tensor core that truncated instead would differ).
    private func probeRun(_ p: MatmulPrecision, label: String) -> TensorCoreStatus {
        func no(_ why: String) -> TensorCoreStatus { TensorCoreStatus(precision: p, usable: false, detail: why) }
        let k = p == .tf32 ? 8 : 16
        var rng = SplitMix64(seed: 11)
        let a = rng.uniform(16 * k).map { $0 * 3 - 1.5 }, b = rng.uniform(k * 8).map { $0 * 3 - 1.5 }
        do {
            let ta = try Tensor(a, shape: [16 * k], dtype: .float32, on: self)
            let tb = try Tensor(b, shape: [k * 8], dtype: .float32, on: self)
            let td = try Tensor(shape: [16 * 8], dtype: .float32, on: self)
            try launch(.gemmMMA, "mma_probe", dtype: .float32, defines: mmaDefines(p, transA: false, transB: false, small: false),
                       [.buffer(try clBuffer(ta.storage, "mma probe")), .buffer(try clBuffer(tb.storage, "mma probe")),
                        .buffer(try clBuffer(td.storage, "mma probe"))], global: [32], local: [32])
            let d = try td.doubles()
            let ra = try ta.doubles().map { Double(p.round(Float($0))) }, rb = try tb.doubles().map { Double(p.round(Float($0))) }
            for i in 0..<16 {
                for j in 0..<8 {
                    var s = 0.0, sa = 0.0
                    for q in 0..<k { s += ra[i * k + q] * rb[q * 8 + j]; sa += abs(ra[i * k + q] * rb[q * 8 + j]) }
                    // Products of rounded operands are exact in Float32; k Float32 additions
                    // err by at most k·2^−24·Σ|ab|.
                    if !(abs(d[i * 8 + j] - s) <= Double(k + 1) * 0x1p-24 * sa) {
                        return no("the probe's mma gave D[\(i), \(j)] = \(d[i * 8 + j]), the rounded operands' product is \(s): layout or rounding differs; not used")
                    }
                }
            }
            return TensorCoreStatus(precision: p, usable: true, detail: label + ptxSummary(p))
        } catch let AttribError.kernelBuildFailed(_, _, options, log) {
            return no("Kernels/gemm_mma.cl did not build (\(options)): \(log.prefix(600))")
        } catch {
            return no("the probe failed: \(error)")
        }
    }

    /// ", PTX .version X .target Y, N mma.sync" of the built probe program, read back
    /// from clGetProgramInfo (NVIDIA's program binaries are PTX text).
    private func ptxSummary(_ p: MatmulPrecision) -> String {
        let key = Self.programKey(.gemmMMA, options: buildOptions(dtype: .float32, defines: mmaDefines(p, transA: false, transB: false, small: false)))
        guard let program = state.withLock({ $0.programs[key] }) else { return "" }
        var size = 0
        guard clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARY_SIZES), MemoryLayout<Int>.size, &size, nil) == CL_SUCCESS,
              size > 0 else { return "" }
        var bytes = [UInt8](repeating: 0, count: size)
        let ok = bytes.withUnsafeMutableBufferPointer { buf -> Bool in
            var ptr: UnsafeMutablePointer<UInt8>? = buf.baseAddress
            return clGetProgramInfo(program, cl_program_info(CL_PROGRAM_BINARIES), MemoryLayout<UnsafeMutablePointer<UInt8>>.size, &ptr, nil) == CL_SUCCESS
        }
        guard ok else { return "" }
        let text = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        let lines = text.split(separator: "\n").map { String($0).trimmingSpaces }
        let version = lines.first { $0.hasPrefix(".version") } ?? "", target = lines.first { $0.hasPrefix(".target") } ?? ""
        let mmas = lines.filter { $0.hasPrefix("mma.sync") }.count
        return version.isEmpty ? "" : "; PTX \(version) \(target), \(mmas) mma.sync in the program"
    }

    /// gemm_mma.cl's defines for a tile (MMATile) and transpose pair.
    func mmaDefines(_ p: MatmulPrecision, transA: Bool, transB: Bool, small: Bool) -> [(String, Int)] {
        let t = mmaTile(p, small: small)
        var d = [("PREC", p == .tf32 ? 1 : 2), ("BM", t.bm), ("BN", t.bn), ("BK", t.bk), ("WM", t.wm), ("WN", t.wn),
                 ("NBUF", t.nbuf), ("TRANS_A", transA ? 1 : 0), ("TRANS_B", transB ? 1 : 0)]
        if state.withLock({ $0.emulateMMA }) { d.append(("EMULATE_MMA", 1)) }
        return d
    }

    /// The tile of a precision: MMATile's defaults, or ATTRIB_MMA_TILE_TF32 (_BF16) =
    /// BM,BN,BK,WM,WN,NBUF for the large tile (to time others on a GPU without a rebuild,
    /// Benchmarks/mma_tiles.sh; a set that breaks a constraint is refused with a warning).
    func mmaTile(_ p: MatmulPrecision, small: Bool) -> MMATile {
        let d = MMATile.defaults(p, small: small)
        if !small, let set = state.withLock({ $0.mmaTiles[p] }) { return set }
        let name = "ATTRIB_MMA_TILE_" + p.rawValue.uppercased()
        // Read once per process: this runs on every product.
        guard !small, let env = mmaTileEnvironment[name], !env.isEmpty else { return d }
        let v = env.split(separator: ",").compactMap { Int($0) }
        guard v.count == 6 else { return d }
        let t = MMATile(bm: v[0], bn: v[1], bk: v[2], wm: v[3], wn: v[4], nbuf: v[5])
        if let why = t.problem(p, localMemoryBytes: info.localMemoryBytes) {
            writeStandardError("warning: \(name)=\(env) ignored: \(why)\n")
            return d
        }
        return t
    }

    /// Enqueues gemm_mma.cl's kernel for g (Float32 operands): the large tile, or the
    /// small one where the large one's grid would leave SMs idle.
    func launchMMA(_ g: GEMMArguments, precision p: MatmulPrecision, c: CLBuffer, a: CLBuffer, b: CLBuffer, forceSmall: Bool? = nil,
                   fused: FusedEpilogue? = nil) throws {
        let big = mmaTile(p, small: false)
        let small = forceSmall ?? (((g.m + big.bm - 1) / big.bm) * ((g.n + big.bn - 1) / big.bn) * g.batch < info.computeUnits)
        let t = mmaTile(p, small: small)
        try launch(.gemmMMA, "gemm", dtype: .float32,
                   defines: mmaDefines(p, transA: g.transA, transB: g.transB, small: small) + (fused?.defines ?? []),
                   gemmKernelArguments(g, c: c, a: a, b: b, fused: fused),
                   global: [(g.n + t.bn - 1) / t.bn * t.threads, (g.m + t.bm - 1) / t.bm, g.batch], local: [t.threads, 1, 1])
    }

    /// Whether the tensor-core kernel for this precision and transpose pair gives the
    /// rounded operands' product on a 67×45×37 shape with edge tiles, α = 1.5, β = 0.5,
    /// both tile sizes: checked once per variant before its first use, so a layout
    /// error can never reach a result. nil when right, else what differs.
    func verifyMMA(_ p: MatmulPrecision, transA: Bool, transB: Bool) throws -> String? {
        let (m, n, k) = (67, 45, 37)
        var rng = SplitMix64(seed: 13)
        let av = rng.uniform(m * k), bv = rng.uniform(k * n), cv = rng.uniform(m * n)
        let ta = try Tensor(av, shape: [m * k], dtype: .float32, on: self)
        let tb = try Tensor(bv, shape: [k * n], dtype: .float32, on: self)
        let ra = av.map { Double(p.round(Float($0))) }, rb = bv.map { Double(p.round(Float($0))) }
        let rc = cv.map { Double(Float($0)) }
        for small in [false, true] {
            let tc = try Tensor(cv, shape: [m * n], dtype: .float32, on: self)
            let g = GEMMArguments(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 1.5,
                                  a: ta.storage, lda: transA ? m : k, strideA: 0, b: tb.storage, ldb: transB ? k : n, strideB: 0,
                                  beta: 0.5, c: tc.storage, ldc: n, strideC: 0, batch: 1)
            try launchMMA(g, precision: p, c: clBuffer(tc.storage, "mma check"), a: clBuffer(ta.storage, "mma check"),
                          b: clBuffer(tb.storage, "mma check"), forceSmall: small)
            let got = try tc.doubles()
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0, sa = 0.0
                    for q in 0..<k {
                        let x = ra[transA ? q * m + i : i * k + q] * rb[transB ? j * k + q : q * n + j]
                        s += x; sa += abs(x)
                    }
                    let want = 1.5 * s + 0.5 * rc[i * n + j]
                    if !(abs(got[i * n + j] - want) <= 2 * Double(k + 2) * 0x1p-24 * (1.5 * sa + 0.5 * abs(rc[i * n + j]))) {
                        return "\(small ? "64×64" : "128×128") tiles, \(transA ? "T" : "N")\(transB ? "T" : "N"): C[\(i), \(j)] = \(got[i * n + j]), expected \(want)"
                    }
                }
            }
        }
        return nil
    }

    /// Whether Float32 products of this variant go to the tensor cores now: the
    /// precision asks for it, the probe passed and this variant's check passed. A
    /// failed check turns the tensor cores off for the precision, with a warning.
    func usesTensorCores(_ p: MatmulPrecision, transA: Bool, transB: Bool) -> Bool {
        guard p != .fp32, tensorCoreStatus(p).usable else { return false }
        let key = "\(p.rawValue).\(transA ? "T" : "N")\(transB ? "T" : "N")"
        if state.withLock({ $0.verifiedMMA.contains(key) }) { return true }
        let problem: String?
        do { problem = try verifyMMA(p, transA: transA, transB: transB) } catch { problem = "\(error)" }
        if let problem {
            let s = TensorCoreStatus(precision: p, usable: false, detail: "the tensor-core GEMM failed its check (\(problem)); not used")
            state.withLock { $0.tensorCores[p] = s }
            writeStandardError("warning: \(info.id): \(s)\n")
            return false
        }
        state.withLock { _ = $0.verifiedMMA.insert(key) }
        return true
    }

    /// Which kernel runs a Float32 product of this variant at the current precision, for reports.
    public func gemmPath(transA: Bool = false, transB: Bool = false) -> String {
        let p = matmulPrecision
        if usesTensorCores(p, transA: transA, transB: transB) { return "gemm_mma \(p.rawValue) (mma.sync) \(mmaTile(p, small: false))" }
        let params = gemmParameters(GEMMVariant(dtype: .float32, transA: transA, transB: transB))
        return p == .fp32 ? "\(params)" : "\(params), operands rounded to \(p.rawValue)"
    }
}


/// A tile of gemm_mma.cl: BM×BN of C per work-group of WM×WN warps, K steps of BK,
/// NBUF local buffers.
public struct MMATile: Sendable, CustomStringConvertible {
    public var bm: Int, bn: Int, bk: Int, wm: Int, wn: Int, nbuf: Int
    public init(bm: Int, bn: Int, bk: Int, wm: Int, wn: Int, nbuf: Int) {
        self.bm = bm; self.bn = bn; self.bk = bk; self.wm = wm; self.wn = wn; self.nbuf = nbuf
    }
    var threads: Int { 32 * wm * wn }
    public var description: String { "[BM=\(bm) BN=\(bn) BK=\(bk) WM=\(wm) WN=\(wn) NBUF=\(nbuf)]" }

    /// 128×128 of 8 warps (64×32 each), K steps of 16 TF32 or 32 BF16 in two buffers (40 KiB);
    /// small: 64×64 of 4 warps (32×32 each).
    public static func defaults(_ p: MatmulPrecision, small: Bool) -> MMATile {
        MMATile(bm: small ? 64 : 128, bn: small ? 64 : 128, bk: p == .tf32 ? 16 : 32, wm: 2, wn: small ? 2 : 4, nbuf: 2)
    }

    /// gemm_mma.cl's constraints, and its local memory against the device's.
    public func problem(_ p: MatmulPrecision, localMemoryBytes: Int?) -> String? {
        let kstep = p == .tf32 ? 8 : 16, elem = p == .tf32 ? 4 : 2, ldk = bk + (p == .tf32 ? 4 : 8)
        if ![1, 2].contains(nbuf) || wm < 1 || wn < 1 { return "NBUF must be 1 or 2, WM and WN at least 1" }
        if bm % (16 * wm) != 0 || bn % (8 * wn) != 0 || bk % kstep != 0 { return "BM must be a multiple of 16·WM, BN of 8·WN, BK of \(kstep)" }
        if (bm * bk) % (threads * 4) != 0 || (bn * bk) % (threads * 4) != 0 { return "each tile must split into 4-vectors over \(threads) items" }
        if threads > 1024 { return "\(threads) work-items exceed 1024" }
        let bytes = nbuf * (bm + bn) * ldk * elem
        if let lm = localMemoryBytes, bytes > lm { return "needs \(bytes) bytes of local memory, the device has \(lm)" }
        return nil
    }
}

/// ATTRIB_MMA_TILE_TF32 and _BF16 as the process started (mmaTile runs on every product).
private let mmaTileEnvironment = ProcessInfo.processInfo.environment.filter { $0.key.hasPrefix("ATTRIB_MMA_TILE_") }
