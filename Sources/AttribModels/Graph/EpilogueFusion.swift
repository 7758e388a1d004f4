import AttribCore

/// A layer followed by an activation, as one op: where the device fuses the activation into
/// the layer's product (OpenCL: Device.gemmFused, and the implicit-GEMM convolution with an
/// activation), the forward is one launch that adds the bias, applies f and keeps f′(z), z
/// never written, and the backward is one launch that forms dy ⊙ f′ as it reads its operand.
/// Elsewhere the two layers run apart. Both ways give the same values bit for bit
/// (FusedGEMMTests). Each op says only how its layer fuses; running apart, the shape rule
/// and the memory plan are here once.
protocol LayerActivationGraphOp: GraphOp {
    var first: any Layer { get }
    var activation: ActivationLayer { get }
    /// (f(z), f′(z)) of the fused pass, y shaped as the op's output; nil where the device
    /// does not fuse (the layers then run apart).
    func fusedForward(_ x: Tensor) throws -> (y: Tensor, derivative: Tensor)?
    /// The input gradient, of the input's shape, from dy and the f′ `fusedForward` kept.
    func fusedBackward(_ dy: Tensor, derivative d: Tensor, inputShape: [Int]) throws -> Tensor
}

extension LayerActivationGraphOp {
    public var description: String { "\(first.description) → \(activation.description)" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        try LayerOp(activation).outputType([try LayerOp(first).outputType(inputs)])
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        if let (y, d) = try fusedForward(x) {
            return (y, OpSaved(tensors: [d], shapes: [x.shape]))   // f′ and the input's shape, not the input
        }
        let (z, s1) = try first.forward(x)
        let (y, s2) = try activation.forward(z)
        return (y, OpSaved(layer: s1, shapes: [x.shape], pair: s2))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        guard saved.layer == nil, let d = saved.tensors.first else {
            return [try first.backward(try activation.backward(dy, saved.pair!), saved.layer!)]
        }
        return [try fusedBackward(dy, derivative: d, inputShape: saved.shapes[0])]
    }

    /// f′(z), the output's size (the input is not kept).
    public func keptElements(_ inputs: [ValueType], output: ValueType) -> Int { output.count }
}

/// Linear → activation (MLP blocks, a transformer encoder's feed-forward, an ONNX Gemm →
/// Relu), made by `Graph.fusingLinearActivations`.
public struct LinearActivationGraphOp: LayerActivationGraphOp, @unchecked Sendable {
    public let linear: Linear
    public let activation: ActivationLayer
    init(_ linear: Linear, _ activation: ActivationLayer) { self.linear = linear; self.activation = activation }
    var first: any Layer { linear }
    public var kind: String { "LinearActivation" }

    func fusedForward(_ x: Tensor) throws -> (y: Tensor, derivative: Tensor)? {
        guard let wT = linear.weightTransposed,
              let (y, d) = try x.reshaped([x.count / linear.inFeatures, linear.inFeatures])
                  .matmulBiasActivated(wT, bias: linear.bias, activation: activation.kind) else { return nil }
        return (try y.reshaped([x.batchSize] + linear.outputShape(x.sampleShape)), d)   // d stays [rows, out]
    }

    func fusedBackward(_ dy: Tensor, derivative d: Tensor, inputShape: [Int]) throws -> Tensor {
        let dz = try dy.reshaped(d.shape)                                   // [rows, out]
        // [rows, out] ⊙ [rows, out] · [out, in] → [rows, in]
        let dx = try dz.multipliedMatmul(d, linear.weight) ?? dz.multiplying(d).matmul(linear.weight)
        return try dx.reshaped(inputShape)
    }
}

/// Conv2d → activation (ResNets' Conv → ReLU once BatchNormalization is folded, MobileNets'
/// Conv → HardSwish), made by `Graph.fusingConvActivations`, where the device runs
/// convolutions as implicit GEMMs.
public struct ConvActivationGraphOp: LayerActivationGraphOp, @unchecked Sendable {
    public let conv: Conv2d
    public let activation: ActivationLayer
    init(_ conv: Conv2d, _ activation: ActivationLayer) { self.conv = conv; self.activation = activation }
    var first: any Layer { conv }
    public var kind: String { "ConvActivation" }

    func fusedForward(_ x: Tensor) throws -> (y: Tensor, derivative: Tensor)? {
        // Only where the layer itself would run one implicit GEMM (not its small-image map).
        guard x.rank == 4, try conv.unrolledMap(input: x.sampleShape, output: conv.outputShape(x.sampleShape)) == nil else { return nil }
        return try x.conv2dImplicitActivated(weight: conv.weight, bias: conv.bias, stride: conv.s2, padding: conv.p2, activation: activation.kind)
    }

    func fusedBackward(_ dy: Tensor, derivative d: Tensor, inputShape: [Int]) throws -> Tensor {
        if let dx = try dy.conv2dInputGradientImplicit(weight: conv.weight, imageShape: inputShape, stride: conv.s2, padding: conv.p2, multiplier: d)
            ?? dy.multiplying(d).conv2dInputGradientImplicit(weight: conv.weight, imageShape: inputShape, stride: conv.s2, padding: conv.p2) {
            return dx
        }
        throw AttribError.invalidArgument(op: description, detail: "\(dy.device.info.id) ran the forward as an implicit GEMM but declines its backward")
    }
}

extension Graph {
    /// The graph with every Linear → activation pair fused into one node (`fusingPairs`'s
    /// conditions), where the Linear's weight is a Float32/Float64 matrix (16-bit weights widen
    /// in blocks, Linear+HalfWeight). The fused node keeps the activation's name and output.
    public func fusingLinearActivations(keeping keep: Set<String> = []) throws -> Graph {
        try fusingPairs(keeping: keep) { l, n in
            guard let act = (n.op as? LayerOp)?.layer as? ActivationLayer, let linear = (l.op as? LayerOp)?.layer as? Linear,
                  !linear.weight.dtype.isStorageOnly else { return nil }
            return LinearActivationGraphOp(linear, act)
        }
    }

    /// The graph with every Conv2d → activation pair fused into one node, likewise.
    public func fusingConvActivations(keeping keep: Set<String> = []) throws -> Graph {
        try fusingPairs(keeping: keep) { c, n in
            guard let act = (n.op as? LayerOp)?.layer as? ActivationLayer, let conv = (c.op as? LayerOp)?.layer as? Conv2d else { return nil }
            return ConvActivationGraphOp(conv, act)
        }
    }

    /// The graph a sweep runs on `device`: x ⊙ sigmoid(x) as SiLU (`fusingSwish`), slices
    /// moved early (`selectingRowsEarly`), activation
    /// → pooling pairs and attention scores' scales (`fusingMatMulScales`) fused, and Linear →
    /// activation pairs where the device fuses a product's epilogue, and Conv2d → activation
    /// pairs where it also runs convolutions as implicit GEMMs; elsewhere, convolutions
    /// channels-last where the device offers that (`channelsLast`). The first affine layer's
    /// output (IG's cut) and `keep` kept.
    public func forSweeps(on device: any Device, dtype: DType, keeping keep: Set<String> = []) throws -> Graph {
        // Slices first (a classifier's last block on the rows its head reads), the cut kept.
        let rows = try fusingSwish(keeping: keep).selectingRowsEarly(keeping: keep.union(firstAffine().map { [$0.output] } ?? []))
        let pooled = try rows.fusingActivationPools(keeping: keep).fusingMatMulScales(keeping: keep)
        let kept = keep.union(pooled.firstAffine().map { [$0.output] } ?? [])
        // The CPU's Float32: stretches of convolutions channels-last (Graph+ChannelsLast.swift).
        guard device.fusesGEMMEpilogues(dtype: dtype) else { return try pooled.channelsLast(on: device, dtype: dtype, keeping: kept) }
        let linear = try pooled.fusingLinearActivations(keeping: kept)
        return device.offersImplicitConvolution(dtype: dtype) ? try linear.fusingConvActivations(keeping: kept) : linear
    }
    /// The graph forward-only passes run on `device` (predict, Sobol, deletion curves, IG's
    /// ends): x ⊙ sigmoid(x) as SiLU, slices moved early, and convolutions channels-last where
    /// the device offers that, with `keep` and the first affine layer's output (IG's cut, fed
    /// directly) kept. Not the sweep's other fusions: they keep f′ for a backward that a
    /// forward pass never runs.
    public func forForwards(on device: any Device, dtype: DType, keeping keep: Set<String> = []) throws -> Graph {
        let kept = keep.union(firstAffine().map { [$0.output] } ?? [])
        return try fusingSwish(keeping: kept).selectingRowsEarly(keeping: kept).channelsLast(on: device, dtype: dtype, keeping: kept)
    }
}
