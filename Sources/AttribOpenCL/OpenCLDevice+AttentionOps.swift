import AttribCore
import AttribKernels

/// The attention layout ops on OpenCL (Kernels/attention.cl; arguments as in
/// docs/kernel-contract.md).
extension OpenCLDevice {
    public func transpose12(a: Int, b: Int, c: Int, d: Int, x: BufferView, y: BufferView) throws {
        let op = "transpose12"
        try AttribError.requirePositive(op, ["a": a, "b": b, "c": c, "d": d])
        let (n, overflow) = (a * b * c).multipliedReportingOverflow(by: d)
        guard !overflow, n <= Int(Int32.max) else { throw AttribError.tooLarge(op: op, detail: "[\(a), \(b), \(c), \(d)] exceeds 32-bit indexing") }
        let (t, bf) = try checkedOperands(op, [(x, n), (y, n)])
        guard t.isFloatingPoint else { throw AttribError.unsupportedDType(op: op, dtype: t, device: info.summary) }
        try launch1D(.attention, "transpose12", dtype: t,
                     [.int(a), .int(b), .int(c), .int(d), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], n: n)
    }

    public func copyBox(n0: Int, n1: Int, n2: Int, x: BufferView, xStride0: Int, xStride1: Int,
                        y: BufferView, yStride0: Int, yStride1: Int) throws {
        let op = "copyBox"
        try AttribError.requirePositive(op, ["n0": n0, "n1": n1, "n2": n2])
        for (name, s) in [("xStride0", xStride0), ("xStride1", xStride1), ("yStride0", yStride0), ("yStride1", yStride1)] where s < 0 {
            throw AttribError.invalidArgument(op: op, detail: "\(name) = \(s) is negative")
        }
        let n = n0 * n1 * n2
        let (t, bf) = try checkedOperands(op, [(x, (n0 - 1) * xStride0 + (n1 - 1) * xStride1 + n2),
                                                 (y, (n0 - 1) * yStride0 + (n1 - 1) * yStride1 + n2)])
        // Int32 boxes are copied with the float kernel: same width, bits unchanged.
        try launch1D(.attention, "copy_box", dtype: t == .int32 ? .float32 : t,
                     [.int(n0), .int(n1), .int(n2), .buffer(bf[0]), .int(x.offset), .int(xStride0), .int(xStride1),
                      .buffer(bf[1]), .int(y.offset), .int(yStride0), .int(yStride1)], n: n)
    }

    public func rotary(rows: Int, tokens: Int, heads: Int, headDim: Int, rotary rot: Int, inverse: Bool,
                       x: BufferView, cos: BufferView, sin: BufferView, y: BufferView) throws {
        let op = "rotary"
        try AttribError.requirePositive(op, ["rows": rows, "tokens": tokens, "heads": heads, "headDim": headDim, "rotary": rot])
        guard rot % 2 == 0, rot <= headDim else {
            throw AttribError.invalidArgument(op: op, detail: "rotary = \(rot) dimensions of a head of \(headDim): must be even and at most the head")
        }
        let (n, overflow) = rows.multipliedReportingOverflow(by: headDim)
        guard !overflow, n <= Int(Int32.max) else { throw AttribError.tooLarge(op: op, detail: "[\(rows), \(headDim)] exceeds 32-bit indexing") }
        let (t, bf) = try checkedOperands(op, [(x, n), (cos, tokens * rot / 2), (sin, tokens * rot / 2), (y, n)])
        guard t.isFloatingPoint else { throw AttribError.unsupportedDType(op: op, dtype: t, device: info.summary) }
        try launch1D(.attention, "rotary", dtype: t,
                     [.int(rows), .int(tokens), .int(heads), .int(headDim), .int(rot), .real(inverse ? -1 : 1),
                      .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(cos.offset), .buffer(bf[2]), .int(sin.offset),
                      .buffer(bf[3]), .int(y.offset)], n: n)
    }
}
