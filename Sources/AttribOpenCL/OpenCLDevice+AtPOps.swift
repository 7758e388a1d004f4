import AttribCore
import AttribKernels

/// AtP*'s QK fix for keys on OpenCL (Kernels/atp.cl; arguments as in docs/kernel-contract.md):
/// atp_row_stats into a scratch buffer of 7 reals per row, then atp_key_effects.
extension OpenCLDevice {
    public func atpKeyEffects(n: Int, t: Int, scores: BufferView, delta: BufferView, grad: BufferView, y: BufferView) throws {
        let op = "atpKeyEffects"
        try AttribError.requirePositive(op, ["n": n, "t": t])
        let (sq, o1) = (n * t).multipliedReportingOverflow(by: t)
        guard !o1, sq <= Int(Int32.max), n * t * 7 <= Int(Int32.max) else {
            throw AttribError.tooLarge(op: op, detail: "[\(n), \(t), \(t)] exceeds the 32-bit indexing of the OpenCL kernels; split the heads")
        }
        let (dtype, bufs) = try checkedOperands(op, [(scores, sq), (delta, sq), (grad, sq), (y, n * t)])
        guard supports(dtype) else { throw AttribError.unsupportedDType(op: op, dtype: dtype, device: info.summary) }
        let scratch = BufferView(try allocate(count: n * t * 7, dtype: dtype))
        let st = try clBuffer(scratch, op)
        try launch1D(.atp, "atp_row_stats", dtype: dtype,
                     [.int(n), .int(t), .buffer(bufs[0]), .int(scores.offset), .buffer(bufs[2]), .int(grad.offset),
                      .buffer(st), .int(0)], n: n * t)
        try launch1D(.atp, "atp_key_effects", dtype: dtype,
                     [.int(n), .int(t), .buffer(bufs[0]), .int(scores.offset), .buffer(bufs[1]), .int(delta.offset),
                      .buffer(bufs[2]), .int(grad.offset), .buffer(st), .int(0), .buffer(bufs[3]), .int(y.offset)], n: n * t)
    }
}
