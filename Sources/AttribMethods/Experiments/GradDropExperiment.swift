import AttribCore
import AttribModels

/// Each GradDrop rule (and no GradDrop) against exact activation patching on the same pairs:
/// the measurement behind `GradDropRule.default`. One AtP* run per pair gives ĉ and every ĉ_l,
/// so all rules score the same estimates; exact patching gives the truth.
public enum GradDropExperiment {
    public struct RuleRow: Sendable {
        /// "none" (|ĉ|, the QK-fixed AtP magnitude) or a `GradDropRule` name.
        public let rule: String
        public let meanSpearman: Double
        /// Mean over pairs of the recall of the true top K.
        public let meanRecall: Double
        /// The worst rank any pair's true top-K node got (1 = first).
        public let worstRank: Int
        /// Mean over pairs of the rank of the true top-1 node.
        public let meanTopRank: Double
        /// True top-K nodes (over all pairs) ranked in the estimate's bottom half: the collapse.
        public let bottomHalf: Int
    }
    public struct Report: Sendable {
        public let layers: Int, nodes: Int, k: Int, pairs: Int
        public let rows: [RuleRow]
    }

    public static func run(_ model: DecoderModel, pairs: [(PromptPair, TokenMetric)], granularity: ComponentGranularity,
                           batchSize: Int? = nil) throws -> Report {
        guard !pairs.isEmpty else { throw AttribError.invalidArgument(op: "GradDropExperiment", detail: "no prompt pairs") }
        let names = ["none"] + GradDropRule.allCases.map(\.rawValue)
        var spearman = [[Double]](repeating: [], count: names.count), recall = spearman, topRank = spearman
        var worst = [Int](repeating: 0, count: names.count), bottom = worst
        var nodes = 0, k = 1
        for (pair, metric) in pairs {
            let star = try AtPStar(gradDrop: .paper).estimate(model, pair: pair, metric: metric, granularity: granularity)
            let exact = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: granularity,
                                                       batchSize: batchSize).scores
            nodes = exact.count
            k = RankAgreement.defaultK(nodes: nodes)
            let candidates = [star.signed.map(abs)] + GradDropRule.allCases.map {
                star.perDrop.isEmpty ? star.signed.map(abs) : $0.scores(signed: star.signed, perDrop: star.perDrop)
            }
            for (c, scores) in candidates.enumerated() {
                spearman[c].append(RankAgreement.spearman(scores, exact))
                recall[c].append(RankAgreement.recall(truth: exact, estimate: scores, k: k))
                let ranks = RankAgreement.ranksOfTrueTop(truth: exact, estimate: scores, k: k)
                topRank[c].append(Double(ranks[0].rank))
                worst[c] = max(worst[c], ranks.map(\.rank).max()!)
                bottom[c] += ranks.filter { $0.rank > (nodes + 1) / 2 }.count
            }
        }
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
        let rows = names.indices.map {
            RuleRow(rule: names[$0], meanSpearman: mean(spearman[$0]), meanRecall: mean(recall[$0]), worstRank: worst[$0],
                    meanTopRank: mean(topRank[$0]), bottomHalf: bottom[$0])
        }
        return Report(layers: model.config.nLayer, nodes: nodes, k: k, pairs: pairs.count, rows: rows)
    }
}
