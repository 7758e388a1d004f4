import AttribCore
import AttribModels

/// Exact activation patching (the ground truth of AtP and AtP*):
/// c(n) = L(clean | do(n ← n(corrupt))) − L(clean) for every node n of a granularity.
/// Rows of a device batch are the clean prompt with one node's slices patched each, so N nodes
/// cost ⌈N / batchSize⌉ batched forwards of `batchSize` rows, plus one clean and one corrupt forward.
/// Without a batch size, the rows that fit a quarter of the device's memory (DecoderModel.patchingBatchRows).
///
/// Where the corrupt prompt agrees with the clean one on its first p tokens, every run's values
/// there are the clean run's (causal attention; a patch there copies the same values), so the
/// corrupt run and every patched run compute only the positions from p on, on the clean run's
/// keys and values (`DecoderModel.forward(_:cache:sharing:patches:)`).
public enum ActivationPatching {
    /// The effects of every node (or of the nodes `only`, in that order) of `granularity`.
    /// - sharePrefix: run the corrupt and patched prompts from the first difference (see above);
    ///   false runs them whole (for comparison).
    public static func effects(_ model: DecoderModel, pair: PromptPair, metric: TokenMetric, granularity: ComponentGranularity,
                               only: [Int]? = nil, batchSize: Int? = nil, sharePrefix: Bool = AtP.sharesPrefix) throws -> ComponentScores {
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
        let shared = sharePrefix ? SharedPrefix.commonLength([pair.corrupt], [pair.clean]) : 0
        var prefix: SharedPrefix?
        let base: Double, corrupt: DecoderRun
        if shared > 0 {
            let clean = try model.forward([pair.clean], cache: nodes.hookPoints.union(model.keyValuePoints), logitPositions: .last)
            base = try metric.evaluate(clean.logits).values[0]
            prefix = SharedPrefix(length: shared, tokens: [pair.clean], cache: clean.cache)
            corrupt = try model.forward([pair.corrupt], cache: nodes.hookPoints, sharing: prefix!)
        } else {
            base = try metric.evaluate(model.forward([pair.clean], logitPositions: .last).logits).values[0]
            corrupt = try model.forward([pair.corrupt], cache: nodes.hookPoints, logitPositions: .last)
        }
        let corruptValue = try metric.evaluate(corrupt.logits).values[0]
        let found = try patchedValues(model, clean: pair.clean, metric: metric, groups: indices.map { nodes.slices($0) },
                                      source: corrupt.cache, batchSize: batchSize, sharing: prefix).map { $0 - base }
        var scores = [Double](repeating: only == nil ? 0 : .nan, count: nodes.count)
        for (k, i) in indices.enumerated() { scores[i] = found[k] }
        return ComponentScores(method: "patch", nodes: nodes, scores: scores, cleanMetric: base, corruptMetric: corruptValue,
                               forwardRows: indices.count + 2, backwardPasses: 0, seconds: secondsSince(start), sharedPrefix: shared)
    }

    /// The metric of the clean prompt with each group of slices patched from `source` (row 0),
    /// `batchSize` groups per batched forward.
    /// - sharing: the clean prompt's run as a shared prefix (one prompt, its keys and values):
    ///   the patched rows then compute only the positions after it, and `source` must agree
    ///   with it below (a corrupt run made with the same prefix does).
    public static func patchedValues(_ model: DecoderModel, clean: [Int32], metric: TokenMetric, groups: [[NodeSlice]],
                                     source: [HookPoint: Tensor], batchSize: Int? = nil, sharing: SharedPrefix? = nil) throws -> [Double] {
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
            let rows = Array(repeating: clean, count: chunk.count)
            let run = try sharing.map { try model.forward(rows, cache: [], sharing: $0, patches: patches) }
                ?? model.forward(rows, patches: patches, logitPositions: .last)
            out += try metric.evaluate(run.logits).values
            start += chunk.count
        }
        return out
    }
}
