extension Graph {
    /// The graph with every producer → consumer pair that `make` fuses replaced by one node:
    /// the consumer reads only the producer's output, which no other node reads and which is
    /// neither a graph output nor in `keep` (values a caller hooks or cuts at). The fused node
    /// keeps the consumer's name and output value and reads the producer's inputs; the
    /// producer's value no longer exists. The one rewrite behind every fusion rule of a
    /// sweep graph (ActivationPoolFusion, EpilogueFusion).
    func fusingPairs(keeping keep: Set<String>, _ make: (_ producer: GraphNode, _ consumer: GraphNode) -> (any GraphOp)?) throws -> Graph {
        var readers: [String: Int] = [:]
        for n in nodes { for v in n.inputs { readers[v, default: 0] += 1 } }
        let byOutput = Dictionary(uniqueKeysWithValues: nodes.map { ($0.output, $0) })
        var fusedAway = Set<String>()
        var rewritten: [GraphNode] = []
        for n in nodes {
            if n.inputs.count == 1, let p = byOutput[n.inputs[0]], readers[p.output] == 1, !keep.contains(p.output),
               !outputs.contains(p.output), let op = make(p, n) {
                fusedAway.insert(p.output)
                rewritten.append(GraphNode(n.name, op, inputs: p.inputs, output: n.output))
            } else {
                rewritten.append(n)
            }
        }
        return try Graph(inputs: inputs, nodes: rewritten.filter { !fusedAway.contains($0.output) }, outputs: outputs)
    }
}
