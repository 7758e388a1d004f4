import AttribCore

/// What `backward` returns, on the device.
public struct GPT2Gradients: @unchecked Sendable {
    /// ∂L/∂(token + position embeddings) = ∂L/∂residPre of layer 0: [B, T, D].
    public let embeddings: Tensor
    /// ∂L/∂(activation) for each requested hook point, shapes as in `HookKind`.
    public let nodes: [HookPoint: Tensor]
}

extension GPT2Model {
    /// Back-propagates `upstream` = ∂L/∂logits (the shape of `run.logits`) through a run made
    /// with `keepForBackward: true`, returning ∂L/∂(each hook point in `nodes`) and ∂L/∂embeddings.
    /// For the pattern the gradient is dZ·vᵀ at every entry (masked ones included, as PyTorch's).
    ///
    /// - gradDrop: AtP*'s GradDrop. For each layer l in the set, the gradient flowing back
    ///   through block l's contributions to the residual stream (attnOut and mlpOut) is zero:
    ///   block l passes only the skip path (∂L/∂residPre_l = ∂L/∂residMid_l = ∂L/∂residPost_l),
    ///   and every node inside it (q, k, v, pattern, z, attnOut, mlpPre, mlpPost, mlpOut) gets 0.
    /// - A patched value is a constant: its own gradient is reported, and none flows through it
    ///   to what computed it.
    public func backward(_ run: GPT2Run, upstream: Tensor, nodes: Set<HookPoint> = [], gradDrop: Set<Int> = []) throws -> GPT2Gradients {
        let op = "GPT2Model.backward"
        guard let saved = run.saved, let fin = run.final else {
            throw AttribError.invalidArgument(op: op, detail: "the run was made without keepForBackward: true")
        }
        guard upstream.device === device, upstream.dtype == dtype else {
            throw AttribError.deviceMismatch(op: op, detail: "upstream gradient is \(upstream.dtype) on \(upstream.device.info.id), the model \(dtype) on \(device.info.id)")
        }
        guard upstream.shape == run.logits.shape else {
            throw AttribError.shapeMismatch(op: op, detail: "upstream gradient has shape \(upstream.shape), the logits \(run.logits.shape)")
        }
        for p in nodes where !(0..<config.nLayer).contains(p.layer) {
            throw AttribError.indexOutOfRange(op: op, detail: "\(p): layer \(p.layer) of a model with \(config.nLayer) layers")
        }
        for l in gradDrop where !(0..<config.nLayer).contains(l) {
            throw AttribError.indexOutOfRange(op: op, detail: "gradDrop layer \(l) of a model with \(config.nLayer) layers")
        }
        let c = config, bsz = run.batch, t = run.length, d = c.nEmbd, h = c.nHead, dh = c.headDim, f = c.nInner
        let rows = bsz * t
        let scale = 1 / Double(dh).squareRoot()
        var grads: [HookPoint: Tensor] = [:]

        /// Records ∂L/∂(kind at layer) when requested, then zeroes the patched boxes of it
        /// (they were constants in the forward) for what flows further back.
        func visit(_ kind: HookKind, _ layer: Int, _ g: Tensor) throws -> Tensor {
            let point = HookPoint(kind, layer: layer)
            let shape = point.shape(batch: bsz, tokens: t, config: c)
            if nodes.contains(point) { grads[point] = try g.reshaped(shape) }
            guard let boxes = run.patched[point] else { return g }
            let out = try Tensor(shape: shape, dtype: dtype, on: device)
            try g.reshaped(shape).copy(into: out)
            let zeros = try Tensor.zeros([1] + Array(shape.dropFirst()), dtype: dtype, on: device)
            let rowSize = out.count / bsz
            for (row, node) in boxes {
                let (n, offset, strides) = try node.box(tokens: t, config: c)
                try out.copyBox(n, from: zeros, sourceOffset: offset, sourceStrides: strides, offset: row * rowSize + offset, strides: strides)
            }
            return try out.reshaped(g.shape)
        }
        func zeroGradients(_ layer: Int, _ kinds: [HookKind]) throws {
            for k in kinds where nodes.contains(HookPoint(k, layer: layer)) {
                let p = HookPoint(k, layer: layer)
                grads[p] = try Tensor.zeros(p.shape(batch: bsz, tokens: t, config: c), dtype: dtype, on: device)
            }
        }

        // Unembedding: logits = lnf·wteᵀ, so ∂lnf = ∂logits·wte.                 [B·T, D]
        let dLnf: Tensor
        switch run.logitPositions {
        case .all:
            dLnf = try upstream.reshaped([rows, c.vocabSize]).matmul(wte)
        case .last:
            let dLast = try upstream.reshaped([bsz, c.vocabSize]).matmul(wte)     // [B, D]
            dLnf = try Tensor.zeros([rows, d], dtype: dtype, on: device)
            try dLnf.copyBox((bsz, 1, d), from: dLast, sourceOffset: 0, sourceStrides: (d, 0), offset: (t - 1) * d, strides: (t * d, 0))
        }
        var dx = try fin.x.layerNormBackward(upstream: dLnf, gamma: lnfGamma, mean: fin.mean, rstd: fin.rstd).dx

        for l in stride(from: c.nLayer - 1, through: 0, by: -1) {
            let blk = blocks[l], s = saved[l]
            dx = try visit(.residPost, l, dx)                                     // [B·T, D]
            if gradDrop.contains(l) {
                // Only the skip path: residPre → residMid → residPost.
                try zeroGradients(l, [.mlpOut, .mlpPost, .mlpPre, .attnOut, .attnZ, .attnPattern, .attnQ, .attnK, .attnV])
                dx = try visit(.residMid, l, dx)
                dx = try visit(.residPre, l, dx)
                continue
            }
            // MLP: out = gelu(ln2(mid)·Wfc + bfc)·Wproj + bproj.
            let dOut = try visit(.mlpOut, l, dx)                                  // [B·T, D]
            let dPost = try visit(.mlpPost, l, try dOut.matmul(blk.wprojT))       // [B·T, F]
            let dPre = try visit(.mlpPre, l, try s.pre.activationBackward(.geluTanh, upstream: dPost.reshaped([rows, f])))
            let dLn2 = try dPre.reshaped([rows, f]).matmul(blk.wfcT)              // [B·T, D]
            let dMidLN = try s.mid.layerNormBackward(upstream: dLn2, gamma: blk.ln2Gamma, mean: s.ln2Mean, rstd: s.ln2Rstd).dx
            let dMid = try visit(.residMid, l, try dx.adding(dMidLN))             // [B·T, D]
            // Attention: attnOut = z·Wo + bo, z = (A·V) per head, A = causal softmax(q·kᵀ/√d_h).
            let dAttnOut = try visit(.attnOut, l, dMid)
            let dZ = try visit(.attnZ, l, try dAttnOut.matmul(blk.woT).reshaped([bsz, t, h, dh]))   // [B, T, H, d_h]
            let dZh = try dZ.transposed12().reshaped([bsz * h, t, dh])            // [B·H, T, d_h]
            let dA = try visit(.attnPattern, l, try dZh.matmul(s.vh, transposeOther: true).reshaped([bsz, h, t, t]))
                .reshaped([bsz * h, t, t])                                        // [B·H, T, T]
            let dVh = try s.pattern.matmul(dZh, transposeSelf: true)              // [B·H, T, d_h]
            let dScores = try s.pattern.softmaxBackward(upstream: dA)             // [B·H, T, T]; 0 where masked
            let dQh = try dScores.matmul(s.kh, alpha: scale)                      // [B·H, T, d_h]
            let dKh = try dScores.matmul(s.qh, transposeSelf: true, alpha: scale)
            func unheads(_ g: Tensor) throws -> Tensor { try g.reshaped([bsz, h, t, dh]).transposed12() }   // [B, T, H, d_h]
            let dQ = try visit(.attnQ, l, try unheads(dQh)), dK = try visit(.attnK, l, try unheads(dKh))
            let dV = try visit(.attnV, l, try unheads(dVh))
            // ln1 = LN(x); q, k, v = ln1·W{q,k,v} + b.
            let dLn1 = try dQ.reshaped([rows, d]).matmul(blk.wqT)                 // [B·T, D]
            try dK.reshaped([rows, d]).matmul(blk.wkT, beta: 1, into: dLn1)
            try dV.reshaped([rows, d]).matmul(blk.wvT, beta: 1, into: dLn1)
            let dxLN = try s.x.layerNormBackward(upstream: dLn1, gamma: blk.ln1Gamma, mean: s.ln1Mean, rstd: s.ln1Rstd).dx
            dx = try visit(.residPre, l, try dMid.adding(dxLN))
        }
        return GPT2Gradients(embeddings: try dx.reshaped([bsz, t, d]), nodes: grads)
    }
}
