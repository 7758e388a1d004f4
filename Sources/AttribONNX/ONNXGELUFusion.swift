import AttribCore
import AttribModels

extension ONNXGraphBuilder {
    /// The exact GELU as exporters write it, x·½·(1 + erf(x/√2)) in five elementwise nodes
    /// (Div or Mul by √2, Erf, Add 1, then Mul by x and by ½ in any of the exporters' orders), becomes one
    /// GELU activation: one pass over the values instead of five, and the CPU backend's
    /// vectorised erfc for both GELU and its derivative. A rule on any graph, matched by the
    /// ops and their constants, not by names; each intermediate value must have one reader.
    mutating func fuseExactGELU(outputs: Set<String>) {
        var m = ElementwiseMatcher(nodes, outputs: outputs, scalars: scalarNodes)
        for (e, nd) in nodes.enumerated() {
            guard ((nd.op as? LayerOp)?.layer as? ActivationLayer)?.kind == .erf, let u = nd.inputs.first, m.single(u),
                  let d = m.producer[u], m.scalar(d, .mul, 0.5.squareRoot()) else { continue }
            let x = nodes[d].inputs[0]
            guard let a = m.only(nd.output), m.scalar(a, .add, 1) else { continue }
            let name = nodes[e].name + "/gelu"
            let gelu = { (out: String) in GraphNode(name, LayerOp(ActivationLayer(.geluErf)), inputs: [x], output: out) }
            // x·(½·(1 + erf)): the dynamo exporter's order.
            if let h = m.only(nodes[a].output), m.scalar(h, .mul, 0.5), let p = m.only(nodes[h].output),
               m.isMul(p), nodes[p].inputs.contains(x), nodes[p].inputs.contains(nodes[h].output) {
                m.claim([d, e, a, h, p], by: gelu(nodes[p].output))
                continue
            }
            guard let p = m.only(nodes[a].output), m.isMul(p) else { continue }
            let other = nodes[p].inputs.first { $0 != nodes[a].output } ?? ""
            if other == x, let h = m.only(nodes[p].output), m.scalar(h, .mul, 0.5) {
                m.claim([d, e, a, p, h], by: gelu(nodes[h].output))                  // (x·(1 + erf))·½
            } else if let h0 = m.producer[other], m.single(other), m.scalar(h0, .mul, 0.5), nodes[h0].inputs[0] == x {
                m.claim([d, e, a, p, h0], by: gelu(nodes[p].output))                 // (x·½)·(1 + erf)
            }
        }
        if let rewritten = m.rewritten { nodes = rewritten }
    }

    /// The tanh GELU as exporters write it (Hugging Face's NewGELU and gelu_new: ALBERT, GPT-2),
    /// ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) in eight nodes (Pow 3, Mul, Add x, Mul, Tanh,
    /// Add 1, and the products by x and ½ in any order), becomes one GELU (tanh) activation.
    /// Matched by ops and constants; each intermediate value must have one reader.
    mutating func fuseTanhGELU(outputs: Set<String>) {
        var m = ElementwiseMatcher(nodes, outputs: outputs, scalars: scalarNodes)
        for (p, nd) in nodes.enumerated() {
            guard (nd.op as? PowGraphOp)?.exponent == 3, let x = nd.inputs.first,
                  let c = m.only(nd.output), m.scalar(c, .mul, 0.044715),
                  let s = m.only(nodes[c].output), (nodes[s].op as? BinaryGraphOp)?.op == .add, Set(nodes[s].inputs) == [x, nodes[c].output],
                  let k = m.only(nodes[s].output), m.scalar(k, .mul, (2 / Double.pi).squareRoot()),
                  let t = m.only(nodes[k].output), ((nodes[t].op as? LayerOp)?.layer as? ActivationLayer)?.kind == .tanh,
                  let a = m.only(nodes[t].output), m.scalar(a, .add, 1), let q = m.only(nodes[a].output) else { continue }
            let chain = [p, c, s, k, t, a, q]
            let name = nodes[t].name + "/gelu"
            let gelu = { (out: String) in GraphNode(name, LayerOp(ActivationLayer(.geluTanh)), inputs: [x], output: out) }
            if m.scalar(q, .mul, 0.5), let f = m.only(nodes[q].output), m.isMul(f), Set(nodes[f].inputs) == [x, nodes[q].output] {
                m.claim(chain + [f], by: gelu(nodes[f].output))                         // x·(½·(1 + tanh))
            } else if m.isMul(q), Set(nodes[q].inputs).contains(x), Set(nodes[q].inputs).count == 2, let h = m.only(nodes[q].output), m.scalar(h, .mul, 0.5) {
                m.claim(chain + [h], by: gelu(nodes[h].output))                         // (x·(1 + tanh))·½
            } else if m.isMul(q), let other = nodes[q].inputs.first(where: { $0 != nodes[a].output }), let h0 = m.producer[other], m.single(other),
                      m.scalar(h0, .mul, 0.5), nodes[h0].inputs[0] == x {
                m.claim(chain + [h0], by: gelu(nodes[q].output))                        // (½·x)·(1 + tanh)
            }
        }
        if let rewritten = m.rewritten { nodes = rewritten }
    }
}

/// The nodes as the GELU fusions match them: each value's producer and reader count, the scalar
/// a node adds or multiplies by (`scalarNodes`), and the nodes claimed so far, each chain
/// replaced by one node at its last (the fused activation writes the chain's last value).
struct ElementwiseMatcher {
    let nodes: [GraphNode], outputs: Set<String>, scalars: [String: (op: BinaryOp, value: Double)]
    private(set) var producer: [String: Int] = [:]
    private var readerCount: [String: Int] = [:]
    private var remove = Set<Int>(), replace: [Int: GraphNode] = [:]

    init(_ nodes: [GraphNode], outputs: Set<String>, scalars: [String: (op: BinaryOp, value: Double)]) {
        self.nodes = nodes; self.outputs = outputs; self.scalars = scalars
        for (i, nd) in nodes.enumerated() {
            producer[nd.output] = i
            for v in nd.inputs { readerCount[v, default: 0] += 1 }
        }
    }

    /// Whether value v has one reader and is no graph output.
    func single(_ v: String) -> Bool { readerCount[v] == 1 && !outputs.contains(v) }
    /// v's one reader, where it has one.
    func only(_ v: String) -> Int? { single(v) ? nodes.indices.first { nodes[$0].inputs.contains(v) } : nil }
    /// Whether node i adds or multiplies by `value` (to 1e-6: exporters round √2 and √(2/π) to Float32).
    func scalar(_ i: Int, _ op: BinaryOp, _ value: Double) -> Bool {
        guard let s = scalars[nodes[i].output] else { return false }
        return s.op == op && abs(s.value - value) <= 1e-6 * abs(value)
    }
    func isMul(_ i: Int) -> Bool { (nodes[i].op as? BinaryGraphOp)?.op == .mul }

    /// Nodes `chain` become `node`, placed at the last of them, unless one is claimed already.
    mutating func claim(_ chain: [Int], by node: GraphNode) {
        guard chain.allSatisfy({ !remove.contains($0) }) else { return }
        remove.formUnion(chain)
        replace[chain.max()!] = node
    }

    /// The nodes with the claimed chains replaced; nil where nothing was claimed.
    var rewritten: [GraphNode]? {
        remove.isEmpty ? nil : nodes.indices.compactMap { i in replace[i] ?? (remove.contains(i) ? nil : nodes[i]) }
    }
}
