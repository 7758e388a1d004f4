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

/// Keys or values [S, H_kv, d_h] of the last S positions with a shared prefix's p before them:
/// [p + S, H_kv, d_h]. The prefix is the first p positions of a source: an input [T′ ≥ p, …] per
/// sample (each prompt its own source run's), or, with `constant` [T′ ≥ p, …], one source for the
/// whole batch (every row the same prompt: the patched rows of exact patching). The backward
/// passes the S own positions' gradient to the own input and the first p positions' to the
/// source input's first p rows (none to a constant).
public struct SharedPrefixGraphOp: GraphOp, @unchecked Sendable {
    public let prefix: Int
    public let constant: Tensor?
    public init(prefix: Int, constant: Tensor? = nil) { self.prefix = prefix; self.constant = constant }
    public var kind: String { "SharedPrefix" }
    public var description: String { "SharedPrefix(\(prefix) positions\(constant == nil ? "" : ", one source"))" }
    public var arity: Int { constant == nil ? 2 : 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let own = inputs[arity - 1]
        let source = constant.map { ValueType(Array($0.shape), $0.dtype) } ?? inputs[0]
        guard own.shape.count >= 1, source.shape.count == own.shape.count, source.shape[0] >= prefix,
              Array(source.shape.dropFirst()) == Array(own.shape.dropFirst()), source.dtype == own.dtype else {
            throw AttribError.shapeMismatch(op: description, detail: "source \(source), own positions \(own): expected [≥ \(prefix)] + the own positions' trailing shape, one dtype")
        }
        return ValueType([prefix + own.shape[0]] + own.shape.dropFirst(), own.dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let saved = constant == nil ? OpSaved(shapes: [inputs[0].shape]) : OpSaved()          // the source's [N, T′, …]
        let own = inputs[arity - 1], n = own.shape[0]
        let s = own.shape[1], inner = own.count / max(1, n * s), t = prefix + s
        let y = try Tensor(shape: [n, t] + own.shape.dropFirst(2), dtype: own.dtype, on: own.device)   // every element written below
        if let constant {
            // One source for every row: a box whose source stride between rows is 0.
            try y.copyBox((n, 1, prefix * inner), from: constant, sourceOffset: 0, sourceStrides: (0, 0), offset: 0, strides: (t * inner, 0))
        } else {
            let source = inputs[0], tt = source.shape[1]
            try y.copyBox((n, 1, prefix * inner), from: source, sourceOffset: 0, sourceStrides: (tt * inner, 0), offset: 0, strides: (t * inner, 0))
        }
        try y.copyBox((n, 1, s * inner), from: own, sourceOffset: 0, sourceStrides: (s * inner, 0), offset: prefix * inner, strides: (t * inner, 0))
        return (y, saved)
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        let n = dy.shape[0], t = dy.shape[1], s = t - prefix, inner = dy.count / max(1, n * t)
        var d: Tensor?
        if needed[arity - 1] {
            d = try Tensor(shape: [n, s] + dy.shape.dropFirst(2), dtype: dy.dtype, on: dy.device)       // every element written below
            try d!.copyBox((n, 1, s * inner), from: dy, sourceOffset: prefix * inner, sourceStrides: (t * inner, 0), offset: 0, strides: (s * inner, 0))
        }
        guard constant == nil else { return [d] }
        var dSource: Tensor?
        if needed[0] {
            let tt = saved.shapes[0][1]
            dSource = try Tensor.zeros([n, tt] + dy.shape.dropFirst(2), dtype: dy.dtype, on: dy.device)
            try dSource!.copyBox((n, 1, prefix * inner), from: dy, sourceOffset: 0, sourceStrides: (t * inner, 0), offset: 0, strides: (tt * inner, 0))
        }
        return [dSource, d]
    }
}
