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
    public init(_ op: BinaryOp, _ constant: Tensor, constantFirst: Bool = false) {
        self.op = op; self.constant = constant; self.constantFirst = constantFirst
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
            let c = try repeated(x.batchSize)
            return (try x.multiplying(c), OpSaved(tensors: [c]))
        }
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        switch op {
        case .add: return [dy]
        case .sub: return [constantFirst ? try dy.scaled(by: -1) : dy]
        case .mul: return [try dy.multiplying(saved.tensors[0])]
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
