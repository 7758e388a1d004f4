import AttribCore
import AttribKernels

/// The mask ops on OpenCL (Kernels/sobol.cl; arguments as in docs/kernel-contract.md).
extension OpenCLDevice {
    /// The buffers of the views after checking each holds its extent inside 32-bit
    /// indexing, with the float dtype they share.
    private func maskOperands(_ op: String, _ views: [(BufferView, Int)]) throws -> (DType, [CLBuffer]) {
        var buffers: [CLBuffer] = []
        for (i, (v, extent)) in views.enumerated() {
            let b = try clBuffer(v, op)
            try v.require(extent, op, "operand \(i)")
            guard v.offset + extent <= Int(Int32.max) else {
                throw AttribError.tooLarge(op: op, detail: "operand \(i) spans elements up to \(v.offset + extent), beyond the 32-bit indexing of the OpenCL kernels; split the batch")
            }
            if let first = buffers.first, first.dtype != b.dtype {
                throw AttribError.invalidArgument(op: op, detail: "operands mix \(first.dtype) and \(b.dtype)")
            }
            buffers.append(b)
        }
        guard buffers[0].dtype.isFloatingPoint else {
            throw AttribError.unsupportedDType(op: op, dtype: buffers[0].dtype, device: info.summary)
        }
        return (buffers[0].dtype, buffers)
    }

    public func maskUpsample(_ mode: MaskUpsampling, m: Int, mc: Int, gh: Int, gw: Int, h: Int, w: Int,
                             masks: BufferView, y: BufferView) throws {
        let op = "maskUpsample"
        let g = try MaskGeometry(op: op, m: m, mc: mc, c: mc, gh: gh, gw: gw, h: h, w: w)
        let (t, bf) = try maskOperands(op, [(y, g.outputCount), (masks, g.maskCount)])
        try launch1D(.sobol, "mask_upsample", dtype: t,
                     [.int(m), .int(mc), .int(gh), .int(gw), .int(h), .int(w), .int(Int(mode.rawValue)),
                      .buffer(bf[1]), .int(masks.offset), .buffer(bf[0]), .int(y.offset)], n: g.outputCount)
    }

    public func maskPerturb(_ kind: MaskPerturbation, _ mode: MaskUpsampling, m: Int, mc: Int, c: Int, gh: Int, gw: Int,
                            h: Int, w: Int, masks: BufferView, x: BufferView, base: BufferView, baseStep: Int,
                            sigma: Double, y: BufferView) throws {
        let op = "maskPerturb"
        let g = try MaskGeometry(op: op, m: m, mc: mc, c: c, gh: gh, gw: gw, h: h, w: w)
        guard baseStep == 0 || baseStep == 1 else {
            throw AttribError.invalidArgument(op: op, detail: "baseStep is \(baseStep); 1 (a baseline per element) or 0 (one value)")
        }
        let baseExtent = kind == .inpainting ? (baseStep == 1 ? g.imageCount : 1) : 0
        let (t, bf) = try maskOperands(op, [(y, g.outputCount), (masks, g.maskCount), (x, g.imageCount), (base, baseExtent)])
        try launch1D(.sobol, "mask_perturb", dtype: t,
                     [.int(m), .int(mc), .int(c), .int(gh), .int(gw), .int(h), .int(w), .int(Int(mode.rawValue)), .int(Int(kind.rawValue)),
                      .buffer(bf[1]), .int(masks.offset), .buffer(bf[2]), .int(x.offset),
                      .buffer(bf[3]), .int(base.offset), .int(baseStep), .real(sigma),
                      .buffer(bf[0]), .int(y.offset)], n: g.outputCount)
    }
}
