import CVecMath

/// Conversions between the 16- and 8-bit float formats (of model files, and of weights stored
/// at 16 bits: DType.bfloat16/.float16) and Float/Double, bit patterns as UInt16. Widening is
/// exact; narrowing rounds to nearest, ties to even (what PyTorch's `.to(torch.bfloat16)` and
/// `.half()` do), straight from a Double (never Double → Float → half, which would round
/// twice); NaN stays NaN (quiet), and Float16 overflows to ±∞ from 65520 on. Every conversion
/// runs in C (CVecMath/half.c), the array forms with F16C where the CPU has it.
public enum HalfFloat {
    /// IEEE binary16 bits → Float (exact).
    @inline(__always) public static func f16ToFloat(_ bits: UInt16) -> Float { attrib_half_to_float(bits) }

    /// bfloat16 bits → Float (exact: bf16 is the top half of a Float32).
    @inline(__always) public static func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Float8 E5M2 bits → Float (exact: E5M2 is the top byte of a binary16).
    @inline(__always) public static func f8e5m2ToFloat(_ bits: UInt8) -> Float { f16ToFloat(UInt16(bits) << 8) }

    /// Float8 E4M3 ("fn": bias 7, no infinities, S.1111.111 is NaN) bits → Float (exact).
    public static func f8e4m3ToFloat(_ bits: UInt8) -> Float {
        let sign: Float = bits & 0x80 != 0 ? -1 : 1
        let e = Int((bits >> 3) & 0xF), m = Float(bits & 0x7)
        if e == 0xF && bits & 0x7 == 0x7 { return .nan }
        if e == 0 { return sign * m * 0x1p-9 }          // subnormal: m/8 · 2^-6
        return sign * (1 + m / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
    }

    /// `x` rounded to Float with round-to-odd: truncated toward zero, with the
    /// last bit set when inexact. Rounding that to ≤ 22 significant bits with
    /// ties-to-even gives the correctly rounded result of `x` itself.
    public static func roundToOddFloat(_ x: Double) -> Float {
        guard x.isFinite else { return Float(x) }
        var f = Float(x)
        if Double(f).magnitude > x.magnitude { f = Float(bitPattern: f.bitPattern - 1) }  // toward zero
        if Double(f) != x { f = Float(bitPattern: f.bitPattern | 1) }
        return f
    }

    /// Double → binary16 bits, round to nearest even (overflow gives ±inf).
    public static func f16Bits(_ x: Double) -> UInt16 { attrib_float_to_half(roundToOddFloat(x)) }

    /// Float → bfloat16 bits, round to nearest even (overflow gives ±inf; NaN stays a quiet NaN).
    public static func bf16Bits(_ f: Float) -> UInt16 { attrib_float_to_bfloat16(f) }

    /// Double → bfloat16 bits, round to nearest even.
    public static func bf16Bits(_ x: Double) -> UInt16 { bf16Bits(roundToOddFloat(x)) }

    /// x rounded to `dtype` (.bfloat16 or .float16), as bit patterns (C; the same bits as
    /// bf16Bits and f16Bits one by one).
    public static func bits(_ x: [Float], _ dtype: DType) -> [UInt16] {
        precondition(dtype.isStorageOnly, "HalfFloat.bits: \(dtype) is not a 16-bit storage type")
        return [UInt16](unsafeUninitializedCapacity: x.count) { out, n in
            x.withUnsafeBufferPointer { attrib_narrow_half(dtype == .bfloat16 ? 1 : 0, $0.count, $0.baseAddress, out.baseAddress) }
            n = x.count
        }
    }

    /// Bit patterns of `dtype` widened to Float32 (exact).
    public static func floats(_ bits: [UInt16], _ dtype: DType) -> [Float] {
        precondition(dtype.isStorageOnly, "HalfFloat.floats: \(dtype) is not a 16-bit storage type")
        return [Float](unsafeUninitializedCapacity: bits.count) { out, n in
            bits.withUnsafeBufferPointer { attrib_widen_half(dtype == .bfloat16 ? 1 : 0, $0.count, $0.baseAddress, out.baseAddress) }
            n = bits.count
        }
    }

    /// Double values rounded once to `dtype`: round-to-odd to Float first keeps the result
    /// that of rounding the Double itself.
    public static func bits(_ x: [Double], _ dtype: DType) -> [UInt16] { bits(x.map(roundToOddFloat), dtype) }
}
