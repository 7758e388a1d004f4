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
        try checkCompatible(op, bias.map { [("bias", $0)] } ?? [])
        // (Operands that are not two matrices: fusedProduct's error.)
        if let bias, other.rank == 2, bias.shape != [other.shape[transposeOther ? 0 : 1]] {
            throw AttribError.shapeMismatch(op: op, detail: "bias has shape \(bias.shape), expected [\(other.shape[transposeOther ? 0 : 1])] for \(shape) · \(other.shape)\(transposeOther ? "ᵀ" : "")")
        }
        var d: Tensor?
        guard let y = try fusedProduct(other, transposeOther: transposeOther, op: op, epilogue: { c in
            d = try self.like(c.shape)                                       // [m, n], every element written
            return GEMMEpilogue(bias: bias?.storage, activation: activation, derivative: d!.storage)
        }) else { return nil }
        return (y, d!)
    }

    /// (self ⊙ multiplier)·op(other): self and multiplier [m, k], other [k, n] (or [n, k]
    /// with `transposeOther`); result [m, n].
    public func multipliedMatmul(_ multiplier: Tensor, _ other: Tensor, transposeOther: Bool = false) throws -> Tensor? {
        let op = "(a ⊙ multiplier)·b"
        try checkCompatible(op, [("multiplier", multiplier)])
        try checkSameShape(op, "multiplier", multiplier)
        return try fusedProduct(other, transposeOther: transposeOther, op: op) { _ in GEMMEpilogue(multiplierA: multiplier.storage) }
    }

    /// self [m, k] · op(other) into a new [m, n] with the epilogue `epilogue` makes for it,
    /// after checking the operands; nil where the device does not fuse.
    private func fusedProduct(_ other: Tensor, transposeOther: Bool, op: String,
                              epilogue: (_ c: Tensor) throws -> GEMMEpilogue) throws -> Tensor? {
        guard rank == 2, other.rank == 2 else {
            throw AttribError.shapeMismatch(op: op, detail: "operands of shapes \(shape) and \(other.shape); expected two matrices")
        }
        try checkCompatible(op, [("right operand", other)])
        let (m, k) = (shape[0], shape[1])
        let (k2, n) = transposeOther ? (other.shape[1], other.shape[0]) : (other.shape[0], other.shape[1])
        guard k == k2 else {
            throw AttribError.shapeMismatch(op: op, detail: "inner dimensions differ: \(shape) · \(other.shape)\(transposeOther ? "ᵀ" : "")")
        }
        guard device.fusesGEMMEpilogues(dtype: dtype) else { return nil }
        let y = try like([m, n])                                             // [m, n], every element written
        let g = GEMMArguments(transB: transposeOther, m: m, n: n, k: k, a: storage, lda: k,
                              b: other.storage, ldb: other.shape[1], c: y.storage, ldc: n)
        return try device.gemmFused(g, try epilogue(y)) ? y : nil
    }
}
