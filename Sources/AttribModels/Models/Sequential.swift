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
    /// The model as a graph with the rewrites that apply when no inner value is hooked
    /// (activation → tiling average pooling fused): what the gradient sweeps run.
    public let sweepExecutor: GraphExecutor
    /// With the rewrites for forward-only passes (Graph.forForwards): what `outputs` runs.
    public let forwardSweepExecutor: GraphExecutor
    /// The model as a graph without rewrites: what `forward` runs.
    public let forwardExecutor: GraphExecutor

    public var outputShape: [Int] { shapes.last! }
    /// The per-sample input shape of layer i: the model's input for the first layer.
    public func inputShape(ofLayer i: Int) -> [Int] { i == 0 ? inputShape : shapes[i - 1] }
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
        let graph = try Self.chainGraph(layers, inputShape: inputShape, dtype: dtype)
        forwardExecutor = GraphExecutor(graph)
        sweepExecutor = GraphExecutor(try graph.forSweeps(on: device, dtype: dtype))
        forwardSweepExecutor = GraphExecutor(try graph.forForwards(on: device, dtype: dtype))
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

    /// The outputs for a batch [N] + inputShape, through the graph executor (predict,
    /// deletion/insertion, Sobol). The unfused graph: the fused activation and pooling
    /// computes f′ for a backward that a forward pass never runs.
    public func forward(_ x: Tensor) throws -> Tensor {
        let exec = forwardExecutor
        return try exec.forward(["input": try checkInput(x)])[exec.graph.outputs[0]]!
    }

    /// A forward pass that keeps what the backward pass needs.
    public struct Trace: Sendable {
        public var saved: [Saved]
        /// False when the trace was taken with keepActivations: false, where some
        /// layers' outputs were never formed.
        public var activationsKept = true
        /// Set by `traceRowsOuter`: the Flatten ending the span whose images are held
        /// rows outermost ([N, H, C, W]); `backward` reads them so.
        public var rowsOuterEnd: Int? = nil
        public var output: Tensor { saved.last!.output }
        /// The output of layer i (its activation). Needs a trace that kept activations.
        public func activation(_ i: Int) -> Tensor {
            precondition(activationsKept, "Trace.activation(_:) on a trace taken with keepActivations: false")
            return saved[i].output
        }
    }

    /// Forward through layers `range` (default: all) from `x`, keeping every layer's state.
    ///
    /// With `keepActivations: false` (the gradient methods, which read only the final
    /// output and back-propagate without a visitor) an activation followed by average
    /// pooling with stride = kernel runs as one op where the device fuses them (CPU
    /// Float32 GELU): the activation's output is never written, which saves a pass over
    /// the largest tensor of a small CNN. The activation's Saved then holds its input as
    /// both input and output, and f′(x); the pooling's holds the activation's input
    /// for its shape. Each backward reads only those. The numbers are bitwise the same.
    public func trace(_ x: Tensor, layers range: Range<Int>? = nil, keepActivations: Bool = true) throws -> Trace {
        let r = range ?? 0..<layers.count
        var h = r.lowerBound == 0 ? try checkInput(x) : x
        var saved: [Saved] = []
        var i = r.lowerBound
        while i < r.upperBound {
            if !keepActivations, i + 1 < r.upperBound, let (pooled, d) = try fusedActivationPool(i, h) {
                saved.append(Saved(input: h, output: h, extra: [d]))
                saved.append(Saved(input: h, output: pooled))
                h = pooled; i += 2
                continue
            }
            let (y, s) = try layers[i].forward(h)
            saved.append(s); h = y; i += 1
        }
        return Trace(saved: saved, activationsKept: keepActivations)
    }

    /// Layer i an activation and layer i + 1 an average pooling whose windows tile: both
    /// at once where the device fuses them, else nil.
    private func fusedActivationPool(_ i: Int, _ x: Tensor) throws -> (pooled: Tensor, derivative: Tensor)? {
        guard let act = layers[i] as? ActivationLayer, let pool = layers[i + 1] as? Pool2d, pool.isTilingAverage, x.rank == 4 else { return nil }
        return try x.activatedAndAvgPooled(act.kind, kernel: pool.k2)
    }

    /// Back-propagates `upstream` (∂F/∂output) through a trace of layers `range`. Calls
    /// `visit(i, gradient)` with the gradient at the output of layer i for every layer, from
    /// the last down; returns the gradient at the input of the first layer of the range.
    ///
    /// Without a visitor, the backward of an average pooling whose windows tile and of the
    /// activation before it run as one op where the device fuses them and the activation
    /// kept f′(x) (CPU Float32 GELU): bitwise the same gradient, one pass fewer.
    public func backward(_ trace: Trace, upstream: Tensor, layers range: Range<Int>? = nil,
                         visit: ((Int, Tensor) throws -> Void)? = nil) throws -> Tensor {
        let r = range ?? 0..<layers.count
        guard trace.saved.count == r.count else {
            throw AttribError.invalidArgument(op: "backward", detail: "trace of \(trace.saved.count) layers for a range of \(r.count)")
        }
        if let end = trace.rowsOuterEnd {
            guard visit == nil else {
                throw AttribError.invalidArgument(op: "backward", detail: "a rows-outer trace has no activations to visit (traceRowsOuter)")
            }
            return try backwardRowsOuter(trace, upstream: upstream, layers: r, end: end)
        }
        var g = upstream
        var k = r.count - 1
        while k >= 0 {
            let i = r.lowerBound + k
            if let visit {
                try visit(i, g)
            } else if k >= 1, let fused = try fusedPoolActivationBackward(i, g, pool: trace.saved[k], activation: trace.saved[k - 1]) {
                g = fused; k -= 2
                continue
            }
            g = try layers[i].backward(g, trace.saved[k]); k -= 1
        }
        return g
    }

    /// Layer i an average pooling whose windows tile, after an activation that kept f′(x):
    /// avgPool2dBackward(dy) ⊙ f′(x) in one op where the device fuses them, else nil.
    private func fusedPoolActivationBackward(_ i: Int, _ dy: Tensor, pool saved: Saved, activation actSaved: Saved) throws -> Tensor? {
        guard let pool = layers[i] as? Pool2d, pool.isTilingAverage, layers[i - 1] is ActivationLayer,
              let d = actSaved.extra.first, d.shape == saved.input.shape else { return nil }
        return try dy.avgPool2dBackward(inputShape: saved.input.shape, kernel: pool.k2, times: d)
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
