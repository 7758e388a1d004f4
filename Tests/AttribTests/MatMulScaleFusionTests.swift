import Attrib
import Testing

/// Graph.fusingMatMulScales: an attention's scores · 1/√d fused into the MatMul's GEMM (α).
@Suite struct MatMulScaleFusionTests {
    /// q [T, d], k [T, d] (per sample) → s = q·kᵀ → s·c → softmax → y: the scores of one head.
    /// Values: "q", "k", "s", "z", "y".
    static func scores(_ c: Double, on device: any Device, dtype: DType) throws -> Graph {
        let (t, d) = (5, 4)
        let scale = try Tensor([Double](repeating: c, count: t * t), shape: [t, t], dtype: dtype, on: device)
        return try Graph(inputs: [("q", ValueType([t, d], dtype)), ("k", ValueType([t, d], dtype))], nodes: [
            GraphNode("scores", MatMulGraphOp(transposeB: true), inputs: ["q", "k"], output: "s"),
            GraphNode("scale", ConstantBinaryGraphOp(.mul, scale, uniform: c), inputs: ["s"], output: "z"),
            GraphNode("softmax", LayerOp(SoftmaxLayer(log: false)), inputs: ["z"], output: "y"),
        ], outputs: ["y"])
    }

    /// (y, ∂L/∂q, ∂L/∂k) for L = Σ dy ⊙ y on 3 samples.
    static func run(_ g: Graph, on device: any Device, dtype: DType) throws -> [Tensor] {
        let exec = GraphExecutor(g)
        let q = try Tensor(randomValues(3 * 20, seed: 11), shape: [3, 5, 4], dtype: dtype, on: device)
        let k = try Tensor(randomValues(3 * 20, seed: 12), shape: [3, 5, 4], dtype: dtype, on: device)
        let dy = try Tensor(randomValues(3 * 25, seed: 13), shape: [3, 5, 5], dtype: dtype, on: device)
        let r = try exec.forward(["q": q, "k": k], gradientsFor: ["q", "k"])
        let g = try exec.backward(r, upstream: ["y": dy], wrt: ["q", "k"])
        return [r["y"]!, g["q"]!, g["k"]!]
    }

    @Test("the scale joins the MatMul: one node with α, the same values (bitwise where α is a power of two), on every device")
    func fusedMatchesApart() throws {
        for device in [cpu as any Device] + openCLDevices {
            for dtype in dtypes(device) {
                for c in [0.125, 0.3] {
                    let g = try Self.scores(c, on: device, dtype: dtype)
                    let fused = try g.fusingMatMulScales()
                    #expect(fused.nodes.count == 2, "the scale fused away on \(device.info.id)")
                    let mm = try #require(fused.nodes.first?.op as? MatMulGraphOp)
                    #expect(mm.alpha == c && mm.transposeB)
                    #expect(fused.nodes.first?.output == "z", "the fused node writes the scale's value")
                    let (apart, together) = (try Self.run(g, on: device, dtype: dtype), try Self.run(fused, on: device, dtype: dtype))
                    if c == 0.125 {
                        // α = 2⁻³: every product by it is exact, so the GEMM's α and a pass after it,
                        // and α inside the backward's products or on dC before them, give the same bits.
                        for (a, b, what) in zip3(apart, together, ["y", "∂q", "∂k"]) { try expectBitwise(b, a, "\(what), α = 1/8, \(dtype) on \(device.info.id)") }
                    } else {
                        // Forward: the GEMM rounds α·Σ once, as the pass after it does: the same bits.
                        try expectBitwise(together[0], apart[0], "y, α = 0.3, \(dtype) on \(device.info.id)")
                        // Backward: α·(dC·B) against (α·dC)·B, each entry a sum of d = 4 or T = 5
                        // products of values ≤ 1 in magnitude (softmax's dC ≤ 2 max|dy|): a rounding
                        // of α·dC plus one of the result, ≤ 2u relative to Σ|terms| ≤ 5·2·1: 20u.
                        let u = dtype.unitRoundoff
                        for i in 1...2 {
                            let (w, got) = (try apart[i].doubles(), try together[i].doubles())
                            expectClose(got, w, bound: { _ in 20 * u }, "\(i == 1 ? "∂q" : "∂k"), α = 0.3, \(dtype) on \(device.info.id)")
                        }
                    }
                }
            }
        }
    }

    @Test("scores a caller keeps, or that another node reads, stay a value: no fusion")
    func keptScoresStay() throws {
        let g = try Self.scores(0.125, on: cpu, dtype: .float64)
        #expect(try g.fusingMatMulScales(keeping: ["s"]).nodes.count == 3)
        // s read twice (the scale and an output): not fused.
        let both = try Graph(inputs: g.inputs, nodes: g.nodes, outputs: ["y", "s"])
        #expect(try both.fusingMatMulScales().nodes.count == 3)
        // A constant product that is not uniform is a product per entry, not a scale: not fused.
        let c = try Tensor(randomValues(25, seed: 3), shape: [5, 5], dtype: .float64, on: cpu)
        let perEntry = try Graph(inputs: g.inputs, nodes: [g.nodes[0], GraphNode("scale", ConstantBinaryGraphOp(.mul, c), inputs: ["s"], output: "z"), g.nodes[2]],
                                 outputs: ["y"])
        #expect(try perEntry.fusingMatMulScales().nodes.count == 3)
    }
}

private func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] { zip(a, zip(b, c)).map { ($0, $1.0, $1.1) } }
