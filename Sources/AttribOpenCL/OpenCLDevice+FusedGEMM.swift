import AttribCore
import FoundationEssentials

/// A product's fused epilogue as the GEMM kernels take it (Kernels/gemm_epilogue.cl): the
/// -D values that select it and the six arguments after the plain ones.
struct FusedEpilogue {
    let defines: [(String, Int)]
    let arguments: [KernelArgument]
}

extension OpenCLDevice {
    /// ATTRIB_FUSED_EPILOGUE=0 turns fused epilogues off for the process (a timing of the
    /// unfused ops on the same build); anything else, or unset, leaves them on.
    static let fusedEpiloguesByDefault: Bool = ProcessInfo.processInfo.environment["ATTRIB_FUSED_EPILOGUE"] != "0"

    /// Turns fused epilogues on or off for this handle: tests of both paths, and timings.
    public func setFusedEpilogues(_ on: Bool) { state.withLock { $0.fusedEpilogues = on } }

    /// Float32 and Float64 alike, unless turned off.
    public func fusesGEMMEpilogues(dtype: DType) -> Bool {
        dtype.isFloatingPoint && supports(dtype) && state.withLock { $0.fusedEpilogues }
    }

    /// Every combination runs in gemm.cl, gemm_db.cl and gemm_mma.cl, whichever the
    /// product takes (tuned tiles, --precision on tensor cores), except split-K: its chunks'
    /// partial sums cannot take the epilogue, and products short enough for split-K are
    /// where the rest of a layer costs least. One launch in place of up to four.
    public func gemmFused(_ g: GEMMArguments, _ e: GEMMEpilogue) throws -> Bool {
        guard !e.isEmpty, fusesGEMMEpilogues(dtype: g.c.buffer.dtype) else { return false }
        try g.validate()
        try g.validate(e)
        var views: [(BufferView, Int)] = [(g.c, 1), (g.a, 1), (g.b, 1)]
        if let v = e.bias { views.append((v, g.n)) }
        if let v = e.derivative { views.append((v, g.extentC)) }
        if let v = e.multiplierA { views.append((v, g.extentA)) }
        let (dtype, bufs) = try checkedOperands("gemm (fused epilogue)", views)
        var next = 3
        func operand(_ v: BufferView?) -> [KernelArgument] {
            guard let v else { return [.buffer(bufs[0]), .int(0)] }   // unused: any buffer
            defer { next += 1 }
            return [.buffer(bufs[next]), .int(v.offset)]
        }
        let arguments = operand(e.bias) + operand(e.derivative) + operand(e.multiplierA)
        let fused = FusedEpilogue(
            defines: [("FUSED", 1), ("EPI_BIAS", e.bias == nil ? 0 : 1), ("EPI_ACT", e.activation.map { Int($0.rawValue) } ?? -1),
                      ("EPI_D", e.derivative == nil ? 0 : 1), ("MASK_A", e.multiplierA == nil ? 0 : 1)],
            arguments: arguments)
        let precision = dtype == .float32 ? matmulPrecision : .fp32
        // The multiplier of A rides along where A is staged through local memory anyway (GPU
        // tiles, rounding, tensor cores); tiles that read A straight from global memory (CPU
        // devices' defaults) would lose more than the separate multiply costs: declined there.
        // (--precision tf32/bf16 stages every operand.)
        if e.multiplierA != nil, precision == .fp32 {
            let p = gemmParameters(GEMMVariant(dtype: dtype, transA: g.transA, transB: g.transB))
            if p.kernel == 0, p.LOCAL_A == 0 { return false }
        }
        try gemmOnePass(g, dtype: dtype, precision: precision, c: bufs[0], a: bufs[1], b: bufs[2], fused: fused)
        return true
    }
}
