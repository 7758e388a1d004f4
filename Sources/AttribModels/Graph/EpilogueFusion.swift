import AttribCore

/// A Linear followed by an activation, as one op: where the device fuses a product's
/// epilogue (OpenCL, Device.gemmFused), the forward is one launch that adds the bias,
/// applies f and keeps f′(z), z never written; the backward is one launch of (dy ⊙ f′)·W,
/// the multiply done as the product reads its operand. Elsewhere the two layers run
/// apart. Both ways give the same values bit for bit (FusedGEMMTests). Made by
/// `Graph.fusingLinearActivations` for every graph with the pattern: MLP blocks, a
/// transformer encoder's feed-forward, an ONNX Gemm → Relu.
public struct LinearActivationGraphOp: GraphOp, @unchecked Sendable {
    public let linear: Linear
    public let activation: ActivationLayer
    init(_ linear: Linear, _ activation: ActivationLayer) { self.linear = linear; self.activation = activation }
    public var kind: String { "LinearActivation" }
    public var description: String { "\(linear.description) → \(activation.description)" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        try LayerOp(activation).outputType([try LayerOp(linear).outputType(inputs)])
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0], rows = x.count / linear.inFeatures
        let outShape = [x.batchSize] + (try linear.outputShape(x.sampleShape))
        if let wT = linear.weightTransposed,
           let (y, d) = try x.reshaped([rows, linear.inFeatures]).matmulBiasActivated(wT, bias: linear.bias, activation: activation.kind) {
            // [rows, out] each; the backward needs f′ and the input's shape, not the input.
            return (try y.reshaped(outShape), OpSaved(tensors: [d], shapes: [x.shape]))
        }
        let (z, sl) = try linear.forward(x)
        let (y, sa) = try activation.forward(z)
        return (y, OpSaved(layer: sl, shapes: [x.shape], pair: sa))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        guard saved.layer == nil, let d = saved.tensors.first else {
            return [try linear.backward(try activation.backward(dy, saved.pair!), saved.layer!)]
        }
        let dz = try dy.reshaped(d.shape)                                   // [rows, out]
        // [rows, out] ⊙ [rows, out] · [out, in] → [rows, in]
        let dx = try dz.multipliedMatmul(d, linear.weight) ?? dz.multiplying(d).matmul(linear.weight)
        return [try dx.reshaped(saved.shapes[0])]
    }

    /// f′(z), the output's size (the input is not kept).
    public func keptElements(_ inputs: [ValueType], output: ValueType) -> Int { output.count }
}

/// A Conv2d followed by an activation, as one op, where the device fuses the activation
/// into its implicit-GEMM convolution (OpenCL GPUs; Device.conv2dImplicitGEMM with an
/// activation): one launch adds the bias, applies f and keeps f′, the convolution's output
/// never written; the backward gathers dy ⊙ f′ as its operand. Elsewhere the two layers run
/// apart; bitwise the same either way (FusedGEMMTests). ResNets' Conv → ReLU (after
/// BatchNormalization folded), MobileNets' Conv → HardSwish.
public struct ConvActivationGraphOp: GraphOp, @unchecked Sendable {
    public let conv: Conv2d
    public let activation: ActivationLayer
    init(_ conv: Conv2d, _ activation: ActivationLayer) { self.conv = conv; self.activation = activation }
    public var kind: String { "ConvActivation" }
    public var description: String { "\(conv.description) → \(activation.description)" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        try LayerOp(activation).outputType([try LayerOp(conv).outputType(inputs)])
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        // Only where the layer itself would run one implicit GEMM (not its small-image map).
        if x.rank == 4, try conv.unrolledMap(input: x.sampleShape, output: conv.outputShape(x.sampleShape)) == nil,
           let (y, d) = try x.conv2dImplicitActivated(weight: conv.weight, bias: conv.bias, stride: conv.s2, padding: conv.p2,
                                                      activation: activation.kind) {
            return (y, OpSaved(tensors: [d], shapes: [x.shape]))   // f′ and the input's shape, not the input
        }
        let (z, sc) = try conv.forward(x)
        let (y, sa) = try activation.forward(z)
        return (y, OpSaved(layer: sc, shapes: [x.shape], pair: sa))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        guard saved.layer == nil, let d = saved.tensors.first else {
            return [try conv.backward(try activation.backward(dy, saved.pair!), saved.layer!)]
        }
        let image = saved.shapes[0]
        if let dx = try dy.conv2dInputGradientImplicit(weight: conv.weight, imageShape: image, stride: conv.s2, padding: conv.p2, multiplier: d)
            ?? dy.multiplying(d).conv2dInputGradientImplicit(weight: conv.weight, imageShape: image, stride: conv.s2, padding: conv.p2) {
            return [dx]
        }
        throw AttribError.invalidArgument(op: description, detail: "\(dy.device.info.id) ran the forward as an implicit GEMM but declines its backward")
    }

    /// f′(z), the output's size (the input is not kept).
    public func keptElements(_ inputs: [ValueType], output: ValueType) -> Int { output.count }
}

extension Graph {
    /// The graph with every Conv2d → activation pair fused into one node, on the same
    /// conditions as `fusingLinearActivations`.
    public func fusingConvActivations(keeping keep: Set<String> = []) throws -> Graph {
        try fusingPairs(keeping: keep) { first, act in
            guard let conv = first as? Conv2d else { return nil }
            return ConvActivationGraphOp(conv, act)
        }
    }

    /// Every `first` → activation pair where `make` gives a fused op for the first layer, the
    /// first's output read by the activation alone and neither a graph output nor in `keep`.
    func fusingPairs(keeping keep: Set<String>, _ make: (any Layer, ActivationLayer) -> (any GraphOp)?) throws -> Graph {
        var readers: [String: Int] = [:]
        for n in nodes { for v in n.inputs { readers[v, default: 0] += 1 } }
        let byOutput = Dictionary(uniqueKeysWithValues: nodes.map { ($0.output, $0) })
        var fusedAway = Set<String>()
        var rewritten: [GraphNode] = []
        for n in nodes {
            if let act = (n.op as? LayerOp)?.layer as? ActivationLayer,
               let l = byOutput[n.inputs[0]], let first = (l.op as? LayerOp)?.layer, let op = make(first, act),
               readers[l.output] == 1, !keep.contains(l.output), !outputs.contains(l.output) {
                fusedAway.insert(l.output)
                rewritten.append(GraphNode(n.name, op, inputs: l.inputs, output: n.output))
            } else {
                rewritten.append(n)
            }
        }
        return try Graph(inputs: inputs, nodes: rewritten.filter { !fusedAway.contains($0.output) }, outputs: outputs)
    }

    /// The graph with every Linear → activation pair fused into one node, where the
    /// Linear's output is read by the activation alone and is neither a graph output nor
    /// one of `keep` (values a caller hooks or cuts at, such as IG's first affine layer),
    /// and its weight is a Float32/Float64 matrix (16-bit weights widen in blocks,
    /// Linear+HalfWeight). The fused node keeps the activation's name and output value.
    public func fusingLinearActivations(keeping keep: Set<String> = []) throws -> Graph {
        try fusingPairs(keeping: keep) { first, act in
            guard let linear = first as? Linear, !linear.weight.dtype.isStorageOnly else { return nil }
            return LinearActivationGraphOp(linear, act)
        }
    }

    /// The graph a sweep runs on `device`: activation → pooling pairs fused, and Linear →
    /// activation pairs where the device fuses a product's epilogue, and Conv2d → activation
    /// pairs where it also runs convolutions as implicit GEMMs, keeping the first affine
    /// layer's output (IG's cut) and `keep`.
    public func forSweeps(on device: any Device, dtype: DType, keeping keep: Set<String> = []) throws -> Graph {
        let pooled = try fusingActivationPools(keeping: keep)
        guard device.fusesGEMMEpilogues(dtype: dtype) else { return pooled }
        let kept = keep.union(pooled.firstAffine().map { [$0.output] } ?? [])
        let linear = try pooled.fusingLinearActivations(keeping: kept)
        return device.offersImplicitConvolution(dtype: dtype) ? try linear.fusingConvActivations(keeping: kept) : linear
    }
}
