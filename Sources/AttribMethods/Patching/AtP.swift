#if canImport(Glibc)
import Glibc
#endif
import AttribCore
import AttribModels

/// Attribution patching (AtP): ĉ(n) = (n(corrupt) − n(clean))ᵀ·∂L/∂n at the clean prompt, for every
/// node at once from one corrupt forward, one clean forward and one backward.
/// Heads: n = the head's z over all positions; head-positions: n = (q_t, k_t, v_t) of the head (the
/// three dot products summed); neurons: mlp_post over all positions; neuron-positions: one entry.
public enum AtP {
    public static func estimate(_ model: DecoderModel, pair: PromptPair, metric: TokenMetric,
                                granularity: ComponentGranularity) throws -> ComponentScores {
        try batch(model, pairs: [pair], metric: metric, granularity: granularity)[0]
    }

    /// AtP of many pairs, batched: consecutive pairs of one length whose metrics stack (one
    /// token per prompt, `TokenMetric.stacked`) run as one corrupt forward of B prompts, one
    /// clean forward and one backward of their metrics' sum. A prompt's rows meet no other
    /// prompt's, so each prompt's gradient is its own metric's. Each weight matrix then meets
    /// B·T rows instead of T: at T = 64 a product of 64 rows leaves the CPU's GEMM far below its
    /// rate. The scores are `estimate(pair:)`'s up to the products' rounding; each pair's seconds
    /// are its batch's over its size.
    /// - batchSize: prompts per batch; nil sizes it from memory (`DecoderModel.gradientBatchRows`).
    /// - sharePrefix: run each batch's corrupt prompts from their first difference from the
    ///   clean ones (`SharedPrefix`); false runs them whole (for comparison).
    public static func estimate(_ model: DecoderModel, pairs: [PromptPair], metrics: [TokenMetric], granularity: ComponentGranularity,
                                batchSize: Int? = nil, sharePrefix: Bool = sharesPrefix) throws -> [ComponentScores] {
        guard pairs.count == metrics.count else {
            throw AttribError.invalidArgument(op: "AtP", detail: "\(pairs.count) pairs but \(metrics.count) metrics")
        }
        var out: [ComponentScores] = []
        for r in batches(pairs: pairs, metrics: metrics, batchSize: { batchSize ?? model.gradientBatchRows(tokens: $0) }) {
            // One pair keeps its own metric (a custom one stacks with nothing).
            let metric = r.count == 1 ? metrics[r.lowerBound] : TokenMetric.stacked(Array(metrics[r]))!
            out += try batch(model, pairs: Array(pairs[r]), metric: metric, granularity: granularity, sharePrefix: sharePrefix)
        }
        return out
    }

    /// Whether the corrupt runs share the clean runs' prefix by default: yes, unless
    /// ATTRIB_SHARED_PREFIX=0 (for A/B runs of the whole command).
    public static let sharesPrefix: Bool = getenv("ATTRIB_SHARED_PREFIX").map { String(cString: $0) != "0" } ?? true

    /// How `estimate(pairs:)` groups pairs: runs of consecutive pairs of one length whose metrics
    /// stack, each at most `batchSize(tokens)` long (at least 1).
    public static func batches(pairs: [PromptPair], metrics: [TokenMetric], batchSize: (Int) -> Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        while i < pairs.count {
            let t = pairs[i].clean.count, cap = max(1, batchSize(t))
            var j = i + 1
            while j < pairs.count, j - i < cap, pairs[j].clean.count == t, TokenMetric.stacked(Array(metrics[i...j])) != nil { j += 1 }
            out.append(i..<j)
            i = j
        }
        return out
    }

    /// One batch of `estimate(pairs:)` (of one pair for `estimate(pair:)`): pairs of one length,
    /// their metrics stacked into `metric`.
    /// The clean run goes first: where the corrupt prompts share a prefix with the clean ones
    /// (`SharedPrefix.commonLength`, the batch's shortest), the corrupt run computes only the
    /// positions after it, from the clean run's keys and values, and its Δ there is exactly 0.
    static func batch(_ model: DecoderModel, pairs: [PromptPair], metric: TokenMetric, granularity: ComponentGranularity,
                      sharePrefix: Bool = sharesPrefix) throws -> [ComponentScores] {
        let start = ContinuousClock.now
        for p in pairs { try p.check(for: model, "AtP") }
        let nodes = try ComponentNodeSet(granularity, config: model.config, tokens: pairs[0].clean.count)
        let points = nodes.hookPoints
        let clean = pairs.map(\.clean), corruptTokens = pairs.map(\.corrupt)
        let shared = sharePrefix ? SharedPrefix.commonLength(corruptTokens, clean) : 0
        // The clean forward and backward in a scope of their own, so the run's saved state is
        // freed before the corrupt run: only its cache and the gradients stay.
        let (cleanValues, cleanCache, gradients) = try { () throws -> ([Double], [HookPoint: Tensor], [HookPoint: Tensor]) in
            let run = try model.forward(clean, cache: shared > 0 ? points.union(model.keyValuePoints) : points, keepForBackward: true,
                                        logitPositions: .last, gradientNodes: points)
            let (values, upstream) = try metric.evaluate(run.logits)
            return (values, run.cache, try model.backward(run, upstream: upstream, nodes: points).nodes)
        }()
        let corrupt = shared > 0
            ? try model.forward(corruptTokens, cache: points, sharing: SharedPrefix(length: shared, tokens: clean, cache: cleanCache))
            : try model.forward(corruptTokens, cache: points, logitPositions: .last)                   // cache [B, T, …]
        let corruptValues = try metric.evaluate(corrupt.logits).values
        let deltas = try PatchingHost.deltaTensors(clean: cleanCache, corrupt: corrupt.cache, points: points)
        var scores = [[Double]](repeating: [Double](repeating: 0, count: nodes.count), count: pairs.count)
        for l in 0..<model.config.nLayer {
            let part = try PatchingHost.firstOrder(nodes, layer: l, deltas: deltas, gradients: gradients)
            for b in pairs.indices { scores[b].replaceSubrange(l * nodes.perLayer..<(l + 1) * nodes.perLayer, with: part[b]) }
        }
        let seconds = secondsSince(start) / Double(pairs.count)
        return pairs.indices.map { b in
            ComponentScores(method: "atp", nodes: nodes, scores: scores[b], cleanMetric: cleanValues[b], corruptMetric: corruptValues[b],
                            forwardRows: 2, backwardPasses: 1, seconds: seconds, sharedPrefix: shared)
        }
    }
}

/// Host-side contractions shared by AtP and AtP*.
enum PatchingHost {
    /// corrupt − clean per hook point, downloaded.
    static func deltas(clean: [HookPoint: Tensor], corrupt: [HookPoint: Tensor], points: Set<HookPoint>) throws -> [HookPoint: [Double]] {
        var out: [HookPoint: [Double]] = [:]
        for p in points {
            let a = try clean[p]!.doubles(), b = try corrupt[p]!.doubles()
            out[p] = zip(b, a).map { $0 - $1 }
        }
        return out
    }

    /// The hook kinds whose Δ·∂L/∂n make the first-order estimate of a node set's nodes.
    static func kinds(_ g: ComponentGranularity) -> [HookKind] {
        switch g {
        case .heads: return [.attnZ]
        case .headPositions: return [.attnQ, .attnK, .attnV]
        case .neurons, .neuronPositions: return [.mlpPost]
        }
    }

    /// corrupt − clean per hook point, on the device: [B, T, …] as the caches.
    static func deltaTensors(clean: [HookPoint: Tensor], corrupt: [HookPoint: Tensor], points: Set<HookPoint>) throws -> [HookPoint: Tensor] {
        var out: [HookPoint: Tensor] = [:]
        for p in points { out[p] = try corrupt[p]!.subtracting(clean[p]!) }
        return out
    }

    /// The first-order (AtP) estimates of layer l's nodes for every prompt of a batch, [B][perLayer]:
    /// Δ·∂L/∂n summed over each node's slices (deltas and gradients [B, T, H, d_h] or [B, T, F]).
    /// The products and the sums over a head's d_h (over positions, for neurons) run on the
    /// device, so only [B, T, H] or [B, F] values come back, not three copies of every hook
    /// point as Doubles (GPT-2-small, 8 prompts of 64 tokens: 14M Doubles a batch). Those sums
    /// have d_h or T terms in the model's dtype; the sums over positions of heads run in Double.
    static func firstOrder(_ nodes: ComponentNodeSet, layer l: Int, deltas: [HookPoint: Tensor],
                           gradients: [HookPoint: Tensor]) throws -> [[Double]] {
        let c = nodes.config, t = nodes.tokens, h = c.nHead, dh = c.headDim, f = c.nInner
        let kinds = kinds(nodes.granularity)
        let batch = deltas[HookPoint(kinds[0], layer: l)]!.shape[0]
        var out = [[Double]](repeating: [Double](repeating: 0, count: nodes.perLayer), count: batch)
        for k in kinds {
            let p = HookPoint(k, layer: l)
            let product = try deltas[p]!.multiplying(gradients[p]!)
            switch nodes.granularity {
            case .heads, .headPositions:
                let s = try product.reshaped([batch * t * h, dh]).reduceRows(.sum).doubles()   // [B, T, H]
                for b in 0..<batch {
                    for pos in 0..<t {
                        for hd in 0..<h {
                            let v = s[(b * t + pos) * h + hd]
                            if nodes.granularity == .heads { out[b][hd] += v } else { out[b][hd * t + pos] += v }
                        }
                    }
                }
            case .neurons:
                let s = try product.reshaped([batch, t, f, 1]).transposed12().reshaped([batch * f, t]).reduceRows(.sum).doubles()   // [B, F]
                for b in 0..<batch { out[b] = Array(s[b * f..<(b + 1) * f]) }
            case .neuronPositions:
                let s = try product.doubles()   // [B, T, F]: every position's neuron is a node
                for b in 0..<batch { out[b] = Array(s[b * t * f..<(b + 1) * t * f]) }
            }
        }
        return out
    }
}
