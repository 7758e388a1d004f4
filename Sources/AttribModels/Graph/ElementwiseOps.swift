import AttribCore

/// a + b, a − b or a ⊙ b on two values of one per-sample shape and dtype (residual
/// connections, gates). The backward of add and sub needs nothing saved; mul keeps both
/// operands.
public struct BinaryGraphOp: GraphOp {
    public let op: BinaryOp
    public init(_ op: BinaryOp) { self.op = op }
    public var kind: String {
        switch op { case .add: return "Add"; case .sub: return "Sub"; case .mul: return "Mul" }
    }
    public var description: String { kind }
    public var arity: Int { 2 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        guard inputs[0] == inputs[1] else {
            throw AttribError.shapeMismatch(op: kind, detail: "operands are \(inputs[0]) and \(inputs[1]); they must be equal (no broadcasting)")
        }
        guard inputs[0].dtype.isFloatingPoint else {
            throw AttribError.shapeMismatch(op: kind, detail: "operands are \(inputs[0].dtype); floating point is needed")
        }
        return inputs[0]
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let y = try inputs[0].binary(op, inputs[1])
        return (y, op == .mul ? OpSaved(tensors: inputs) : OpSaved())
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        switch op {
        case .add: return [needed[0] ? dy : nil, needed[1] ? dy : nil]
        case .sub: return [needed[0] ? dy : nil, needed[1] ? try dy.scaled(by: -1) : nil]
        case .mul:
            // ∂(a⊙b)/∂a = b, ∂/∂b = a.
            return [needed[0] ? try dy.multiplying(saved.tensors[1]) : nil,
                    needed[1] ? try dy.multiplying(saved.tensors[0]) : nil]
        }
    }
}

/// A view of a value with another per-sample shape of the same element count (no copy).
/// A −1 entry is inferred, as in PyTorch's reshape and ONNX's Reshape.
public struct ReshapeGraphOp: GraphOp {
    public let target: [Int]
    public init(_ target: [Int]) { self.target = target }
    public var kind: String { "Reshape" }
    public var description: String { "Reshape(\(target))" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        let inferred = target.filter { $0 == -1 }.count
        guard inferred <= 1, target.allSatisfy({ $0 >= 1 || $0 == -1 }) else {
            throw AttribError.invalidArgument(op: description, detail: "entries must be ≥ 1, with at most one −1")
        }
        let known = target.filter { $0 != -1 }.reduce(1) { a, b in a.multipliedReportingOverflow(by: b).overflow ? Int.max : a * b }
        var shape = target
        if inferred == 1 {
            guard known > 0, x.count % known == 0 else {
                throw AttribError.shapeMismatch(op: description, detail: "input per sample is \(x.shape) (\(x.count) elements), not a multiple of \(known)")
            }
            shape[shape.firstIndex(of: -1)!] = x.count / known
        } else if known != x.count {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample is \(x.shape) (\(x.count) elements); the target has \(known)")
        }
        return ValueType(shape, x.dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        let shape = try outputType([ValueType(x.sampleShape, x.dtype)]).shape
        return (try x.reshaped([x.batchSize] + shape), OpSaved(shapes: [x.shape]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        [needed[0] ? try dy.reshaped(saved.shapes[0]) : nil]
    }
}
