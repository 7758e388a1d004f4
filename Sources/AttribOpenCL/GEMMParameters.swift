import AttribCore

/// Tile parameters of the portable GEMM kernels, passed as -D macros (names as in
/// the kernels' headers): Kernels/gemm.cl (kernel 0) or Kernels/gemm_db.cl
/// (kernel 1: double-buffered, vector reads from local memory). Constraints are
/// checked by `problem(on:dtype:)`.
public struct GEMMParameters: Codable, Hashable, Sendable, CustomStringConvertible {
    /// 0: gemm.cl; 1: gemm_db.cl.
    public var kernel: Int
    /// gemm_db.cl: rows and columns of each run an item owns, read as one vector.
    public var VWM: Int, VWN: Int
    /// Rows and columns of C per work-group, K step held in local memory.
    public var MWG: Int, NWG: Int, KWG: Int
    /// Work-items along M and N (the local size is NDIMC × MDIMC).
    public var MDIMC: Int, NDIMC: Int
    /// Vector width of global loads, and padding of each local-memory row.
    public var VW: Int, PAD: Int
    /// 1: stage that operand's tiles through local memory (GPUs); 0: read interior
    /// tiles straight from global memory (CPUs, where caches do the staging).
    public var LOCAL_A: Int, LOCAL_B: Int

    public init(MWG: Int, NWG: Int, KWG: Int, MDIMC: Int, NDIMC: Int, VW: Int, PAD: Int, LOCAL_A: Int = 1, LOCAL_B: Int = 1) {
        self.MWG = MWG; self.NWG = NWG; self.KWG = KWG; self.MDIMC = MDIMC; self.NDIMC = NDIMC; self.VW = VW; self.PAD = PAD
        self.LOCAL_A = LOCAL_A; self.LOCAL_B = LOCAL_B
        kernel = 0; VWM = 1; VWN = 1
    }

    /// A gemm_db.cl set (both operands always staged through local memory).
    public static func doubleBuffered(MWG: Int, NWG: Int, KWG: Int, MDIMC: Int, NDIMC: Int, VW: Int, VWM: Int, VWN: Int,
                                      PAD: Int) -> GEMMParameters {
        var p = GEMMParameters(MWG: MWG, NWG: NWG, KWG: KWG, MDIMC: MDIMC, NDIMC: NDIMC, VW: VW, PAD: PAD)
        p.kernel = 1; p.VWM = VWM; p.VWN = VWN
        return p
    }

    private enum CodingKeys: String, CodingKey { case kernel, MWG, NWG, KWG, MDIMC, NDIMC, VW, VWM, VWN, PAD, LOCAL_A, LOCAL_B }

    /// Cache entries written before gemm_db.cl existed have no kernel, VWM or VWN: gemm.cl's.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(MWG: try c.decode(Int.self, forKey: .MWG), NWG: try c.decode(Int.self, forKey: .NWG),
                  KWG: try c.decode(Int.self, forKey: .KWG), MDIMC: try c.decode(Int.self, forKey: .MDIMC),
                  NDIMC: try c.decode(Int.self, forKey: .NDIMC), VW: try c.decode(Int.self, forKey: .VW),
                  PAD: try c.decode(Int.self, forKey: .PAD), LOCAL_A: try c.decode(Int.self, forKey: .LOCAL_A),
                  LOCAL_B: try c.decode(Int.self, forKey: .LOCAL_B))
        kernel = try c.decodeIfPresent(Int.self, forKey: .kernel) ?? 0
        VWM = try c.decodeIfPresent(Int.self, forKey: .VWM) ?? 1
        VWN = try c.decodeIfPresent(Int.self, forKey: .VWN) ?? 1
    }

    var defines: [(String, Int)] {
        kernel == 1
            ? [("MWG", MWG), ("NWG", NWG), ("KWG", KWG), ("MDIMC", MDIMC), ("NDIMC", NDIMC), ("VW", VW), ("VWM", VWM), ("VWN", VWN),
               ("PAD", PAD)]
            : [("MWG", MWG), ("NWG", NWG), ("KWG", KWG), ("MDIMC", MDIMC), ("NDIMC", NDIMC), ("VW", VW), ("PAD", PAD),
               ("LOCAL_A", LOCAL_A), ("LOCAL_B", LOCAL_B)]
    }

    public var description: String {
        kernel == 1
            ? "gemm_db MWG=\(MWG) NWG=\(NWG) KWG=\(KWG) MDIMC=\(MDIMC) NDIMC=\(NDIMC) VW=\(VW) VWM=\(VWM) VWN=\(VWN) PAD=\(PAD)"
            : "MWG=\(MWG) NWG=\(NWG) KWG=\(KWG) MDIMC=\(MDIMC) NDIMC=\(NDIMC) VW=\(VW) PAD=\(PAD) LOCAL_A=\(LOCAL_A) LOCAL_B=\(LOCAL_B)"
    }

    /// Why these parameters cannot run on the device, or nil when they can.
    public func problem(on info: DeviceInfo, dtype: DType) -> String? {
        if kernel == 1 { return doubleBufferedProblem(on: info, dtype: dtype) }
        if kernel != 0 { return "kernel must be 0 (gemm.cl) or 1 (gemm_db.cl)" }
        if MWG % MDIMC != 0 || NWG % NDIMC != 0 { return "MWG must be a multiple of MDIMC and NWG of NDIMC" }
        if ![1, 2, 4, 8, 16].contains(VW) || MWG % VW != 0 || NWG % VW != 0 || KWG % VW != 0 {
            return "VW must be 1, 2, 4, 8 or 16 and divide MWG, NWG and KWG"
        }
        if PAD < 0 { return "PAD must be ≥ 0" }
        if ![0, 1].contains(LOCAL_A) || ![0, 1].contains(LOCAL_B) { return "LOCAL_A and LOCAL_B must be 0 or 1" }
        if let maxWG = info.maxWorkGroupSize, MDIMC * NDIMC > maxWG {
            return "MDIMC·NDIMC = \(MDIMC * NDIMC) exceeds the work-group limit \(maxWG)"
        }
        let local = KWG * (MWG + PAD + NWG + PAD) * dtype.size
        if let lm = info.localMemoryBytes, local > lm { return "needs \(local) bytes of local memory, the device has \(lm)" }
        return nil
    }

    private func doubleBufferedProblem(on info: DeviceInfo, dtype: DType) -> String? {
        let wgs = MDIMC * NDIMC
        if ![1, 2, 4, 8].contains(VW) || ![1, 2, 4, 8].contains(VWM) || ![1, 2, 4, 8].contains(VWN) {
            return "VW, VWM and VWN must be 1, 2, 4 or 8"
        }
        if MWG % (MDIMC * VWM) != 0 || NWG % (NDIMC * VWN) != 0 { return "MWG must be a multiple of MDIMC·VWM and NWG of NDIMC·VWN" }
        if (MWG * KWG) % (wgs * VW) != 0 || (NWG * KWG) % (wgs * VW) != 0 {
            return "each K step's tiles must split evenly into VW-vectors over the \(wgs) work-items"
        }
        if KWG % VW != 0 || MWG % VW != 0 || NWG % VW != 0 { return "KWG, MWG and NWG must be multiples of VW" }
        if PAD < 0 || PAD % VWM != 0 || PAD % VWN != 0 { return "PAD must be ≥ 0 and a multiple of VWM and VWN" }
        if let maxWG = info.maxWorkGroupSize, wgs > maxWG { return "MDIMC·NDIMC = \(wgs) exceeds the work-group limit \(maxWG)" }
        let local = 2 * KWG * (MWG + PAD + NWG + PAD) * dtype.size
        if let lm = info.localMemoryBytes, local > lm { return "needs \(local) bytes of local memory, the device has \(lm)" }
        return nil
    }

    /// A smaller tile of the same kernel for products whose grid of `self` would leave
    /// compute units idle (fewer work-groups than units): the GPU rule for short
    /// products (a sweep's few rows against a wide weight), applied to every graph.
    /// nil when no smaller standard tile exists.
    public func shrunk() -> GEMMParameters? {
        guard MDIMC * NDIMC > 1, MWG * NWG > 64 * 64 else { return nil }
        return kernel == 1
            ? .doubleBuffered(MWG: 64, NWG: 64, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, VWM: 4, VWN: 4, PAD: 4)
            : GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1)
    }

    /// The starting point before tuning (docs/kernel-contract.md): 8×8 work-items with
    /// 8×8 register tiles staged through local memory on GPUs; on CPU devices one
    /// work-item per group computing an 8×16 block read straight from memory, a
    /// BLIS-like micro-kernel that the compiler turns into SIMD FMAs.
    public static func defaults(for kind: DeviceKind) -> GEMMParameters {
        kind == .cpu ? GEMMParameters(MWG: 8, NWG: 16, KWG: 32, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 0, LOCAL_B: 0)
                     : GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1)
    }

    /// The sets worth timing on a device of this kind: on GPUs the work-group shapes alone.
    /// A group of one work-item leaves a GPU's SIMD lanes idle (on an H200 these ran at
    /// 260–1,100 GFLOP/s against 20–32 TFLOP/s), and each candidate is an OpenCL build,
    /// which on NVIDIA's compiler made tuning take over three minutes.
    public static func candidates(for kind: DeviceKind) -> [GEMMParameters] {
        kind == .gpu || kind == .accelerator ? candidates.filter { $0.MDIMC * $0.NDIMC > 1 } : candidates
    }

    /// Every set `attrib tune gemm` may time (docs/kernel-contract.md): GPU shapes first, then CPU shapes.
    public static let candidates: [GEMMParameters] = [
        // GPU shapes, the likeliest first: a tuning budget that cuts the list keeps these.
        .doubleBuffered(MWG: 128, NWG: 128, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, VWM: 4, VWN: 4, PAD: 4),
        GEMMParameters(MWG: 128, NWG: 128, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        .doubleBuffered(MWG: 128, NWG: 128, KWG: 8, MDIMC: 16, NDIMC: 16, VW: 4, VWM: 4, VWN: 4, PAD: 4),
        GEMMParameters(MWG: 128, NWG: 128, KWG: 8, MDIMC: 16, NDIMC: 16, VW: 2, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        .doubleBuffered(MWG: 128, NWG: 128, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, VWM: 4, VWN: 4, PAD: 0),
        .doubleBuffered(MWG: 128, NWG: 64, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, VWM: 4, VWN: 4, PAD: 4),
        .doubleBuffered(MWG: 64, NWG: 128, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, VWM: 4, VWN: 4, PAD: 4),
        .doubleBuffered(MWG: 64, NWG: 64, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, VWM: 4, VWN: 4, PAD: 4),
        .doubleBuffered(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, VWM: 4, VWN: 4, PAD: 4),
        GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 64, NWG: 64, KWG: 32, MDIMC: 16, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 128, NWG: 64, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 64, NWG: 128, KWG: 16, MDIMC: 8, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 1, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 32, NWG: 32, KWG: 32, MDIMC: 8, NDIMC: 8, VW: 2, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 32, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1, LOCAL_A: 0, LOCAL_B: 0),
        // CPU shapes: one work-item per group.
        GEMMParameters(MWG: 8, NWG: 16, KWG: 32, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 8, NWG: 16, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 8, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 6, NWG: 16, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 2, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 4, NWG: 32, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 8, NWG: 16, KWG: 32, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 1, LOCAL_B: 0),
        GEMMParameters(MWG: 8, NWG: 16, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 8, PAD: 0, LOCAL_A: 1, LOCAL_B: 1),
    ]
}
