import AttribCore

extension Graph {
    /// The graph with every x ⊙ sigmoid(x) as one SiLU node (EfficientNet's and MobileNetV2-
    /// style exports' Swish: ONNX has Sigmoid then Mul, torch.onnx writes nn.SiLU that way).
    ///
    /// Why: apart, the pair writes sigmoid(x) and keeps both x and it for the Mul's backward,
    /// then runs three elementwise passes back (the Mul's two products and the sigmoid's);
    /// SiLU keeps x alone and runs one pass each way. EfficientNet-B0's sweep spent 18% of
    /// its time in those Muls. The same function, so the numbers agree to rounding.
    ///
    /// Where: the sigmoid reads the same value as the Mul's other operand, and nothing else
    /// reads the sigmoid's output (nor is it kept in `keep`, nor a graph output). The fused
    /// node keeps the Mul's name and output.
    public func fusingSwish(keeping keep: Set<String> = []) throws -> Graph {
        var readers: [String: Int] = [:]
        for n in nodes { for v in n.inputs { readers[v, default: 0] += 1 } }
        var dropped = Set<Int>(), replaced: [Int: GraphNode] = [:]
        for (i, n) in nodes.enumerated() {
            guard let b = n.op as? BinaryGraphOp, b.op == .mul, n.inputs.count == 2 else { continue }
            for (x, s) in [(n.inputs[0], n.inputs[1]), (n.inputs[1], n.inputs[0])] {
                guard let p = producer[s], !dropped.contains(p),
                      let act = (nodes[p].op as? LayerOp)?.layer as? ActivationLayer, act.kind == .sigmoid,
                      nodes[p].inputs == [x], readers[s] == 1, !keep.contains(s), !outputs.contains(s) else { continue }
                dropped.insert(p)
                replaced[i] = GraphNode(n.name, LayerOp(ActivationLayer(.silu)), inputs: [x], output: n.output)
                break
            }
        }
        guard !dropped.isEmpty else { return self }
        let rewritten = nodes.indices.compactMap { i in dropped.contains(i) ? nil : replaced[i] ?? nodes[i] }
        return try Graph(inputs: inputs, nodes: rewritten, outputs: outputs)
    }
}
