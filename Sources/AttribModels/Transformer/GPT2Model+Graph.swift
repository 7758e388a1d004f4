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
    /// The ops are the layers (Linear, LayerNorm, GELU) and the graph's own (MatMul,
    /// CausalSoftmax, Transpose, Add), sharing the model's weight tensors.
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
        func layerNorm(_ gamma: Tensor, _ beta: Tensor) throws -> LayerOp {
            LayerOp(try LayerNormLayer(normalizedShape: [d], eps: c.layerNormEpsilon, weight: gamma, bias: beta, device: device, dtype: dtype))
        }
        let positions = try wpe.rows(0..<t)                                       // [T, D]
        add("hook_embed", LayerOp(try Embedding(weight: wte)), "tokens")          // [T, D]
        var resid = add("hook_pos_embed_sum", AddConstantGraphOp(positions), "hook_embed")
        for (l, blk) in blocks.enumerated() {
            func name(_ k: HookKind) -> String { HookPoint(k, layer: l).name }
            let pre = add(name(.residPre), IdentityGraphOp(), resid)              // [T, D]
            let ln1 = add("blocks.\(l).ln1.hook_normalized", try layerNorm(blk.ln1Gamma, blk.ln1Beta), pre)
            func headsOf(_ kind: HookKind, _ w: Tensor, _ b: Tensor) throws -> String {
                let flat = add("blocks.\(l).attn.\(kind == .attnQ ? "q" : kind == .attnK ? "k" : "v")_flat",
                               LayerOp(try Linear(weight: w, bias: b)), ln1)    // [T, D]
                let perHead = add(name(kind), ReshapeGraphOp([t, h, dh]), flat)   // [T, H, d_h]
                return add(name(kind) + "_by_head", TransposeGraphOp([1, 0, 2]), perHead)   // [H, T, d_h]
            }
            let q = try headsOf(.attnQ, blk.wqT, blk.bq), k = try headsOf(.attnK, blk.wkT, blk.bk), v = try headsOf(.attnV, blk.wvT, blk.bv)
            let raw = add("blocks.\(l).attn.scores_raw", MatMulGraphOp(transposeB: true), q, k)   // [H, T, T]
            let scores = add("blocks.\(l).attn.hook_attn_scores", ScaleGraphOp(1 / Double(dh).squareRoot()), raw)
            let pattern = add(name(.attnPattern), CausalSoftmaxGraphOp(), scores)                // [H, T, T]
            let zh = add("blocks.\(l).attn.z_by_head", MatMulGraphOp(), pattern, v)               // [H, T, d_h]
            let z = add(name(.attnZ), TransposeGraphOp([1, 0, 2]), zh)                            // [T, H, d_h]
            let zFlat = add("blocks.\(l).attn.z_flat", ReshapeGraphOp([t, d]), z)
            let attnOut = add(name(.attnOut), LayerOp(try Linear(weight: blk.woT, bias: blk.bo)), zFlat)
            let mid = add(name(.residMid), BinaryGraphOp(.add), pre, attnOut)
            let ln2 = add("blocks.\(l).ln2.hook_normalized", try layerNorm(blk.ln2Gamma, blk.ln2Beta), mid)
            let mlpPre = add(name(.mlpPre), LayerOp(try Linear(weight: blk.wfcT, bias: blk.bfc)), ln2)     // [T, F]
            let mlpPost = add(name(.mlpPost), LayerOp(ActivationLayer(.geluTanh)), mlpPre)
            let mlpOut = add(name(.mlpOut), LayerOp(try Linear(weight: blk.wprojT, bias: blk.bproj)), mlpPost)
            resid = add(name(.residPost), BinaryGraphOp(.add), mid, mlpOut)
        }
        // LayerNorm is per position, so taking the last position first is exact.
        if lastPositionOnly { resid = add("last_position", SliceGraphOp(axis: 0, start: t - 1, end: t), resid) }
        let lnf = add("ln_final.hook_normalized", try layerNorm(lnfGamma, lnfBeta), resid)
        add("logits", LayerOp(try Linear(weight: wte, bias: nil)), lnf)          // tied: ln_f(h)·wteᵀ
        return try Graph(inputs: [("tokens", ValueType([t], .int32))], nodes: nodes, outputs: ["logits"])
    }
}
