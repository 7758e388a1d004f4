import AttribCore

/// RMSNorm over the last dimension with weight γ [D] (Llama's; Gemma's 1 + w is folded into γ
/// at load). Backward: ∂L/∂x only (inference: no weight gradients).
public struct RMSNormGraphOp: GraphOp, @unchecked Sendable {
    public let gamma: Tensor
    public let eps: Double
    public init(gamma: Tensor, eps: Double) { self.gamma = gamma; self.eps = eps }
    public var kind: String { "RMSNorm" }
    public var description: String { "RMSNorm([\(gamma.count)], eps \(eps))" }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        guard inputs[0].shape.last == gamma.count, inputs[0].dtype == gamma.dtype else {
            throw AttribError.shapeMismatch(op: description, detail: "input \(inputs[0]); expected [..., \(gamma.count)] \(gamma.dtype)")
        }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let (y, rstd) = try inputs[0].rmsNorm(gamma: gamma, eps: eps)
        return (y, OpSaved(tensors: [inputs[0], rstd]))
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        [needed[0] ? try saved.tensors[0].rmsNormBackward(upstream: dy, gamma: gamma, rstd: saved.tensors[1]) : nil]
    }
    public func keptElements(_ inputs: [ValueType], output: ValueType) -> Int { inputs[0].count / max(1, gamma.count) }
}

/// RoPE of q or k heads [T, H, d_h] (per sample) with the cos and sin tables [T, r/2] of the
/// graph's length: the first r entries of each head are rotated (rotate-half layout), the rest
/// copied. Linear and orthogonal, so the backward is the inverse rotation of dy.
public struct RotaryGraphOp: GraphOp, @unchecked Sendable {
    public let cos: Tensor, sin: Tensor
    public let dimensions: Int
    public init(cos: Tensor, sin: Tensor, dimensions: Int) { self.cos = cos; self.sin = sin; self.dimensions = dimensions }
    public var kind: String { "Rotary" }
    public var description: String { "Rotary(\(dimensions) dims, \(cos.shape.first ?? 0) positions)" }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let s = inputs[0].shape
        guard s.count == 3, s[0] == cos.shape[0], dimensions <= s[2], inputs[0].dtype == cos.dtype else {
            throw AttribError.shapeMismatch(op: description, detail: "input \(inputs[0]); expected [\(cos.shape[0]), heads, ≥ \(dimensions)] \(cos.dtype)")
        }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        (try inputs[0].rotary(cos: cos, sin: sin, dimensions: dimensions), OpSaved())
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        [needed[0] ? try dy.rotary(cos: cos, sin: sin, dimensions: dimensions, inverse: true) : nil]
    }
}
