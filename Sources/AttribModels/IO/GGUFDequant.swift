import AttribCore
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Dequantisation of ggml blocks to Float, written from the block layouts of ggml's
/// ggml-common.h (as gguf-py's quants.py also reads them). Each kernel multiplies in the same
/// order as ggml's and gguf-py's reference code (scale × scale, then × quant, then ± min), with
/// no fused multiply-add, so results match theirs bit for bit.
///
/// Every kernel reads whole blocks through unaligned loads (a file's alignment may be 1) and
/// writes blockSize floats per block; the caller has checked the bytes lie inside the file.
enum GGUFDequant {
    /// Below this many blocks one thread does it all: a dispatch costs more than the work.
    static let blocksPerThread = 4096

    static let threads: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// Dequantises `blocks` blocks of `type` from `src` to `dst`, split across the cores when large.
    static func run(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
        let (blockSize, typeSize) = type.layout!
        let chunks = min(threads * 4, blocks / blocksPerThread)
        if chunks <= 1 { serial(type, src, dst, blocks: blocks); return }
        let per = (blocks + chunks - 1) / chunks
        let job = Job(src: src, dst: dst)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let lo = c * per, hi = min(blocks, lo + per)
            if lo < hi { serial(type, job.src + lo * typeSize, job.dst + lo * blockSize, blocks: hi - lo) }
        }
    }

    /// The pointers handed to the workers; each writes a disjoint range of `dst`.
    private struct Job: @unchecked Sendable {
        let src: UnsafeRawPointer
        let dst: UnsafeMutablePointer<Float>
    }

    static func serial(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, blocks: Int) {
        switch type {
        case .F32: f32(src, dst, blocks)
        case .F16: for i in 0..<blocks { dst[i] = half(src, 2 * i) }
        case .BF16: for i in 0..<blocks { dst[i] = HalfFloat.bf16ToFloat(le16(src, 2 * i)) }
        case .Q8_0: q8_0(src, dst, blocks)
        case .Q4_0: q4_0(src, dst, blocks)
        case .Q4_1: q4_1(src, dst, blocks)
        case .Q4_K: q4_K(src, dst, blocks)
        case .Q6_K: q6_K(src, dst, blocks)
        default: preconditionFailure("GGUFDequant: \(type) is not dequantisable (the caller checks isDequantisable)")
        }
    }

    @inline(__always) static func le16(_ p: UnsafeRawPointer, _ at: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self))
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float { HalfFloat.f16ToFloat(le16(p, at)) }

    static func f32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        #if _endian(little)
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * n)
        #else
        for i in 0..<n { dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) }
        #endif
    }

    /// Q8_0, 34 bytes per 32 values: f16 scale d, 32 int8 quants q; x = q·d.
    static func q8_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 34 * b, y = dst + 32 * b
            let d = half(p, 0)
            for j in 0..<32 { y[j] = Float(p.load(fromByteOffset: 2 + j, as: Int8.self)) * d }
        }
    }

    /// Q4_0, 18 bytes per 32 values: f16 scale d, 16 bytes of nibbles; value j < 16 is byte j's
    /// low nibble, value j + 16 its high one; x = (nibble − 8)·d.
    static func q4_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 18 * b, y = dst + 32 * b
            let d = half(p, 0)
            for j in 0..<16 {
                let q = p.load(fromByteOffset: 2 + j, as: UInt8.self)
                y[j] = Float(Int32(q & 0xF) - 8) * d
                y[j + 16] = Float(Int32(q >> 4) - 8) * d
            }
        }
    }

    /// Q4_1, 20 bytes per 32 values: f16 scale d, f16 minimum m, 16 bytes of nibbles (as Q4_0);
    /// x = nibble·d + m.
    static func q4_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 20 * b, y = dst + 32 * b
            let d = half(p, 0), m = half(p, 2)
            for j in 0..<16 {
                let q = p.load(fromByteOffset: 4 + j, as: UInt8.self)
                y[j] = Float(q & 0xF) * d + m
                y[j + 16] = Float(q >> 4) * d + m
            }
        }
    }

    /// Q4_K, 144 bytes per 256 values: f16 d, f16 dmin, 12 bytes packing eight 6-bit scales and
    /// eight 6-bit mins, 128 bytes of nibbles. Sub-block s (32 values) has scale sc[s] and min
    /// m[s]; sub-blocks 2c and 2c + 1 are the low and high nibbles of bytes 32c..<32c + 32;
    /// x = (d·sc)·nibble − dmin·m.
    static func q4_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 144 * b, y = dst + 256 * b
            let d = half(p, 0), dmin = half(p, 2)
            let s = p + 4, qs = p + 16
            for c in 0..<4 {
                let (sc0, m0) = scaleMin(s, 2 * c), (sc1, m1) = scaleMin(s, 2 * c + 1)
                let d0 = d * Float(sc0), dm0 = dmin * Float(m0)
                let d1 = d * Float(sc1), dm1 = dmin * Float(m1)
                let q = qs + 32 * c, yc = y + 64 * c
                for l in 0..<32 {
                    let v = q.load(fromByteOffset: l, as: UInt8.self)
                    yc[l] = d0 * Float(v & 0xF) - dm0
                    yc[l + 32] = d1 * Float(v >> 4) - dm1
                }
            }
        }
    }

    /// Scale and min of Q4_K sub-block j from the 12 packed bytes: for j < 4 the low six bits of
    /// bytes j and j + 4; for j ≥ 4 a nibble of byte j + 4 (low: scale, high: min) with the top
    /// two bits of bytes j − 4 (scale) and j (min) above it.
    @inline(__always) static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
        func byte(_ i: Int) -> UInt8 { s.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (byte(j) & 63, byte(j + 4) & 63) }
        return ((byte(j + 4) & 0xF) | ((byte(j - 4) >> 6) << 4), (byte(j + 4) >> 4) | ((byte(j) >> 6) << 4))
    }

    /// Q6_K, 210 bytes per 256 values: 128 bytes ql (low four bits), 64 bytes qh (high two bits),
    /// 16 int8 scales (one per 16 values), f16 d. In each half h (128 values) value 32k + l
    /// (k < 4, l < 32) takes the low (k < 2) or high (k ≥ 2) nibble of ql[64h + l + 32·(k mod 2)]
    /// and bits 2k, 2k + 1 of qh[32h + l]; x = (d·scale)·(q − 32).
    static func q6_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 210 * b, y = dst + 256 * b
            let d = half(p, 208)
            for h in 0..<2 {
                let ql = p + 64 * h, qh = p + 128 + 32 * h, sc = p + 192 + 8 * h, yh = y + 128 * h
                // Values 32k + l with l < 16 use scale 2k, the rest scale 2k + 1.
                for g in 0..<2 {
                    func scale(_ k: Int) -> Float { d * Float(sc.load(fromByteOffset: 2 * k + g, as: Int8.self)) }
                    let s0 = scale(0), s1 = scale(1), s2 = scale(2), s3 = scale(3)
                    for l in (16 * g)..<(16 * g + 16) {
                        let lo = ql.load(fromByteOffset: l, as: UInt8.self), hi = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                        let top = qh.load(fromByteOffset: l, as: UInt8.self)
                        yh[l] = s0 * Float(Int32((lo & 0xF) | ((top & 3) << 4)) - 32)
                        yh[l + 32] = s1 * Float(Int32((hi & 0xF) | (((top >> 2) & 3) << 4)) - 32)
                        yh[l + 64] = s2 * Float(Int32((lo >> 4) | (((top >> 4) & 3) << 4)) - 32)
                        yh[l + 96] = s3 * Float(Int32((hi >> 4) | (((top >> 6) & 3) << 4)) - 32)
                    }
                }
            }
        }
    }
}
