import AttribCore

/// The first tokens a batch of prompts shares with prompts another run has computed, and that
/// run's values: a forward of the batch then computes only the positions after them.
///
/// Why: the prompts of a patching experiment usually differ from their clean twins late (the
/// corrupt prompt of a pair changes a name, a year, the last few tokens). Attention is causal,
/// so the values at the positions before the first difference depend on those tokens alone
/// and are the clean run's own. The corrupt run of AtP then costs the positions from its first
/// difference on: a pair that differs at T/2 saves about half of it.
public struct SharedPrefix: Sendable {
    /// p: how many first tokens each prompt shares with its row of `tokens`.
    public let length: Int
    /// The source run's prompts, [B][T].
    public let tokens: [[Int32]]
    /// The source run's cache, [B] + each point's shape: every layer's keys (after RoPE where
    /// the model has it) and values (`keyValuePoints`), and every point the new run caches.
    public let cache: [HookPoint: Tensor]
    public init(length: Int, tokens: [[Int32]], cache: [HookPoint: Tensor]) {
        self.length = length; self.tokens = tokens; self.cache = cache
    }

    /// How many first tokens every prompt of `a` shares with its row of `b`, at most T − 1
    /// (a run computes at least its last position): the batch's shortest common prefix.
    public static func commonLength(_ a: [[Int32]], _ b: [[Int32]]) -> Int {
        guard a.count == b.count, let t = a.first?.count, t >= 1 else { return 0 }
        var p = t - 1
        for (x, y) in zip(a, b) {
            guard x.count == t, y.count == t else { return 0 }
            p = min(p, zip(x, y).prefix(p).prefix { $0 == $1 }.count)
        }
        return p
    }
}

extension DecoderModel {
    /// The points whose values a shared prefix's source run must cache: per layer, the keys
    /// the scores read (after RoPE where the model has it) and the values.
    public var keyValuePoints: Set<HookPoint> {
        Set((0..<config.nLayer).flatMap { [HookPoint(config.scoreKeyKind, layer: $0), HookPoint(.attnV, layer: $0)] })
    }

    /// A forward pass of prompts [B][T] that share their first `prefix.length` tokens with the
    /// source run's rows (or, where the source is one prompt, all with it): the graph computes
    /// only the T − p positions after them, reading the prefix's keys and values from the source
    /// (`graph(prefix:)`), and the cache returns the whole [B] + shape of each point, its first p
    /// positions (queries, for the pattern) the source's. Forward only, logits of the last
    /// position only. The values are those of `forward(_:cache:logitPositions: .last)` up to the
    /// rounding of products with fewer rows.
    /// - patches: as `forward(_:patches:)`, applied from position p on (the pattern: its queries
    ///   from p on). Below p every value is the source's, so a patch source must agree with it
    ///   there, as a run made with the same shared prefix does (its first p positions are copies).
    public func forward(_ tokens: [[Int32]], cache: Set<HookPoint>, sharing prefix: SharedPrefix,
                        patches: [ActivationPatch] = []) throws -> DecoderRun {
        let op = "DecoderModel.forward(sharing:)"
        let (bsz, t, _) = try checkTokens(tokens)
        let p = prefix.length
        guard p >= 1, p < t else {
            throw AttribError.invalidArgument(op: op, detail: "a shared prefix of \(p) of \(t) tokens; it must be 1 to \(t - 1)")
        }
        // One source prompt for the whole batch, or one per prompt.
        let one = prefix.tokens.count == 1
        guard one || prefix.tokens.count == bsz, prefix.tokens.allSatisfy({ $0.count == t }) else {
            throw AttribError.shapeMismatch(op: op, detail: "the source run has \(prefix.tokens.count) prompts of \(prefix.tokens.first?.count ?? 0) tokens; this batch \(bsz) of \(t) (a source of one prompt serves any batch)")
        }
        for b in tokens.indices {
            let src = prefix.tokens[one ? 0 : b]
            if let at = (0..<p).first(where: { tokens[b][$0] != src[$0] }) {
                throw AttribError.invalidArgument(op: op, detail: "prompt \(b) differs from the source's at position \(at), inside the shared prefix of \(p) tokens")
            }
        }
        let sourceRows = one ? 1 : bsz
        for point in keyValuePoints.union(cache) {
            let want = point.shape(batch: sourceRows, tokens: t, config: config)
            guard let v = prefix.cache[point] else {
                throw AttribError.invalidArgument(op: op, detail: "the source run cached no \(point.name), which a run sharing its prefix reads")
            }
            guard v.shape == want, v.dtype == dtype, v.device === device else {
                throw AttribError.shapeMismatch(op: op, detail: "the source's \(point.name) is \(v.shape) \(v.dtype) on \(v.device.info.id); expected \(want) \(dtype) on \(device.info.id)")
            }
        }
        for patch in patches { try checkPatch(patch, batch: bsz, tokens: t) }
        let s = t - p
        var feeds = ["tokens": try Tensor(indices: tokens.flatMap { $0[p...] }, shape: [bsz, s], on: device)]
        func kv(_ l: Int) -> (k: Tensor, v: Tensor) {
            (prefix.cache[HookPoint(config.scoreKeyKind, layer: l)]!, prefix.cache[HookPoint(.attnV, layer: l)]!)
        }
        let names = Dictionary(uniqueKeysWithValues: cache.map { ($0.name, $0) })
        var byPoint: [HookPoint: [ActivationPatch]] = [:]
        for patch in patches { byPoint[patch.node.point, default: []].append(patch) }
        var modify: [String: GraphExecutor.ValueHook] = [:]
        for (point, ps) in byPoint {
            let boxes = try ps.compactMap { try patchBox($0, tokens: t, prefix: p) }
            modify[point.name] = GraphExecutor.ValueHook(forward: { a in try Self.patched(a, boxes) })
        }
        let exec: GraphExecutor
        if one {
            // The source's rows as constants of a graph made for this call.
            let source = try (0..<config.nLayer).map { l in
                let (k, v) = kv(l)
                return (k: try k.reshaped(Array(k.shape.dropFirst())), v: try v.reshaped(Array(v.shape.dropFirst())))
            }
            let whole = try graph(tokens: t, lastPositionOnly: true, prefix: p, prefixSource: source)
            exec = GraphExecutor(try whole.selectingRowsEarly(keeping: Set(names.keys).union(modify.keys)))
        } else {
            for l in 0..<config.nLayer {
                feeds["blocks.\(l).attn.k_source"] = kv(l).k
                feeds["blocks.\(l).attn.v_source"] = kv(l).v
            }
            exec = try executor(tokens: t, lastPositionOnly: true, keeping: Set(names.keys).union(modify.keys), prefix: p)
        }
        let run = try exec.forward(feeds, hooks: .init(capture: Set(names.keys), modify: modify))
        var merged: [HookPoint: Tensor] = [:]
        for (name, point) in names { merged[point] = try joined(prefix.cache[point]!, run[name]!, point: point, prefix: p, tokens: t) }
        return DecoderRun(logits: run["logits"]!, cache: merged, batch: bsz, length: t, logitPositions: .last, graph: nil)
    }

    /// The source's values of `point` [1 or B] + shape at T with the shortened run's [B] + shape
    /// at S = T − p written over its last S positions (the pattern: its last S queries of each head).
    private func joined(_ source: Tensor, _ suffix: Tensor, point: HookPoint, prefix p: Int, tokens t: Int) throws -> Tensor {
        let b = suffix.shape[0], s = t - p
        let out = try Tensor(shape: [b] + source.shape.dropFirst(), dtype: source.dtype, on: source.device)   // every element written below
        let rowSize = source.count / source.shape[0]
        if source.shape[0] == b { try source.copy(into: out) }
        else { try out.copyBox((b, 1, rowSize), from: source, sourceOffset: 0, sourceStrides: (0, 0), offset: 0, strides: (rowSize, 0)) }
        let row = point.rowShape(tokens: t, config: config)
        // Blocks of positions: per prompt (per prompt and head for the pattern), `inner` values a position.
        let (blocks, inner) = point.kind == .attnPattern ? (b * row[0], t) : (b, row.dropFirst().reduce(1, *))
        try out.copyBox((blocks, 1, s * inner), from: suffix, sourceOffset: 0, sourceStrides: (s * inner, 0),
                        offset: p * inner, strides: (t * inner, 0))
        return out
    }
}
