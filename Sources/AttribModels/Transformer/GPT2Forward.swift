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
public struct GPT2Run: @unchecked Sendable {
    /// [B, T, V], or [B, 1, V] with `.last`.
    public let logits: Tensor
    /// The requested activations, shapes as in `HookKind` (after any patch).
    public let cache: [HookPoint: Tensor]
    /// B and T.
    public let batch: Int, length: Int
    public let logitPositions: LogitPositions
    /// Per block, when the forward kept it for a backward pass.
    let saved: [BlockState]?
    let final: FinalState?
    /// The patched boxes per hook point, for the backward (a patched value is a constant:
    /// no gradient flows through it to what computed it).
    let patched: [HookPoint: [(row: Int, node: NodeSlice)]]
    /// Whether `backward` can run on this result.
    public var isDifferentiable: Bool { saved != nil }
}

/// What one block's backward needs (all after patching).
struct BlockState {
    let x: Tensor                      // residPre [B·T, D]
    let ln1Mean: Tensor, ln1Rstd: Tensor   // [B·T]
    let qh: Tensor, kh: Tensor, vh: Tensor // [B·H, T, d_h]
    let pattern: Tensor                // [B·H, T, T]
    let mid: Tensor                    // residMid [B·T, D]
    let ln2Mean: Tensor, ln2Rstd: Tensor   // [B·T]
    let pre: Tensor                    // mlpPre [B·T, F]
}

struct FinalState {
    let x: Tensor                      // residPost of the last block [B·T, D]
    let mean: Tensor, rstd: Tensor     // [B·T]
}

extension GPT2Model {
    /// One forward pass over a batch of equal-length prompts [B][T].
    /// - cache: the hook points whose activations to return in `run.cache`.
    /// - patches: per batch row, node values replaced by another run's (see `ActivationPatch`):
    ///   row r of a batch is typically the clean prompt with patch r applied.
    /// - keepForBackward: keep what `backward` needs (memory ≈ a few activations per block).
    /// - logitPositions: all positions or only the last.
    public func forward(_ tokens: [[Int32]], cache: Set<HookPoint> = [], patches: [ActivationPatch] = [],
                        keepForBackward: Bool = false, logitPositions: LogitPositions = .all) throws -> GPT2Run {
        let (bsz, t, ids) = try checkTokens(tokens)
        let c = config, d = c.nEmbd, h = c.nHead, dh = c.headDim, f = c.nInner
        let rows = bsz * t
        if let bad = cache.first(where: { !(0..<c.nLayer).contains($0.layer) }) {
            throw AttribError.indexOutOfRange(op: "GPT2Model.forward", detail: "cache \(bad): layer \(bad.layer) of a model with \(c.nLayer) layers")
        }
        // Patches grouped by hook point, each checked against the batch and its source.
        var byPoint: [HookPoint: [ActivationPatch]] = [:]
        for p in patches {
            try checkPatch(p, batch: bsz, tokens: t)
            byPoint[p.node.point, default: []].append(p)
        }
        var cached: [HookPoint: Tensor] = [:]
        /// Patches then caches the activation of hook `kind` at `layer`; returns the (maybe new) tensor.
        func hook(_ kind: HookKind, _ layer: Int, _ a: Tensor) throws -> Tensor {
            let point = HookPoint(kind, layer: layer)
            var a = a
            if let ps = byPoint[point] {
                let shape = point.shape(batch: bsz, tokens: t, config: c)
                let patched = try Tensor(shape: shape, dtype: dtype, on: device)   // a copy: a may be cached or saved elsewhere
                try a.copy(into: try patched.reshaped(a.shape))
                for p in ps { try applyPatch(p, to: patched, tokens: t) }
                a = try patched.reshaped(a.shape)
            }
            if cache.contains(point) { cached[point] = try a.reshaped(point.shape(batch: bsz, tokens: t, config: c)) }
            return a
        }

        // Embeddings: x = wte[ids] + wpe[0..<T] per prompt.                      [B·T, D]
        var x = try wte.gatherRows(IndexTensor(ids, on: device))
        let positions = (0..<rows).map { Int32($0 % t) }
        try x.binary(.add, try wpe.gatherRows(IndexTensor(positions, on: device)), into: x)
        let mask = try Tensor.causalMask(t, dtype: dtype, on: device)
        let scale = 1 / Double(dh).squareRoot()
        var saved: [BlockState] = []

        for (l, blk) in blocks.enumerated() {
            x = try hook(.residPre, l, x)                                         // [B·T, D]
            let (ln1, m1, r1) = try x.layerNorm(gamma: blk.ln1Gamma, beta: blk.ln1Beta, eps: c.layerNormEpsilon)
            func project(_ w: Tensor, _ b: Tensor, _ kind: HookKind) throws -> Tensor {
                let y = try ln1.matmul(w)                                         // [B·T, D]
                try y.addBias(b)
                return try hook(kind, l, y.reshaped([bsz, t, h, dh]))             // [B, T, H, d_h]
            }
            let q = try project(blk.wq, blk.bq, .attnQ), k = try project(blk.wk, blk.bk, .attnK), v = try project(blk.wv, blk.bv, .attnV)
            let qh = try q.transposed12().reshaped([bsz * h, t, dh])              // [B·H, T, d_h]
            let kh = try k.transposed12().reshaped([bsz * h, t, dh])
            let vh = try v.transposed12().reshaped([bsz * h, t, dh])
            let scores = try qh.matmul(kh, transposeOther: true, alpha: scale)    // [B·H, T, T]
            let pattern = try hook(.attnPattern, l, try scores.causalSoftmax(mask: mask).reshaped([bsz, h, t, t]))
                .reshaped([bsz * h, t, t])
            let zh = try pattern.matmul(vh)                                       // [B·H, T, d_h]
            let z = try hook(.attnZ, l, try zh.reshaped([bsz, h, t, dh]).transposed12())   // [B, T, H, d_h]
            let attnOut = try z.reshaped([rows, d]).matmul(blk.wo)                // [B·T, D]
            try attnOut.addBias(blk.bo)
            let ao = try hook(.attnOut, l, attnOut)
            let mid = try hook(.residMid, l, try x.adding(ao))                    // [B·T, D]
            let (ln2, m2, r2) = try mid.layerNorm(gamma: blk.ln2Gamma, beta: blk.ln2Beta, eps: c.layerNormEpsilon)
            let preRaw = try ln2.matmul(blk.wfc)                                  // [B·T, F]
            try preRaw.addBias(blk.bfc)
            let pre = try hook(.mlpPre, l, preRaw.reshaped([bsz, t, f])).reshaped([rows, f])
            let post = try hook(.mlpPost, l, try pre.activated(.geluTanh).reshaped([bsz, t, f])).reshaped([rows, f])
            let mlpOut = try post.matmul(blk.wproj)                               // [B·T, D]
            try mlpOut.addBias(blk.bproj)
            let mo = try hook(.mlpOut, l, mlpOut)
            let out = try hook(.residPost, l, try mid.adding(mo))
            if keepForBackward {
                saved.append(BlockState(x: x, ln1Mean: m1, ln1Rstd: r1, qh: qh, kh: kh, vh: vh, pattern: pattern,
                                        mid: mid, ln2Mean: m2, ln2Rstd: r2, pre: pre))
            }
            x = out
        }
        // Final LayerNorm and the tied unembedding.
        let (lnf, mf, rf) = try x.layerNorm(gamma: lnfGamma, beta: lnfBeta, eps: c.layerNormEpsilon)   // [B·T, D]
        let logits: Tensor
        switch logitPositions {
        case .all:
            logits = try lnf.matmul(wteT).reshaped([bsz, t, c.vocabSize])      // [B, T, V]
        case .last:
            let last = try Tensor(shape: [bsz, d], dtype: dtype, on: device)
            try last.copyBox((bsz, 1, d), from: lnf, sourceOffset: (t - 1) * d, sourceStrides: (t * d, 0), offset: 0, strides: (d, 0))
            logits = try last.matmul(wteT).reshaped([bsz, 1, c.vocabSize])     // [B, 1, V]
        }
        var patchedBoxes: [HookPoint: [(row: Int, node: NodeSlice)]] = [:]
        for (p, ps) in byPoint { patchedBoxes[p] = ps.map { ($0.row, $0.node) } }
        return GPT2Run(logits: logits, cache: cached, batch: bsz, length: t, logitPositions: logitPositions,
                       saved: keepForBackward ? saved : nil,
                       final: keepForBackward ? FinalState(x: x, mean: mf, rstd: rf) : nil, patched: patchedBoxes)
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
