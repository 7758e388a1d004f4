import AttribCore

/// Which positions the forward computes logits for.
public enum LogitPositions: Sendable {
    /// Every position: logits [B, T, V].
    case all
    /// Only the last position: logits [B, 1, V] (what last-token metrics need; saves the
    /// [B·T, V] product and its gradient).
    case last
}

/// The result of a forward pass: logits, the cached activations, and (when kept) the
/// state the backward pass needs.
public struct DecoderRun: @unchecked Sendable {
    /// [B, T, V], or [B, 1, V] with `.last`.
    public let logits: Tensor
    /// The requested activations, shapes as in `HookKind` (after any patch).
    public let cache: [HookPoint: Tensor]
    /// B and T.
    public let batch: Int, length: Int
    public let logitPositions: LogitPositions
    /// The graph run and its executor, when the forward kept what a backward needs.
    let graph: (executor: GraphExecutor, run: GraphExecutor.Run)?
    /// Whether `backward` can run on this result.
    public var isDifferentiable: Bool { graph != nil }
}

/// The graph's value that holds the embeddings the first block reads (token + position
/// embeddings; Gemma's scaled token embeddings): ∂L/∂ of it is the embeddings' gradient.
let embeddingsValue = "hook_pos_embed_sum"

extension DecoderModel {
    /// One forward pass over a batch of equal-length prompts [B][T], on the model's graph.
    /// - cache: the hook points whose activations to return in `run.cache`.
    /// - patches: per batch row, node values replaced by another run's (see `ActivationPatch`):
    ///   row r of a batch is typically the clean prompt with patch r applied. A patched box is
    ///   a constant: in a backward its own gradient is reported, and none flows through it.
    /// - keepForBackward: keep what `backward` needs (each op's saved state).
    /// - logitPositions: all positions or only the last.
    /// - gradientNodes: with keepForBackward, the hook points a later backward may ask for
    ///   (nil: every one). With the last position only, the graph then computes the last
    ///   block's rows past the last of these, the cached and the patched points only where the
    ///   logits read them (`Graph.selectingRowsEarly`): the last position's.
    public func forward(_ tokens: [[Int32]], cache: Set<HookPoint> = [], patches: [ActivationPatch] = [],
                        keepForBackward: Bool = false, logitPositions: LogitPositions = .all,
                        gradientNodes: Set<HookPoint>? = nil) throws -> DecoderRun {
        let (bsz, t, ids) = try checkTokens(tokens)
        let c = config
        if let bad = cache.first(where: { !(0..<c.nLayer).contains($0.layer) }) {
            throw AttribError.indexOutOfRange(op: "DecoderModel.forward", detail: "cache \(bad): layer \(bad.layer) of a model with \(c.nLayer) layers")
        }
        if let bad = cache.first(where: { !c.hookKinds.contains($0.kind) }) {
            throw AttribError.invalidArgument(op: "DecoderModel.forward", detail: "cache \(bad): a \(c.family.rawValue) model has no \(bad.kind.rawValue)")
        }
        // Patches grouped by hook point, each checked against the batch and its source.
        var byPoint: [HookPoint: [ActivationPatch]] = [:]
        for p in patches {
            try checkPatch(p, batch: bsz, tokens: t)
            byPoint[p.node.point, default: []].append(p)
        }
        var modify: [String: GraphExecutor.ValueHook] = [:]
        for (point, ps) in byPoint {
            let model = self
            modify[point.name] = GraphExecutor.ValueHook(forward: { a in
                let patched = try Tensor(shape: a.shape, dtype: a.dtype, on: a.device)   // a copy: a may be read elsewhere
                try a.copy(into: patched)
                for p in ps { try model.applyPatch(p, to: patched, tokens: t) }
                return patched
            }, backward: { g in
                let out = try Tensor(shape: g.shape, dtype: g.dtype, on: g.device)
                try g.copy(into: out)
                let zeros = try Tensor.zeros([1] + Array(g.shape.dropFirst()), dtype: g.dtype, on: g.device)
                let rowSize = out.count / g.shape[0]
                for p in ps {
                    let (n, offset, strides) = try p.node.box(tokens: t, config: c)
                    try out.copyBox(n, from: zeros, sourceOffset: offset, sourceStrides: strides, offset: p.row * rowSize + offset, strides: strides)
                }
                return out
            })
        }
        let names = Dictionary(uniqueKeysWithValues: cache.map { ($0.name, $0) })
        let gradientPoints = gradientNodes ?? Set((0..<c.nLayer).flatMap { l in c.hookKinds.map { HookPoint($0, layer: l) } })
        let wrt: Set<String>? = keepForBackward ? Set(gradientPoints.map(\.name) + [embeddingsValue]) : nil
        // Values the run reads by name: what the graph must compute whole.
        let named: Set<String>? = keepForBackward && gradientNodes == nil ? nil
            : Set(names.keys).union(modify.keys).union(wrt ?? []).union([embeddingsValue])
        let exec = try executor(tokens: t, lastPositionOnly: logitPositions == .last, keeping: named)
        let run = try exec.forward(["tokens": Tensor(indices: ids, shape: [bsz, t], on: device)],
                                   hooks: .init(capture: Set(names.keys), modify: modify), gradientsFor: wrt)
        var cached: [HookPoint: Tensor] = [:]
        for (name, point) in names { cached[point] = run[name]! }
        return DecoderRun(logits: run["logits"]!, cache: cached, batch: bsz, length: t, logitPositions: logitPositions,
                       graph: keepForBackward ? (exec, run) : nil)
    }

    /// Logits [B, T, V] of a batch (no hooks).
    public func logits(_ tokens: [[Int32]]) throws -> Tensor { try forward(tokens).logits }

    func checkPatch(_ p: ActivationPatch, batch: Int, tokens t: Int) throws {
        let op = "ActivationPatch"
        guard (0..<batch).contains(p.row) else {
            throw AttribError.indexOutOfRange(op: op, detail: "\(p.node): row \(p.row) of a batch of \(batch)")
        }
        _ = try p.node.box(tokens: t, config: config)
        guard p.source.device === device, p.source.dtype == dtype else {
            throw AttribError.deviceMismatch(op: op, detail: "\(p.node): source is \(p.source.dtype) on \(p.source.device.info.id), the model \(dtype) on \(device.info.id)")
        }
        let row = p.node.point.rowShape(tokens: t, config: config)
        guard p.source.rank >= 1, Array(p.source.shape.dropFirst()) == row else {
            throw AttribError.shapeMismatch(op: op, detail: "\(p.node): source has shape \(p.source.shape), expected [N] + \(row) (\(p.node.point.name) for prompts of \(t) tokens)")
        }
        guard (0..<p.source.shape[0]).contains(p.sourceRow) else {
            throw AttribError.indexOutOfRange(op: op, detail: "\(p.node): source row \(p.sourceRow) of a source of \(p.source.shape[0]) rows")
        }
    }

    /// target[row] box ← source[sourceRow] box; target has the node's full shape [B] + row shape.
    func applyPatch(_ p: ActivationPatch, to target: Tensor, tokens t: Int) throws {
        let (n, offset, strides) = try p.node.box(tokens: t, config: config)
        let rowSize = target.count / target.shape[0]
        try target.copyBox(n, from: p.source, sourceOffset: p.sourceRow * rowSize + offset, sourceStrides: strides,
                           offset: p.row * rowSize + offset, strides: strides)
    }
}
