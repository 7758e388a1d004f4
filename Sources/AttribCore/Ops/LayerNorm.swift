// Layer normalisation over the last dimension, PyTorch's semantics: biased
// variance, y = (x − μ)·rstd·γ + β with rstd = 1/√(var + eps). The forward
// returns μ and rstd so the backward needs nothing recomputed but x̂.

extension Tensor {
    /// LayerNorm over the last dimension (size `cols`) with gamma, beta [cols]:
    /// (output of self's shape, mean and rstd of shape shape.dropLast() — [1] for a rank-1 input).
    public func layerNorm(gamma: Tensor, beta: Tensor, eps: Double = 1e-5) throws -> (output: Tensor, mean: Tensor, rstd: Tensor) {
        let op = "layerNorm"
        try checkCompatible(op, [("gamma", gamma), ("beta", beta)])
        let (rows, cols) = rowsAndColumns
        try checkParameter(op, "gamma", gamma, cols)
        try checkParameter(op, "beta", beta, cols)
        guard eps >= 0, eps.isFinite else {
            throw AttribError.invalidArgument(op: op, detail: "eps = \(eps); must be finite and ≥ 0")
        }
        let out = try like(shape)
        let statsShape = rank > 1 ? Array(shape.dropLast()) : [1]
        let mean = try like(statsShape), rstd = try like(statsShape)
        try device.layerNorm(rows: rows, cols: cols, eps: eps, x: storage, gamma: gamma.storage, beta: beta.storage,
                             y: out.storage, mean: mean.storage, rstd: rstd.storage)
        return (out, mean, rstd)
    }

    /// The gradients of layerNorm, self being the forward input x, with the forward's
    /// mean and rstd: (dx of self's shape, dgamma [cols], dbeta [cols]).
    public func layerNormBackward(upstream dy: Tensor, gamma: Tensor, mean: Tensor, rstd: Tensor) throws
        -> (dx: Tensor, dgamma: Tensor, dbeta: Tensor) {
        let (rows, cols) = try checkLayerNormBackward(upstream: dy, gamma: gamma, mean: mean, rstd: rstd)
        let dx = try like(shape), dgamma = try like([cols]), dbeta = try like([cols])
        try device.layerNormBackward(rows: rows, cols: cols, x: storage, gamma: gamma.storage, mean: mean.storage,
                                     rstd: rstd.storage, dy: dy.storage, dx: dx.storage, dgamma: dgamma.storage, dbeta: dbeta.storage)
        return (dx, dgamma, dbeta)
    }

    /// dx of layerNormBackward alone: what an attribution's backward needs (its parameters get
    /// no gradient), without the parameters' column sums. The same dx.
    public func layerNormInputGradient(upstream dy: Tensor, gamma: Tensor, mean: Tensor, rstd: Tensor) throws -> Tensor {
        let (rows, cols) = try checkLayerNormBackward(upstream: dy, gamma: gamma, mean: mean, rstd: rstd)
        let dx = try like(shape)
        try device.layerNormBackward(rows: rows, cols: cols, x: storage, gamma: gamma.storage, mean: mean.storage,
                                     rstd: rstd.storage, dy: dy.storage, dx: dx.storage, dgamma: nil, dbeta: nil)
        return dx
    }

    private func checkLayerNormBackward(upstream dy: Tensor, gamma: Tensor, mean: Tensor, rstd: Tensor) throws -> (rows: Int, cols: Int) {
        let op = "layerNormBackward"
        try checkCompatible(op, [("upstream gradient", dy), ("gamma", gamma), ("mean", mean), ("rstd", rstd)])
        try checkSameShape(op, "upstream gradient", dy)
        let (rows, cols) = rowsAndColumns
        try checkParameter(op, "gamma", gamma, cols)
        let statsShape = rank > 1 ? Array(shape.dropLast()) : [1]
        for (name, t) in [("mean", mean), ("rstd", rstd)] where t.shape != statsShape {
            throw AttribError.shapeMismatch(op: op, detail: "\(name) has shape \(t.shape), expected \(statsShape) (one per row of \(shape))")
        }
        return (rows, cols)
    }

    private func checkParameter(_ op: String, _ name: String, _ t: Tensor, _ cols: Int) throws {
        guard t.rank == 1, t.count == cols else {
            throw AttribError.shapeMismatch(op: op, detail: "\(name) has shape \(t.shape), expected [\(cols)] (the last dimension of \(shape))")
        }
    }
}
