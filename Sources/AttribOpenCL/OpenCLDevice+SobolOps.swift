import AttribCore
import AttribKernels

/// The mask ops on OpenCL (Kernels/sobol.cl; arguments as in docs/kernel-contract.md).
extension OpenCLDevice {
    public func maskUpsample(_ mode: MaskUpsampling, m: Int, mc: Int, gh: Int, gw: Int, h: Int, w: Int,
                             masks: BufferView, y: BufferView) throws {
        let op = "maskUpsample"
        let g = try MaskGeometry(op: op, m: m, mc: mc, c: mc, gh: gh, gw: gw, h: h, w: w)
        let (t, bf) = try checkedOperands(op, [(y, g.outputCount), (masks, g.maskCount)])
        try launch1D(.sobol, "mask_upsample", dtype: t,
                     [.int(m), .int(mc), .int(gh), .int(gw), .int(h), .int(w), .int(Int(mode.rawValue)),
                      .buffer(bf[1]), .int(masks.offset), .buffer(bf[0]), .int(y.offset)], n: g.outputCount)
    }

    public func maskPerturb(_ kind: MaskPerturbation, _ mode: MaskUpsampling, m: Int, mc: Int, c: Int, gh: Int, gw: Int,
                            h: Int, w: Int, masks: BufferView, x: BufferView, base: BufferView, baseStep: Int,
                            sigma: Double, y: BufferView) throws {
        let op = "maskPerturb"
        let g = try MaskGeometry(op: op, m: m, mc: mc, c: c, gh: gh, gw: gw, h: h, w: w)
        let baseExtent = try g.baseExtent(kind, baseStep: baseStep, op: op)
        let (t, bf) = try checkedOperands(op, [(y, g.outputCount), (masks, g.maskCount), (x, g.imageCount), (base, baseExtent)])
        try launch1D(.sobol, "mask_perturb", dtype: t,
                     [.int(m), .int(mc), .int(c), .int(gh), .int(gw), .int(h), .int(w), .int(Int(mode.rawValue)), .int(Int(kind.rawValue)),
                      .buffer(bf[1]), .int(masks.offset), .buffer(bf[2]), .int(x.offset),
                      .buffer(bf[3]), .int(base.offset), .int(baseStep), .real(sigma),
                      .buffer(bf[0]), .int(y.offset)], n: g.outputCount)
    }
}
