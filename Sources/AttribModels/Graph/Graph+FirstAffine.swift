/// The graph's first affine layer, where a path method can fuse: reached from the graph's one
/// input through shape-only nodes (Flatten, Reshape), each value on the way read by that one
/// node alone, and then a Linear or Conv2d. Everything up to its output is affine in the
/// input, so a straight path x′ + α(x − x′) maps to the straight path z′ + α(z − z′) there:
/// the layer runs on the two ends instead of on every step, and the input gradient of all
/// steps is one backward product (IntegratedGradients). A rule on the graph, so it holds for
/// every model whose input goes straight into an affine layer: Sequential MLPs and CNNs,
/// ONNX ResNets (Conv first), MLPs exported with Flatten → Gemm.
///
/// The input itself may have other readers besides the chain (a residual MLP's skip add of
/// x): those read the interpolated input on every step, the affine layer still runs on the
/// two ends, and the input gradient is the affine layer's one backward product plus the
/// other readers' step-weighted gradient (`sideReaders`).
public struct FirstAffine: Sendable {
    /// The affine node's index in `Graph.nodes`.
    public let node: Int
    public let layer: any Layer
    /// The value the affine layer reads (the input, or a reshaped view of it) and its output:
    /// the cut where the path lives.
    public let layerInput: String
    public let output: String
    /// Whether nodes other than the chain to the affine layer read the graph's input.
    public let sideReaders: Bool
}

extension Graph {
    public func firstAffine() -> FirstAffine? {
        guard inputs.count == 1 else { return nil }
        var readers: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() { for v in Set(n.inputs) { readers[v, default: []].append(i) } }
        let input = inputs[0].name
        guard !outputs.contains(input), let first = readers[input] else { return nil }
        // The chain may start at any one reader of the input; the input's other readers are side readers.
        for start in first {
            if let f = chain(from: input, through: start, readers: readers) {
                return FirstAffine(node: f.node, layer: f.layer, layerInput: f.layerInput, output: f.output, sideReaders: first.count > 1)
            }
        }
        return nil
    }

    /// The affine layer reached from value v through node i and then shape-only nodes, each
    /// value after v read by that one node alone.
    private func chain(from v: String, through i: Int, readers: [String: [Int]]) -> (node: Int, layer: any Layer, layerInput: String, output: String)? {
        var v = v, i = i
        while true {
            let n = nodes[i]
            guard n.inputs == [v] else { return nil }
            let isShape: Bool
            if let l = (n.op as? LayerOp)?.layer {
                if l is Linear || l is Conv2d { return (i, l, v, n.output) }
                isShape = l is Flatten
            } else {
                isShape = n.op is ReshapeGraphOp
            }
            guard isShape, !outputs.contains(n.output), let r = readers[n.output], r.count == 1 else { return nil }
            v = n.output; i = r[0]
        }
    }
}
