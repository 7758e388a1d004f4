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
    public static func estimate(_ model: DecoderModel, pairs: [PromptPair], metrics: [TokenMetric], granularity: ComponentGranularity,
                                batchSize: Int? = nil) throws -> [ComponentScores] {
        guard pairs.count == metrics.count else {
            throw AttribError.invalidArgument(op: "AtP", detail: "\(pairs.count) pairs but \(metrics.count) metrics")
        }
        var out: [ComponentScores] = []
        for r in batches(pairs: pairs, metrics: metrics, batchSize: { batchSize ?? model.gradientBatchRows(tokens: $0) }) {
            // One pair keeps its own metric (a custom one stacks with nothing).
            let metric = r.count == 1 ? metrics[r.lowerBound] : TokenMetric.stacked(Array(metrics[r]))!
            out += try batch(model, pairs: Array(pairs[r]), metric: metric, granularity: granularity)
        }
        return out
    }

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
    static func batch(_ model: DecoderModel, pairs: [PromptPair], metric: TokenMetric, granularity: ComponentGranularity) throws -> [ComponentScores] {
        let start = ContinuousClock.now
        for p in pairs { try p.check(for: model, "AtP") }
        let nodes = try ComponentNodeSet(granularity, config: model.config, tokens: pairs[0].clean.count)
        let points = nodes.hookPoints
        let corrupt = try model.forward(pairs.map(\.corrupt), cache: points, logitPositions: .last)   // cache [B, T, …]
        let corruptValues = try metric.evaluate(corrupt.logits).values
        let g = try model.gradients(pairs.map(\.clean), metric: metric, nodes: points)
        let deltas = try PatchingHost.deltas(clean: g.run.cache, corrupt: corrupt.cache, points: points)
        var grads: [HookPoint: [Double]] = [:]
        for p in points { grads[p] = try g.gradients.nodes[p]!.doubles() }
        let scores = pairs.indices.map { b in
            var row = [Double](repeating: 0, count: nodes.count)
            for l in 0..<model.config.nLayer {
                let part = PatchingHost.firstOrder(nodes, layer: l, deltas: deltas, gradients: grads, row: b)
                row.replaceSubrange(l * nodes.perLayer..<(l + 1) * nodes.perLayer, with: part)
            }
            return row
        }
        let seconds = secondsSince(start) / Double(pairs.count)
        return pairs.indices.map { b in
            ComponentScores(method: "atp", nodes: nodes, scores: scores[b], cleanMetric: g.values[b], corruptMetric: corruptValues[b],
                            forwardRows: 2, backwardPasses: 1, seconds: seconds)
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

    /// The first-order (AtP) estimate of the nodes of layer l: Δ·∂L/∂n summed over each node's slices.
    static func firstOrder(_ nodes: ComponentNodeSet, layer l: Int, deltas: [HookPoint: [Double]],
                           gradients: [HookPoint: Tensor]) throws -> [Double] {
        var g: [HookPoint: [Double]] = [:]
        for k in kinds(nodes.granularity) { let p = HookPoint(k, layer: l); g[p] = try gradients[p]!.doubles() }
        return firstOrder(nodes, layer: l, deltas: deltas, gradients: g, row: 0)
    }

    /// The same from downloaded values of a batch: `row` picks the prompt (deltas and gradients
    /// [B, T, H, d_h] or [B, T, F], row-major).
    static func firstOrder(_ nodes: ComponentNodeSet, layer l: Int, deltas: [HookPoint: [Double]],
                           gradients: [HookPoint: [Double]], row: Int) -> [Double] {
        let c = nodes.config, t = nodes.tokens, h = c.nHead, dh = c.headDim, f = c.nInner
        var out = [Double](repeating: 0, count: nodes.perLayer)
        switch nodes.granularity {
        case .heads, .headPositions:
            for k in kinds(nodes.granularity) {
                let p = HookPoint(k, layer: l)
                let d = deltas[p]!, g = gradients[p]!, origin = row * t * h * dh
                for pos in 0..<t {
                    for hd in 0..<h {
                        var s = 0.0
                        let base = origin + (pos * h + hd) * dh
                        for i in 0..<dh { s += d[base + i] * g[base + i] }
                        if nodes.granularity == .heads { out[hd] += s } else { out[hd * t + pos] += s }
                    }
                }
            }
        case .neurons, .neuronPositions:
            let p = HookPoint(.mlpPost, layer: l)
            let d = deltas[p]!, g = gradients[p]!, origin = row * t * f
            for pos in 0..<t {
                for i in 0..<f {
                    let v = d[origin + pos * f + i] * g[origin + pos * f + i]
                    if nodes.granularity == .neurons { out[i] += v } else { out[pos * f + i] = v }
                }
            }
        }
        return out
    }
}
