import AttribCore

/// The graph's classifier head: its one output computed by a Linear from a per-sample vector
/// h ([in] → [classes]). For a gradient toward one class c per row, ∂F_c/∂h is row c of the
/// weight, whatever h is: a sweep can stop its forward at h, take the upstream gradient there
/// as the weight's rows gathered by target (IntegratedGradients.gatherHead), and run the head
/// only on the rows whose outputs it reads. The same gradients bit for bit: the head's own
/// backward, dy·W with dy one-hot, adds a 1·w to zeros. A rule on the graph: MLPs, CNNs and
/// ResNets end so, as do transformer classifiers whose head reads the class token's vector.
public struct LinearHead: Sendable {
    public let node: Int
    public let linear: Linear
    /// The value the head reads, [in] per sample.
    public let input: String
}

extension Graph {
    /// The head, where a sweep that feeds the values `fed` computes its input: nil where the
    /// head reads a graph input or a fed value, as there is then nothing before it to stop at.
    public func linearHead(fed: Set<String>) -> LinearHead? {
        guard outputs.count == 1, let i = producer[outputs[0]], let linear = (nodes[i].op as? LayerOp)?.layer as? Linear,
              !linear.weight.dtype.isStorageOnly, let h = nodes[i].inputs.first, types[h]?.shape == [linear.inFeatures],
              producer[h] != nil, !fed.contains(h) else { return nil }
        return LinearHead(node: i, linear: linear, input: h)
    }
}
