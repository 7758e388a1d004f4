import AttribCore

/// A scalar per prompt computed from the final logits, with its gradient ∂L/∂logits:
/// what activation patching, AtP and AtP* measure. Token lists hold one token per prompt,
/// or a single token shared by every prompt.
public enum TokenMetric: Sendable {
    /// logits[b, last, target_b] − logits[b, last, contrast_b].
    case logitDifference(target: [Int], contrast: [Int])
    /// log softmax(logits[b, last, :])[token_b].
    case logProbability(token: [Int])
    /// Any function of the logits ([B, T, V] or [B, 1, V]): values [B] and ∂L/∂logits (the logits' shape).
    case custom(@Sendable (Tensor) throws -> (values: Tensor, gradient: Tensor))

    /// One metric for a batch made of `metrics`' prompts in order, each metric naming one prompt's
    /// tokens; nil when they are not all of one kind with one token each (a custom metric, or
    /// a list meant for several prompts).
    public static func stacked(_ metrics: [TokenMetric]) -> TokenMetric? {
        var targets: [Int] = [], contrasts: [Int] = [], tokens: [Int] = []
        for m in metrics {
            switch m {
            case let .logitDifference(t, c) where t.count == 1 && c.count == 1 && tokens.isEmpty:
                targets.append(t[0]); contrasts.append(c[0])
            case let .logProbability(t) where t.count == 1 && targets.isEmpty:
                tokens.append(t[0])
            default: return nil
            }
        }
        if !targets.isEmpty { return .logitDifference(target: targets, contrast: contrasts) }
        return tokens.isEmpty ? nil : .logProbability(token: tokens)
    }

    /// The values [B] (on the host) and ∂L/∂logits (on the device, the logits' shape).
    public func evaluate(_ logits: Tensor) throws -> (values: [Double], gradient: Tensor) {
        let op = "TokenMetric"
        guard logits.rank == 3 else {
            throw AttribError.shapeMismatch(op: op, detail: "logits have shape \(logits.shape), expected [B, T, V]")
        }
        let (bsz, t, v) = (logits.shape[0], logits.shape[1], logits.shape[2])
        func perPrompt(_ ids: [Int], _ what: String) throws -> [Int] {
            guard ids.count == 1 || ids.count == bsz else {
                throw AttribError.shapeMismatch(op: op, detail: "\(ids.count) \(what) tokens for \(bsz) prompts (give one, or one per prompt)")
            }
            if let bad = ids.firstIndex(where: { !(0..<v).contains($0) }) {
                throw AttribError.indexOutOfRange(op: op, detail: "\(what) token \(ids[bad]) is outside the vocabulary 0..<\(v)")
            }
            return ids.count == bsz ? ids : Array(repeating: ids[0], count: bsz)
        }
        /// The last position's logits [B, V].
        func lastRows() throws -> Tensor {
            let last = try Tensor(shape: [bsz, v], dtype: logits.dtype, on: logits.device)
            try last.copyBox((bsz, 1, v), from: logits, sourceOffset: (t - 1) * v, sourceStrides: (t * v, 0), offset: 0, strides: (v, 0))
            return last
        }
        /// ∂L/∂logits with `g` [B, V] at the last position, 0 elsewhere.
        func placed(_ g: Tensor) throws -> Tensor {
            if t == 1 { return try g.reshaped(logits.shape) }
            let out = try Tensor.zeros(logits.shape, dtype: logits.dtype, on: logits.device)
            try out.copyBox((bsz, 1, v), from: g, sourceOffset: 0, sourceStrides: (v, 0), offset: (t - 1) * v, strides: (t * v, 0))
            return out
        }
        switch self {
        case let .logitDifference(target, contrast):
            let a = try perPrompt(target, "target"), b = try perPrompt(contrast, "contrast")
            let last = try lastRows().doubles()
            let values = (0..<bsz).map { last[$0 * v + a[$0]] - last[$0 * v + b[$0]] }
            var g = [Double](repeating: 0, count: bsz * v)
            for i in 0..<bsz { g[i * v + a[i]] += 1; g[i * v + b[i]] -= 1 }
            return (values, try placed(try Tensor(g, shape: [bsz, v], dtype: logits.dtype, on: logits.device)))
        case let .logProbability(token):
            let k = try perPrompt(token, "target")
            let last = try lastRows()
            let lp = try last.logSoftmax().doubles()
            let values = (0..<bsz).map { lp[$0 * v + k[$0]] }
            // ∂/∂x log softmax(x)_k = e_k − softmax(x).
            var onehot = [Double](repeating: 0, count: bsz * v)
            for i in 0..<bsz { onehot[i * v + k[i]] = 1 }
            let g = try Tensor(onehot, shape: [bsz, v], dtype: logits.dtype, on: logits.device).subtracting(try last.softmax())
            return (values, try placed(g))
        case let .custom(fn):
            let (values, gradient) = try fn(logits)
            guard gradient.shape == logits.shape, values.count == bsz else {
                throw AttribError.shapeMismatch(op: op, detail: "custom metric returned values \(values.shape) and gradient \(gradient.shape) for logits \(logits.shape)")
            }
            return (try values.doubles(), gradient)
        }
    }
}

extension DecoderModel {
    /// What `gradients` returns.
    public struct MetricGradients: @unchecked Sendable {
        /// The metric per prompt.
        public let values: [Double]
        /// The forward run (logits and cached activations).
        public let run: DecoderRun
        /// ∂metric/∂embeddings and ∂metric/∂(each requested node).
        public let gradients: DecoderGradients
    }

    /// One forward (caching `nodes`) and one backward of `metric` to `nodes`, with GradDrop of `gradDrop`.
    public func gradients(_ tokens: [[Int32]], metric: TokenMetric, nodes: Set<HookPoint> = [], gradDrop: Set<Int> = [],
                          logitPositions: LogitPositions = .last) throws -> MetricGradients {
        let run = try forward(tokens, cache: nodes, keepForBackward: true, logitPositions: logitPositions, gradientNodes: nodes)
        let (values, upstream) = try metric.evaluate(run.logits)
        return MetricGradients(values: values, run: run, gradients: try backward(run, upstream: upstream, nodes: nodes, gradDrop: gradDrop))
    }

    /// Exact activation patching: for each node n, metric(clean | do(n ← n(source))) − metric(clean),
    /// with the patched values taken from row `sourceRow` of `source[n.point]` (e.g. the cache of a
    /// corrupted run). Rows of a device batch are the clean prompt with one patch each, so N nodes cost
    /// ⌈N / batchSize⌉ batched forwards (plus one clean forward). `metric` must name one token per list.
    public func patchingEffects(clean: [Int32], metric: TokenMetric, nodes: [NodeSlice], source: [HookPoint: Tensor],
                                sourceRow: Int = 0, batchSize: Int? = nil) throws -> [Double] {
        let batchSize = batchSize ?? patchingBatchRows(tokens: clean.count)
        guard batchSize >= 1 else {
            throw AttribError.invalidArgument(op: "patchingEffects", detail: "batch size \(batchSize); must be at least 1")
        }
        for n in nodes where source[n.point] == nil {
            throw AttribError.invalidArgument(op: "patchingEffects", detail: "\(n): the source holds no \(n.point.name) (cache it in the source run)")
        }
        let base = try metric.evaluate(forward([clean], logitPositions: .last).logits).values[0]
        var effects: [Double] = []
        effects.reserveCapacity(nodes.count)
        var start = 0
        while start < nodes.count {
            let chunk = nodes[start..<min(nodes.count, start + batchSize)]
            let patches = chunk.enumerated().map { r, n in ActivationPatch(row: r, node: n, source: source[n.point]!, sourceRow: sourceRow) }
            let run = try forward(Array(repeating: clean, count: chunk.count), patches: patches, logitPositions: .last)
            effects += try metric.evaluate(run.logits).values.map { $0 - base }
            start += chunk.count
        }
        return effects
    }
}
