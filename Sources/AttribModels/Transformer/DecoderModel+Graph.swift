import AttribCore

extension DecoderModel {
    /// The model as a graph for prompts of `tokens` tokens: input "tokens" ([T] Int32 ids),
    /// output "logits" ([T, V], or [1, V] for the last position only), and every hook point
    /// a value named as in TransformerLens (HookPoint.name, e.g. "blocks.0.attn.hook_z"),
    /// per-sample shapes as HookPoint.rowShape except hook_pattern, which is [H, T, T], and
    /// the residual-stream hooks, which are [T, D]. Besides: "hook_embed" (token embedding
    /// rows), "blocks.l.ln1.hook_normalized", "blocks.l.ln2.hook_normalized",
    /// "blocks.l.attn.hook_rot_q"/"hook_rot_k" (after RoPE), "blocks.l.attn.hook_attn_scores"
    /// (scaled, before the causal softmax) and "ln_final.hook_normalized".
    ///
    /// One builder for every family; the config decides: learned positions or RoPE, LayerNorm
    /// or RMSNorm, sequential or parallel residual, plain or gated MLP, sliding windows.
    /// Grouped-query attention needs no copy of k and v: the H/H_kv query heads that share a
    /// key/value head are consecutive, so q [H, T, d_h] read as [H_kv, (H/H_kv)·T, d_h] times
    /// kᵀ [H_kv, d_h, T] is the scores [H, T, T] in place (and the pattern times v likewise);
    /// the products' backward sums the shared heads' gradients.
    ///
    /// - prefix: p > 0 builds the graph of the last S = T − p positions of prompts whose first
    ///   p tokens another run has computed: "tokens" is then [S], and per layer
    ///   "blocks.l.attn.k_source" and "v_source" ([T, H_kv, d_h], that run's keys after RoPE and
    ///   values) give the prefix's keys and values, which join the S new ones before the
    ///   scores ([H, S, T]). Causal attention makes the first p positions' values depend on the
    ///   first p tokens only, so the S positions' values are those of the whole prompt's graph:
    ///   every op is per position except the scores and the pattern's product, which read the
    ///   same T keys and values. Hook values are then [S, …] (the pattern [H, S, T]).
    /// - prefixSource: with a prefix, one source for every row instead of the inputs: per layer
    ///   its keys (after RoPE) and values [T, H_kv, d_h], held by the graph as constants.
    public func graph(tokens t: Int, lastPositionOnly: Bool = false, prefix p: Int = 0,
                      prefixSource: [(k: Tensor, v: Tensor)]? = nil) throws -> Graph {
        let c = config, h = c.nHead, hkv = c.nKVHead, dh = c.headDim, rep = c.queriesPerKVHead
        guard t >= 1, t <= c.nPositions else {
            throw AttribError.invalidArgument(op: "DecoderModel.graph", detail: "\(t) tokens; the model takes 1 to \(c.nPositions) (n_positions)")
        }
        guard p >= 0, p < t else {
            throw AttribError.invalidArgument(op: "DecoderModel.graph", detail: "a shared prefix of \(p) of \(t) tokens; it must leave at least one position to compute")
        }
        let s = t - p                                                                    // the positions this graph computes
        var nodes: [GraphNode] = []
        @discardableResult
        func add(_ output: String, _ op: any GraphOp, _ inputs: String...) -> String {
            nodes.append(GraphNode(output, op, inputs: inputs, output: output))
            return output
        }
        // RoPE tables [T, r/2] for this length, shared by every layer.
        var rotary: RotaryGraphOp?
        if case let .rotary(r) = c.positions {
            let (cs, sn) = r.tables(tokens: t, float32: dtype == .float32), half = r.dimensions / 2   // [T, r/2]: rows p..<T used
            rotary = RotaryGraphOp(cos: try Tensor(Array(cs[(p * half)...]), shape: [s, half], dtype: dtype, on: device),
                                   sin: try Tensor(Array(sn[(p * half)...]), shape: [s, half], dtype: dtype, on: device),
                                   dimensions: r.dimensions)
        }
        let embed = add("hook_embed", LayerOp(embedding), "tokens")                    // [S, D]
        var resid: String
        if let wpe {
            resid = add(embeddingsValue, ConstantBinaryGraphOp(.add, try wpe.rows(p..<t)), embed)
        } else if let scale = c.embeddingScale {
            // Gemma: ·√D, a float32 buffer in transformers (so Float32(√D) in every dtype).
            resid = add(embeddingsValue, ScaleGraphOp(Double(Float(scale))), embed)
        } else {
            resid = add(embeddingsValue, IdentityGraphOp(), embed)
        }
        for (l, blk) in blocks.enumerated() {
            func name(_ k: HookKind) -> String { HookPoint(k, layer: l).name }
            let pre = add(name(.residPre), IdentityGraphOp(), resid)                  // [T, D]
            let ln1 = add("blocks.\(l).ln1.hook_normalized", blk.norm1, pre)
            func project(_ kind: HookKind, _ projection: Linear, heads: Int) -> String {
                let flat = add("blocks.\(l).attn.\(kind == .attnQ ? "q" : kind == .attnK ? "k" : "v")_flat",
                               LayerOp(projection), ln1)                              // [S, heads·d_h]
                return add(name(kind), ReshapeGraphOp([s, heads, dh]), flat)          // [S, heads, d_h]
            }
            var q = project(.attnQ, blk.q, heads: h), k = project(.attnK, blk.k, heads: hkv)
            var v = project(.attnV, blk.v, heads: hkv)
            if let rotary {
                q = add("blocks.\(l).attn.hook_rot_q", rotary, q)
                k = add("blocks.\(l).attn.hook_rot_k", rotary, k)
            }
            if p > 0 {
                // The prefix's keys and values from the source run, then the S new ones: [T, H_kv, d_h].
                for (which, own) in [("k", k), ("v", v)] {
                    let all: String
                    if let src = prefixSource {
                        all = add("blocks.\(l).attn.\(which)_all", SharedPrefixGraphOp(prefix: p, constant: which == "k" ? src[l].k : src[l].v), own)
                    } else {
                        all = add("blocks.\(l).attn.\(which)_all", SharedPrefixGraphOp(prefix: p), "blocks.\(l).attn.\(which)_source", own)
                    }
                    if which == "k" { k = all } else { v = all }
                }
            }
            let qh = add("blocks.\(l).attn.q_by_head", TransposeGraphOp([1, 0, 2]), q)   // [H, S, d_h]
            let kh = add("blocks.\(l).attn.k_by_head", TransposeGraphOp([1, 0, 2]), k)   // [H_kv, T, d_h]
            let vh = add("blocks.\(l).attn.v_by_head", TransposeGraphOp([1, 0, 2]), v)   // [H_kv, T, d_h]
            let scores: String
            if rep > 1 {
                let qg = add("blocks.\(l).attn.q_grouped", ReshapeGraphOp([hkv, rep * s, dh]), qh)
                let raw = add("blocks.\(l).attn.scores_grouped", MatMulGraphOp(transposeB: true), qg, kh)  // [H_kv, rep·S, T]
                let heads = add("blocks.\(l).attn.scores_raw", ReshapeGraphOp([h, s, t]), raw)
                scores = add("blocks.\(l).attn.hook_attn_scores", ScaleGraphOp(c.attentionScale), heads)
            } else {
                let raw = add("blocks.\(l).attn.scores_raw", MatMulGraphOp(transposeB: true), qh, kh)     // [H, S, T]
                scores = add("blocks.\(l).attn.hook_attn_scores", ScaleGraphOp(c.attentionScale), raw)
            }
            let pattern = add(name(.attnPattern), CausalSoftmaxGraphOp(window: c.slidingWindow(layer: l)), scores)   // [H, S, T]
            let zh: String
            if rep > 1 {
                let pg = add("blocks.\(l).attn.pattern_grouped", ReshapeGraphOp([hkv, rep * s, t]), pattern)
                let zg = add("blocks.\(l).attn.z_grouped", MatMulGraphOp(), pg, vh)                      // [H_kv, rep·S, d_h]
                zh = add("blocks.\(l).attn.z_by_head", ReshapeGraphOp([h, s, dh]), zg)
            } else {
                zh = add("blocks.\(l).attn.z_by_head", MatMulGraphOp(), pattern, vh)                      // [H, S, d_h]
            }
            let z = add(name(.attnZ), TransposeGraphOp([1, 0, 2]), zh)                                   // [S, H, d_h]
            let zFlat = add("blocks.\(l).attn.z_flat", ReshapeGraphOp([s, h * dh]), z)
            let attnOut = add(name(.attnOut), LayerOp(blk.o), zFlat)                                     // [T, D]
            // Sequential: the MLP reads resid_mid; parallel (GPT-NeoX): both read resid_pre.
            let mid = c.parallelResidual ? pre : add(name(.residMid), BinaryGraphOp(.add), pre, attnOut)
            let ln2 = add("blocks.\(l).ln2.hook_normalized", blk.norm2, mid)
            let mlpPre: String, mlpPost: String
            if let gate = blk.gate {
                mlpPre = add(name(.mlpPre), LayerOp(gate), ln2)                                          // [T, F]
                let linear = add(name(.mlpPreLinear), LayerOp(blk.fc), ln2)                              // [T, F]
                let act = add("blocks.\(l).mlp.hook_act", LayerOp(ActivationLayer(c.activation)), mlpPre)
                mlpPost = add(name(.mlpPost), BinaryGraphOp(.mul), act, linear)
            } else {
                mlpPre = add(name(.mlpPre), LayerOp(blk.fc), ln2)                                        // [T, F]
                mlpPost = add(name(.mlpPost), LayerOp(ActivationLayer(c.activation)), mlpPre)
            }
            let mlpOut = add(name(.mlpOut), LayerOp(blk.proj), mlpPost)                                  // [T, D]
            if c.parallelResidual {
                let withAttn = add("blocks.\(l).resid_plus_attn", BinaryGraphOp(.add), pre, attnOut)
                resid = add(name(.residPost), BinaryGraphOp(.add), withAttn, mlpOut)
            } else {
                resid = add(name(.residPost), BinaryGraphOp(.add), mid, mlpOut)
            }
        }
        // The final norm is per position, so taking the last position first is exact.
        if lastPositionOnly { resid = add("last_position", SliceGraphOp(axis: 0, start: s - 1, end: s), resid) }
        let normalized = add("ln_final.hook_normalized", finalNorm, resid)
        add("logits", LayerOp(unembedding), normalized)                                  // [T, V]
        let sources = p == 0 || prefixSource != nil ? [] : (0..<c.nLayer).flatMap { l in
            ["k", "v"].map { ("blocks.\(l).attn.\($0)_source", ValueType([t, hkv, dh], dtype)) }
        }
        return try Graph(inputs: [("tokens", ValueType([s], .int32))] + sources, nodes: nodes, outputs: ["logits"])
    }

    /// The executor of the graph for prompts of `tokens` tokens, made once per length.
    /// - keeping: with the last position only, the values a run reads by name; the others'
    ///   rows past them are left out (`Graph.selectingRowsEarly`). nil: every value whole.
    /// - prefix: the shared prefix's length (see `graph`).
    func executor(tokens t: Int, lastPositionOnly: Bool, keeping: Set<String>? = nil, prefix: Int = 0) throws -> GraphExecutor {
        let keep = lastPositionOnly ? keeping : nil
        let key = GraphKey(tokens: t, last: lastPositionOnly, keeping: keep, prefix: prefix)
        if let e = graphs.withLock({ $0[key] }) { return e }
        let whole = try graph(tokens: t, lastPositionOnly: lastPositionOnly, prefix: prefix)
        let e = GraphExecutor(try keep.map { try whole.selectingRowsEarly(keeping: $0) } ?? whole)
        graphs.withLock { $0[key] = e }
        return e
    }
}
