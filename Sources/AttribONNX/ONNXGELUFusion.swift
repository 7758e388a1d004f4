import AttribCore
import AttribModels

extension ONNXGraphBuilder {
    /// The exact GELU as exporters write it, x·½·(1 + erf(x/√2)) in five elementwise nodes
    /// (Div or Mul by √2, Erf, Add 1, then Mul by x and by ½ in any of the exporters' orders), becomes one
    /// GELU activation: one pass over the values instead of five, and the CPU backend's
    /// vectorised erfc for both GELU and its derivative. A rule on any graph, matched by the
    /// ops and their constants, not by names; each intermediate value must have one reader.
    mutating func fuseExactGELU(outputs: Set<String>) {
        var readerCount: [String: Int] = [:]
        var producer: [String: Int] = [:]
        for (i, nd) in nodes.enumerated() {
            producer[nd.output] = i
            for v in nd.inputs { readerCount[v, default: 0] += 1 }
        }
        func single(_ v: String) -> Bool { readerCount[v] == 1 && !outputs.contains(v) }
        func only(_ v: String) -> Int? { single(v) ? nodes.indices.first { nodes[$0].inputs.contains(v) } : nil }
        func scalar(_ i: Int, _ op: BinaryOp, _ value: Double) -> Bool {
            guard let s = scalarNodes[nodes[i].output] else { return false }
            return s.op == op && abs(s.value - value) <= 1e-6 * abs(value)
        }
        var remove = Set<Int>()
        var replace: [Int: GraphNode] = [:]
        for (e, nd) in nodes.enumerated() {
            guard ((nd.op as? LayerOp)?.layer as? ActivationLayer)?.kind == .erf, let u = nd.inputs.first, single(u),
                  let d = producer[u], scalar(d, .mul, 0.5.squareRoot()) else { continue }
            let x = nodes[d].inputs[0]
            guard let a = only(nd.output), scalar(a, .add, 1) else { continue }
            // x·(½·(1 + erf)): the dynamo exporter's order.
            if let h = only(nodes[a].output), scalar(h, .mul, 0.5), let m = only(nodes[h].output),
               (nodes[m].op as? BinaryGraphOp)?.op == .mul, nodes[m].inputs.contains(x), nodes[m].inputs.contains(nodes[h].output) {
                let drop = [d, e, a, h, m]
                guard drop.allSatisfy({ !remove.contains($0) }) else { continue }
                remove.formUnion(drop)
                replace[m] = GraphNode(nodes[e].name + "/gelu", LayerOp(ActivationLayer(.geluErf)), inputs: [x], output: nodes[m].output)
                continue
            }
            guard let m = only(nodes[a].output), nodes[m].op is BinaryGraphOp, (nodes[m].op as! BinaryGraphOp).op == .mul else { continue }
            let other = nodes[m].inputs.first { $0 != nodes[a].output } ?? ""
            var drop: [Int] = [d, e, a, m]
            let out: String
            if other == x, let h = only(nodes[m].output), scalar(h, .mul, 0.5) {
                drop.append(h); out = nodes[h].output                       // (x·(1 + erf))·½
            } else if let h0 = producer[other], single(other), scalar(h0, .mul, 0.5), nodes[h0].inputs[0] == x {
                drop.append(h0); out = nodes[m].output                      // (x·½)·(1 + erf)
            } else { continue }
            guard drop.allSatisfy({ !remove.contains($0) }) else { continue }
            remove.formUnion(drop)
            replace[drop.max()!] = GraphNode(nodes[e].name + "/gelu", LayerOp(ActivationLayer(.geluErf)), inputs: [x], output: out)
        }
        guard !remove.isEmpty else { return }
        nodes = nodes.indices.compactMap { i in replace[i] ?? (remove.contains(i) ? nil : nodes[i]) }
    }

    /// The tanh GELU as exporters write it (Hugging Face's NewGELU and gelu_new: ALBERT, GPT-2),
    /// ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) in eight nodes (Pow 3, Mul, Add x, Mul, Tanh,
    /// Add 1, and the products by x and ½ in any order), becomes one GELU (tanh) activation.
    /// Matched by ops and constants; each intermediate value must have one reader.
    mutating func fuseTanhGELU(outputs: Set<String>) {
        var readerCount: [String: Int] = [:]
        var producer: [String: Int] = [:]
        for (i, nd) in nodes.enumerated() {
            producer[nd.output] = i
            for v in nd.inputs { readerCount[v, default: 0] += 1 }
        }
        func single(_ v: String) -> Bool { readerCount[v] == 1 && !outputs.contains(v) }
        func only(_ v: String) -> Int? { single(v) ? nodes.indices.first { nodes[$0].inputs.contains(v) } : nil }
        func scalar(_ i: Int, _ op: BinaryOp, _ value: Double) -> Bool {
            guard let s = scalarNodes[nodes[i].output] else { return false }
            return s.op == op && abs(s.value - value) <= 1e-6 * abs(value)
        }
        func isMul(_ i: Int) -> Bool { (nodes[i].op as? BinaryGraphOp)?.op == .mul }
        var remove = Set<Int>()
        var replace: [Int: GraphNode] = [:]
        for (p, nd) in nodes.enumerated() {
            guard (nd.op as? PowGraphOp)?.exponent == 3, let x = nd.inputs.first,
                  let c = only(nd.output), scalar(c, .mul, 0.044715),
                  let s = only(nodes[c].output), (nodes[s].op as? BinaryGraphOp)?.op == .add, Set(nodes[s].inputs) == [x, nodes[c].output],
                  let k = only(nodes[s].output), scalar(k, .mul, (2 / Double.pi).squareRoot()),
                  let t = only(nodes[k].output), ((nodes[t].op as? LayerOp)?.layer as? ActivationLayer)?.kind == .tanh,
                  let a = only(nodes[t].output), scalar(a, .add, 1), let m = only(nodes[a].output) else { continue }
            var drop = [p, c, s, k, t, a, m]
            let out: String
            if scalar(m, .mul, 0.5), let f = only(nodes[m].output), isMul(f), Set(nodes[f].inputs) == [x, nodes[m].output] {
                drop.append(f); out = nodes[f].output                              // x·(½·(1 + tanh))
            } else if isMul(m), Set(nodes[m].inputs).contains(x), Set(nodes[m].inputs).count == 2, let h = only(nodes[m].output), scalar(h, .mul, 0.5) {
                drop.append(h); out = nodes[h].output                              // (x·(1 + tanh))·½
            } else if isMul(m), let other = nodes[m].inputs.first(where: { $0 != nodes[a].output }), let h0 = producer[other], single(other),
                      scalar(h0, .mul, 0.5), nodes[h0].inputs[0] == x {
                drop.append(h0); out = nodes[m].output                             // (½·x)·(1 + tanh)
            } else { continue }
            guard drop.allSatisfy({ !remove.contains($0) }) else { continue }
            remove.formUnion(drop)
            replace[drop.max()!] = GraphNode(nodes[t].name + "/gelu", LayerOp(ActivationLayer(.geluTanh)), inputs: [x], output: out)
        }
        guard !remove.isEmpty else { return }
        nodes = nodes.indices.compactMap { i in replace[i] ?? (remove.contains(i) ? nil : nodes[i]) }
    }
}
