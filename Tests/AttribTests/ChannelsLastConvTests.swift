import Attrib
import Testing

/// Convolutions of channels-last images (the CPU's Float32 on oneDNN) and the sweep-graph
/// rewrite that runs stretches of convolutions channels-last (`Graph.channelsLast`).
@Suite struct ChannelsLastConvTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let c: Int, oc: Int, kernel: [Int], stride: [Int], padding: [Int], h: Int, w: Int
        var testDescription: String { "\(c)→\(oc), \(kernel[0])×\(kernel[1]), stride \(stride), padding \(padding), \(h)×\(w)" }
        var k: Size2D { Size2D(kernel[0], kernel[1]) }
        var s: Size2D { Size2D(stride[0], stride[1]) }
        var p: Size2D { Size2D(padding[0], padding[1]) }
    }

    static let cases: [Case] = [
        Case(c: 8, oc: 16, kernel: [3, 3], stride: [1, 1], padding: [1, 1], h: 9, w: 11),
        Case(c: 16, oc: 8, kernel: [1, 1], stride: [1, 1], padding: [0, 0], h: 7, w: 7),      // a bottleneck's 1×1
        Case(c: 16, oc: 32, kernel: [1, 1], stride: [2, 2], padding: [0, 0], h: 8, w: 9),     // its strided shortcut
        Case(c: 8, oc: 8, kernel: [3, 3], stride: [2, 2], padding: [1, 1], h: 10, w: 10),
        Case(c: 3, oc: 16, kernel: [7, 7], stride: [2, 2], padding: [3, 3], h: 16, w: 16),    // a ResNet's stem
        Case(c: 4, oc: 6, kernel: [5, 3], stride: [1, 2], padding: [2, 0], h: 8, w: 9),
    ]

    /// x [N, C, H, W] as [N, H, W, C], and back.
    static func nhwc(_ v: [Double], _ n: Int, _ c: Int, _ h: Int, _ w: Int) -> [Double] {
        var out = [Double](repeating: 0, count: v.count)
        for i in 0..<n { for ch in 0..<c { for y in 0..<h { for x in 0..<w { out[((i * h + y) * w + x) * c + ch] = v[((i * c + ch) * h + y) * w + x] } } } }
        return out
    }

    static func layer(_ c: Case, dtype: DType, bias: Bool = true) throws -> Conv2d {
        let w = try Tensor(randomValues(c.oc * c.c * c.kernel[0] * c.kernel[1], seed: 41), shape: [c.oc, c.c] + c.kernel, dtype: dtype, on: cpu)
        let b = try bias ? Tensor(randomValues(c.oc, seed: 42), shape: [c.oc], dtype: dtype, on: cpu) : nil
        return try Conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding)
    }

    @Test("forward and input gradient against Float64 NCHW (1, 3 and 5 images: one call, and shares of the threads)", arguments: cases)
    func againstFloat64(_ c: Case) throws {
        try #require(cpu.offersChannelsLastConvolution(dtype: .float32), "oneDNN's CPU engine did not start")
        let reference = try Self.layer(c, dtype: .float64), single = try Self.layer(c, dtype: .float32)
        let (oh, ow) = ((c.h + 2 * c.padding[0] - c.kernel[0]) / c.stride[0] + 1, (c.w + 2 * c.padding[1] - c.kernel[1]) / c.stride[1] + 1)
        for n in [1, 3, 5] {
            let x = randomValues(n * c.c * c.h * c.w, seed: 43 + UInt64(n))
            let (y64, saved) = try reference.forward(Tensor(x, shape: [n, c.c, c.h, c.w], on: cpu))
            let dy = randomValues(y64.count, seed: 53 + UInt64(n))
            let dx64 = try reference.backward(Tensor(dy, shape: y64.shape, on: cpu), saved).doubles()
            let xl = try Tensor(Self.nhwc(x, n, c.c, c.h, c.w), shape: [n, c.h, c.w, c.c], dtype: .float32, on: cpu)
            let y = try #require(try xl.conv2dChannelsLast(weight: single.weight, bias: single.bias, stride: c.s, padding: c.p))
            #expect(y.shape == [n, oh, ow, c.oc])
            // Each output: the bias and K = C·kh·kw products of values in [−1, 1] in Float32: within
            // K·u·Σ|x||w| ≤ K·(K + 1)·u of the exact sum (the Float64 reference is exact to far less).
            let k = Double(c.c * c.kernel[0] * c.kernel[1]), u = DType.float32.unitRoundoff
            expectClose(try y.doubles(), Self.nhwc(try y64.doubles(), n, c.oc, oh, ow), bound: { _ in k * (k + 1) * u }, "forward, \(n) images")
            let dyl = try Tensor(Self.nhwc(dy, n, c.oc, oh, ow), shape: [n, oh, ow, c.oc], dtype: .float32, on: cpu)
            let dx = try #require(try dyl.conv2dInputGradientChannelsLast(weight: single.weight, imageShape: [n, c.h, c.w, c.c], stride: c.s, padding: c.p))
            // Each input's gradient: at most OC·kh·kw products of the same kind.
            let kb = Double(c.oc * c.kernel[0] * c.kernel[1])
            expectClose(try dx.doubles(), Self.nhwc(dx64, n, c.c, c.h, c.w), bound: { _ in kb * kb * u }, "input gradient, \(n) images")
        }
    }

    @Test("grouped and depthwise: forward and input gradient against Float64 NCHW (GroupedConv2d)",
          arguments: [(8, 12, 2, 3, 1, 1), (8, 8, 8, 3, 2, 1), (16, 16, 4, 1, 1, 0), (6, 6, 6, 5, 1, 2)])
    func groupedAgainstFloat64(_ c: Int, _ oc: Int, _ groups: Int, _ k: Int, _ stride: Int, _ pad: Int) throws {
        try #require(cpu.offersChannelsLastConvolution(dtype: .float32), "oneDNN's CPU engine did not start")
        let (n, h, w) = (3, 9, 10), (oh, ow) = ((9 + 2 * pad - k) / stride + 1, (10 + 2 * pad - k) / stride + 1)
        let wv = randomValues(oc * (c / groups) * k * k, seed: 44), bv = randomValues(oc, seed: 45)
        let reference = try GroupedConv2d(weight: Tensor(wv, shape: [oc, c / groups, k, k], on: cpu), bias: Tensor(bv, shape: [oc], on: cpu),
                                          groups: groups, stride: [stride, stride], padding: [pad, pad])
        let weight = try Tensor(wv, shape: [oc, c / groups, k, k], dtype: .float32, on: cpu), bias = try Tensor(bv, shape: [oc], dtype: .float32, on: cpu)
        let x = randomValues(n * c * h * w, seed: 46)
        let (y64, saved) = try reference.forward(Tensor(x, shape: [n, c, h, w], on: cpu))
        let dy = randomValues(y64.count, seed: 47)
        let dx64 = try reference.backward(Tensor(dy, shape: y64.shape, on: cpu), saved).doubles()
        let xl = try Tensor(Self.nhwc(x, n, c, h, w), shape: [n, h, w, c], dtype: .float32, on: cpu)
        let y = try #require(try xl.conv2dChannelsLast(weight: weight, bias: bias, stride: Size2D(stride, stride), padding: Size2D(pad, pad), groups: groups))
        // As for one group, with K = (C/groups)·kh·kw products per output and (OC/groups)·kh·kw per input gradient.
        let kf = Double(c / groups * k * k), kb = Double(oc / groups * k * k), u = DType.float32.unitRoundoff
        expectClose(try y.doubles(), Self.nhwc(try y64.doubles(), n, oc, oh, ow), bound: { _ in kf * (kf + 1) * u }, "forward")
        let dyl = try Tensor(Self.nhwc(dy, n, oc, oh, ow), shape: [n, oh, ow, oc], dtype: .float32, on: cpu)
        let dx = try #require(try dyl.conv2dInputGradientChannelsLast(weight: weight, imageShape: [n, h, w, c], stride: Size2D(stride, stride),
                                                                      padding: Size2D(pad, pad), groups: groups))
        expectClose(try dx.doubles(), Self.nhwc(dx64, n, c, h, w), bound: { _ in kb * kb * u }, "input gradient")
        // A weight that does not split into the groups: an error naming it.
        #expect(throws: AttribError.self) { _ = try xl.conv2dChannelsLast(weight: weight, bias: bias, stride: 1, padding: 0, groups: groups + 1) }
    }

    @Test("the graph op on every OpenCL device (which convolves NCHW: the op's fallback between transposes) against the CPU's oneDNN")
    func graphOpOnOpenCL() throws {
        for device in openCLDevices {
            for c in [Self.cases[0], Self.cases[2]] {
                func op(on d: any Device) throws -> ChannelsLastConvGraphOp {
                    let w = try Tensor(randomValues(c.oc * c.c * c.kernel[0] * c.kernel[1], seed: 65), shape: [c.oc, c.c] + c.kernel, dtype: .float32, on: d)
                    let b = try Tensor(randomValues(c.oc, seed: 66), shape: [c.oc], dtype: .float32, on: d)
                    return ChannelsLastConvGraphOp(try Conv2d(weight: w, bias: b, stride: c.stride, padding: c.padding))
                }
                let n = 3, x = randomValues(n * c.h * c.w * c.c, seed: 67)
                let (onCPU, onCL) = (try op(on: cpu), try op(on: device))
                let (y0, s0) = try onCPU.forward([Tensor(x, shape: [n, c.h, c.w, c.c], dtype: .float32, on: cpu)])
                let (y1, s1) = try onCL.forward([Tensor(x, shape: [n, c.h, c.w, c.c], dtype: .float32, on: device)])
                #expect(y1.shape == y0.shape && s1.layer != nil && s0.layer == nil)
                let dy = randomValues(y0.count, seed: 68)
                let g0 = try onCPU.backward(Tensor(dy, shape: y0.shape, dtype: .float32, on: cpu), s0, needed: [true])[0]!
                let g1 = try onCL.backward(Tensor(dy, shape: y0.shape, dtype: .float32, on: device), s1, needed: [true])[0]!
                // Each side within K·(K + 1)·u of the exact forward (section above), so twice that
                // apart; the gradients likewise with OC·kh·kw terms.
                let k = Double(c.c * c.kernel[0] * c.kernel[1]), kb = Double(c.oc * c.kernel[0] * c.kernel[1]), u = DType.float32.unitRoundoff
                expectClose(try y1.doubles(), try y0.doubles(), bound: { _ in 2 * k * (k + 1) * u }, "forward on \(device.info.id)")
                expectClose(try g1.doubles(), try g0.doubles(), bound: { _ in 2 * kb * kb * u }, "input gradient on \(device.info.id)")
            }
        }
    }

    @Test("the layer's weight copies: made once per layout, the same numbers as a copy per call")
    func preparedWeights() throws {
        let c = Self.cases[0], conv = try Self.layer(c, dtype: .float32)
        let prepared = PreparedWeights()
        for n in [2, 3, 5] {
            let x = try Tensor(randomValues(n * c.h * c.w * c.c, seed: 61), shape: [n, c.h, c.w, c.c], dtype: .float32, on: cpu)
            let kept = try #require(try x.conv2dChannelsLast(weight: conv.weight, bias: conv.bias, stride: c.s, padding: c.p, prepared: prepared))
            let fresh = try #require(try x.conv2dChannelsLast(weight: conv.weight, bias: conv.bias, stride: c.s, padding: c.p))
            try expectBitwise(kept, fresh, "forward, \(n) images")
            let dy = try Tensor(randomValues(kept.count, seed: 62), shape: kept.shape, dtype: .float32, on: cpu)
            let dxKept = try #require(try dy.conv2dInputGradientChannelsLast(weight: conv.weight, imageShape: x.shape, stride: c.s, padding: c.p, prepared: prepared))
            let dxFresh = try #require(try dy.conv2dInputGradientChannelsLast(weight: conv.weight, imageShape: x.shape, stride: c.s, padding: c.p))
            try expectBitwise(dxKept, dxFresh, "input gradient, \(n) images")
        }
        // One layout for the forward and one for the input gradient at most, whatever the batch.
        #expect((1...2).contains(prepared.count))
    }

    @Test("bad shapes are errors that name them")
    func badShapes() throws {
        let c = Self.cases[0], conv = try Self.layer(c, dtype: .float32)
        let x = try Tensor(randomValues(c.c * c.h * c.w, seed: 63), shape: [1, c.c, c.h, c.w], dtype: .float32, on: cpu)   // NCHW, C ≠ W
        #expect(throws: AttribError.self) { _ = try x.conv2dChannelsLast(weight: conv.weight, bias: conv.bias, stride: c.s, padding: c.p) }
        let dy = try Tensor(randomValues(4 * 16, seed: 64), shape: [1, 2, 2, 16], dtype: .float32, on: cpu)
        #expect(throws: AttribError.self) {
            _ = try dy.conv2dInputGradientChannelsLast(weight: conv.weight, imageShape: [1, c.h, c.w, c.c], stride: c.s, padding: c.p)
        }
    }

    @Test("attrib bench conv: both layouts timed per shape on the CPU, bad shapes named")
    func benchConv() throws {
        let r = try runAttrib(["bench", "conv", "--device", "cpu", "--shapes", "8x12x12-16k3s1p1,16x9x9-8k1s2,12x10x10-12k5s2p2g12,8x9x9-16k3p1g2",
                               "--images", "3", "--seconds", "0.02"])
        #expect(r.status == 0, "\(r.stderr)")
        let names = ["8x12x12-16k3s1p1", "16x9x9-8k1s2p0", "12x10x10-12k5s2p2g12", "8x9x9-16k3s1p1g2"]    // depthwise, 2 groups
        let rows = r.stdout.split(separator: "\n").filter { line in names.contains { line.hasPrefix($0 + " ") } }
        #expect(rows.count == 8, "\(r.stdout)")
        #expect(rows.allSatisfy { $0.contains("×") }, "channels-last timed beside NCHW: \(r.stdout)")
        for bad in ["8x12-16k3", "8x12x12-k3", "8x12x12-16q3", "8x12x12-16k3s1p1x"] {
            let b = try runAttrib(["bench", "conv", "--device", "cpu", "--shapes", bad])
            #expect(b.status != 0 && b.stderr.contains("bad shape '\(bad)'"), "\(bad): \(b.stderr)")
        }
        let groups = try runAttrib(["bench", "conv", "--device", "cpu", "--shapes", "8x12x12-16k3g3"])
        #expect(groups.status != 0 && groups.stderr.contains("3 groups must divide the input channels (8)"), "\(groups.stderr)")
    }

    // MARK: the rewrite

    /// x [8, 16, 16] → a (8→32, 3×3) → ReLU → b (32→32, 3×3) → + a's ReLU → ReLU → c (32→8, 1×1)
    /// → y: a residual block, weights scaled by 1/K, biases and weights from [−1, 1]; `absolute`:
    /// their absolute values and no ReLU (the bound's graph); `nonNegative`: their absolute values.
    static func block(dtype: DType, absolute: Bool = false, nonNegative: Bool = false, small: Bool = false) throws -> Graph {
        let hw = small ? 4 : 16
        func conv(_ c: Int, _ oc: Int, _ k: Int, seed: UInt64) throws -> Conv2d {
            let scale = 1 / Double(c * k * k)                                   // keeps every value O(1)
            var w = randomValues(oc * c * k * k, seed: seed).map { $0 * scale }, b = randomValues(oc, seed: seed + 1)
            if absolute || nonNegative { w = w.map(abs); b = b.map(abs) }
            return try Conv2d(weight: Tensor(w, shape: [oc, c, k, k], dtype: dtype, on: cpu), bias: Tensor(b, shape: [oc], dtype: dtype, on: cpu),
                              padding: [k / 2, k / 2])
        }
        // The absolute graph has no ReLU: |relu(v)| ≤ |v|, and its values are ≥ 0 anyway.
        let act: any GraphOp = absolute ? IdentityGraphOp() : LayerOp(ActivationLayer(.relu))
        return try Graph(inputs: [("x", ValueType([8, hw, hw], dtype))], nodes: [
            GraphNode("a", LayerOp(try conv(8, 32, 3, seed: 71)), inputs: ["x"], output: "a"),
            GraphNode("ra", act, inputs: ["a"], output: "ra"),
            GraphNode("b", LayerOp(try conv(32, 32, 3, seed: 73)), inputs: ["ra"], output: "b"),
            GraphNode("sum", BinaryGraphOp(.add), inputs: ["b", "ra"], output: "sum"),
            GraphNode("rs", act, inputs: ["sum"], output: "rs"),
            GraphNode("c", LayerOp(try conv(32, 8, 1, seed: 75)), inputs: ["rs"], output: "y"),
        ], outputs: ["y"])
    }

    @Test("the rewrite: one stretch, a transpose at each end, kept values and small images left alone")
    func rewriteShape() throws {
        let g = try Self.block(dtype: .float32)
        let r = try g.channelsLast(on: cpu, dtype: .float32)
        #expect(r.nodes.filter { $0.op is ChannelsLastConvGraphOp }.count == 3)
        #expect(r.nodes.filter { $0.op is TransposeGraphOp }.count == 2)          // x in, y out
        #expect(r.outputs == ["y"] && r.types["y"] == g.types["y"])
        // A kept value stays where its node makes it (the second ReLU's, read by a hook): a, its
        // ReLU, b and the add still run channels-last; c alone is not worth its transposes.
        let kept = try g.channelsLast(on: cpu, dtype: .float32, keeping: ["rs"])
        #expect(kept.nodes.contains { $0.output == "rs" && ($0.op as? LayerOp)?.layer is ActivationLayer })
        #expect(kept.nodes.filter { $0.op is ChannelsLastConvGraphOp }.map(\.name) == ["a", "b"])
        #expect(kept.types["rs"] == g.types["rs"])
        // Float64, an OpenCL device, and images small enough for the dense map: no rewrite.
        #expect(try Self.block(dtype: .float64).channelsLast(on: cpu, dtype: .float64).nodes.count == 6)
        for device in openCLDevices { #expect(try g.channelsLast(on: device, dtype: .float32).nodes.count == 6) }
        #expect(try Self.block(dtype: .float32, small: true).channelsLast(on: cpu, dtype: .float32).nodes.count == 6)
    }

    @Test("the rewrite's cost rule: a 1×1 of few channels between other ops stays NCHW")
    func costRule() throws {
        // x [16, 16, 16] → 1×1 (16→16) → y: 256 multiply-adds a pixel against 32 elements moved.
        let w = try Tensor(randomValues(256, seed: 81), shape: [16, 16, 1, 1], dtype: .float32, on: cpu)
        let g = try Graph(inputs: [("x", ValueType([16, 16, 16], .float32))],
                          nodes: [GraphNode("c", LayerOp(try Conv2d(weight: w, bias: nil)), inputs: ["x"], output: "y")], outputs: ["y"])
        #expect(try g.channelsLast(on: cpu, dtype: .float32).nodes.count == 1)
    }

    @Test("the rewritten block against the NCHW one: outputs, and input gradients through a sweep executor")
    func rewriteNumbers() throws {
        // Forward: the convolutions' K·u (K = 72, 288, 32) and the add's u. Backward: each
        // product OC·kh·kw terms (288, 288, 8) and the add's, bounded by the chain of |W|ᵀ on |dy|.
        let graphs = try Self.expectRewriteMatches({ try Self.block(dtype: $0, absolute: $1, nonNegative: $2) },
                                                   forwardTerms: 72 + 288 + 32 + 1, backwardTerms: 288 + 288 + 8 + 2, seed: 91)
        #expect(graphs.gradient.nodes.contains { $0.op is ChannelsLastConvGraphOp })
    }

    /// A block x [8, 16, 16] → y [8, 16, 16] (`block(dtype, absolute, nonNegative)`) rewritten
    /// channels-last against itself as written, 3 samples through sweep executors, inputs and
    /// upstream from seeds seed, seed + 1, seed + 2. Returns the two rewritten graphs.
    ///
    /// Outputs, signs mixed (ReLU's kinks included: |relu(a) − relu(b)| ≤ |a − b|): each path's
    /// error is, to first order, u per rounding along the longest chain (`forwardTerms`) times
    /// the absolute values behind it, which the absolute graph (|W|, |b|, |x|, no ReLU; a
    /// product's relative errors add) bounds from above; the two paths apart by twice that.
    /// Input gradients with weights, biases and inputs ≥ 0: every ReLU passes, both paths take
    /// the same branches, and the error is bounded likewise by the absolute graph's gradient of
    /// |dy|, over the forward's and the backward's chains (`backwardTerms`).
    static func expectRewriteMatches(_ block: (DType, _ absolute: Bool, _ nonNegative: Bool) throws -> Graph,
                                     forwardTerms: Int, backwardTerms: Int, seed: UInt64,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws -> (forward: Graph, gradient: Graph) {
        let n = 3, shape = [n, 8, 16, 16], count = shape.reduce(1, *), u = DType.float32.unitRoundoff
        let absolute = GraphExecutor(try block(.float64, true, false))
        let plain = GraphExecutor(try block(.float32, false, false))
        let nhwc = GraphExecutor(try plain.graph.channelsLast(on: cpu, dtype: .float32))
        let x = randomValues(count, seed: seed)
        let y0 = try plain.forward(["x": Tensor(x, shape: shape, dtype: .float32, on: cpu)])["y"]!.doubles()
        let y1 = try nhwc.forward(["x": Tensor(x, shape: shape, dtype: .float32, on: cpu)])["y"]!.doubles()
        let yBound = try absolute.forward(["x": Tensor(x.map { Swift.abs($0) }, shape: shape, on: cpu)])["y"]!.doubles()
        expectClose(y1, y0, bound: { 2 * Double(forwardTerms) * u * yBound[$0] }, "outputs", sourceLocation: sourceLocation)

        let plainPositive = GraphExecutor(try block(.float32, false, true))
        let nhwcPositive = GraphExecutor(try plainPositive.graph.channelsLast(on: cpu, dtype: .float32))
        let xp = randomValues(count, seed: seed + 1, 0, 1), dy = randomValues(count, seed: seed + 2)
        func gradient(_ e: GraphExecutor, _ dtype: DType, _ up: [Double]) throws -> [Double] {
            let run = try e.forward(["x": Tensor(xp, shape: shape, dtype: dtype, on: cpu)], gradientsFor: ["x"])
            return try e.backward(run, upstream: ["y": Tensor(up, shape: shape, dtype: dtype, on: cpu)], wrt: ["x"])["x"]!.doubles()
        }
        let g0 = try gradient(plainPositive, .float32, dy), g1 = try gradient(nhwcPositive, .float32, dy)
        let gBound = try gradient(absolute, .float64, dy.map { Swift.abs($0) })
        expectClose(g1, g0, bound: { 2 * Double(backwardTerms) * u * gBound[$0] }, "input gradients", sourceLocation: sourceLocation)
        return (nhwc.graph, nhwcPositive.graph)
    }
}
