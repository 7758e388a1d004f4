import AttribCore

/// The product of two values (not a value and a weight: that is Linear): per sample
/// a [..., M, K] · b [..., K, N] → [..., M, N], or with `transposeB` b [..., N, K] (q·kᵀ).
/// Leading dimensions must be equal; every (sample, leading index) is one product of a
/// batched GEMM. `alpha` scales the product inside the GEMM (an attention's 1/√d, fused by
/// `Graph.fusingMatMulScales`).
public struct MatMulGraphOp: GraphOp {
    public let transposeB: Bool
    public let alpha: Double
    public init(transposeB: Bool = false, alpha: Double = 1) { self.transposeB = transposeB; self.alpha = alpha }
    public var kind: String { "MatMul" }
    public var description: String {
        (transposeB ? "MatMul(a·bᵀ)" : "MatMul") + (alpha == 1 ? "" : " × \(alpha)")
    }
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
        let y = try Self.stack(a).matmul(Self.stack(b), transposeOther: transposeB, alpha: alpha)
        return (try y.reshaped([a.batchSize] + t.shape), OpSaved(tensors: [a, b]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        let (a, b) = (saved.tensors[0], saved.tensors[1])
        let (a3, b3, g3) = (try Self.stack(a), try Self.stack(b), try Self.stack(dy))
        // C = α·A·B: dA = α·dC·Bᵀ, dB = α·Aᵀ·dC. C = α·A·Bᵀ: dA = α·dC·B, dB = α·dCᵀ·A.
        let da = needed[0] ? try g3.matmul(b3, transposeOther: !transposeB, alpha: alpha).reshaped(a.shape) : nil
        let db = needed[1] ? try (transposeB ? g3.matmul(a3, transposeSelf: true, alpha: alpha)
                                              : a3.matmul(g3, transposeSelf: true, alpha: alpha)).reshaped(b.shape) : nil
        return [da, db]
    }
}

extension Graph {
    /// The graph with every MatMul → uniform constant product (an attention's scores · 1/√d:
    /// ONNX's Div or Mul by a scalar initializer) fused into one MatMul that scales inside its
    /// GEMM, `fusingPairs`'s conditions (the scores neither read elsewhere, an output nor in
    /// `keep`). Why: the scale was a pass over the scores each way, [heads, T, T] a sample
    /// (ViT-B/16 IG: 0.38 s of 35 s in graph ops). The values: the GEMM multiplies its
    /// accumulated sum by α as it stores, the same single rounding as the scale pass after it;
    /// the backward's products take α the same way instead of scaling dC first, which moves
    /// their results by a rounding where α is not a power of two.
    public func fusingMatMulScales(keeping keep: Set<String> = []) throws -> Graph {
        try fusingPairs(keeping: keep) { p, n in
            guard let mm = p.op as? MatMulGraphOp, let scale = n.op as? ConstantBinaryGraphOp, scale.op == .mul,
                  let s = scale.uniform else { return nil }
            return MatMulGraphOp(transposeB: mm.transposeB, alpha: mm.alpha * s)
        }
    }
}
