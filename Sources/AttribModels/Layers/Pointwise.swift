import AttribCore

/// An elementwise activation (ReLU, GELU in both forms, Tanh, Sigmoid,
/// Softplus). Shape-preserving; backward uses the saved input.
public final class ActivationLayer: Layer, @unchecked Sendable {
    public let kind: Activation
    public init(_ kind: Activation) { self.kind = kind }

    public var description: String {
        switch kind {
        case .relu: return "ReLU"
        case .geluTanh: return "GELU(tanh)"
        case .geluErf: return "GELU"
        case .tanh: return "Tanh"
        case .sigmoid: return "Sigmoid"
        case .softplus: return "Softplus"
        case .hardSigmoid: return "Hardsigmoid"
        case .hardSwish: return "Hardswish"
        case .relu6: return "ReLU6"
        case .erf: return "Erf"
        case .silu: return "SiLU"
        }
    }

    public func outputShape(_ input: [Int]) throws -> [Int] { input }

    /// Where the device computes f and f′ together more cheaply (Float32 GELU on the
    /// CPU backend: one erfc instead of two), forward keeps f′(x) and backward is
    /// dy ⊙ f′(x), the same numbers as activationBackward.
    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        if let (y, d) = try x.activatedWithDerivative(kind) {
            return (y, Saved(input: x, output: y, extra: [d]))
        }
        let y = try x.activated(kind)
        return (y, Saved(input: x, output: y))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        if let d = saved.extra.first {
            guard dy.shape == d.shape else {
                throw AttribError.shapeMismatch(op: description, detail: "upstream gradient has shape \(dy.shape), the forward pass \(d.shape)")
            }
            return try dy.multiplying(d)
        }
        return try saved.input.activationBackward(kind, upstream: dy)
    }
}

/// Flattens every per-sample dimension: [N, …] → [N, ∏…]. A view, no copy.
public final class Flatten: Layer, @unchecked Sendable {
    public init() {}
    public var description: String { "Flatten" }
    public func outputShape(_ input: [Int]) throws -> [Int] { [try SizeLimits.checkedProduct(input, "input per sample", op: "Flatten")] }
    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        let y = try x.reshaped([x.batchSize, x.count / x.batchSize])
        return (y, Saved(input: x, output: y))
    }
    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor { try dy.reshaped(saved.input.shape) }
}

/// Softmax or log-softmax over the last dimension. Backward uses the saved output.
public final class SoftmaxLayer: Layer, @unchecked Sendable {
    public let log: Bool
    public init(log: Bool) { self.log = log }
    public var description: String { log ? "LogSoftmax" : "Softmax" }
    public func outputShape(_ input: [Int]) throws -> [Int] { input }
    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        let y = log ? try x.logSoftmax() : try x.softmax()
        return (y, Saved(input: x, output: y))
    }
    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        log ? try saved.output.logSoftmaxBackward(upstream: dy) : try saved.output.softmaxBackward(upstream: dy)
    }
}
