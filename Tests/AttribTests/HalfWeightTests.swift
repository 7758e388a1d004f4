import Attrib
import Foundation
import Testing

/// Weights stored as BFloat16 or Float16 (`--dtype bf16|f16`), computed in Float32: the
/// conversions, the device ops that read 16-bit buffers, Linear's block-widened products,
/// and whole decoders against transformers with the same rounded weights.
@Suite struct HalfWeightTests {
    /// The BFloat16 nearest x, ties to even, found by comparing the two truncations around it
    /// in Double: an independent reference for the C rounding.
    static func nearestBFloat16(_ x: Float) -> UInt16 {
        if x.isInfinite { return UInt16(x.bitPattern >> 16) }
        let lo = x.bitPattern & 0xFFFF_0000, hi = lo &+ 0x1_0000
        // Past the largest finite BFloat16 the next value up is ∞, which IEEE rounding treats
        // as 2¹²⁸ (one more ulp) when deciding.
        let up = Float(bitPattern: hi)
        let (a, b) = (Double(Float(bitPattern: lo)), up.isInfinite ? (up > 0 ? 0x1p128 : -0x1p128) : Double(up))
        let (da, db) = (abs(Double(x) - a), abs(Double(x) - b))
        if da < db || (da == db && (lo >> 16) & 1 == 0) { return UInt16(lo >> 16) }
        return UInt16(truncatingIfNeeded: hi >> 16)
    }

    /// Float values that exercise every branch: random bit patterns (all exponents, NaNs,
    /// subnormals), exact ties at both formats' last bits, and Float16's limits.
    static var probes: [Float] {
        var rng = SplitMix64(seed: 41)
        var v = (0..<200_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        v += (0..<20_000).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()) & 0x807F_FFFF | 0x3800_0000) }  // |x| ~ 2^-15…1
        v += [1 + 0x1p-8, 1 + 3 * 0x1p-8, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 65504, 65519, 65520, 65536, 0x1p-24, 0x1p-25,
              0x1.8p-25, 0x1p-26, 0x1p-14, 0x1.ff8p-15, -0.0, .infinity, -.infinity, .nan, .greatestFiniteMagnitude]
        return v
    }

    @Test("Float32 → BFloat16/Float16 rounds to nearest even (against Swift's Float16 and a nearest search); widening all 65536 patterns is exact")
    func conversions() {
        let x = Self.probes
        let f16 = HalfFloat.bits(x, .float16), bf16 = HalfFloat.bits(x, .bfloat16)
        var bad16 = 0, badBF = 0
        for (i, v) in x.enumerated() {
            let want = Float16(v)
            if want.isNaN ? !Float16(bitPattern: f16[i]).isNaN : f16[i] != want.bitPattern {
                bad16 += 1
                if bad16 <= 3 { Issue.record("float16 of \(v) (0x\(String(v.bitPattern, radix: 16))): 0x\(String(f16[i], radix: 16)), Swift 0x\(String(want.bitPattern, radix: 16))") }
            }
            let got = Float(bitPattern: UInt32(bf16[i]) << 16)
            if v.isNaN ? !got.isNaN : bf16[i] != Self.nearestBFloat16(v) {
                badBF += 1
                if badBF <= 3 { Issue.record("bfloat16 of \(v): 0x\(String(bf16[i], radix: 16)), nearest 0x\(String(Self.nearestBFloat16(v), radix: 16))") }
            }
        }
        #expect(bad16 == 0 && badBF == 0, "\(bad16) float16 and \(badBF) bfloat16 roundings differ of \(x.count)")
        // Spot values: ties go to even; Float16 overflows from 65520 on; NaN stays NaN.
        #expect(HalfFloat.bits([1 + 0x1p-8, 1 + 3 * 0x1p-8], .bfloat16) == [0x3F80, 0x3F82])
        #expect(HalfFloat.bits([65519, 65520, 0x1p-25, 0x1.8p-25], .float16) == [0x7BFF, 0x7C00, 0x0000, 0x0001])
        #expect(HalfFloat.floats(HalfFloat.bits([Float.nan], .bfloat16), .bfloat16)[0].isNaN)
        let all = (0...UInt16.max).map { $0 }
        let w16 = HalfFloat.floats(all, .float16), wbf = HalfFloat.floats(all, .bfloat16)
        #expect(all.allSatisfy { h in
            let want = Float(Float16(bitPattern: h))
            return want.isNaN ? w16[Int(h)].isNaN : w16[Int(h)].bitPattern == want.bitPattern
        }, "float16 widening")
        #expect(all.allSatisfy { wbf[Int($0)].bitPattern == UInt32($0) << 16 }, "bfloat16 widening")
    }

    @Test("widen and gather from a 16-bit table equal the host's widening bit for bit on every device",
          arguments: [DType.bfloat16, .float16])
    func deviceOps(_ dtype: DType) throws {
        let values = randomValues(5 * 37, seed: 5, -70000, 70000).map(Float.init) + [Float.nan, Float.infinity, -0.0, 1e-6, 6e-8]
        let bits = HalfFloat.bits(values, dtype), want = HalfFloat.floats(bits, dtype)
        let ids: [Int32] = [4, 0, 4, 2, 1]
        let cols = values.count / 5
        for d in [cpu as any Device] + openCLDevices {
            let t = try Tensor(halfBits: bits, shape: [values.count], dtype: dtype, on: d)
            let w = try t.widened()
            #expect(w.dtype == .float32 && w.shape == [values.count])
            let got = try w.floats()
            #expect(zip(got, want).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(d.info.id) \(dtype) widen")
            let table = try Tensor(halfBits: Array(bits.prefix(5 * cols)), shape: [5, cols], dtype: dtype, on: d)
            let rows = try table.gatherRows(IndexTensor(ids, on: d))
            let g = try rows.floats()
            let wantRows = ids.flatMap { want[(Int($0) * cols)..<((Int($0) + 1) * cols)] }
            #expect(rows.dtype == .float32 && zip(g, wantRows).allSatisfy { $0.bitPattern == $1.bitPattern }, "\(d.info.id) \(dtype) gather")
            // A tensor moved between devices keeps its bits.
            #expect(try t.to(cpu).halfBits() == bits)
        }
    }

    /// The block-widened products hold the same terms as the Float32 weight of the widened
    /// values: forward, each output is one dot product over `in` (the order BLAS or the
    /// OpenCL tile picks); backward, the sum over `out` splits at block edges. Either way the
    /// difference is rounding of sums of k terms: |Δ| ≤ 2·k·u·Σ|terms| (k = in or out, u = 2⁻²⁴).
    @Test("Linear with a 16-bit weight equals the Float32 weight of the same values, one block and several, forward and backward, every device",
          arguments: [DType.bfloat16, .float16])
    func linear(_ dtype: DType) throws {
        for (out, inF, rows) in [(37, 20, 5), (1100, 4096, 3)] {          // 1100 × 4096 is two blocks of 1024 rows
            let w = randomValues(out * inF, seed: 9, -0.05, 0.05).map(Float.init)
            let x = randomValues(rows * inF, seed: 10), dy = randomValues(rows * out, seed: 11)
            let rounded = HalfFloat.floats(HalfFloat.bits(w, dtype), dtype)
            let u = 0x1p-24
            for d in [cpu as any Device] + openCLDevices {
                let half = try Linear(weight: Tensor(w, shape: [out, inF], storedAs: dtype, on: d), bias: Tensor(randomValues(out, seed: 12), shape: [out], dtype: .float32, on: d))
                let full = try Linear(weight: Tensor(rounded, shape: [out, inF], on: d), bias: half.bias)
                let xt = try Tensor(x, shape: [rows, inF], dtype: .float32, on: d)
                let (yh, sh) = try half.forward(xt), (yf, _) = try full.forward(xt)
                let absDot: (Int) -> Double = { e in
                    let (r, o) = (e / out, e % out)
                    return (0..<inF).reduce(0) { $0 + abs(x[r * inF + $1] * Double(rounded[o * inF + $1])) }
                }
                expectClose(try yh.doubles(), try yf.doubles(), bound: { 2 * Double(inF) * u * (absDot($0) + 1) }, "\(d.info.id) \(dtype) \(out)×\(inF) forward")
                let g = try Tensor(dy, shape: [rows, out], dtype: .float32, on: d)
                let (dxh, dxf) = (try half.backward(g, sh), try full.backward(g, sh))
                let absBack: (Int) -> Double = { e in
                    let (r, i) = (e / inF, e % inF)
                    return (0..<out).reduce(0) { $0 + abs(dy[r * out + $1] * Double(rounded[$1 * inF + i])) }
                }
                expectClose(try dxh.doubles(), try dxf.doubles(), bound: { 2 * Double(out) * u * absBack($0) }, "\(d.info.id) \(dtype) \(out)×\(inF) backward")
            }
        }
    }

    /// transformers computes in float32 on weights PyTorch rounded the same way
    /// (make_half_fixtures.py); the engine computes in float32 on its own rounding. Same
    /// bound as the Float32 family tests (1e-4 normwise); rounding the weights moves the logits
    /// by 4e-3 (bf16) and 5e-4 (f16), so a wrong rounding or a missed tensor fails it.
    @Test("decoders with BF16/F16 weights equal transformers' with the same rounded weights, CPU and every OpenCL device",
          arguments: ["llama", "gpt_neox"])
    func decoders(_ family: String) throws {
        let root = DecoderFamilyTests.root + "/" + family
        let ref = try DecoderFamilyTests.reference(family), half = try SafeTensorsFile(path: root + "/half.safetensors")
        let clean = try DecoderFamilyTests.tokens(ref, "tokens_clean")
        for d in [cpu as any Device] + openCLDevices {
            for (dtype, key) in [(DType.bfloat16, "logits_bf16"), (.float16, "logits_f16")] {
                let m = try DecoderModel.load(root, on: d, weights: dtype)
                #expect(m.weightDType == dtype && m.dtype == .float32)
                let e = DecoderFamilyTests.err(try m.logits(clean).doubles(), try half.doubles(key))
                #expect(e <= 1e-4, "\(family) \(d.info.id) \(dtype) logits: \(e)")
                // The backward runs through the same widened products: AtP's gradients are finite
                // and near the Float32 model's (the weights moved by at most 2⁻⁸ relative).
                let g = try m.gradients(clean, metric: DecoderFamilyTests.metric(ref), nodes: [HookPoint(.attnZ, layer: 1)])
                let want = try DecoderModel.load(root, on: d).gradients(clean, metric: DecoderFamilyTests.metric(ref), nodes: [HookPoint(.attnZ, layer: 1)])
                let ge = DecoderFamilyTests.err(try g.gradients.embeddings.doubles(), try want.gradients.embeddings.doubles())
                #expect(ge < 0.05, "\(family) \(d.info.id) \(dtype) ∂L/∂embeddings vs float32 weights: \(ge)")
            }
        }
    }

    @Test("a BF16 safetensors tensor loaded as bfloat16 keeps its bits; wider ones round once")
    func safetensorsBits() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-half-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let v = randomValues(64, seed: 3, -4, 4)
        try SafeTensorsWriter.write([("a", [8, 8], v, .BF16), ("b", [8, 8], v, .F64)], to: dir + "/w.safetensors")
        let f = try SafeTensorsFile(path: dir + "/w.safetensors")
        let a = try f.tensor("a", dtype: .bfloat16, on: cpu), b = try f.tensor("b", dtype: .bfloat16, on: cpu)
        #expect(try a.halfBits() == v.map { HalfFloat.bf16Bits($0) })
        #expect(try b.halfBits() == v.map { HalfFloat.bf16Bits($0) }, "F64 rounded once to bfloat16")
    }

    @Test("bad combinations are errors naming them: 16-bit weights with Float64 arithmetic, arithmetic on a 16-bit tensor, a Float64 input to a 16-bit Linear")
    func badInput() throws {
        let dir = DecoderFamilyTests.root + "/llama"
        expectAttribError(["bfloat16 weights compute in float32", "float64"]) { _ = try DecoderModel.load(dir, on: cpu, dtype: .float64, weights: .bfloat16) }
        expectAttribError(["weights stored as float64", "float32 arithmetic"]) { _ = try DecoderModel.load(dir, on: cpu, weights: .float64) }
        let t = try Tensor([1, 2, 3, 4] as [Float], shape: [2, 2], storedAs: .bfloat16, on: cpu)
        expectAttribError(["bfloat16"]) { _ = try t.adding(t) }
        expectAttribError(["widened", "float32"]) { _ = try Tensor([1, 2] as [Float], shape: [2], on: cpu).widened() }
        let lin = try Linear(weight: t, bias: nil)
        expectAttribError(["float64", "bfloat16 weight computes in float32"]) { _ = try lin.forward(Tensor([1, 2], shape: [1, 2], dtype: .float64, on: cpu)) }
        expectAttribError(["bias is float64"]) { _ = try Linear(weight: t, bias: Tensor([1, 2], shape: [2], dtype: .float64, on: cpu)) }
    }
}
