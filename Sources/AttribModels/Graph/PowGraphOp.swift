import AttribCore

/// x^p for a small whole exponent p (1 to 4), by products: ALBERT's and GPT-2's GELU as
/// torch.onnx writes it, x + 0.044715·x³ (where the front-end does not fuse the whole GELU
/// into one activation). Backward: p·x^(p−1)·dy. Keeps x.
public struct PowGraphOp: GraphOp {
    public let exponent: Int
    public init(exponent: Int) { self.exponent = exponent }
    public var kind: String { "Pow" }
    public var description: String { "Pow(\(exponent))" }
    public var arity: Int { 1 }
    public static let exponents = 1...4

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        guard Self.exponents.contains(exponent) else {
            throw AttribError.invalidArgument(op: description, detail: "exponent \(exponent); whole exponents \(Self.exponents) are supported")
        }
        guard inputs[0].dtype.isFloatingPoint else {
            throw AttribError.shapeMismatch(op: description, detail: "input is \(inputs[0].dtype); floating point is needed")
        }
        return inputs[0]
    }

    /// x^k by k − 1 products (x for k = 1, ones for k = 0).
    static func power(_ x: Tensor, _ k: Int) throws -> Tensor {
        guard k > 0 else {
            let ones = try Tensor(shape: x.shape, dtype: x.dtype, on: x.device)
            try ones.fill(1)
            return ones
        }
        var y = x
        for _ in 1..<k { y = try y.multiplying(x) }
        return y
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        (try Self.power(inputs[0], exponent), OpSaved(tensors: [inputs[0]]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        let g = try dy.multiplying(try Self.power(saved.tensors[0], exponent - 1))
        return [exponent == 1 ? g : try g.scaled(by: Double(exponent))]
    }
}
