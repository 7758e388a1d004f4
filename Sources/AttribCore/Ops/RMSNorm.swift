// RMSNorm over the last dimension (Llama, Qwen2, Mistral, Gemma): y = x·rstd·γ with
// rstd = 1/√(mean(x²) + eps), no centring and no bias. The forward returns rstd so the
// backward recomputes only x̂ = x·rstd.

extension Tensor {
    /// RMSNorm over the last dimension (size `cols`) with gamma [cols]: (output of self's
    /// shape, rstd of shape shape.dropLast(), [1] for a rank-1 input).
    public func rmsNorm(gamma: Tensor, eps: Double) throws -> (output: Tensor, rstd: Tensor) {
        let op = "rmsNorm"
        try checkCompatible(op, [("gamma", gamma)])
        let (rows, cols) = rowsAndColumns
        guard gamma.rank == 1, gamma.count == cols else {
            throw AttribError.shapeMismatch(op: op, detail: "gamma has shape \(gamma.shape), expected [\(cols)] (the last dimension of \(shape))")
        }
        guard eps >= 0, eps.isFinite else {
            throw AttribError.invalidArgument(op: op, detail: "eps = \(eps); must be finite and ≥ 0")
        }
        let out = try like(shape), rstd = try like(rank > 1 ? Array(shape.dropLast()) : [1])
        try device.rmsNorm(rows: rows, cols: cols, eps: eps, x: storage, gamma: gamma.storage, y: out.storage, rstd: rstd.storage)
        return (out, rstd)
    }

    /// ∂L/∂x of rmsNorm, self being the forward input x, with the forward's rstd.
    public func rmsNormBackward(upstream dy: Tensor, gamma: Tensor, rstd: Tensor) throws -> Tensor {
        let op = "rmsNormBackward"
        try checkCompatible(op, [("upstream gradient", dy), ("gamma", gamma), ("rstd", rstd)])
        try checkSameShape(op, "upstream gradient", dy)
        let (rows, cols) = rowsAndColumns
        let statsShape = rank > 1 ? Array(shape.dropLast()) : [1]
        guard gamma.rank == 1, gamma.count == cols, rstd.shape == statsShape else {
            throw AttribError.shapeMismatch(op: op, detail: "gamma \(gamma.shape) and rstd \(rstd.shape); expected [\(cols)] and \(statsShape) for x \(shape)")
        }
        let dx = try like(shape)
        try device.rmsNormBackward(rows: rows, cols: cols, x: storage, gamma: gamma.storage, rstd: rstd.storage, dy: dy.storage, dx: dx.storage)
        return dx
    }
}
