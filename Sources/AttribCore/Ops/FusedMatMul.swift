// Products with a fused epilogue (Device.gemmFused): a sweep's layer f(x·W + b) in one
// launch keeping f′, and its backward (dy ⊙ f′)·W without writing dy ⊙ f′. Each returns
// nil, nothing computed, where the device does not fuse; callers then run the ops apart,
// which give the same values bit for bit.

extension Tensor {
    /// (f(z), f′(z)) for z = self·op(other) + bias: self [m, k], other [k, n] (or [n, k]
    /// with `transposeOther`), bias [n] or nil; both results [m, n].
    public func matmulBiasActivated(_ other: Tensor, transposeOther: Bool = false, bias: Tensor?,
                                    activation: Activation) throws -> (y: Tensor, derivative: Tensor)? {
        let op = "matmul+bias+\(activation)"
        guard rank == 2, other.rank == 2 else {
            throw AttribError.shapeMismatch(op: op, detail: "operands of shapes \(shape) and \(other.shape); expected two matrices")
        }
        try checkCompatible(op, [("right operand", other)] + (bias.map { [("bias", $0)] } ?? []))
        let (m, k) = (shape[0], shape[1])
        let (k2, n) = transposeOther ? (other.shape[1], other.shape[0]) : (other.shape[0], other.shape[1])
        guard k == k2 else {
            throw AttribError.shapeMismatch(op: op, detail: "inner dimensions differ: \(shape) · \(other.shape)\(transposeOther ? "ᵀ" : "")")
        }
        if let bias, bias.shape != [n] {
            throw AttribError.shapeMismatch(op: op, detail: "bias has shape \(bias.shape), expected [\(n)]")
        }
        guard device.fusesGEMMEpilogues(dtype: dtype) else { return nil }
        let y = try like([m, n]), d = try like([m, n])        // [m, n] each, every element written
        let g = GEMMArguments(transB: transposeOther, m: m, n: n, k: k, a: storage, lda: k,
                              b: other.storage, ldb: other.shape[1], c: y.storage, ldc: n)
        guard try device.gemmFused(g, GEMMEpilogue(bias: bias?.storage, activation: activation, derivative: d.storage)) else { return nil }
        return (y, d)
    }

    /// (self ⊙ multiplier)·op(other): self and multiplier [m, k], other [k, n] (or [n, k]
    /// with `transposeOther`); result [m, n].
    public func multipliedMatmul(_ multiplier: Tensor, _ other: Tensor, transposeOther: Bool = false) throws -> Tensor? {
        let op = "(a ⊙ multiplier)·b"
        guard rank == 2, other.rank == 2 else {
            throw AttribError.shapeMismatch(op: op, detail: "operands of shapes \(shape) and \(other.shape); expected two matrices")
        }
        try checkCompatible(op, [("multiplier", multiplier), ("right operand", other)])
        try checkSameShape(op, "multiplier", multiplier)
        let (m, k) = (shape[0], shape[1])
        let (k2, n) = transposeOther ? (other.shape[1], other.shape[0]) : (other.shape[0], other.shape[1])
        guard k == k2 else {
            throw AttribError.shapeMismatch(op: op, detail: "inner dimensions differ: \(shape) · \(other.shape)\(transposeOther ? "ᵀ" : "")")
        }
        guard device.fusesGEMMEpilogues(dtype: dtype) else { return nil }
        let y = try like([m, n])                              // [m, n], every element written
        let g = GEMMArguments(transB: transposeOther, m: m, n: n, k: k, a: storage, lda: k,
                              b: other.storage, ldb: other.shape[1], c: y.storage, ldc: n)
        guard try device.gemmFused(g, GEMMEpilogue(multiplierA: multiplier.storage)) else { return nil }
        return y
    }
}
