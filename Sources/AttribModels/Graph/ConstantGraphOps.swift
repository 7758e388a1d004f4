import AttribCore

/// A value and a constant of its per-sample shape, the same for every sample: x + c, x − c,
/// c − x or x ⊙ c (GPT-2's position embeddings for T tokens; an ONNX Add, Sub or Mul of an
/// initializer, broadcast by the front-end to the value's shape). The constant is a weight: no
/// gradient is formed for it.
public struct ConstantBinaryGraphOp: GraphOp, @unchecked Sendable {
    public let op: BinaryOp
    /// The constant, per-sample shape.
    public let constant: Tensor
    /// c − x rather than x − c (Sub only).
    public let constantFirst: Bool
    /// The one value of a constant that holds one value everywhere (a scalar the front-end
    /// broadcast: an attention's 1/√d): a product by it is then a scale, one pass with nothing
    /// kept, where the general product writes the constant out for the whole batch, reads it,
    /// and keeps it for the backward (ViT-B/16 IG: 0.5 s of 23 s). The same rounding: one product.
    public let uniform: Double?
    public init(_ op: BinaryOp, _ constant: Tensor, constantFirst: Bool = false, uniform: Double? = nil) {
        self.op = op; self.constant = constant; self.constantFirst = constantFirst; self.uniform = uniform
    }
    public var kind: String { "Constant" + BinaryGraphOp(op).kind }
    public var description: String { "\(kind)(\(constant.shape)\(constantFirst ? ", constant first" : ""))" }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        guard inputs[0] == ValueType(constant.shape, constant.dtype) else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample is \(inputs[0]); the constant is \(constant.shape) \(constant.dtype)")
        }
        return inputs[0]
    }
    /// The constant repeated for n samples, [n] + its shape.
    func repeated(_ n: Int) throws -> Tensor {
        let y = try Tensor(shape: [n] + constant.shape, dtype: constant.dtype, on: constant.device)
        try constant.device.broadcastRows(rows: n, cols: constant.count, x: constant.storage, y: y.storage)
        return y
    }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        switch op {
        case .add:
            let y = try Tensor(shape: x.shape, dtype: x.dtype, on: x.device)
            try x.copy(into: y)
            // Seen as [N, count]: the constant is a bias over the flattened sample.
            try y.reshaped([x.batchSize, constant.count]).addBias(constant.reshaped([constant.count]))
            return (y, OpSaved())
        case .sub:
            let c = try repeated(x.batchSize)
            return (try constantFirst ? c.subtracting(x) : x.subtracting(c), OpSaved())
        case .mul:
            if let s = uniform { return (try x.scaled(by: s), OpSaved()) }
            let c = try repeated(x.batchSize)
            return (try x.multiplying(c), OpSaved(tensors: [c]))
        }
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        switch op {
        case .add: return [dy]
        case .sub: return [constantFirst ? try dy.scaled(by: -1) : dy]
        case .mul: return [try uniform.map { try dy.scaled(by: $0) } ?? dy.multiplying(saved.tensors[0])]
        }
    }
}

/// y = x, no copy: a second name for a value, so that two hooks that TransformerLens keeps
/// apart (blocks.l.hook_resid_post and blocks.l+1.hook_resid_pre) can be captured, replaced
/// and stopped one without the other.
public struct IdentityGraphOp: GraphOp {
    public init() {}
    public var kind: String { "Identity" }
    public var description: String { kind }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType { inputs[0] }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) { (inputs[0], OpSaved()) }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] { [needed[0] ? dy : nil] }
}

/// A per-sample constant repeated over the batch (a ViT's class token, concatenated before the
/// patch embeddings). Its one input only says the batch size and device; it gets no gradient.
public struct BroadcastConstantGraphOp: GraphOp, @unchecked Sendable {
    /// The per-sample values, row-major, of `shape`.
    public let values: [Double]
    public let shape: [Int]
    public let dtype: DType
    public init(values: [Double], shape: [Int], dtype: DType) { self.values = values; self.shape = shape; self.dtype = dtype }
    public var kind: String { "BroadcastConstant" }
    public var description: String { "BroadcastConstant(\(shape))" }
    public var arity: Int { 1 }
    public func isDifferentiable(input i: Int) -> Bool { false }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        guard values.count == shape.reduce(1, *) else {
            throw AttribError.shapeMismatch(op: description, detail: "\(values.count) values for shape \(shape)")
        }
        return ValueType(shape, dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let n = inputs[0].batchSize
        var all = [Double]()
        all.reserveCapacity(n * values.count)
        for _ in 0..<n { all += values }
        return (try Tensor(all, shape: [n] + shape, dtype: dtype, on: inputs[0].device), OpSaved())
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] { [nil] }
}
