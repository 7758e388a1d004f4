import AttribCore
import AttribModels

/// AtP* (Kramár et al. 2024): AtP with the QK fix for attention and GradDrop.
///
/// QK fix (heads, head-positions). Per head, the effect of a node is split into its query, key and
/// value paths (z = A(q, k)·v is a function of the head's q, k, v only):
///   - query at t: Σ_s (A'_ts − A_ts)·∂L/∂A_ts with A'_t the exact softmax of q_t(corrupt)·k_s(clean)/√d_h
///     (exact in A, linear from A to L);
///   - key at s: every row t ≥ s gets logit (t, s) moved by Δ_ts; the row's softmax is recomputed exactly
///     and dotted with ∂L/∂A, all keys of a head in O(T²) by `Tensor.atpKeyEffects` (a device kernel,
///     in the stable log-odds form documented in Ops/AtP.swift);
///   - value at t: AtP, Δv_t·∂L/∂v_t (z is linear in v).
/// A head-position node (head, t) scores query t + key t + value t (the head's inputs from token t,
/// the same node exact patching replaces, `ComponentNodeSet.slices`).
///
/// A head node (every position) needs no fix: patching all of a head's queries, keys and values
/// gives exactly the corrupt run's z, so AtP on z is already exact in the softmax, and AtP* scores
/// heads by it. Summing the per-position terms instead (this engine's earlier heads rule) treats
/// the keys' effects as additive and drops the ΔA·Δv term that z' − z contains: on SmolLM2's IOI
/// pairs it ranked heads at Spearman ρ 0.80 against exact patching where AtP on z had 0.96, and on
/// the tiny GPT-NeoX fixture at −0.05 where AtP had 0.98 (a changed token moves a layer-0 head's
/// pattern and values at once). Neurons use plain AtP.
///
/// GradDrop. For each layer l, a backward with layer l's residual contributions (attn_out and mlp_out)
/// cut (`DecoderModel.backward(gradDrop: [l])`) gives ĉ_l(n) (the estimate above with those gradients);
/// score(n) = (1/(L − 1))·Σ_l |ĉ_l(n)|. For a node in layer m: l < m leaves every gradient at layer m
/// unchanged, so ĉ_l = ĉ with no extra pass; l = m cuts the node's own outflow (the model zeroes the
/// gradient of every node inside the dropped block), so ĉ_m = 0, which is why the paper divides by
/// L − 1, not L; only l > m needs the dropped backward. Hence L − 1 extra backwards (l = 1…L−1) for
/// all nodes, and each runs only the l layers below the dropped one, from the plain backward's
/// gradient at block l's output (`DecoderModel.backwardBelow`): together about L/2 backwards. With one layer GradDrop is skipped (score = |ĉ|). GradDrop scores are magnitudes;
/// `signed` keeps the estimate without GradDrop.
///
/// How the ĉ_l become a score is `GradDropRule`: the paper's mean, or (the default) that mean
/// floored at |ĉ|, because the mean alone collapses on shallow models (see the rule).
public struct AtPStar: Sendable {
    public var qkFix: Bool
    /// nil: no GradDrop (score = |ĉ|, the QK-fixed AtP magnitude).
    public var gradDrop: GradDropRule?
    /// Run the corrupt prompts from their first difference from the clean ones, on the clean
    /// run's keys and values for the shared prefix (`SharedPrefix`; AtP's rule); false runs them whole.
    public var sharePrefix = AtP.sharesPrefix
    public init(qkFix: Bool = true, gradDrop: GradDropRule? = .default) { self.qkFix = qkFix; self.gradDrop = gradDrop }
    public init(qkFix: Bool = true, gradDrop: Bool) { self.init(qkFix: qkFix, gradDrop: gradDrop ? .default : nil) }

    public struct Result: Sendable {
        /// The AtP* scores (≥ 0 with GradDrop), in the node set's order.
        public let scores: ComponentScores
        /// The QK-fixed estimate with the plain gradients (signed; no GradDrop).
        public let signed: [Double]
        /// ĉ_l per dropped layer l (nodes in layers ≥ l hold the values the score used: ĉ or 0).
        public let perDrop: [[Double]]
    }

    public func estimate(_ model: DecoderModel, pair: PromptPair, metric: TokenMetric,
                         granularity: ComponentGranularity) throws -> Result {
        try estimate(model, pairs: [pair], metric: metric, granularity: granularity)[0]
    }

    /// AtP* of a batch of pairs of one length, `metric` naming one token per prompt
    /// (`TokenMetric.stacked`): one corrupt forward, one clean forward, one plain backward and
    /// the GradDrop backwards, each of all the prompts at once; each prompt's gradients are its
    /// own metric's (no prompt attends to another). Each pair's result is what it gets alone, up
    /// to the products' rounding; its seconds are the batch's over its size.
    public func estimate(_ model: DecoderModel, pairs: [PromptPair], metric: TokenMetric,
                         granularity: ComponentGranularity) throws -> [Result] {
        let start = ContinuousClock.now
        guard let first = pairs.first else { return [] }
        for p in pairs { try p.check(for: model, "AtPStar") }
        if let other = pairs.first(where: { $0.clean.count != first.clean.count }) {
            throw AttribError.shapeMismatch(op: "AtPStar", detail: "a batch of pairs of \(first.clean.count) and \(other.clean.count) tokens: a batch needs one length")
        }
        let c = model.config, nl = c.nLayer, batch = pairs.count
        let nodes = try ComponentNodeSet(granularity, config: c, tokens: first.clean.count)
        let useQK = qkFix && granularity == .headPositions
        // The QK fix reads the scores' own q and k: after RoPE where the model has it.
        let qKind = c.scoreQueryKind, kKind = c.scoreKeyKind
        let gradPoints: Set<HookPoint> = useQK
            ? Set((0..<nl).flatMap { [HookPoint(.attnPattern, layer: $0), HookPoint(.attnV, layer: $0)] }) : nodes.hookPoints
        let cachePoints: Set<HookPoint> = useQK
            ? Set((0..<nl).flatMap { l in [qKind, kKind, .attnV, .attnPattern].map { HookPoint($0, layer: l) } }) : nodes.hookPoints
        let clean = pairs.map(\.clean), corruptTokens = pairs.map(\.corrupt)
        let shared = sharePrefix ? SharedPrefix.commonLength(corruptTokens, clean) : 0
        // The backwards below ask for gradPoints and, with GradDrop, the blocks' outputs, and
        // start at the blocks' inputs.
        let backwardPoints = gradDrop == nil ? gradPoints
            : gradPoints.union((1..<max(1, nl)).flatMap { [HookPoint(.residPost, layer: $0), HookPoint(.residPre, layer: $0)] })
        let run = try model.forward(clean, cache: shared > 0 ? cachePoints.union(model.keyValuePoints) : cachePoints,
                                    keepForBackward: true, logitPositions: .last, gradientNodes: backwardPoints)
        let (values, upstream) = try metric.evaluate(run.logits)
        // The corrupt run after the clean one, from the prefix they share where they do.
        let corrupt = shared > 0
            ? try model.forward(corruptTokens, cache: cachePoints, sharing: SharedPrefix(length: shared, tokens: clean, cache: run.cache))
            : try model.forward(corruptTokens, cache: cachePoints, logitPositions: .last)   // cache [B, …]
        let corruptValues = try metric.evaluate(corrupt.logits).values
        /// Prompt b's slice of batched values, [1, …] views.
        func row(_ m: [HookPoint: Tensor], _ b: Int) throws -> [HookPoint: Tensor] {
            if batch == 1 { return m }
            var out: [HookPoint: Tensor] = [:]
            for (p, v) in m { out[p] = try v.rows(b..<b + 1) }
            return out
        }
        // Without the QK fix every node's estimate is Δ·∂L/∂n, contracted on the device for the whole
        // batch; the QK fix's pieces are per prompt (row views) and read Δv on the host.
        let deltas = useQK ? [:] : try PatchingHost.deltaTensors(clean: run.cache, corrupt: corrupt.cache, points: nodes.hookPoints)
        var deltaV: [[HookPoint: [Double]]] = [], prep: [[QKLayer]] = []
        if useQK {
            let vPoints = Set((0..<nl).map { HookPoint(.attnV, layer: $0) })
            for b in 0..<batch {
                let (clean, corr) = (try row(run.cache, b), try row(corrupt.cache, b))
                deltaV.append(try PatchingHost.deltas(clean: clean, corrupt: corr, points: vPoints))
                prep.append(try (0..<nl).map { try QKLayer(model, layer: $0, clean: clean, corrupt: corr) })
            }
        }

        /// Every prompt's estimates of the nodes of layer l with the batch's gradients `g`, [B][perLayer].
        func layerEstimates(_ l: Int, _ g: [HookPoint: Tensor]) throws -> [[Double]] {
            guard useQK else { return try PatchingHost.firstOrder(nodes, layer: l, deltas: deltas, gradients: g) }
            return try (0..<batch).map { b in
                try prep[b][l].estimate(nodes, gradients: try row(g, b), deltaV: deltaV[b][HookPoint(.attnV, layer: l)]!)
            }
        }
        let per = nodes.perLayer
        // With GradDrop, the plain backward also keeps each block's output gradient, from which
        // each GradDrop pass runs only the layers below its dropped block (backwardBelow).
        let dropping = gradDrop != nil && nl > 1
        let residPoints = dropping ? Set((1..<nl).map { HookPoint(.residPost, layer: $0) }) : []
        let plain = try model.backward(run, upstream: upstream, nodes: gradPoints.union(residPoints)).nodes
        var signed = [[Double]](repeating: [Double](repeating: 0, count: nodes.count), count: batch)
        for l in 0..<nl {
            let e = try layerEstimates(l, plain)
            for b in 0..<batch { signed[b].replaceSubrange(l * per..<(l + 1) * per, with: e[b]) }
        }
        var backwards = 1
        var scores = signed.map { $0.map(abs) }
        var perDrop = [[[Double]]](repeating: [], count: batch)
        if let rule = gradDrop, nl > 1 {
            for drop in 0..<nl {
                var est = [[Double]](repeating: [Double](repeating: 0, count: nodes.count), count: batch)
                // Layers above the dropped one: unchanged gradients. The dropped layer: 0.
                if drop + 1 < nl {
                    for b in 0..<batch { est[b].replaceSubrange((drop + 1) * per..<nl * per, with: signed[b][(drop + 1) * per..<nl * per]) }
                }
                if drop > 0 {
                    let g = try model.backwardBelow(run, layer: drop, residualGradient: plain[HookPoint(.residPost, layer: drop)]!,
                                                    nodes: gradPoints.filter { $0.layer < drop })
                    backwards += 1
                    for l in 0..<drop {
                        let e = try layerEstimates(l, g)
                        for b in 0..<batch { est[b].replaceSubrange(l * per..<(l + 1) * per, with: e[b]) }
                    }
                }
                for b in 0..<batch { perDrop[b].append(est[b]) }
            }
            for b in 0..<batch { scores[b] = rule.scores(signed: signed[b], perDrop: perDrop[b]) }
        }
        let name = (qkFix ? "atp*" : "atp+gd") + (gradDrop.map { "-" + $0.rawValue } ?? "-nogd")
        let seconds = secondsSince(start) / Double(batch)
        return (0..<batch).map { b in
            Result(scores: ComponentScores(method: name, nodes: nodes, scores: scores[b], cleanMetric: values[b], corruptMetric: corruptValues[b],
                                           forwardRows: 2, backwardPasses: backwards, seconds: seconds, sharedPrefix: shared),
                   signed: signed[b], perDrop: perDrop[b])
        }
    }
}

/// The per-layer pieces of the QK fix that do not depend on the gradients: the clean scores X,
/// the key deltas D = q·(k_n − k)ᵀ/√d_h ([H, T, T], on the device) and A'_q − A for the query fix
/// (host). q and k are the ones the scores are made of (after RoPE). Head-position nodes, the only
/// ones the QK fix scores, exist with one key/value head per query head (ComponentNodeSet).
struct QKLayer {
    let layer: Int, heads: Int, tokens: Int
    let scores: Tensor, keyDelta: Tensor
    let queryPatternDelta: [Double]      // [H, T, T]

    init(_ model: DecoderModel, layer l: Int, clean: [HookPoint: Tensor], corrupt: [HookPoint: Tensor]) throws {
        let c = model.config, h = c.nHead, dh = c.headDim
        let qKind = c.scoreQueryKind, kKind = c.scoreKeyKind
        let t = clean[HookPoint(qKind, layer: l)]!.shape[1]
        if let w = c.slidingWindow(layer: l), w < t {
            throw AttribError.invalidArgument(op: "AtPStar", detail: "layer \(l) attends over a sliding window of \(w) tokens, shorter than the prompt (\(t)): the QK fix's key effects assume full causal rows (use --no-qk-fix or prompts of at most \(w) tokens)")
        }
        func heads(_ cache: [HookPoint: Tensor], _ k: HookKind) throws -> Tensor {
            try cache[HookPoint(k, layer: l)]!.transposed12().reshaped([h, t, dh])       // [H, T, d_h]
        }
        let scale = c.attentionScale
        let q = try heads(clean, qKind), k = try heads(clean, kKind)
        let qn = try heads(corrupt, qKind), kn = try heads(corrupt, kKind)
        scores = try q.matmul(k, transposeOther: true, alpha: scale)
        keyDelta = try q.matmul(try kn.subtracting(k), transposeOther: true, alpha: scale)
        let patched = try qn.matmul(k, transposeOther: true, alpha: scale).causalSoftmax()
        let pattern = try clean[HookPoint(.attnPattern, layer: l)]!.reshaped([h, t, t])
        queryPatternDelta = try patched.subtracting(pattern).doubles()
        self.heads = h; tokens = t; layer = l
    }

    /// Query, key and value terms per (head, position) [H, T], and the node estimates of the layer.
    func terms(gradients g: [HookPoint: Tensor], layer l: Int, deltaV: [Double], headDim dh: Int) throws -> (q: [Double], k: [Double], v: [Double]) {
        let h = heads, t = tokens
        let gA = try g[HookPoint(.attnPattern, layer: l)]!.reshaped([h, t, t])
        let kEff = try scores.atpKeyEffects(delta: keyDelta, grad: gA).doubles()       // [H, T]
        let ga = try gA.doubles()
        var qEff = [Double](repeating: 0, count: h * t)
        for r in 0..<(h * t) {
            var s = 0.0
            for j in 0..<t { s += queryPatternDelta[r * t + j] * ga[r * t + j] }
            qEff[r] = s
        }
        // Head-position nodes exist only with one key/value head per query head
        // (ComponentNodeSet), so v and its gradient are per query head here.
        var vEff = [Double](repeating: 0, count: h * t)
        let gv = try g[HookPoint(.attnV, layer: l)]!.doubles()                          // [T, H, d_h]
        for pos in 0..<t {
            for hd in 0..<h {
                var s = 0.0
                let base = (pos * h + hd) * dh
                for i in 0..<dh { s += deltaV[base + i] * gv[base + i] }
                vEff[hd * t + pos] = s
            }
        }
        return (qEff, kEff, vEff)
    }
    /// Head-position nodes: query t + key t + value t of each head.
    func estimate(_ nodes: ComponentNodeSet, gradients g: [HookPoint: Tensor], deltaV: [Double]) throws -> [Double] {
        let (q, k, v) = try terms(gradients: g, layer: layer, deltaV: deltaV, headDim: nodes.config.headDim)
        return (0..<(heads * tokens)).map { q[$0] + k[$0] + v[$0] }
    }
}
