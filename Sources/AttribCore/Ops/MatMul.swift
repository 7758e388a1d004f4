// Matrix products on Tensors: 2-D (m×k · k×n) and batched 3-D
// (b×m×k · b×k×n, or a 2-D right operand shared by the batch).

extension Tensor {
    /// self · other with optional transposes. 2-D: [m, k]·[k, n] → [m, n].
    /// 3-D: [b, m, k]·[b, k, n] → [b, m, n]; a 2-D `other` is shared by every batch entry.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false,
                       alpha: Double = 1) throws -> Tensor {
        let (batch, m, n, _) = try matmulShape(other, transposeSelf, transposeOther)
        let out = try like(batch == 0 ? [m, n] : [batch, m, n])
        try matmul(other, transposeSelf: transposeSelf, transposeOther: transposeOther,
                   alpha: alpha, beta: 0, into: out)
        return out
    }

    /// out = alpha·op(self)·op(other) + beta·out.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false,
                       alpha: Double = 1, beta: Double, into out: Tensor) throws {
        let op = "matmul"
        try checkCompatible(op, [("right operand", other), ("output", out)])
        let (batch, m, n, k) = try matmulShape(other, transposeSelf, transposeOther)
        let expected = batch == 0 ? [m, n] : [batch, m, n]
        guard out.shape == expected else {
            throw AttribError.shapeMismatch(op: op, detail: "output has shape \(out.shape), expected \(expected) for \(shape) · \(other.shape)")
        }
        let lda = shape.last!, ldb = other.shape.last!
        try device.gemm(GEMMArguments(
            transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k, alpha: alpha,
            a: storage, lda: lda, strideA: m * k,
            b: other.storage, ldb: ldb, strideB: other.rank == 3 ? k * n : 0,
            beta: beta, c: out.storage, ldc: n, strideC: m * n, batch: max(batch, 1)))
    }

    /// (batch or 0 for 2-D, m, n, k) of a product, or a shape error.
    private func matmulShape(_ other: Tensor, _ tA: Bool, _ tB: Bool) throws -> (Int, Int, Int, Int) {
        let op = "matmul"
        guard rank == 2 || rank == 3, other.rank == 2 || other.rank == 3, !(rank == 2 && other.rank == 3) else {
            throw AttribError.shapeMismatch(op: op, detail: "operands of rank \(rank) and \(other.rank) (shapes \(shape), \(other.shape)); expected 2-D·2-D, 3-D·3-D or 3-D·2-D")
        }
        let batch = rank == 3 ? shape[0] : 0
        if rank == 3, other.rank == 3, other.shape[0] != batch {
            throw AttribError.shapeMismatch(op: op, detail: "batch sizes differ: \(shape) and \(other.shape)")
        }
        let r = shape.suffix(2), o = other.shape.suffix(2)
        let (m, k) = tA ? (r.last!, r.first!) : (r.first!, r.last!)
        let (k2, n) = tB ? (o.last!, o.first!) : (o.first!, o.last!)
        guard k == k2 else {
            throw AttribError.shapeMismatch(op: op, detail: "inner dimensions differ: \(shape)\(tA ? "ᵀ" : "") · \(other.shape)\(tB ? "ᵀ" : "") has k = \(k) and \(k2)")
        }
        return (batch, m, n, k)
    }
}
