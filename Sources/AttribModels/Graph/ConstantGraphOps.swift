import AttribCore

/// y = x + c with c a constant of the per-sample shape, the same for every sample
/// (GPT-2's position embeddings for T tokens, an ONNX Add of an initializer). The constant
/// is a weight: no gradient is formed for it.
public struct AddConstantGraphOp: GraphOp, @unchecked Sendable {
    /// The constant, per-sample shape.
    public let constant: Tensor
    public init(_ constant: Tensor) { self.constant = constant }
    public var kind: String { "AddConstant" }
    public var description: String { "AddConstant(\(constant.shape))" }
    public var arity: Int { 1 }
    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        guard inputs[0] == ValueType(constant.shape, constant.dtype) else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample is \(inputs[0]); the constant is \(constant.shape) \(constant.dtype)")
        }
        return inputs[0]
    }
    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        let y = try Tensor(shape: x.shape, dtype: x.dtype, on: x.device)
        try x.copy(into: y)
        // Seen as [N, count]: the constant is a bias over the flattened sample.
        try y.reshaped([x.batchSize, constant.count]).addBias(constant.reshaped([constant.count]))
        return (y, OpSaved())
    }
    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] { [needed[0] ? dy : nil] }
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
