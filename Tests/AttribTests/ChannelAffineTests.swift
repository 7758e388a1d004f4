import Attrib
import AttribONNX
import Testing

/// A per-channel affine map (ChannelAffineGraphOp, Device.channelAffine): a BatchNormalization
/// that no convolution or linear layer absorbs. The formula by hand in Float64 in each layout,
/// its backward against finite differences, every OpenCL device against the CPU in Float32, and
/// the ONNX builder's choice between folding and the op.
@Suite struct ChannelAffineTests {
    /// (per-sample shape, channel axis): channels-first, channels-last, features.
    static let layouts: [([Int], Int)] = [([3, 4, 5], 0), ([4, 5, 3], 2), ([3], 0), ([2, 3, 4], 1)]

    static func op(channels c: Int, axis: Int, dtype: DType, on device: any Device) throws -> ChannelAffineGraphOp {
        ChannelAffineGraphOp(scale: try Tensor(randomValues(c, seed: 7, 0.5, 1.5), shape: [c], dtype: dtype, on: device),
                             shift: try Tensor(randomValues(c, seed: 8, -0.3, 0.3), shape: [c], dtype: dtype, on: device), axis: axis)
    }

    static func run(_ op: ChannelAffineGraphOp, shape: [Int], dtype: DType, on device: any Device) throws -> (y: [Double], dx: [Double]) {
        let exec = GraphExecutor(try Graph(inputs: [("x", ValueType(shape, dtype))], nodes: [GraphNode("bn", op, inputs: ["x"], output: "y")], outputs: ["y"]))
        let n = 2, count = shape.reduce(1, *)
        let r = try exec.forward(["x": Tensor(randomValues(n * count, seed: 9, -2, 2), shape: [n] + shape, dtype: dtype, on: device)], gradientsFor: ["x"])
        let dy = try Tensor(randomValues(n * count, seed: 10), shape: [n] + shape, dtype: dtype, on: device)
        return (try r["y"]!.doubles(), try exec.backward(r, upstream: ["y": dy], wrt: ["x"])["x"]!.doubles())
    }

    @Test("y = x·scale[c] + shift[c] and dx = dy·scale[c] along the channel axis, by hand (Float64: one product and one sum, 1e-15)", arguments: 0..<4)
    func byHand(_ k: Int) throws {
        let (shape, axis) = Self.layouts[k]
        let c = shape[axis], inner = shape[(axis + 1)...].reduce(1, *), count = shape.reduce(1, *)
        let op = try Self.op(channels: c, axis: axis, dtype: .float64, on: cpu)
        let (s, t) = (try op.scale.doubles(), try op.shift.doubles())
        let (y, dx) = try Self.run(op, shape: shape, dtype: .float64, on: cpu)
        let x = randomValues(2 * count, seed: 9, -2, 2), dy = randomValues(2 * count, seed: 10)
        let channel = { (i: Int) in (i % count) / inner % c }
        expectClose(y, x.indices.map { x[$0] * s[channel($0)] + t[channel($0)] }, bound: { _ in 1e-15 * 4 }, "y \(shape) axis \(axis)")
        expectClose(dx, dy.indices.map { dy[$0] * s[channel($0)] }, bound: { _ in 1e-15 * 2 }, "dx \(shape) axis \(axis)")
    }

    /// One product and one add per element in Float32: each backend within u·(|x·s| + |t|) of
    /// the exact value, ≤ u·(2·1.5 + 0.3) here (an OpenCL compiler may contract to one fma, so
    /// the two may differ by up to twice that).
    @Test("forward and backward on every OpenCL device against the CPU backend (Float32)", arguments: 0..<4)
    func parity(_ k: Int) throws {
        let (shape, axis) = Self.layouts[k]
        let want = try Self.run(try Self.op(channels: shape[axis], axis: axis, dtype: .float32, on: cpu), shape: shape, dtype: .float32, on: cpu)
        let bound = 2 * 0x1p-24 * 3.3
        for d in openCLDevices {
            let got = try Self.run(try Self.op(channels: shape[axis], axis: axis, dtype: .float32, on: d), shape: shape, dtype: .float32, on: d)
            expectClose(got.y, want.y, bound: { _ in bound }, "y on \(d.info.id), \(shape) axis \(axis)")
            expectClose(got.dx, want.dx, bound: { _ in bound }, "dx on \(d.info.id), \(shape) axis \(axis)")
        }
    }

    @Test("bad uses name the op and the shapes")
    func errors() throws {
        let op = try Self.op(channels: 3, axis: 0, dtype: .float32, on: cpu)
        #expect(throws: (any Error).self) { _ = try op.outputType([ValueType([4, 2, 2], .float32)]) }
        do { _ = try op.outputType([ValueType([4, 2, 2], .float32)]); Issue.record("no error") } catch {
            #expect("\(error)".contains("axis 0 must hold the 3 channels") && "\(error)".contains("[4, 2, 2]"), "\(error)")
        }
        do { _ = try op.outputType([ValueType([3, 2, 2], .float64)]); Issue.record("no error") } catch {
            #expect("\(error)".contains("float64"), "\(error)")
        }
        let x = try Tensor.zeros([2, 3, 2], dtype: .float32, on: cpu)
        do { _ = try x.channelAffine(scale: try Tensor.zeros([2], dtype: .float32, on: cpu), shift: nil, axis: 1); Issue.record("no error") } catch {
            #expect("\(error)".contains("need [3]"), "\(error)")
        }
    }

    /// tinydensenet (make_onnx_fixtures.py): DenseNet's norms read concatenations or follow
    /// ReLUs, so they stay, as ChannelAffine; the BatchNorm1d right after the head's Linear
    /// folds into it, the one after the ReLU stays. (Its numbers: ONNXTests.againstPyTorch.)
    @Test("the ONNX builder folds a BatchNormalization into the convolution or Linear before it, and makes the rest ChannelAffine")
    func builderChoice() throws {
        let model = try ONNXModel.load(fixturePath("onnx/tinydensenet/model.onnx"), on: cpu, dtype: .float32)
        let kinds = model.graph.nodes.map(\.op.kind)
        // Norms: norm0 (after the stem conv, folded); per dense layer norm1 (of a concat: kept)
        // and norm2 (after its 1×1 conv: folded); the transition's and norm5 kept; two BatchNorm1d.
        let affine = model.graph.nodes.filter { $0.op.kind == "ChannelAffine" }
        #expect(affine.count == 4 + 1 + 1 + 1, "\(kinds)")
        #expect(affine.filter { model.graph.types[$0.inputs[0]]?.shape == [32] }.count == 1, "one BatchNorm1d (of 32 features) stays")
        #expect(!kinds.contains("BatchNormalization"))
        let linears = model.graph.nodes.filter { $0.op.kind == "Linear" }
        #expect(linears.count == 2)
    }

    /// DenseNet's pattern: x [8, 16, 16] → norm → ReLU → a (8→32, 3×3) → concat(x, a) [40]
    /// → norm → ReLU → b (40→8, 3×3) → y (1.3 M multiply-adds a sample against the 4096
    /// elements its two transposes move: channels-last by the cost rule). Norms are ChannelAffine (scale in [0.5, 1.5], shift
    /// in [−0.3, 0.3]); weights scaled by 1/K; `absolute`: absolute values, no ReLU (the
    /// bound's graph); `nonNegative`: absolute values.
    static func denseBlock(dtype: DType, absolute: Bool = false, nonNegative: Bool = false) throws -> Graph {
        func values(_ n: Int, _ seed: UInt64, _ lo: Double, _ hi: Double) -> [Double] {
            let v = randomValues(n, seed: seed, lo, hi)
            return absolute || nonNegative ? v.map(abs) : v
        }
        func norm(_ c: Int, seed: UInt64) throws -> ChannelAffineGraphOp {
            ChannelAffineGraphOp(scale: try Tensor(values(c, seed, 0.5, 1.5), shape: [c], dtype: dtype, on: cpu),
                                 shift: try Tensor(values(c, seed + 1, -0.3, 0.3), shape: [c], dtype: dtype, on: cpu), axis: 0)
        }
        func conv(_ c: Int, _ oc: Int, _ k: Int, seed: UInt64) throws -> Conv2d {
            let scale = 1 / Double(c * k * k)
            return try Conv2d(weight: Tensor(values(oc * c * k * k, seed, -scale, scale), shape: [oc, c, k, k], dtype: dtype, on: cpu),
                              bias: Tensor(values(oc, seed + 1, -1, 1), shape: [oc], dtype: dtype, on: cpu), padding: [k / 2, k / 2])
        }
        func act() -> any GraphOp { absolute ? IdentityGraphOp() : LayerOp(ActivationLayer(.relu)) }
        return try Graph(inputs: [("x", ValueType([8, 16, 16], dtype))], nodes: [
            GraphNode("n0", try norm(8, seed: 71), inputs: ["x"], output: "n0"),
            GraphNode("r0", act(), inputs: ["n0"], output: "r0"),
            GraphNode("a", LayerOp(try conv(8, 32, 3, seed: 73)), inputs: ["r0"], output: "a"),
            GraphNode("cat", ConcatGraphOp(axis: 0, count: 2), inputs: ["x", "a"], output: "cat"),
            GraphNode("n1", try norm(40, seed: 75), inputs: ["cat"], output: "n1"),
            GraphNode("r1", act(), inputs: ["n1"], output: "r1"),
            GraphNode("b", LayerOp(try conv(40, 8, 3, seed: 77)), inputs: ["r1"], output: "y"),
        ], outputs: ["y"])
    }

    @Test("DenseNet's pattern runs channels-last as one stretch: the norms and the concatenation along the channels join the convolutions")
    func denseBlockRewrite() throws {
        let r = try Self.denseBlock(dtype: .float32).channelsLast(on: cpu, dtype: .float32)
        #expect(r.nodes.filter { ($0.op as? ChannelAffineGraphOp)?.axis == 2 }.map(\.name) == ["n0", "n1"])
        #expect(r.nodes.filter { ($0.op as? ConcatGraphOp)?.axis == 2 }.map(\.name) == ["cat"])
        #expect(r.nodes.filter { $0.op is ChannelsLastConvGraphOp }.map(\.name) == ["a", "b"])
        #expect(r.nodes.filter { $0.op is TransposeGraphOp }.count == 2, "x in, y out: \(r.nodes.map(\.name))")
    }

    @Test("the channels-last dense block against the NCHW one: outputs, and input gradients through a sweep executor")
    func denseBlockNumbers() throws {
        // Forward: norm (a product, a sum), a (72 terms and its bias), the concatenation (a
        // copy), norm, b (360 terms and its bias). Backward: that chain and its own (b's 72,
        // the norm's product, a's 288, the norm's product, the two branches' sum at x).
        let graphs = try ChannelsLastConvTests.expectRewriteMatches({ try Self.denseBlock(dtype: $0, absolute: $1, nonNegative: $2) },
                                                                    forwardTerms: 2 + 73 + 2 + 361,
                                                                    backwardTerms: (2 + 73 + 2 + 361) + (72 + 1 + 288 + 1 + 1),
                                                                    seed: 131)
        #expect(graphs.forward.nodes.contains { ($0.op as? ConcatGraphOp)?.axis == 2 })
    }
}
