import AttribCore

/// Tile parameters of Kernels/gemm.cl, passed as -D macros (names as in the
/// kernel's header). Constraints are checked by `check(on:dtype:)`.
public struct GEMMParameters: Codable, Hashable, Sendable, CustomStringConvertible {
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
    }

    var defines: [(String, Int)] {
        [("MWG", MWG), ("NWG", NWG), ("KWG", KWG), ("MDIMC", MDIMC), ("NDIMC", NDIMC), ("VW", VW), ("PAD", PAD),
         ("LOCAL_A", LOCAL_A), ("LOCAL_B", LOCAL_B)]
    }

    public var description: String {
        "MWG=\(MWG) NWG=\(NWG) KWG=\(KWG) MDIMC=\(MDIMC) NDIMC=\(NDIMC) VW=\(VW) PAD=\(PAD) LOCAL_A=\(LOCAL_A) LOCAL_B=\(LOCAL_B)"
    }

    /// Why these parameters cannot run on the device, or nil when they can.
    public func problem(on info: DeviceInfo, dtype: DType) -> String? {
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
        GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 128, NWG: 128, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 64, NWG: 64, KWG: 32, MDIMC: 16, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 128, NWG: 64, KWG: 16, MDIMC: 16, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 64, NWG: 128, KWG: 16, MDIMC: 8, NDIMC: 16, VW: 4, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 128, NWG: 128, KWG: 8, MDIMC: 16, NDIMC: 16, VW: 2, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 1, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 32, NWG: 32, KWG: 32, MDIMC: 8, NDIMC: 8, VW: 2, PAD: 1, LOCAL_A: 1, LOCAL_B: 1),
        GEMMParameters(MWG: 32, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 8, NWG: 16, KWG: 32, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 8, NWG: 16, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 8, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 6, NWG: 16, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 2, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 4, NWG: 32, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 0, LOCAL_B: 0),
        GEMMParameters(MWG: 8, NWG: 16, KWG: 32, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 1, LOCAL_B: 0),
        GEMMParameters(MWG: 8, NWG: 16, KWG: 64, MDIMC: 1, NDIMC: 1, VW: 8, PAD: 0, LOCAL_A: 1, LOCAL_B: 1),
    ]
}
