import AttribCore
import AttribModels

/// Attribution patching (AtP): ĉ(n) = (n(corrupt) − n(clean))ᵀ·∂L/∂n at the clean prompt, for every
/// node at once from one corrupt forward, one clean forward and one backward.
/// Heads: n = the head's z over all positions; head-positions: n = (q_t, k_t, v_t) of the head (the
/// three dot products summed); neurons: mlp_post over all positions; neuron-positions: one entry.
public enum AtP {
    public static func estimate(_ model: DecoderModel, pair: PromptPair, metric: TokenMetric,
                                granularity: ComponentGranularity) throws -> ComponentScores {
        let start = ContinuousClock.now
        try pair.check(for: model, "AtP")
        let nodes = try ComponentNodeSet(granularity, config: model.config, tokens: pair.clean.count)
        let points = nodes.hookPoints
        let corrupt = try model.forward([pair.corrupt], cache: points, logitPositions: .last)
        let corruptValue = try metric.evaluate(corrupt.logits).values[0]
        let g = try model.gradients([pair.clean], metric: metric, nodes: points)
        var scores = [Double](repeating: 0, count: nodes.count)
        let deltas = try PatchingHost.deltas(clean: g.run.cache, corrupt: corrupt.cache, points: points)
        for l in 0..<model.config.nLayer {
            let part = try PatchingHost.firstOrder(nodes, layer: l, deltas: deltas, gradients: g.gradients.nodes)
            scores.replaceSubrange(l * nodes.perLayer..<(l + 1) * nodes.perLayer, with: part)
        }
        return ComponentScores(method: "atp", nodes: nodes, scores: scores, cleanMetric: g.values[0], corruptMetric: corruptValue,
                               forwardRows: 2, backwardPasses: 1, seconds: secondsSince(start))
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

    /// The first-order (AtP) estimate of the nodes of layer l: Δ·∂L/∂n summed over each node's slices.
    static func firstOrder(_ nodes: ComponentNodeSet, layer l: Int, deltas: [HookPoint: [Double]],
                           gradients: [HookPoint: Tensor]) throws -> [Double] {
        let c = nodes.config, t = nodes.tokens, h = c.nHead, dh = c.headDim, f = c.nInner
        var out = [Double](repeating: 0, count: nodes.perLayer)
        switch nodes.granularity {
        case .heads, .headPositions:
            let kinds: [HookKind] = nodes.granularity == .heads ? [.attnZ] : [.attnQ, .attnK, .attnV]
            for k in kinds {
                let p = HookPoint(k, layer: l)
                let d = deltas[p]!, g = try gradients[p]!.doubles()             // [T, H, d_h]
                for pos in 0..<t {
                    for hd in 0..<h {
                        var s = 0.0
                        let base = (pos * h + hd) * dh
                        for i in 0..<dh { s += d[base + i] * g[base + i] }
                        if nodes.granularity == .heads { out[hd] += s } else { out[hd * t + pos] += s }
                    }
                }
            }
        case .neurons, .neuronPositions:
            let p = HookPoint(.mlpPost, layer: l)
            let d = deltas[p]!, g = try gradients[p]!.doubles()                 // [T, F]
            for pos in 0..<t {
                for i in 0..<f {
                    let v = d[pos * f + i] * g[pos * f + i]
                    if nodes.granularity == .neurons { out[i] += v } else { out[pos * f + i] = v }
                }
            }
        }
        return out
    }
}
