import AttribCore

/// One operation of a graph, written once: its shape rule, its forward and its backward,
/// all in terms of Tensor ops (so every Device runs it). Shapes are per sample: the batch
/// dimension N is implicit, leading, and the same for every value of a run.
///
/// Single output: ops with several results are written as several nodes (an ONNX Split
/// becomes Slice nodes), which keeps the executor's bookkeeping one value per node.
public protocol GraphOp: Sendable {
    /// The op's type as a front-end names it ("Linear", "Add", "Reshape", …).
    var kind: String { get }
    /// A short description with the op's settings, for messages.
    var description: String { get }
    /// How many inputs the op takes.
    var arity: Int { get }
    /// The per-sample output shape and dtype for the inputs' per-sample shapes and dtypes,
    /// or an error naming what does not fit.
    func outputType(_ inputs: [ValueType]) throws -> ValueType
    /// y for a batch, and what `backward` will need (kept explicitly, nothing hidden).
    func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved)
    /// The gradients at the inputs from the gradient at the output, for the inputs whose
    /// `needed` entry is true (nil for the others, and for inputs that have no gradient,
    /// such as token ids).
    func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?]
    /// Whether input i carries a gradient at all (false for token ids and shape operands).
    func isDifferentiable(input i: Int) -> Bool
    /// Elements per sample of the largest temporary the op makes (a convolution's im2col
    /// matrix), for the memory plan; 0 for none.
    func workspaceElements(_ inputs: [ValueType], output: ValueType) -> Int
    /// Elements per sample the op keeps for its backward beside its inputs and output (an
    /// activation's f′, a max pooling's argmax), for the memory plan.
    func keptElements(_ inputs: [ValueType], output: ValueType) -> Int
}

extension GraphOp {
    public func isDifferentiable(input i: Int) -> Bool { true }
    public func workspaceElements(_ inputs: [ValueType], output: ValueType) -> Int { 0 }
    public func keptElements(_ inputs: [ValueType], output: ValueType) -> Int { 0 }
}

/// A value's per-sample shape and dtype.
public struct ValueType: Sendable, Equatable, CustomStringConvertible {
    public var shape: [Int]
    public var dtype: DType
    public init(_ shape: [Int], _ dtype: DType) { self.shape = shape; self.dtype = dtype }
    public var description: String { "\(shape) \(dtype)" }
    /// Elements per sample.
    public var count: Int { shape.reduce(1, *) }
}

/// What a forward pass keeps for the backward pass: a layer's Saved, or the tensors
/// (and input shapes) a multi-input op needs. Empty for ops whose backward needs nothing.
public struct OpSaved: Sendable {
    public var layer: Saved?
    public var tensors: [Tensor]
    public var shapes: [[Int]]
    /// A second layer's Saved, for an op that runs two layers (a fused pair that ran apart).
    public var pair: Saved?
    public init(layer: Saved? = nil, tensors: [Tensor] = [], shapes: [[Int]] = [], pair: Saved? = nil) {
        self.layer = layer; self.tensors = tensors; self.shapes = shapes; self.pair = pair
    }
}

/// A model layer (Linear, Conv2d, pools, LayerNorm, activations, Embedding, softmax,
/// Flatten) as a one-input graph op: the layers are the ops' single implementation, so a
/// Sequential model and its graph compute the same numbers bit for bit.
public struct LayerOp: GraphOp, @unchecked Sendable {
    public let layer: any Layer
    public init(_ layer: any Layer) { self.layer = layer }

    public var kind: String {
        switch layer {
        case is Linear: return "Linear"
        case is Conv2d: return "Conv2d"
        case let p as Pool2d: return p.isMax ? "MaxPool2d" : "AvgPool2d"
        case is LayerNormLayer: return "LayerNorm"
        case is Embedding: return "Embedding"
        case is Flatten: return "Flatten"
        case let s as SoftmaxLayer: return s.log ? "LogSoftmax" : "Softmax"
        case is ActivationLayer: return "Activation"
        default: return String(describing: type(of: layer))
        }
    }
    public var description: String { layer.description }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        if let e = layer as? Embedding {
            // Ids arrive as Int32 or as whole-number floats (a .npy of token ids).
            return ValueType(try e.outputShape(x.shape), e.weight.dtype.isStorageOnly ? .float32 : e.weight.dtype)   // a 16-bit table gathers Float32 rows
        }
        guard x.dtype.isFloatingPoint else {
            throw AttribError.shapeMismatch(op: description, detail: "input is \(x.dtype); the layer computes on floating-point values")
        }
        return ValueType(try layer.outputShape(x.shape), x.dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let (y, s) = try layer.forward(inputs[0])
        // A linear layer's input gradient needs only its input's shape: keeping x and y would
        // hold them to the backward for nothing.
        if layer is Linear { return (y, OpSaved(shapes: [inputs[0].shape])) }
        return (y, OpSaved(layer: s))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0], !(layer is Embedding) else { return [nil] }
        if let linear = layer as? Linear, saved.layer == nil, let shape = saved.shapes.first {
            return [try linear.inputGradient(dy, inputShape: shape)]
        }
        guard let s = saved.layer else { return [nil] }
        return [try layer.backward(dy, s)]
    }

    /// Token ids have no gradient; the embedding's output is where token attribution starts.
    public func isDifferentiable(input i: Int) -> Bool { !(layer is Embedding) }

    /// A convolution's im2col matrix: C·kh·kw rows by OH·OW columns per sample.
    public func workspaceElements(_ inputs: [ValueType], output: ValueType) -> Int {
        guard output.shape.count == 3 else { return 0 }
        if let conv = layer as? Conv2d { return conv.inChannels * conv.kernel[0] * conv.kernel[1] * output.shape[1] * output.shape[2] }
        // One group at a time: its input channels and output channels as copies, and its im2col.
        if let g = layer as? GroupedConv2d, let c = g.convolutions.first {
            return c.inChannels * c.kernel[0] * c.kernel[1] * output.shape[1] * output.shape[2] + inputs[0].count / g.convolutions.count
        }
        return 0
    }

    /// A pooling's argmax and an activation's f′ (where the device keeps it): the output's size.
    public func keptElements(_ inputs: [ValueType], output: ValueType) -> Int {
        if let p = layer as? PaddedPool2d, inputs[0].shape.count == 3 {
            return p.padded(inputs[0].shape).reduce(1, *) + 2 * output.count   // the padded input, argmax or divisors
        }
        return layer is Pool2d || layer is ActivationLayer ? output.count : 0
    }
}
