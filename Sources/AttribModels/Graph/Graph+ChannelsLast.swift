import AttribCore

// Channels-last stretches of a sweep graph, where the device convolves channels-last images
// (the CPU backend's Float32 on oneDNN).
//
// Why: oneDNN's kernels read and write NHWC (or its blocked layouts) directly. Called on NCHW
// values, every convolution reordered its input and output around the kernel, and ResNet-50's
// sweep ran no faster than on im2col + OpenBLAS; with the values between convolutions kept
// NHWC, its convolutions take about two thirds of that time (conv_dnnl.c has the figures).
// What lies between a network's convolutions is mostly elementwise (activations, residual
// adds, BatchNormalization folded into the convolution), and an elementwise op does not care
// how its values are laid out, so a whole stretch of convolutions runs channels-last with one
// transpose where it starts and one where it ends.

/// A convolution (Conv2d, or a GroupedConv2d: grouped and depthwise) on channels-last values:
/// x [H, W, C] → y [OH, OW, OC] per sample, the layer's weight as stored. Its backward needs
/// only the input's shape.
public struct ChannelsLastConvGraphOp: GraphOp, @unchecked Sendable {
    /// The layer, which also runs the geometries the device declines (between transposes).
    public let layer: any Layer
    let weight: Tensor, bias: Tensor?, stride: Size2D, padding: Size2D, groups: Int, prepared: PreparedWeights

    public init(_ conv: Conv2d) {
        layer = conv; weight = conv.weight; bias = conv.bias; stride = conv.s2; padding = conv.p2; groups = 1
        prepared = conv.preparedWeights
    }

    public init(_ conv: GroupedConv2d) {
        let first = conv.convolutions[0]
        layer = conv; weight = conv.weight; bias = conv.bias; stride = first.s2; padding = first.p2
        groups = conv.convolutions.count; prepared = conv.preparedWeights
    }

    public var kind: String { "Conv2d NHWC" }
    public var description: String { "\(layer.description), channels-last" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        guard x.shape.count == 3 else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(x.shape), expected [H, W, C]")
        }
        let out = try layer.outputShape([x.shape[2], x.shape[0], x.shape[1]])      // [OC, OH, OW]
        return ValueType([out[1], out[2], out[0]], x.dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]                                                               // [N, H, W, C]
        if let y = try x.conv2dChannelsLast(weight: weight, bias: bias, stride: stride, padding: padding, groups: groups,
                                             prepared: prepared) {
            return (y, OpSaved(shapes: [x.shape]))                                      // [N, OH, OW, OC]
        }
        // A geometry the device declines: the layer itself, between transposes.
        let (y, s) = try layer.forward(try TransposeGraphOp.permute(x, Self.toNCHW))
        return (try TransposeGraphOp.permute(y, Self.toNHWC), OpSaved(layer: s, shapes: [x.shape]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        if let s = saved.layer {                                                        // the forward ran NCHW
            return [try TransposeGraphOp.permute(try layer.backward(try TransposeGraphOp.permute(dy, Self.toNCHW), s), Self.toNHWC)]
        }
        guard let dx = try dy.conv2dInputGradientChannelsLast(weight: weight, imageShape: saved.shapes[0], stride: stride,
                                                              padding: padding, groups: groups, prepared: prepared) else {
            throw AttribError.invalidArgument(op: description, detail: "\(dy.device.info.id) ran the forward channels-last but declines its input gradient")
        }
        return [dx]
    }

    /// [H, W, C] → [C, H, W] and back, per sample.
    static let toNCHW = [2, 0, 1], toNHWC = [1, 2, 0]
}

extension Graph {
    /// The graph with its convolutions, and the elementwise ops between them, on channels-last
    /// values, where `device` convolves channels-last `dtype` images; else the graph itself.
    ///
    /// Rule: a Conv2d on images too large for its dense small-image map, a grouped or depthwise
    /// convolution, an activation, an elementwise Add/Sub/Mul of two same-shaped values, global
    /// average pooling, a squeeze-and-excitation gate ([C, H, W] ⊙ [C, 1, 1]), a per-channel
    /// affine map (a BatchNormalization kept) or a concatenation along the channels (DenseNet's
    /// blocks) can run channels-last. Those that read
    /// one another form stretches. A stretch runs channels-last where its convolutions' work
    /// outweighs the transposes it needs (`channelsLastMACsPerMovedElement`): a transpose in
    /// for each value it reads from outside and a transpose back for each value it gives to
    /// the rest of the graph (under the value's own name, so readers and the graph's outputs
    /// are unchanged). A value in `keep` (a hook's, IG's cut) stays where its own node makes
    /// it, in its own layout: that node stays outside.
    public func channelsLast(on device: any Device, dtype: DType, keeping keep: Set<String> = []) throws -> Graph {
        guard device.offersChannelsLastConvolution(dtype: dtype) else { return self }
        // Which nodes can run channels-last, and which of them are convolutions.
        var can = [Bool](repeating: false, count: nodes.count), isConv = can
        for (i, n) in nodes.enumerated() where !keep.contains(n.output) && types[n.output]?.dtype == dtype {
            let ins = n.inputs.map { types[$0]! }
            guard ins.allSatisfy({ $0.shape.count == 3 }) else { continue }         // images [C, H, W]
            switch n.op {
            case let l as LayerOp:
                if let conv = l.layer as? Conv2d,
                   let out = try? conv.outputShape(ins[0].shape), !conv.unrolls(input: ins[0].shape, output: out) {
                    can[i] = true; isConv[i] = true
                } else if l.layer is GroupedConv2d {
                    can[i] = true; isConv[i] = true
                } else if l.layer is ActivationLayer {
                    can[i] = true
                }
            case is BinaryGraphOp:
                can[i] = ins.count == 2 && ins[0] == ins[1]
            case is GlobalAvgPoolGraphOp:
                can[i] = true
            case is BroadcastMulGraphOp:                                            // a [C, H, W] gated by s [C, 1, 1]
                can[i] = BroadcastMulGraphOp.leading(ins[0].shape, ins[1].shape) == 1
            case let a as ChannelAffineGraphOp:                                    // a BatchNormalization kept (DenseNet's)
                can[i] = a.axis == 0
            case let c as ConcatGraphOp:                                           // along the channels (DenseNet's blocks)
                can[i] = c.axis == 0 || c.axis == -3
            default: break
            }
        }
        // Stretches: union-find over the edges between such nodes.
        var root = Array(nodes.indices)
        func find(_ i: Int) -> Int { var i = i; while root[i] != i { root[i] = root[root[i]]; i = root[i] }; return i }
        for (i, n) in nodes.enumerated() where can[i] {
            for v in n.inputs { if let p = producer[v], can[p] { root[find(p)] = find(i) } }
        }
        // Each stretch's convolutions' multiply-adds (grouped ones weighted, below) and the
        // elements its transposes move, per sample. A value whose plane is one pixel ([C, 1, 1],
        // pooled or a gate) has the same memory in both layouts: it crosses by a reshape and
        // moves nothing.
        func movedCount(_ v: String) -> Int { Self.onePixelPlane(types[v]!.shape) ? 0 : types[v]!.count }
        var macs: [Int: Int] = [:], moved: [Int: Int] = [:], enters: [Int: Set<String>] = [:]
        let readOutside = Set(nodes.indices.filter { !can[$0] }.flatMap { nodes[$0].inputs }).union(outputs)
        for (i, n) in nodes.enumerated() where can[i] {
            let r = find(i), out = types[n.output]!
            if isConv[i], let layer = (n.op as? LayerOp)?.layer {
                // Per output element: its group's input channels times the kernel.
                if let conv = layer as? Conv2d { macs[r, default: 0] += out.count * conv.inChannels * conv.kernel[0] * conv.kernel[1] }
                if let g = layer as? GroupedConv2d, let c = g.convolutions.first {
                    macs[r, default: 0] += Self.channelsLastGroupedMACWeight * out.count * c.inChannels * c.kernel[0] * c.kernel[1]
                }
            }
            for v in n.inputs where producer[v].map({ !can[$0] }) ?? true { enters[r, default: []].insert(v) }
            if readOutside.contains(n.output) { moved[r, default: 0] += movedCount(n.output) }
        }
        for (r, vs) in enters { moved[r, default: 0] += vs.reduce(0) { $0 + movedCount($1) } }
        // Worth it where the convolutions outweigh the transposes. Measured (2 threads, AVX-512):
        // oneDNN saved about 8 ps a multiply-add over im2col + OpenBLAS (ResNet-50), and a
        // transpose there and back cost about 1.3 ns an element: even at about 170 multiply-adds
        // an element. ResNet-50's stretch has 13,000. MobileNetV3's stretches, when its
        // depthwise convolutions and squeeze-excitation stayed NCHW, had about 20 and ran 10%
        // slower channels-last; with both in, its sweep is one stretch from its stem on.
        let member = nodes.indices.map { i in
            can[i] && (macs[find(i)] ?? 0) >= Self.channelsLastMACsPerMovedElement * max(1, moved[find(i)] ?? 0)
        }
        guard member.contains(true) else { return self }

        // Rewrite: members read and write channels-last names; transposes at the edges.
        var names = Set(types.keys)
        func fresh(_ base: String) -> String {
            var s = base
            while names.contains(s) { s += "'" }
            names.insert(s)
            return s
        }
        /// The op that takes value `v` (of NCHW type [C, H, W]) into channels-last or back: a
        /// transpose, or a reshape ([C, 1, 1] ↔ [1, 1, C]) where its plane is one pixel.
        func edge(_ v: String, toNHWC: Bool) -> any GraphOp {
            let shape = types[v]!.shape
            guard Self.onePixelPlane(shape) else { return TransposeGraphOp(toNHWC ? ChannelsLastConvGraphOp.toNHWC : ChannelsLastConvGraphOp.toNCHW) }
            return ReshapeGraphOp(toNHWC ? [1, 1, shape[0]] : shape)
        }
        var nhwc: [String: String] = [:]                      // value → its channels-last twin
        var rewritten: [GraphNode] = []
        let readByOthers = Set(nodes.indices.filter { !member[$0] }.flatMap { nodes[$0].inputs }).union(outputs)
        for (i, n) in nodes.enumerated() {
            guard member[i] else { rewritten.append(n); continue }
            let ins = n.inputs.map { v -> String in
                if let t = nhwc[v] { return t }
                let t = fresh("\(v) (NHWC)")                  // a value from outside: in through a transpose
                rewritten.append(GraphNode("\(v) to NHWC", edge(v, toNHWC: true), inputs: [v], output: t))
                nhwc[v] = t
                return t
            }
            let out = fresh("\(n.output) (NHWC)")
            nhwc[n.output] = out
            let layer = (n.op as? LayerOp)?.layer
            let op: any GraphOp = (layer as? Conv2d).map { ChannelsLastConvGraphOp($0) }
                ?? (layer as? GroupedConv2d).map { ChannelsLastConvGraphOp($0) }
                ?? (n.op is GlobalAvgPoolGraphOp ? ChannelsLastGlobalAvgPoolGraphOp() : nil)
                ?? (n.op is BroadcastMulGraphOp ? ChannelsLastBroadcastMulGraphOp() : nil)
                ?? (n.op as? ChannelAffineGraphOp)?.channelsLast
                ?? (n.op as? ConcatGraphOp).map { ConcatGraphOp(axis: 2, count: $0.arity) } ?? n.op
            rewritten.append(GraphNode(n.name, op, inputs: ins, output: out))
            if readByOthers.contains(n.output) {              // back to NCHW under its own name
                rewritten.append(GraphNode("\(n.name) to NCHW", edge(n.output, toNHWC: false), inputs: [out], output: n.output))
            }
        }
        return try Graph(inputs: inputs, nodes: rewritten, outputs: outputs)
    }

    /// A stretch runs channels-last where its convolutions do at least this many multiply-adds
    /// per element its transposes move (about 1.5× the break-even measured; `channelsLast`).
    static let channelsLastMACsPerMovedElement = 256

    /// How many dense multiply-adds a grouped or depthwise one counts as in that rule: oneDNN
    /// saved 60–110 ps a multiply-add over GroupedConv2d's NCHW paths (`attrib bench conv`,
    /// MobileNetV3's depthwise and ResNeXt's 32-group shapes: 3–20× faster), against about
    /// 8 ps for a dense one; counted at 8 to stay on the safe side.
    static let channelsLastGroupedMACWeight = 8

    /// A per-sample [C, 1, 1] (or [1, 1, C]): the same memory channels-first and channels-last.
    static func onePixelPlane(_ shape: [Int]) -> Bool { shape.count == 3 && shape[1] == 1 && shape[2] == 1 }
}
