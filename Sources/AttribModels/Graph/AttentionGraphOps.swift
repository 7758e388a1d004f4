import AttribCore

/// y = alpha·x (attention's 1/√d_h, Gemma's √D embedding scale).
public struct ScaleGraphOp: GraphOp {
    public let alpha: Double
    public init(_ alpha: Double) { self.alpha = alpha }
    public var kind: String { "Scale" }
    public var description: String { "Scale(\(alpha))" }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        guard inputs[0].dtype.isFloatingPoint, alpha.isFinite else {
            throw AttribError.invalidArgument(op: description, detail: "input \(inputs[0]); needs a floating input and a finite factor")
        }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        (try inputs[0].scaled(by: alpha), OpSaved())
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        [needed[0] ? try dy.scaled(by: alpha) : nil]
    }
}

/// The causal row softmax of attention scores [..., T, T]: entry (t, s) is
/// exp(x_ts)/Σ_{s' ≤ t} exp(x_ts') for s ≤ t and exactly 0 above the diagonal. Its backward
/// is the softmax backward from the saved probabilities (masked entries are 0, so their
/// score gradients are 0 too).
///
/// With a sliding `window` w, entries with s ≤ t − w are masked too (Mistral).
/// Scores [..., S, T] with S < T are the last S queries of T positions (a run that takes a
/// shared prefix's keys and values from another run): query i sits at position T − S + i.
public struct CausalSoftmaxGraphOp: GraphOp {
    public let window: Int?
    public init(window: Int? = nil) { self.window = window }
    public var kind: String { "CausalSoftmax" }
    public var description: String { window.map { "CausalSoftmax(window \($0))" } ?? kind }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let s = inputs[0].shape
        guard s.count >= 2, s[s.count - 2] >= 1, s[s.count - 2] <= s[s.count - 1], inputs[0].dtype.isFloatingPoint else {
            throw AttribError.shapeMismatch(op: kind, detail: "scores are \(inputs[0]); expected [..., S, T] floating, 1 ≤ S ≤ T")
        }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        let (q, k) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
        let mask = q == k && window == nil ? nil : try Tensor.causalMask(queries: q, keys: k, window: window, dtype: x.dtype, on: x.device)
        let y = try MatMulGraphOp.stack(x).causalSoftmax(mask: mask).reshaped(x.shape)
        return (y, OpSaved(tensors: [y]))
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        [needed[0] ? try saved.tensors[0].softmaxBackward(upstream: dy) : nil]
    }
}

/// The mean over each channel's plane: [C, H, W] → [C, 1, 1] (ONNX GlobalAveragePool,
/// PyTorch's AdaptiveAvgPool2d(1)). Backward spreads dy/(H·W) over the plane, as one
/// rank-1 product per batch so it runs on every device's GEMM.
public struct GlobalAvgPoolGraphOp: GraphOp {
    public init() {}
    public var kind: String { "GlobalAveragePool" }
    public var description: String { kind }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        guard x.shape.count == 3, x.dtype.isFloatingPoint else {
            throw AttribError.shapeMismatch(op: kind, detail: "input per sample is \(x); expected [C, H, W] floating")
        }
        return ValueType([x.shape[0], 1, 1], x.dtype)
    }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        let (n, c, plane) = (x.batchSize, x.shape[1], x.shape[2] * x.shape[3])
        let y = try x.reshaped([n * c, plane]).reduceRows(.mean).reshaped([n, c, 1, 1])
        return (y, OpSaved(shapes: [x.shape]))
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        let shape = saved.shapes[0]
        let (rows, plane) = (shape[0] * shape[1], shape[2] * shape[3])
        let ones = try Tensor.zeros([1, plane], dtype: dy.dtype, on: dy.device)
        try ones.fill(1)
        return [try dy.reshaped([rows, 1]).matmul(ones, alpha: 1 / Double(plane)).reshaped(shape)]
    }
}
