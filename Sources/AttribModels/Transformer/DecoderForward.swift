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
            let boxes = try ps.compactMap { try patchBox($0, tokens: t) }
            modify[point.name] = GraphExecutor.ValueHook(forward: { a in try Self.patched(a, boxes) }, backward: { g in
                let out = try Tensor(shape: g.shape, dtype: g.dtype, on: g.device)
                try g.copy(into: out)
                let zeros = try Tensor.zeros([Array(g.shape.dropFirst()).reduce(1, *)], dtype: g.dtype, on: g.device)   // a row's worth
                for box in boxes {
                    try out.copyBox(box.n, from: zeros, sourceOffset: 0, sourceStrides: (0, 0), offset: box.offset, strides: box.strides)
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

    /// Where a patch's values come from and go: its node's box in row `sourceRow` of the source
    /// ([N] + the point's shape at T) and in row `row` of the value it patches. A run of the
    /// positions from `prefix` on (`forward(_:cache:sharing:patches:)`) holds [S, …] per row
    /// (the pattern [H, S, T]), S = T − prefix: the box is clipped to the positions (queries)
    /// from `prefix` on, and nil where it lies wholly below.
    func patchBox(_ patch: ActivationPatch, tokens t: Int, prefix p: Int = 0) throws -> PatchBox? {
        let (n, offset, strides) = try patch.node.box(tokens: t, config: config)
        let s = t - p
        let sourceRow = patch.source.count / patch.source.shape[0]
        let targetRow = sourceRow / t * s                                      // a row of the patched value
        let base = patch.sourceRow * sourceRow, row = patch.row * targetRow
        if patch.node.point.kind == .attnPattern {
            // [H, T, T] → [H, S, T]: axis 1 holds the queries.
            let head = offset / (t * t), q0 = offset % (t * t) / t, key = offset % t
            let lo = max(q0, p), count = q0 + n.1 - lo
            guard count > 0 else { return nil }
            return PatchBox(source: patch.source, n: (n.0, count, n.2), sourceOffset: base + head * t * t + lo * t + key,
                            sourceStrides: strides, offset: row + head * s * t + (lo - p) * t + key, strides: (s * t, t))
        }
        // [T, …] → [S, …]: axis 0 holds the positions, `strides.0` values each.
        let inner = strides.0, q0 = offset / inner, rest = offset % inner
        let lo = max(q0, p), count = q0 + n.0 - lo
        guard count > 0 else { return nil }
        return PatchBox(source: patch.source, n: (count, n.1, n.2), sourceOffset: base + lo * inner + rest, sourceStrides: strides,
                        offset: row + (lo - p) * inner + rest, strides: strides)
    }

    /// A copy of `a` (which other nodes may read) with each box's values from its source.
    static func patched(_ a: Tensor, _ boxes: [PatchBox]) throws -> Tensor {
        let out = try Tensor(shape: a.shape, dtype: a.dtype, on: a.device)   // every element written below
        try a.copy(into: out)
        for b in boxes {
            try out.copyBox(b.n, from: b.source, sourceOffset: b.sourceOffset, sourceStrides: b.sourceStrides, offset: b.offset, strides: b.strides)
        }
        return out
    }
}

/// One patch as a box copy (`DecoderModel.patchBox`): `n` values from `source` at `sourceOffset`
/// with `sourceStrides`, into the patched value at `offset` with `strides` (flat indices).
struct PatchBox: @unchecked Sendable {
    let source: Tensor
    let n: (Int, Int, Int)
    let sourceOffset: Int, sourceStrides: (Int, Int)
    let offset: Int, strides: (Int, Int)
}
