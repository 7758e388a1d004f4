import AttribCore

/// a ⊙ s where s's per-sample shape is a's leading dimensions followed by ones, s broadcast
/// over a's trailing dimensions: squeeze-and-excitation's channel gates ([C, 1, 1] against
/// [C, H, W], MobileNetV3, EfficientNet). Inputs: [a, s]; output: a's type.
///
/// With rows = N·(leading) and cols = (trailing) elements: forward expands s to [rows, cols]
/// by an outer product with a row of ones (one GEMM with k = 1, on any device) and multiplies;
/// backward: ∂/∂a = dy ⊙ expand(s), ∂/∂s = Σ over the trailing elements of dy ⊙ a.
public struct BroadcastMulGraphOp: GraphOp {
    public init() {}
    public var kind: String { "BroadcastMul" }
    public var description: String { kind }
    public var arity: Int { 2 }

    /// The number of leading dimensions s shares with a (the rest of s is ones), or nil.
    public static func leading(_ a: [Int], _ s: [Int]) -> Int? {
        guard a.count == s.count, a != s else { return nil }
        var k = 0
        while k < a.count && s[k] == a[k] { k += 1 }
        guard k > 0, s[k...].allSatisfy({ $0 == 1 }) else { return nil }
        return k
    }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let (a, s) = (inputs[0], inputs[1])
        guard a.dtype == s.dtype, a.dtype.isFloatingPoint else {
            throw AttribError.shapeMismatch(op: kind, detail: "operands are \(a.dtype) and \(s.dtype); one floating-point type is needed")
        }
        guard Self.leading(a.shape, s.shape) != nil else {
            throw AttribError.shapeMismatch(op: kind, detail: "the gate \(s.shape) must be the leading dimensions of \(a.shape) followed by ones")
        }
        return a
    }

    /// The spread gate kept for the backward, the output's size.
    public func keptElements(_ inputs: [ValueType], output: ValueType) -> Int { output.count }

    func split(_ a: Tensor, _ s: Tensor) -> (rows: Int, cols: Int) {
        let perSample = s.count / s.batchSize
        return (s.count, perSample == 0 ? 0 : a.count / (a.batchSize * perSample))
    }

    func expanded(_ s: Tensor, rows: Int, cols: Int) throws -> Tensor {
        let ones = try Tensor([Double](repeating: 1, count: cols), shape: [1, cols], dtype: s.dtype, on: s.device)
        return try s.reshaped([rows, 1]).matmul(ones)                          // [rows, cols]
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let (a, s) = (inputs[0], inputs[1])
        let (rows, cols) = split(a, s)
        let e = try expanded(s, rows: rows, cols: cols)
        let y = try a.reshaped([rows, cols]).multiplying(e).reshaped(a.shape)
        return (y, OpSaved(tensors: [a, e, s]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        let (a, e, s) = (saved.tensors[0], saved.tensors[1], saved.tensors[2])
        let (rows, cols) = (e.shape[0], e.shape[1])
        let d2 = try dy.reshaped([rows, cols])
        let da = needed[0] ? try d2.multiplying(e).reshaped(a.shape) : nil
        let ds = needed[1] ? try d2.multiplying(a.reshaped([rows, cols])).reduceRows(.sum).reshaped(s.shape) : nil
        return [da, ds]
    }
}
