/// The arithmetic of Float32 matrix products on a device (`--precision`), as
/// PyTorch's `torch.backends.cuda.matmul.allow_tf32` and autocast choose it:
/// the operands of every product are rounded to a narrower significand, the
/// products and sums stay Float32. Elementwise ops, reductions and Float64
/// never change.
///
/// - fp32: IEEE single precision (the default).
/// - tf32: operands with 10 explicit significand bits, rounded to nearest with
///   ties away from zero (PTX cvt.rna.tf32.f32); Float32's exponent range.
/// - bf16: operands with 7 explicit significand bits, rounded to nearest even.
///
/// On NVIDIA GPUs of compute capability 8.0 and later these run on the tensor
/// cores (Kernels/gemm_mma.cl); every other OpenCL device rounds the operands in
/// its ordinary GEMM kernel, which gives the same products up to the order of
/// the sums. The CPU backend computes in FP32 only.
public enum MatmulPrecision: String, Sendable, CaseIterable, Codable {
    case fp32, tf32, bf16

    /// Significand bits of a rounded operand, the implicit bit included.
    public var significandBits: Int {
        switch self { case .fp32: 24; case .tf32: 11; case .bf16: 8 }
    }

    /// The unit round-off of one operand's rounding: 2^−significandBits.
    public var unitRoundoff: Double { Double(sign: .plus, exponent: -significandBits, significand: 1) }

    /// The ROUND value of Kernels/gemm.cl and gemm_db.cl.
    public var roundCode: Int {
        switch self { case .fp32: 0; case .tf32: 1; case .bf16: 2 }
    }

    /// x as the products see it: the kernels' rounding, bit for bit (Inf and NaN pass).
    public func round(_ x: Float) -> Float {
        var u = x.bitPattern
        if u & 0x7f80_0000 == 0x7f80_0000 { return x }
        switch self {
        case .fp32: return x
        case .tf32: u = (u &+ 0x1000) & 0xffff_e000
        case .bf16: u = (u &+ 0x7fff &+ ((u >> 16) & 1)) & 0xffff_0000
        }
        return Float(bitPattern: u)
    }
}
