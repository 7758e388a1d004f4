import AttribCore

/// The product of two values (not a value and a weight: that is Linear): per sample
/// a [..., M, K] · b [..., K, N] → [..., M, N], or with `transposeB` b [..., N, K] (q·kᵀ).
/// Leading dimensions must be equal; every (sample, leading index) is one product of a
/// batched GEMM.
public struct MatMulGraphOp: GraphOp {
    public let transposeB: Bool
    public init(transposeB: Bool = false) { self.transposeB = transposeB }
    public var kind: String { "MatMul" }
    public var description: String { transposeB ? "MatMul(a·bᵀ)" : "MatMul" }
    public var arity: Int { 2 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let (a, b) = (inputs[0], inputs[1])
        guard a.shape.count >= 2, a.shape.count == b.shape.count, a.dtype == b.dtype, a.dtype.isFloatingPoint,
              a.shape.dropLast(2) == b.shape.dropLast(2) else {
            throw AttribError.shapeMismatch(op: description, detail: "operands \(a) and \(b): expected [..., M, K] and [..., \(transposeB ? "N, K" : "K, N")] with the same leading dimensions and floating dtype")
        }
        let (m, k) = (a.shape[a.shape.count - 2], a.shape.last!)
        let (k2, n) = transposeB ? (b.shape.last!, b.shape[b.shape.count - 2]) : (b.shape[b.shape.count - 2], b.shape.last!)
        guard k == k2 else {
            throw AttribError.shapeMismatch(op: description, detail: "inner dimensions differ: \(a.shape) · \(b.shape)\(transposeB ? "ᵀ" : "") has K = \(k) and \(k2)")
        }
        return ValueType(Array(a.shape.dropLast(2)) + [m, n], a.dtype)
    }

    /// A value [N] + [..., r, c] as the 3-D stack [N·…, r, c].
    static func stack(_ x: Tensor) throws -> Tensor {
        let (r, c) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
        return try x.reshaped([x.count / (r * c), r, c])
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let (a, b) = (inputs[0], inputs[1])
        let t = try outputType([ValueType(a.sampleShape, a.dtype), ValueType(b.sampleShape, b.dtype)])
        let y = try Self.stack(a).matmul(Self.stack(b), transposeOther: transposeB)
        return (try y.reshaped([a.batchSize] + t.shape), OpSaved(tensors: [a, b]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        let (a, b) = (saved.tensors[0], saved.tensors[1])
        let (a3, b3, g3) = (try Self.stack(a), try Self.stack(b), try Self.stack(dy))
        // C = A·B: dA = dC·Bᵀ, dB = Aᵀ·dC. C = A·Bᵀ: dA = dC·B, dB = dCᵀ·A.
        let da = needed[0] ? try g3.matmul(b3, transposeOther: !transposeB).reshaped(a.shape) : nil
        let db = needed[1] ? try (transposeB ? g3.matmul(a3, transposeSelf: true) : a3.matmul(g3, transposeSelf: true)).reshaped(b.shape) : nil
        return [da, db]
    }
}
