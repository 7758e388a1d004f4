import AttribCore

/// An activation followed by an average pooling whose windows tile (stride = kernel), as
/// one op: where the device fuses them (CPU Float32 GELU), the activation's output is never
/// written and the backward is one pass, avgPool2dBackward(dy) ⊙ f′(x); elsewhere the two
/// layers run apart. Bitwise the two ops apart either way (the device's promise, held by
/// FusedActivationPoolTests). Made by `Graph.fusingActivationPools`, for any graph with the
/// pattern: the rule that made the small CNNs fast, not a path for one model.
public struct ActivationAvgPoolGraphOp: GraphOp, @unchecked Sendable {
    public let activation: ActivationLayer
    public let pool: Pool2d
    init(_ activation: ActivationLayer, _ pool: Pool2d) { self.activation = activation; self.pool = pool }
    public var kind: String { "ActivationAvgPool" }
    public var description: String { "\(activation.description) → \(pool.description)" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        try LayerOp(pool).outputType([try LayerOp(activation).outputType(inputs)])
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        if x.rank == 4, let (pooled, d) = try x.activatedAndAvgPooled(activation.kind, kernel: pool.k2) {
            return (pooled, OpSaved(tensors: [d], shapes: [x.shape]))
        }
        let (a, sa) = try activation.forward(x)
        let (y, sp) = try pool.forward(a)
        return (y, OpSaved(layer: sa, tensors: [], shapes: [x.shape], pair: sp))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        if saved.layer == nil, let d = saved.tensors.first {
            if let fused = try dy.avgPool2dBackward(inputShape: saved.shapes[0], kernel: pool.k2, times: d) { return [fused] }
            return [try dy.avgPool2dBackward(inputShape: saved.shapes[0], kernel: pool.k2).multiplying(d)]
        }
        let ga = try pool.backward(dy, saved.pair!)
        return [try activation.backward(ga, saved.layer!)]
    }
}

extension Graph {
    /// The graph with every activation → tiling average pooling pair fused into one node,
    /// where the activation's output is read by the pooling alone and is not a graph output
    /// or one of `keep` (values a caller hooks). The fused node keeps the pooling's name and
    /// output value; the activation's value no longer exists.
    public func fusingActivationPools(keeping keep: Set<String> = []) throws -> Graph {
        try fusingPairs(keeping: keep) { a, n in
            guard let pool = (n.op as? LayerOp)?.layer as? Pool2d, pool.isTilingAverage,
                  let act = (a.op as? LayerOp)?.layer as? ActivationLayer, types[a.inputs[0]]!.shape.count == 3 else { return nil }
            return ActivationAvgPoolGraphOp(act, pool)
        }
    }
}
