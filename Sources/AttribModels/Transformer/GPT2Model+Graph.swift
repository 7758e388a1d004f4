import AttribCore

extension GPT2Model {
    /// The model as a graph for prompts of `tokens` tokens: input "tokens" ([T] Int32 ids),
    /// output "logits" ([T, V], or [1, V] for the last position only), and every hook point
    /// a value named as in TransformerLens (HookPoint.name, e.g. "blocks.0.attn.hook_z"),
    /// per-sample shapes as HookPoint.rowShape except hook_pattern, which is [H, T, T], and
    /// the residual-stream hooks, which are [T, D]. Besides: "hook_embed" (wte rows),
    /// "blocks.l.ln1.hook_normalized", "blocks.l.ln2.hook_normalized", "blocks.l.attn.hook_attn_scores"
    /// (scaled, before the causal softmax) and "ln_final.hook_normalized".
    ///
    /// The ops are the model's layers (Linear, LayerNorm, Embedding, GELU), shared by the
    /// graphs of every length, and the graph's own (MatMul, CausalSoftmax, Transpose, Add).
    public func graph(tokens t: Int, lastPositionOnly: Bool = false) throws -> Graph {
        let c = config, d = c.nEmbd, h = c.nHead, dh = c.headDim
        guard t >= 1, t <= c.nPositions else {
            throw AttribError.invalidArgument(op: "GPT2Model.graph", detail: "\(t) tokens; the model takes 1 to \(c.nPositions) (n_positions)")
        }
        var nodes: [GraphNode] = []
        @discardableResult
        func add(_ output: String, _ op: any GraphOp, _ inputs: String...) -> String {
            nodes.append(GraphNode(output, op, inputs: inputs, output: output))
            return output
        }
        let positions = try wpe.rows(0..<t)                                       // [T, D]
        add("hook_embed", LayerOp(embedding), "tokens")                           // [T, D]
        var resid = add("hook_pos_embed_sum", ConstantBinaryGraphOp(.add, positions), "hook_embed")
        for (l, blk) in blocks.enumerated() {
            func name(_ k: HookKind) -> String { HookPoint(k, layer: l).name }
            let pre = add(name(.residPre), IdentityGraphOp(), resid)              // [T, D]
            let ln1 = add("blocks.\(l).ln1.hook_normalized", LayerOp(blk.ln1), pre)
            func headsOf(_ kind: HookKind, _ projection: Linear) -> String {
                let flat = add("blocks.\(l).attn.\(kind == .attnQ ? "q" : kind == .attnK ? "k" : "v")_flat",
                               LayerOp(projection), ln1)                          // [T, D]
                let perHead = add(name(kind), ReshapeGraphOp([t, h, dh]), flat)   // [T, H, d_h]
                return add(name(kind) + "_by_head", TransposeGraphOp([1, 0, 2]), perHead)   // [H, T, d_h]
            }
            let q = headsOf(.attnQ, blk.q), k = headsOf(.attnK, blk.k), v = headsOf(.attnV, blk.v)
            let raw = add("blocks.\(l).attn.scores_raw", MatMulGraphOp(transposeB: true), q, k)   // [H, T, T]
            let scores = add("blocks.\(l).attn.hook_attn_scores", ScaleGraphOp(1 / Double(dh).squareRoot()), raw)
            let pattern = add(name(.attnPattern), CausalSoftmaxGraphOp(), scores)                // [H, T, T]
            let zh = add("blocks.\(l).attn.z_by_head", MatMulGraphOp(), pattern, v)               // [H, T, d_h]
            let z = add(name(.attnZ), TransposeGraphOp([1, 0, 2]), zh)                            // [T, H, d_h]
            let zFlat = add("blocks.\(l).attn.z_flat", ReshapeGraphOp([t, d]), z)
            let attnOut = add(name(.attnOut), LayerOp(blk.o), zFlat)
            let mid = add(name(.residMid), BinaryGraphOp(.add), pre, attnOut)
            let ln2 = add("blocks.\(l).ln2.hook_normalized", LayerOp(blk.ln2), mid)
            let mlpPre = add(name(.mlpPre), LayerOp(blk.fc), ln2)                 // [T, F]
            let mlpPost = add(name(.mlpPost), LayerOp(ActivationLayer(.geluTanh)), mlpPre)
            let mlpOut = add(name(.mlpOut), LayerOp(blk.proj), mlpPost)
            resid = add(name(.residPost), BinaryGraphOp(.add), mid, mlpOut)
        }
        // LayerNorm is per position, so taking the last position first is exact.
        if lastPositionOnly { resid = add("last_position", SliceGraphOp(axis: 0, start: t - 1, end: t), resid) }
        let normalized = add("ln_final.hook_normalized", LayerOp(lnf), resid)
        add("logits", LayerOp(unembedding), normalized)                           // tied: ln_f(h)·wteᵀ
        return try Graph(inputs: [("tokens", ValueType([t], .int32))], nodes: nodes, outputs: ["logits"])
    }

    /// The executor of the graph for prompts of `tokens` tokens, made once per length.
    func executor(tokens t: Int, lastPositionOnly: Bool) throws -> GraphExecutor {
        let key = GraphKey(tokens: t, last: lastPositionOnly)
        if let e = graphs.withLock({ $0[key] }) { return e }
        let e = GraphExecutor(try graph(tokens: t, lastPositionOnly: lastPositionOnly))
        graphs.withLock { $0[key] = e }
        return e
    }
}
