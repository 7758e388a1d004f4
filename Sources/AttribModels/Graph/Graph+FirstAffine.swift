/// The graph's first affine layer, where a path method can fuse: reached from the graph's one
/// input through shape-only nodes (Flatten, Reshape), each value on the way read by that one
/// node alone, and then a Linear or Conv2d. Everything up to its output is affine in the
/// input, so a straight path x′ + α(x − x′) maps to the straight path z′ + α(z − z′) there:
/// the layer runs on the two ends instead of on every step, and the input gradient of all
/// steps is one backward product (IntegratedGradients). A rule on the graph, so it holds for
/// every model whose input goes straight into an affine layer: Sequential MLPs and CNNs,
/// ONNX ResNets (Conv first), MLPs exported with Flatten → Gemm.
public struct FirstAffine: Sendable {
    /// The affine node's index in `Graph.nodes`.
    public let node: Int
    public let layer: any Layer
    /// The value the affine layer reads (the input, or a reshaped view of it) and its output:
    /// the cut where the path lives.
    public let layerInput: String
    public let output: String
}

extension Graph {
    public func firstAffine() -> FirstAffine? {
        guard inputs.count == 1 else { return nil }
        var readers: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() { for v in Set(n.inputs) { readers[v, default: []].append(i) } }
        var v = inputs[0].name
        while true {
            guard !outputs.contains(v), let r = readers[v], r.count == 1 else { return nil }
            let n = nodes[r[0]]
            guard n.inputs == [v] else { return nil }
            if let l = (n.op as? LayerOp)?.layer {
                if l is Flatten { v = n.output; continue }
                if l is Linear || l is Conv2d { return FirstAffine(node: r[0], layer: l, layerInput: v, output: n.output) }
                return nil
            }
            if n.op is ReshapeGraphOp { v = n.output; continue }
            return nil
        }
    }
}
