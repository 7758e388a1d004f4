import AttribCore

/// A chain of layers with forward and backward passes on one device:
/// the MLPs and CNNs of a model directory (config.json + model.safetensors).
public final class Sequential: @unchecked Sendable {
    public let layers: [any Layer]
    /// Per-sample input shape, and the per-sample output shape of each layer.
    public let inputShape: [Int]
    public let shapes: [[Int]]
    public let labels: [String]?
    public let device: any Device
    public let dtype: DType

    public var outputShape: [Int] { shapes.last! }
    public var inputSize: Int { inputShape.reduce(1, *) }

    public init(layers: [any Layer], inputShape: [Int], labels: [String]? = nil, device: any Device, dtype: DType = .float32) throws {
        guard !layers.isEmpty else { throw AttribError.invalidArgument(op: "Sequential", detail: "no layers") }
        var s = inputShape, shapes: [[Int]] = []
        for (i, l) in layers.enumerated() {
            do { s = try l.outputShape(s) } catch let e as AttribError {
                throw AttribError.shapeMismatch(op: "Sequential", detail: "layer \(i) (\(l.description)): \(e)")
            }
            shapes.append(s)
        }
        self.layers = layers; self.inputShape = inputShape; self.shapes = shapes
        self.labels = labels; self.device = device; self.dtype = dtype
    }

    /// Checks a batch against the model: same device and dtype, and each sample holding
    /// the input's element count (a [N, 64] batch fits a [1, 8, 8] model). Returns it
    /// viewed as [N] + inputShape.
    public func checkInput(_ x: Tensor) throws -> Tensor {
        guard x.device === device else {
            throw AttribError.deviceMismatch(op: "model input", detail: "inputs on \(x.device.info.id), model on \(device.info.id)")
        }
        guard x.dtype == dtype || (x.dtype == .int32 && layers.first is Embedding) else {
            throw AttribError.shapeMismatch(op: "model input", detail: "inputs are \(x.dtype), the model computes in \(dtype)")
        }
        guard x.rank >= 2, x.count / x.batchSize == inputSize else {
            throw AttribError.shapeMismatch(op: "model input", detail: "inputs have shape \(x.shape); the model takes [N] + \(inputShape) (\(inputSize) values per input)")
        }
        return try x.reshaped([x.batchSize] + inputShape)
    }

    /// The outputs for a batch [N] + inputShape.
    public func forward(_ x: Tensor) throws -> Tensor {
        var h = try checkInput(x)
        for l in layers { h = try l.forward(h).y }
        return h
    }

    /// A forward pass that keeps what the backward pass needs.
    public struct Trace: Sendable {
        public var saved: [Saved]
        public var output: Tensor { saved.last!.output }
        /// The output of layer i (its activation).
        public func activation(_ i: Int) -> Tensor { saved[i].output }
    }

    /// Forward through layers `range` (default: all) from `x`, keeping every layer's state.
    public func trace(_ x: Tensor, layers range: Range<Int>? = nil) throws -> Trace {
        let r = range ?? 0..<layers.count
        var h = r.lowerBound == 0 ? try checkInput(x) : x
        var saved: [Saved] = []
        for i in r {
            let (y, s) = try layers[i].forward(h)
            saved.append(s); h = y
        }
        return Trace(saved: saved)
    }

    /// Back-propagates `upstream` (∂F/∂output) through a trace of layers `range`. Calls
    /// `visit(i, gradient)` with the gradient at the output of layer i for every layer, from
    /// the last down; returns the gradient at the input of the first layer of the range.
    public func backward(_ trace: Trace, upstream: Tensor, layers range: Range<Int>? = nil,
                         visit: (Int, Tensor) throws -> Void = { _, _ in }) throws -> Tensor {
        let r = range ?? 0..<layers.count
        guard trace.saved.count == r.count else {
            throw AttribError.invalidArgument(op: "backward", detail: "trace of \(trace.saved.count) layers for a range of \(r.count)")
        }
        var g = upstream
        for (k, i) in r.enumerated().reversed() {
            try visit(i, g)
            g = try layers[i].backward(g, trace.saved[k])
        }
        return g
    }

    /// What `gradients` returns, everything still on the device.
    public struct Gradients: Sendable {
        /// The model's outputs [N] + outputShape.
        public var outputs: Tensor
        /// F per input [N].
        public var values: Tensor
        /// ∂F/∂input [N] + inputShape.
        public var input: Tensor
        /// ∂F/∂(output of layer i), for each requested i.
        public var activations: [Int: Tensor]
        /// The output of layer i, for each requested i.
        public var activationValues: [Int: Tensor]
    }

    /// One forward and one backward pass over a batch: outputs, F, ∂F/∂input, and
    /// ∂F/∂(output of layer i) for each i in `activationLayers`.
    public func gradients(_ x: Tensor, objective: Objective, activationLayers: Set<Int> = []) throws -> Gradients {
        if let bad = activationLayers.first(where: { $0 < 0 || $0 >= layers.count }) {
            throw AttribError.indexOutOfRange(op: "gradients", detail: "layer \(bad) of a model with \(layers.count) layers")
        }
        let t = try trace(x)
        let (values, upstream) = try objective.evaluate(t.output)
        var acts: [Int: Tensor] = [:], vals: [Int: Tensor] = [:]
        let gIn = try backward(t, upstream: upstream) { i, g in
            if activationLayers.contains(i) { acts[i] = g; vals[i] = t.activation(i) }
        }
        return Gradients(outputs: t.output, values: values, input: gIn, activations: acts, activationValues: vals)
    }
}
