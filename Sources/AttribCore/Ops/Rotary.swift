// Rotary position embedding (RoPE) in the rotate-half layout of transformers' Llama and
// GPT-NeoX: per head, entry i < r/2 pairs with entry i + r/2 and the pair is rotated by the
// angle of (position, i). A rotation is orthogonal, so the backward is the rotation by the
// opposite angle (the same kernel with sin negated).

extension Tensor {
    /// Rotates q or k heads [N, T, H, d_h] by the angles whose cos and sin are `cos`, `sin`
    /// [T, r/2] (r = `dimensions` ≤ d_h, even); entries r..<d_h are copied. `inverse`: the
    /// opposite angles (the backward of the forward rotation).
    public func rotary(cos: Tensor, sin: Tensor, dimensions r: Int, inverse: Bool = false) throws -> Tensor {
        let op = "rotary"
        try checkCompatible(op, [("cos", cos), ("sin", sin)])
        guard rank == 4 else {
            throw AttribError.shapeMismatch(op: op, detail: "x has shape \(shape); expected [N, T, heads, head_dim]")
        }
        let (t, h, dh) = (shape[1], shape[2], shape[3])
        guard r >= 2, r % 2 == 0, r <= dh else {
            throw AttribError.invalidArgument(op: op, detail: "\(r) rotary dimensions for heads of \(dh); must be even, 2 to \(dh)")
        }
        for (name, table) in [("cos", cos), ("sin", sin)] where table.shape != [t, r / 2] {
            throw AttribError.shapeMismatch(op: op, detail: "\(name) table has shape \(table.shape), expected [\(t), \(r / 2)] for x \(shape)")
        }
        let out = try like(shape)
        try device.rotary(rows: shape[0] * t * h, tokens: t, heads: h, headDim: dh, rotary: r, inverse: inverse,
                          x: storage, cos: cos.storage, sin: sin.storage, y: out.storage)
        return out
    }
}
