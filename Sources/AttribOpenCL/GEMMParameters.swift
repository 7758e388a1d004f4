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

    public init(MWG: Int, NWG: Int, KWG: Int, MDIMC: Int, NDIMC: Int, VW: Int, PAD: Int) {
        self.MWG = MWG; self.NWG = NWG; self.KWG = KWG; self.MDIMC = MDIMC; self.NDIMC = NDIMC; self.VW = VW; self.PAD = PAD
    }

    var defines: [(String, Int)] {
        [("MWG", MWG), ("NWG", NWG), ("KWG", KWG), ("MDIMC", MDIMC), ("NDIMC", NDIMC), ("VW", VW), ("PAD", PAD)]
    }

    public var description: String { "MWG=\(MWG) NWG=\(NWG) KWG=\(KWG) MDIMC=\(MDIMC) NDIMC=\(NDIMC) VW=\(VW) PAD=\(PAD)" }

    /// Why these parameters cannot run on the device, or nil when they can.
    public func problem(on info: DeviceInfo, dtype: DType) -> String? {
        if MWG % MDIMC != 0 || NWG % NDIMC != 0 { return "MWG must be a multiple of MDIMC and NWG of NDIMC" }
        if ![1, 2, 4, 8, 16].contains(VW) || MWG % VW != 0 || NWG % VW != 0 || KWG % VW != 0 {
            return "VW must be 1, 2, 4, 8 or 16 and divide MWG, NWG and KWG"
        }
        if PAD < 0 { return "PAD must be ≥ 0" }
        if let maxWG = info.maxWorkGroupSize, MDIMC * NDIMC > maxWG {
            return "MDIMC·NDIMC = \(MDIMC * NDIMC) exceeds the work-group limit \(maxWG)"
        }
        let local = KWG * (MWG + PAD + NWG + PAD) * dtype.size
        if let lm = info.localMemoryBytes, local > lm { return "needs \(local) bytes of local memory, the device has \(lm)" }
        return nil
    }

    /// The starting point before tuning: larger register tiles on GPUs, and
    /// work-groups shaped for PoCL's loop vectorizer on CPU devices.
    public static func defaults(for kind: DeviceKind) -> GEMMParameters {
        kind == .gpu ? GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1)
                     : GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1)
    }

    /// The sets `attrib tune gemm` times (from docs/kernel-contract.md).
    public static let candidates: [GEMMParameters] = [
        GEMMParameters(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, PAD: 1),
    ]
}
