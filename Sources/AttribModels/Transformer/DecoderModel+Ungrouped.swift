import AttribCore

extension DecoderModel {
    /// The same model with every query head given its own key and value head: each of the
    /// H_kv key/value projections repeated for the H/H_kv query heads that share it, so k and
    /// v are [T, H, d_h]. The logits are the same (the repeated rows compute the same values);
    /// what changes is what can be patched: a query head's own key and value at a position,
    /// TransformerLens's `ungroup_grouped_query_attention`. Head-position nodes (and AtP*'s QK
    /// fix) on a grouped-query model run on this. Only k and v's weights are copied (H/H_kv
    /// times their size); every other layer is shared with this model. A model whose heads are
    /// already ungrouped returns itself.
    public func ungrouped() throws -> DecoderModel {
        let c = config
        guard c.nKVHead < c.nHead else { return self }
        let rep = c.queriesPerKVHead, dh = c.headDim
        /// Rows of a [H_kv·d_h, …] weight or [H_kv·d_h] bias, each head's d_h rows repeated rep times.
        func repeated(_ t: Tensor) throws -> Tensor {
            let rows = t.shape[0], cols = t.count / rows
            guard rows == c.nKVHead * dh else {
                throw AttribError.shapeMismatch(op: "DecoderModel.ungrouped", detail: "a key/value projection of \(rows) rows, expected \(c.nKVHead) heads × \(dh)")
            }
            func order<E>(_ v: [E]) -> [E] {
                var out: [E] = []
                out.reserveCapacity(v.count * rep)
                for g in 0..<c.nKVHead {
                    let head = v[(g * dh * cols)..<((g + 1) * dh * cols)]
                    for _ in 0..<rep { out.append(contentsOf: head) }
                }
                return out
            }
            let shape = [rows * rep] + t.shape.dropFirst()
            switch t.dtype {
            case .bfloat16, .float16: return try Tensor(halfBits: order(t.halfBits()), shape: shape, dtype: t.dtype, on: t.device)
            case .float32: return try Tensor(order(t.floats()), shape: shape, on: t.device)
            default: return try Tensor(order(t.doubles()), shape: shape, dtype: t.dtype, on: t.device)
            }
        }
        func linear(_ l: Linear) throws -> Linear { try Linear(weight: repeated(l.weight), bias: l.bias.map(repeated)) }
        var u = c
        u.nKVHead = c.nHead
        let b = try blocks.map { blk in
            Block(norm1: blk.norm1, norm2: blk.norm2, q: blk.q, k: try linear(blk.k), v: try linear(blk.v), o: blk.o,
                  gate: blk.gate, fc: blk.fc, proj: blk.proj)
        }
        return DecoderModel(config: u, device: device, dtype: dtype, blocks: b, embedding: embedding, wpe: wpe,
                            finalNorm: finalNorm, unembedding: unembedding)
    }
}
