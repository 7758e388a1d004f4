import Attrib
import Testing

/// Products of few rows on a weight packed once (CVecMath/smallrows_gemm.c, CPUDevice+SmallRows,
/// Linear). The same products as OpenBLAS's, summed in another order: each output is a sum
/// of k terms, so both lie within k·u·Σ|x||b| of the exact value (u = 2⁻²⁴); the tests hold
/// them to 2·k·u of the float64 product of the absolute values, elementwise.
@Suite struct SmallRowsGEMMTests {
    static func expectClose(_ got: [Double], _ want: [Double], _ bound: [Double], k: Int, _ what: String) {
        let u = 1.0 / Double(1 << 24)
        let worst = got.indices.map { abs(got[$0] - want[$0]) / max(bound[$0] * 2 * Double(k) * u, .leastNormalMagnitude) }.max() ?? 0
        #expect(got.count == want.count && worst <= 1, "\(what): worst error \(worst) of its bound")
    }

    /// (lanes, rows): each kernel at rows that fill no group, one group (6 or 12), one and a
    /// few more, and its limit; the 16-lane one also over two blocks of 240 rows.
    static let kernelRows: [(Int, Int)] = [1, 6, 7, 12, 13, 66, 128].map { (8, $0) }
        + [1, 7, 12, 13, 66, 197, 241, 256].map { (16, $0) }

    @Test("gemmSmallRows matches the float64 product within the rounding bound, bias or not (K not a whole block, rows not whole groups, an odd panel count)",
          arguments: kernelRows)
    func againstFloat64(_ lanesRows: (Int, Int)) throws {
        let (lanes, m) = lanesRows
        let (k, n) = (600, 528)                                  // 600 = 512 + 88: a short K block; 33 panels over the threads (one alone)
        let x = randomValues(m * k, seed: 90), b = randomValues(k * n, seed: 91), bias = randomValues(n, seed: 89)
        let bT = try Tensor(b, shape: [k, n], dtype: .float32, on: cpu)
        guard let packed = try cpu.packForSmallRows(bT.storage, k: k, n: n) else {
            #expect(!cpu.offersConv3x3RowsOuter(dtype: .float32), "packed wherever AVX2 and FMA are there"); return
        }
        let xt = try Tensor(x, shape: [m, k], dtype: .float32, on: cpu)
        let y = try Tensor(shape: [m, n], dtype: .float32, on: cpu), yb = try Tensor(shape: [m, n], dtype: .float32, on: cpu)
        let ran = try cpu.gemmSmallRows(m: m, x: xt.storage, packed, y: y.storage, lanes: lanes)
        let ranB = try cpu.gemmSmallRows(m: m, x: xt.storage, packed, y: yb.storage,
                                         bias: Tensor(bias, shape: [n], dtype: .float32, on: cpu).storage, lanes: lanes)
        guard lanes <= CPUDevice.packedKernelLanes else {
            #expect(!ran && !ranB, "a \(lanes)-lane kernel this CPU lacks declines"); return
        }
        #expect(ran && ranB)
        let bound = try Tensor(x.map(abs), shape: [m, k], on: cpu).matmul(Tensor(b.map(abs), shape: [k, n], on: cpu)).doubles()
        // The inputs rounded to float32 first: the products see those values.
        let x32 = x.map { Double(Float($0)) }, b32 = b.map { Double(Float($0)) }, bias32 = bias.map { Double(Float($0)) }
        let exact32 = try Tensor(x32, shape: [m, k], on: cpu).matmul(Tensor(b32, shape: [k, n], on: cpu)).doubles()
        Self.expectClose(try y.doubles(), exact32, bound, k: k, "\(lanes) lanes, \(m) rows")
        // The bias is one more rounded addition, on |bias| beside the sum's bound (hence + |b|; k + 1 terms).
        Self.expectClose(try yb.doubles(), exact32.indices.map { exact32[$0] + bias32[$0 % n] },
                         bound.indices.map { bound[$0] + abs(bias32[$0 % n]) }, k: k + 1, "\(lanes) lanes, \(m) rows, bias")
    }

    @Test("Wᵀ packed straight from W gives the products of a packed stored Wᵀ, bit for bit",
          arguments: [(600, 528), (7, 16), (1030, 32)])
    func packTransposed(_ shape: (Int, Int)) throws {
        // k = 600: blocks of 512 and 88 (11 transposes of 8); k = 7: only the scalar tail;
        // k = 1030: a 6-column tail after two whole blocks. n = 528: 33 panels, split unevenly.
        let (k, n) = shape, m = 66
        let w = try Tensor(randomValues(n * k, seed: 98), shape: [n, k], dtype: .float32, on: cpu)
        guard let fromW = try cpu.packTransposedForSmallRows(w.storage, k: k, n: n),
              let fromWT = try cpu.packForSmallRows(w.transposed01().storage, k: k, n: n) else {
            #expect(!cpu.offersConv3x3RowsOuter(dtype: .float32), "packed wherever AVX2 and FMA are there"); return
        }
        let x = try Tensor(randomValues(m * k, seed: 99), shape: [m, k], dtype: .float32, on: cpu)
        let y1 = try Tensor(shape: [m, n], dtype: .float32, on: cpu), y2 = try Tensor(shape: [m, n], dtype: .float32, on: cpu)
        #expect(try cpu.gemmSmallRows(m: m, x: x.storage, fromW, y: y1.storage))
        #expect(try cpu.gemmSmallRows(m: m, x: x.storage, fromWT, y: y2.storage))
        // The same packed values in the same places give the same sums in the same order.
        #expect(try y1.floats() == y2.floats(), "k = \(k), n = \(n)")
    }

    @Test("Not taken: more rows than the limit, Float64, n not a multiple of 16")
    func declines() throws {
        let b = try Tensor(randomValues(64 * 32, seed: 92), shape: [64, 32], dtype: .float32, on: cpu)
        guard let packed = try cpu.packForSmallRows(b.storage, k: 64, n: 32) else { return }
        for lanes in [8, 16] where lanes <= CPUDevice.packedKernelLanes {
            let m = CPUDevice.smallRowsLimit(lanes: lanes) + 1
            let x = try Tensor.zeros([m, 64], dtype: .float32, on: cpu), y = try Tensor.zeros([m, 32], dtype: .float32, on: cpu)
            #expect(try !cpu.gemmSmallRows(m: m, x: x.storage, packed, y: y.storage, lanes: lanes), "\(lanes) lanes, \(m) rows")
        }
        let b64 = try Tensor(randomValues(64 * 32, seed: 92), shape: [64, 32], dtype: .float64, on: cpu)
        #expect(try cpu.packForSmallRows(b64.storage, k: 64, n: 32) == nil)
        let odd = try Tensor(randomValues(64 * 30, seed: 93), shape: [64, 30], dtype: .float32, on: cpu)
        #expect(try cpu.packForSmallRows(odd.storage, k: 64, n: 30) == nil)
    }

    @Test("A wide Linear layer: few rows (packed weight) and many rows (OpenBLAS) give the same forward and backward to rounding")
    func linearLayer() throws {
        let (inF, outF) = (528, 544)
        let w = randomValues(outF * inF, seed: 94), bias = randomValues(outF, seed: 95)
        // packFewRows: true on every host (the CPU's own rule leaves it off where OpenBLAS runs AVX-512 kernels).
        let layer = try Linear(weight: Tensor(w, shape: [outF, inF], dtype: .float32, on: cpu), bias: Tensor(bias, shape: [outF], dtype: .float32, on: cpu),
                               packFewRows: true)
        // More rows than the packed products take run through OpenBLAS, their first 66 alone through the packed weight.
        let rows = CPUDevice.smallRowsLimit + 8, few = 66
        let x = randomValues(rows * inF, seed: 96), dy = randomValues(rows * outF, seed: 97)
        // With AVX2 and FMA the layer keeps Wᵀ packed instead of plain; either way one copy.
        #expect((layer.weightTransposed == nil) == cpu.offersConv3x3RowsOuter(dtype: .float32))
        let (yAll, sAll) = try layer.forward(Tensor(x, shape: [rows, inF], dtype: .float32, on: cpu))
        let xFew = try Tensor(Array(x.prefix(few * inF)), shape: [few, inF], dtype: .float32, on: cpu)
        let dyFew = try Tensor(Array(dy.prefix(few * outF)), shape: [few, outF], dtype: .float32, on: cpu)
        // The products of few rows before the one that packs run through OpenBLAS; after them, the packed weight.
        for _ in 1..<Linear.smallRowsPackAfter { _ = try layer.backward(dyFew, try layer.forward(xFew).saved) }
        let (yFew, sFew) = try layer.forward(xFew)
        let boundF = try Tensor(x.map(abs), shape: [rows, inF], on: cpu).matmul(Tensor(w.map(abs), shape: [outF, inF], on: cpu), transposeOther: true).doubles()
        // Many rows: OpenBLAS on W as a transposed operand, within k·u of the float64 product
        // of the float32-rounded operands (plus the bias's rounding: hence the + 1 on the bound).
        let x32 = x.map { Double(Float($0)) }, w32 = w.map { Double(Float($0)) }, b32 = bias.map { Double(Float($0)) }
        let exactF = try Tensor(x32, shape: [rows, inF], on: cpu).matmul(Tensor(w32, shape: [outF, inF], on: cpu), transposeOther: true).doubles()
        let exactFB = exactF.indices.map { exactF[$0] + b32[$0 % outF] }
        Self.expectClose(try yAll.doubles(), exactFB, boundF.map { $0 + 1 }, k: inF, "forward, many rows")
        // Both within k·u of the exact sum: their difference within 2·k·u (plus the bias's rounding, far below).
        Self.expectClose(try yFew.doubles(), Array(try yAll.doubles().prefix(few * outF)), Array(boundF.prefix(few * outF)).map { $0 + 1 }, k: inF, "forward")
        let dxAll = try layer.backward(Tensor(dy, shape: [rows, outF], dtype: .float32, on: cpu), sAll)
        let dxFew = try layer.backward(dyFew, sFew)
        let boundB = try Tensor(dy.map(abs), shape: [rows, outF], on: cpu).matmul(Tensor(w.map(abs), shape: [outF, inF], on: cpu)).doubles()
        Self.expectClose(try dxFew.doubles(), Array(try dxAll.doubles().prefix(few * inF)), Array(boundB.prefix(few * inF)), k: outF, "backward")
        #expect(dxFew.shape == [few, inF] && yFew.shape == [few, outF])
    }

    @Test("A Linear given its Wᵀ (an ONNX MatMul's weight) computes what one given W alone does, bit for bit, packed and plain; a wrong Wᵀ is refused")
    func givenTransposed() throws {
        // 528 × 544: packed where the host packs (AVX2 and FMA); 40 × 24: Wᵀ kept plain everywhere.
        for (inF, outF, pack) in [(528, 544, true), (528, 544, false), (40, 24, true)] {
            let w = try Tensor(randomValues(outF * inF, seed: 98), shape: [outF, inF], dtype: .float32, on: cpu)
            let plain = try Linear(weight: w, bias: nil, packFewRows: pack)
            let given = try Linear(weight: w, bias: nil, packFewRows: pack, transposed: w.transposed01())
            #expect((plain.weightTransposed == nil) == (given.weightTransposed == nil), "the same form kept")
            for rows in [3, CPUDevice.smallRowsLimit + 8] {
                let x = try Tensor(randomValues(rows * inF, seed: 99), shape: [rows, inF], dtype: .float32, on: cpu)
                let dy = try Tensor(randomValues(rows * outF, seed: 100), shape: [rows, outF], dtype: .float32, on: cpu)
                let (y0, s0) = try plain.forward(x), (y1, s1) = try given.forward(x)
                try expectBitwise(y1, y0, "forward, \(rows) rows of \(inF) → \(outF), pack \(pack)")
                try expectBitwise(try given.backward(dy, s1), try plain.backward(dy, s0), "backward, \(rows) rows of \(inF) → \(outF), pack \(pack)")
            }
        }
        let w = try Tensor(randomValues(12, seed: 1), shape: [3, 4], dtype: .float32, on: cpu)
        expectAttribError(["transposed weight", "[4, 3]"]) { _ = try Linear(weight: w, bias: nil, transposed: w) }
    }
}
