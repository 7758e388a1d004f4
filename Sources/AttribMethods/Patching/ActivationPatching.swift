import AttribCore
import AttribModels

/// Exact activation patching (the ground truth of AtP and AtP*):
/// c(n) = L(clean | do(n ← n(corrupt))) − L(clean) for every node n of a granularity.
/// Rows of a device batch are the clean prompt with one node's slices patched each, so N nodes
/// cost ⌈N / batchSize⌉ batched forwards of `batchSize` rows, plus one clean and one corrupt forward.
/// Without a batch size, the rows that fit a quarter of the device's memory (DecoderModel.patchingBatchRows).
public enum ActivationPatching {
    /// The effects of every node (or of the nodes `only`, in that order) of `granularity`.
    public static func effects(_ model: DecoderModel, pair: PromptPair, metric: TokenMetric, granularity: ComponentGranularity,
                               only: [Int]? = nil, batchSize: Int? = nil) throws -> ComponentScores {
        let start = ContinuousClock.now
        let op = "ActivationPatching"
        try pair.check(for: model, op)
        let batchSize = batchSize ?? model.patchingBatchRows(tokens: pair.clean.count)
        guard batchSize >= 1 else { throw AttribError.invalidArgument(op: op, detail: "batch size \(batchSize); must be at least 1") }
        let nodes = try ComponentNodeSet(granularity, config: model.config, tokens: pair.clean.count)
        let indices = only ?? Array(0..<nodes.count)
        if let bad = indices.first(where: { !(0..<nodes.count).contains($0) }) {
            throw AttribError.indexOutOfRange(op: op, detail: "node \(bad) of \(nodes.count) \(granularity.rawValue) nodes")
        }
        let corrupt = try model.forward([pair.corrupt], cache: nodes.hookPoints, logitPositions: .last)
        let corruptValue = try metric.evaluate(corrupt.logits).values[0]
        let base = try metric.evaluate(model.forward([pair.clean], logitPositions: .last).logits).values[0]
        let found = try patchedValues(model, clean: pair.clean, metric: metric, groups: indices.map { nodes.slices($0) },
                                      source: corrupt.cache, batchSize: batchSize).map { $0 - base }
        var scores = [Double](repeating: only == nil ? 0 : .nan, count: nodes.count)
        for (k, i) in indices.enumerated() { scores[i] = found[k] }
        return ComponentScores(method: "patch", nodes: nodes, scores: scores, cleanMetric: base, corruptMetric: corruptValue,
                               forwardRows: indices.count + 2, backwardPasses: 0, seconds: secondsSince(start))
    }

    /// The metric of the clean prompt with each group of slices patched from `source` (row 0),
    /// `batchSize` groups per batched forward.
    public static func patchedValues(_ model: DecoderModel, clean: [Int32], metric: TokenMetric, groups: [[NodeSlice]],
                                     source: [HookPoint: Tensor], batchSize: Int? = nil) throws -> [Double] {
        let batchSize = max(1, batchSize ?? model.patchingBatchRows(tokens: clean.count))
        var out: [Double] = []
        out.reserveCapacity(groups.count)
        var start = 0
        while start < groups.count {
            let chunk = groups[start..<min(groups.count, start + batchSize)]
            var patches: [ActivationPatch] = []
            for (r, g) in chunk.enumerated() {
                for s in g {
                    guard let src = source[s.point] else {
                        throw AttribError.invalidArgument(op: "ActivationPatching", detail: "\(s): the source holds no \(s.point.name)")
                    }
                    patches.append(ActivationPatch(row: r, node: s, source: src, sourceRow: 0))
                }
            }
            let run = try model.forward(Array(repeating: clean, count: chunk.count), patches: patches, logitPositions: .last)
            out += try metric.evaluate(run.logits).values
            start += chunk.count
        }
        return out
    }
}
