import Attrib
import Foundation
import Testing

/// MobileNet- and EfficientNet-style blocks in sweep graphs: squeeze-and-excitation inside a
/// channels-last stretch (`Graph.channelsLast` with ChannelsLastGlobalAvgPoolGraphOp and
/// ChannelsLastBroadcastMulGraphOp; the ops' own finite-difference and OpenCL checks are in
/// GraphOpTests), and x ⊙ sigmoid(x) fused into SiLU (`Graph.fusingSwish`).
@Suite struct SqueezeExcitationTests {
    /// x [8, 16, 16] → a (8→32, 3×3) → ReLU → d (depthwise 3×3) → ReLU = r → pool (global
    /// average) → s1 (32→8, 1×1) → ReLU → s2 (8→32, 1×1) → ReLU = gate → r ⊙ gate → c (32→8,
    /// 1×1) → y. Weights scaled by 1/K, biases and weights from [−1, 1]; `absolute`: their
    /// absolute values and no ReLU (the bound's graph); `nonNegative`: their absolute values.
    /// `stem`: x → a 1×1 (8→8) first, the affine layer IG's cut would follow.
    static func block(dtype: DType, absolute: Bool = false, nonNegative: Bool = false, stem: Bool = false) throws -> Graph {
        func values(_ n: Int, _ seed: UInt64, _ scale: Double) -> [Double] {
            let v = randomValues(n, seed: seed).map { $0 * scale }
            return absolute || nonNegative ? v.map(abs) : v
        }
        func conv(_ c: Int, _ oc: Int, _ k: Int, seed: UInt64) throws -> Conv2d {
            try Conv2d(weight: Tensor(values(oc * c * k * k, seed, 1 / Double(c * k * k)), shape: [oc, c, k, k], dtype: dtype, on: cpu),
                       bias: Tensor(values(oc, seed + 1, 1), shape: [oc], dtype: dtype, on: cpu), padding: [k / 2, k / 2])
        }
        let depthwise = try GroupedConv2d(weight: Tensor(values(32 * 9, 61, 1.0 / 9), shape: [32, 1, 3, 3], dtype: dtype, on: cpu),
                                          bias: Tensor(values(32, 62, 1), shape: [32], dtype: dtype, on: cpu),
                                          groups: 32, stride: [1, 1], padding: [1, 1])
        // The absolute graph has no ReLU: |relu(v)| ≤ |v|, and its values are ≥ 0 anyway.
        func act() -> any GraphOp { absolute ? IdentityGraphOp() : LayerOp(ActivationLayer(.relu)) }
        let first = stem ? [GraphNode("stem", LayerOp(try conv(8, 8, 1, seed: 49)), inputs: ["x"], output: "x1")] : []
        return try Graph(inputs: [("x", ValueType([8, 16, 16], dtype))], nodes: first + [
            GraphNode("a", LayerOp(try conv(8, 32, 3, seed: 51)), inputs: [stem ? "x1" : "x"], output: "a"),
            GraphNode("ra", act(), inputs: ["a"], output: "ra"),
            GraphNode("d", LayerOp(depthwise), inputs: ["ra"], output: "d"),
            GraphNode("r", act(), inputs: ["d"], output: "r"),
            GraphNode("pool", GlobalAvgPoolGraphOp(), inputs: ["r"], output: "pool"),
            GraphNode("s1", LayerOp(try conv(32, 8, 1, seed: 53)), inputs: ["pool"], output: "s1"),
            GraphNode("rs1", act(), inputs: ["s1"], output: "rs1"),
            GraphNode("s2", LayerOp(try conv(8, 32, 1, seed: 55)), inputs: ["rs1"], output: "s2"),
            GraphNode("gate", act(), inputs: ["s2"], output: "gate"),
            GraphNode("gated", BroadcastMulGraphOp(), inputs: ["r", "gate"], output: "gated"),
            GraphNode("c", LayerOp(try conv(32, 8, 1, seed: 57)), inputs: ["gated"], output: "y"),
        ], outputs: ["y"])
    }

    @Test("the rewrite takes the gate in: one stretch, a transpose at each end, the gate's [C, 1, 1] values cross by reshapes")
    func rewriteShape() throws {
        let g = try Self.block(dtype: .float32)
        let r = try g.channelsLast(on: cpu, dtype: .float32)
        #expect(r.nodes.filter { $0.op is ChannelsLastConvGraphOp }.map(\.name) == ["a", "d", "c"])
        #expect(r.nodes.filter { $0.op is ChannelsLastGlobalAvgPoolGraphOp }.map(\.name) == ["pool"])
        #expect(r.nodes.filter { $0.op is ChannelsLastBroadcastMulGraphOp }.map(\.name) == ["gated"])
        #expect(r.nodes.filter { $0.op is TransposeGraphOp }.count == 2)              // x in, y out
        // The pooled value out to the gate's convolutions (on one-pixel images, NCHW) and the
        // gate back in (its ReLU runs in the stretch): reshapes, no copies.
        #expect(r.nodes.contains { $0.op is ReshapeGraphOp && $0.inputs == ["s2"] })
        #expect(r.nodes.contains { $0.op is ReshapeGraphOp && $0.output == "pool" })
        #expect(r.outputs == ["y"] && r.types["y"] == g.types["y"] && r.types["pool"] == g.types["pool"])
        // Without the gate in the stretch (as before), the depthwise convolution's stretch was
        // cut at the pool and the gated product; with a hook on the gate's product it still is.
        let kept = try g.channelsLast(on: cpu, dtype: .float32, keeping: ["gated"])
        #expect(kept.nodes.contains { $0.output == "gated" && $0.op is BroadcastMulGraphOp })
        #expect(kept.types["gated"] == g.types["gated"])
    }

    @Test("the cost rule counts a depthwise convolution's multiply-adds 8 times")
    func groupedWeight() throws {
        // x [8, 16, 16] → a dense 3×3 (8→32) → a depthwise k×k → y; the transposes move
        // 2048 + 8192 elements a sample, so the rule asks 256 × 10,240 = 2,621,440.
        func graph(kernel k: Int) throws -> Graph {
            let w = try Tensor(randomValues(32 * 8 * 9, seed: 83), shape: [32, 8, 3, 3], dtype: .float32, on: cpu)
            let dw = try GroupedConv2d(weight: Tensor(randomValues(32 * k * k, seed: 84), shape: [32, 1, k, k], dtype: .float32, on: cpu),
                                       bias: nil, groups: 32, stride: [1, 1], padding: [k / 2, k / 2])
            return try Graph(inputs: [("x", ValueType([8, 16, 16], .float32))], nodes: [
                GraphNode("a", LayerOp(try Conv2d(weight: w, bias: nil, padding: [1, 1])), inputs: ["x"], output: "a"),
                GraphNode("d", LayerOp(dw), inputs: ["a"], output: "y"),
            ], outputs: ["y"])
        }
        // The dense one: 72 × 8192 = 589,824. A 7×7 depthwise: 49 × 8192 = 401,408, counted
        // 8 times 3,211,264: 3,801,088 in all, taken (counted once, 991,232: not). A 3×3
        // depthwise: 589,824 + 8 × 73,728 = 1,179,648: not taken.
        #expect(try graph(kernel: 7).channelsLast(on: cpu, dtype: .float32).nodes.contains { $0.op is ChannelsLastConvGraphOp })
        #expect(try graph(kernel: 3).channelsLast(on: cpu, dtype: .float32).nodes.count == 2)
    }

    @Test("the rewritten block against the NCHW one: outputs, and input gradients through a sweep executor")
    func rewriteNumbers() throws {
        // Forward: the convolutions' and the pool's sums (K = 72, 9, 256, 32, 8, 32), each with
        // its bias, and the gate's product. Backward: that chain (the gate and r are factors
        // of the backward's products) and the backward's own (8, the gate's 1 and its 256-term
        // sum, 32, 8, 9, 288).
        let graphs = try ChannelsLastConvTests.expectRewriteMatches({ try Self.block(dtype: $0, absolute: $1, nonNegative: $2) },
                                                                    forwardTerms: 72 + 9 + 256 + 32 + 8 + 32 + 6 + 1,
                                                                    backwardTerms: (72 + 9 + 256 + 32 + 8 + 32 + 7) + (8 + 1 + 256 + 32 + 8 + 9 + 288 + 2),
                                                                    seed: 95)
        #expect(graphs.forward.nodes.contains { $0.op is ChannelsLastBroadcastMulGraphOp })
        #expect(graphs.gradient.nodes.contains { $0.op is ChannelsLastBroadcastMulGraphOp })
    }

    @Test("forward-only passes (predict, Sobol, deletion curves: a model's outputs) run the channels-last graph, the IG cut kept")
    func forwardPasses() throws {
        let model = try GraphModel(try Self.block(dtype: .float32, stem: true), device: cpu, dtype: .float32, source: "SE block")
        let g = model.forwardSweepExecutor.graph
        #expect(g.nodes.contains { $0.op is ChannelsLastBroadcastMulGraphOp })
        // The first affine layer's output (IG's cut, which IG's ends feed directly) stays NCHW.
        #expect(g.nodes.contains { $0.output == "x1" && !($0.op is ChannelsLastConvGraphOp) } && g.types["x1"] == model.forwardExecutor.graph.types["x1"])
        let n = 2, x = randomValues(n * 8 * 16 * 16, seed: 98)
        let got = try model.outputs(Tensor(x, shape: [n, 8, 16, 16], dtype: .float32, on: cpu)).doubles()
        let want = try model.forwardExecutor.forward(["x": Tensor(x, shape: [n, 8, 16, 16], dtype: .float32, on: cpu)])["y"]!.doubles()
        // As in rewriteNumbers: the two paths within twice the first-order bound.
        let bound = try GraphExecutor(try Self.block(dtype: .float64, absolute: true, stem: true))
            .forward(["x": Tensor(x.map { Swift.abs($0) }, shape: [n, 8, 16, 16], on: cpu)])["y"]!.doubles()
        let gamma = Double(8 + 1 + 72 + 9 + 256 + 32 + 8 + 32 + 6 + 1) * DType.float32.unitRoundoff     // the stem's 8 and bias too
        expectClose(got, want, bound: { 2 * gamma * bound[$0] }, "outputs")
    }

    @Test("the gate's Tensor ops: bad shapes, mixed dtypes and a wrong upstream are errors that name them")
    func gateErrors() throws {
        let a = try Tensor.zeros([2, 4, 4, 3], on: cpu), s = try Tensor.zeros([2, 1, 1, 3], on: cpu)
        expectAttribError(["gate multiply", "[2, 4, 4, 3]", "[2, 1, 1, 5]"]) { _ = try a.gateMultiplied(by: Tensor.zeros([2, 1, 1, 5], on: cpu), rows: 16) }
        expectAttribError(["gate multiply", "gate is"]) { _ = try a.gateMultiplied(by: Tensor.zeros([2, 1, 1, 3], dtype: .float64, on: cpu), rows: 16) }
        expectAttribError(["gate multiply backward", "upstream gradient"]) {
            _ = try Tensor.zeros([2, 4, 4, 2], on: cpu).gateMultiplyBackward(a: a, s: s, rows: 16, wantA: true, wantS: true)
        }
        #expect(try a.gateMultiplied(by: s, rows: 16) != nil)                            // the CPU's Float32 has the kernel
    }

    // MARK: Swish

    /// x [4, 6, 6] → a (4→8, 3×3) → Sigmoid = s → a ⊙ s (or s ⊙ a) → y; `alsoRead`: s is also
    /// an output.
    static func swish(dtype: DType, sigmoidFirst: Bool = false, alsoRead: Bool = false) throws -> Graph {
        let w = try Tensor(randomValues(8 * 4 * 9, seed: 31).map { $0 / 6 }, shape: [8, 4, 3, 3], dtype: dtype, on: cpu)
        let b = try Tensor(randomValues(8, seed: 32), shape: [8], dtype: dtype, on: cpu)
        return try Graph(inputs: [("x", ValueType([4, 6, 6], dtype))], nodes: [
            GraphNode("a", LayerOp(try Conv2d(weight: w, bias: b, padding: [1, 1])), inputs: ["x"], output: "a"),
            GraphNode("s", LayerOp(ActivationLayer(.sigmoid)), inputs: ["a"], output: "s"),
            GraphNode("mul", BinaryGraphOp(.mul), inputs: sigmoidFirst ? ["s", "a"] : ["a", "s"], output: "y"),
        ], outputs: alsoRead ? ["y", "s"] : ["y"])
    }

    @Test("x ⊙ sigmoid(x) becomes one SiLU node, in either order; not where the sigmoid is read elsewhere or kept")
    func swishRewrite() throws {
        for first in [false, true] {
            let f = try Self.swish(dtype: .float32, sigmoidFirst: first).fusingSwish()
            #expect(f.nodes.count == 2)
            #expect(f.nodes.last.map { $0.name == "mul" && $0.inputs == ["a"] && $0.output == "y" } == true)
            #expect(((f.nodes.last?.op as? LayerOp)?.layer as? ActivationLayer)?.kind == .silu)
        }
        #expect(try Self.swish(dtype: .float32, alsoRead: true).fusingSwish().nodes.count == 3)
        #expect(try Self.swish(dtype: .float32).fusingSwish(keeping: ["s"]).nodes.count == 3)
        // x ⊙ sigmoid(z) of another value is a gate, not a Swish.
        let gate = try Graph(inputs: [("x", ValueType([5], .float32)), ("z", ValueType([5], .float32))], nodes: [
            GraphNode("s", LayerOp(ActivationLayer(.sigmoid)), inputs: ["z"], output: "s"),
            GraphNode("mul", BinaryGraphOp(.mul), inputs: ["x", "s"], output: "y"),
        ], outputs: ["y"])
        #expect(try gate.fusingSwish().nodes.count == 2 && gate.fusingSwish().nodes.contains { $0.op is BinaryGraphOp })
        // A sweep graph fuses it on every device.
        for d in [cpu as any Device] + openCLDevices {
            #expect(try Self.swish(dtype: .float32).forSweeps(on: d, dtype: .float32).nodes.allSatisfy { !($0.op is BinaryGraphOp) })
        }
    }

    @Test("the fused SiLU against the Sigmoid and Mul it replaces (Float64): outputs and input gradients")
    func swishNumbers() throws {
        let n = 2, count = n * 4 * 6 * 6
        let plain = GraphExecutor(try Self.swish(dtype: .float64)), fused = GraphExecutor(try plain.graph.fusingSwish())
        let x = randomValues(count, seed: 33, -3, 3), dy = randomValues(n * 8 * 6 * 6, seed: 34)
        func run(_ e: GraphExecutor) throws -> (y: [Double], a: [Double], g: [Double]) {
            let r = try e.forward(["x": Tensor(x, shape: [n, 4, 6, 6], on: cpu)], hooks: GraphExecutor.Hooks(capture: ["a"]), gradientsFor: ["x"])
            let g = try e.backward(r, upstream: ["y": Tensor(dy, shape: [n, 8, 6, 6], on: cpu)], wrt: ["x"])["x"]!
            return (try r["y"]!.doubles(), try r["a"]!.doubles(), try g.doubles())
        }
        let p = try run(plain), f = try run(fused)
        let u = DType.float64.unitRoundoff
        // Both compute a·σ(a) from the same a: σ within about 4u (exp, a sum, a quotient) and
        // the product u, so 2·5u apart, relative.
        expectClose(f.y, p.y, bound: { 10 * u * Swift.abs(p.y[$0]) + 1e-300 }, "outputs")
        // ∂y/∂a = σ + a·σ(1 − σ): each term within about 6u in both forms, and the sum's terms
        // can cancel, so the bound is on their absolute values, carried through the
        // convolution's input gradient (72 terms) by the same product with |W|.
        let sig = p.a.map { 1 / (1 + exp(-$0)) }
        let magnitude = zip(p.a, sig).map { a, s in Swift.abs(s) + Swift.abs(a * s * (1 - s)) }
        let conv = try #require((plain.graph.nodes[0].op as? LayerOp)?.layer as? Conv2d)
        let absConv = try Conv2d(weight: Tensor(try conv.weight.doubles().map { Swift.abs($0) }, shape: conv.weight.shape, on: cpu), bias: nil, padding: [1, 1])
        let (_, saved) = try absConv.forward(Tensor.zeros([n, 4, 6, 6], dtype: .float64, on: cpu))
        let carried = try absConv.backward(Tensor(zip(magnitude, dy).map { $0 * Swift.abs($1) }, shape: [n, 8, 6, 6], on: cpu), saved).doubles()
        expectClose(f.g, p.g, bound: { 2 * (7 + 72) * u * carried[$0] + 1e-300 }, "input gradients")
    }
}
