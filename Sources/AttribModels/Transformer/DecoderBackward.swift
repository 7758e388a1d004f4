import AttribCore

/// What `backward` returns, on the device.
public struct DecoderGradients: @unchecked Sendable {
    /// ∂L/∂(token + position embeddings) = ∂L/∂residPre of layer 0: [B, T, D].
    public let embeddings: Tensor
    /// ∂L/∂(activation) for each requested hook point, shapes as in `HookKind`.
    public let nodes: [HookPoint: Tensor]
}

extension DecoderModel {
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
    public func backward(_ run: DecoderRun, upstream: Tensor, nodes: Set<HookPoint> = [], gradDrop: Set<Int> = []) throws -> DecoderGradients {
        let op = "DecoderModel.backward"
        guard let (exec, graphRun) = run.graph else {
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
        // GradDrop: a zero gradient at block l's two contributions to the residual stream.
        let stops = Set(gradDrop.flatMap { [HookPoint(.attnOut, layer: $0).name, HookPoint(.mlpOut, layer: $0).name] })
        let names = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0) })
        let g = try exec.backward(graphRun, upstream: ["logits": upstream], wrt: Set(names.keys).union([embeddingsValue]), stopGradient: stops)
        var grads: [HookPoint: Tensor] = [:]
        for (name, point) in names { grads[point] = g[name]! }
        return DecoderGradients(embeddings: g[embeddingsValue]!, nodes: grads)
    }

    /// GradDrop at layer d, for the nodes below it, from the plain backward's ∂L/∂resid_post_d
    /// (`residualGradient`, [B, T, D]): with block d's two contributions stopped, block d
    /// passes its output's gradient straight to its input (∂L/∂resid_pre_d = ∂L/∂resid_post_d,
    /// for the parallel residual too), and nothing above d changes. So the backward starts at
    /// resid_pre_d and runs the d layers below it, where `backward(gradDrop: [d])` runs all of
    /// them: AtP*'s L − 1 GradDrop passes cost about L/2 backwards instead of L − 1.
    /// Every node must be below layer d.
    public func backwardBelow(_ run: DecoderRun, layer d: Int, residualGradient: Tensor, nodes: Set<HookPoint>) throws -> [HookPoint: Tensor] {
        let op = "DecoderModel.backwardBelow"
        guard let (exec, graphRun) = run.graph else {
            throw AttribError.invalidArgument(op: op, detail: "the run was made without keepForBackward: true")
        }
        guard (1..<config.nLayer).contains(d) else {
            throw AttribError.indexOutOfRange(op: op, detail: "layer \(d): GradDrop below a layer needs 1 ≤ d < \(config.nLayer)")
        }
        if let bad = nodes.first(where: { $0.layer >= d }) {
            throw AttribError.invalidArgument(op: op, detail: "\(bad) is not below layer \(d)")
        }
        let names = Dictionary(uniqueKeysWithValues: nodes.map { ($0.name, $0) })
        let g = try exec.backward(graphRun, upstream: [HookPoint(.residPre, layer: d).name: residualGradient], wrt: Set(names.keys))
        var grads: [HookPoint: Tensor] = [:]
        for (name, point) in names { grads[point] = g[name]! }
        return grads
    }
}
