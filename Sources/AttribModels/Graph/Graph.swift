import AttribCore

/// One node of a graph: an op applied to named values, producing one named value.
public struct GraphNode: Sendable {
    /// The node's name, for messages (a front-end's layer index or ONNX node name).
    public let name: String
    public let op: any GraphOp
    /// The values it reads, in the op's order.
    public let inputs: [String]
    /// The value it produces.
    public let output: String
    public init(_ name: String, _ op: any GraphOp, inputs: [String], output: String) {
        self.name = name; self.op = op; self.inputs = inputs; self.output = output
    }
}

/// A model as a graph: named values with per-sample shapes and dtypes (the batch dimension
/// is implicit and leading, shared by every value of a run) and nodes in an order where
/// each node's inputs come before it.
///
/// `init` checks everything a front-end can get wrong, each error naming the node: a value
/// produced twice, an input nobody produces (dangling), a cycle, an op given the wrong
/// number of inputs, and shapes that do not fit (the op's shape rule, with the shapes).
public struct Graph: Sendable {
    /// The graph's inputs and their per-sample types, in the order a caller feeds them.
    public let inputs: [(name: String, type: ValueType)]
    /// Nodes in topological order (inputs before the nodes that read them).
    public let nodes: [GraphNode]
    /// The values a run returns.
    public let outputs: [String]
    /// Every value's per-sample type.
    public let types: [String: ValueType]
    /// The node that produces each non-input value (an index into `nodes`).
    public let producer: [String: Int]
    /// For each value, the index of the last node that reads it (absent if none does).
    public let lastUse: [String: Int]

    public init(inputs: [(name: String, type: ValueType)], nodes unordered: [GraphNode], outputs: [String]) throws {
        var producerOf: [String: Int] = [:]
        let inputNames = Set(inputs.map(\.name))
        guard inputNames.count == inputs.count else {
            throw AttribError.invalidArgument(op: "Graph", detail: "graph inputs \(inputs.map(\.name)) repeat a name")
        }
        for (i, n) in unordered.enumerated() {
            guard n.inputs.count == n.op.arity else {
                throw AttribError.invalidArgument(op: "Graph", detail: "node \(n.name) (\(n.op.kind)) has \(n.inputs.count) inputs; \(n.op.kind) takes \(n.op.arity)")
            }
            if inputNames.contains(n.output) {
                throw AttribError.invalidArgument(op: "Graph", detail: "node \(n.name) (\(n.op.kind)) writes \"\(n.output)\", which is a graph input")
            }
            if let j = producerOf[n.output] {
                throw AttribError.invalidArgument(op: "Graph", detail: "value \"\(n.output)\" is produced by node \(unordered[j].name) and again by node \(n.name)")
            }
            producerOf[n.output] = i
        }
        for n in unordered {
            for v in n.inputs where !inputNames.contains(v) && producerOf[v] == nil {
                throw AttribError.invalidArgument(op: "Graph", detail: "node \(n.name) (\(n.op.kind)) reads \"\(v)\", which no node produces and is not a graph input")
            }
        }
        for o in outputs where !inputNames.contains(o) && producerOf[o] == nil {
            throw AttribError.invalidArgument(op: "Graph", detail: "graph output \"\(o)\" is produced by no node")
        }

        // Kahn's order, stable: among ready nodes the one listed first goes first, so a
        // front-end's order is kept where it is already topological.
        var pending = unordered.map { n in Set(n.inputs.filter { !inputNames.contains($0) }).count }
        var readers: [String: [Int]] = [:]
        for (i, n) in unordered.enumerated() { for v in Set(n.inputs) where !inputNames.contains(v) { readers[v, default: []].append(i) } }
        var ready = pending.indices.filter { pending[$0] == 0 }
        var order: [Int] = []
        while !ready.isEmpty {
            let i = ready.removeFirst()
            order.append(i)
            var woke: [Int] = []
            for r in readers[unordered[i].output] ?? [] {
                pending[r] -= 1
                if pending[r] == 0 { woke.append(r) }
            }
            ready = (ready + woke).sorted()
        }
        guard order.count == unordered.count else {
            let stuck = unordered.indices.filter { pending[$0] > 0 }.map { "\(unordered[$0].name) (\(unordered[$0].op.kind))" }
            throw AttribError.invalidArgument(op: "Graph", detail: "nodes \(stuck.joined(separator: ", ")) form a cycle or depend on one")
        }
        let nodes = order.map { unordered[$0] }

        var types: [String: ValueType] = [:]
        for (name, t) in inputs {
            guard !t.shape.isEmpty, t.shape.allSatisfy({ $0 >= 1 }) else {
                throw AttribError.invalidArgument(op: "Graph", detail: "graph input \"\(name)\" has shape \(t.shape); every dimension must be ≥ 1")
            }
            types[name] = t
        }
        var producer: [String: Int] = [:], lastUse: [String: Int] = [:]
        for (i, n) in nodes.enumerated() {
            let ins = n.inputs.map { types[$0]! }
            let out: ValueType
            do { out = try n.op.outputType(ins) } catch {
                throw AttribError.shapeMismatch(op: "Graph", detail: "node \(n.name) (\(n.op.description)) does not fit its inputs \(zip(n.inputs, ins).map { "\($0): \($1)" }.joined(separator: ", ")): \(error)")
            }
            types[n.output] = out
            producer[n.output] = i
            for v in n.inputs { lastUse[v] = i }
        }
        self.inputs = inputs; self.nodes = nodes; self.outputs = outputs
        self.types = types; self.producer = producer; self.lastUse = lastUse
    }

    /// The memory a batch row needs, for sizing batches from a device's memory: `perRow`
    /// elements at the peak, `largest` elements in one allocation (which must fit the device's
    /// largest), and `touched`, every element the pass writes (the working set a CPU's cache
    /// sizes batches by), for a pass that starts at the values `from` (nil: the graph inputs)
    /// and runs every node computed from them.
    ///
    /// A workspace (a convolution's im2col matrix and its gradient, 2 per element, and the
    /// product's output or upstream gradient transposed beside it, 2 per output element)
    /// lives only while its op runs, so the peak holds the largest one, not their sum: on
    /// ResNet-50 the sum of 53 convolutions' workspaces had made the estimate 1.5× larger.
    /// Backward: 3 per start element (the fed value, its gradient, a spare) and per node 2 per
    /// output element (saved for the backward and its gradient) and what the op keeps: every
    /// value a backward passes through stays until it has. Forward only: 2 per start element,
    /// and the values live at the worst node (computed, not yet read for the last time, or an
    /// output), with that node's output and workspace: the executor frees each value after
    /// its last reader. Upper bounds both, as batches must never run out.
    public func rowElements(from start: Set<String>? = nil, backward: Bool) -> (perRow: Int, largest: Int, touched: Int) {
        let roots = start ?? Set(inputs.map(\.name))
        var reached = roots
        var base = 0, largest = 0, touched = 0, workspace = 0
        for r in roots {
            let c = types[r]!.count
            base += (backward ? 3 : 2) * c
            largest = max(largest, c)
        }
        touched = base
        var alive: [(value: String, count: Int)] = []       // forward: values computed so far, still read later
        var forwardPeak = 0
        for (i, n) in nodes.enumerated() where n.inputs.contains(where: reached.contains) && !roots.contains(n.output) {
            reached.insert(n.output)
            let ins = n.inputs.map { types[$0]! }, out = types[n.output]!
            let ws = n.op.workspaceElements(ins, output: out)
            touched += backward ? 2 * out.count + 2 * ws + n.op.keptElements(ins, output: out) : out.count + 2 * ws
            largest = max(largest, out.count, ws)
            if backward {
                base += 2 * out.count + n.op.keptElements(ins, output: out)
                // With its transposed output (forward) or upstream gradient (backward) beside it.
                workspace = max(workspace, ws > 0 ? 2 * ws + 2 * out.count : 0)
            } else {
                alive.removeAll { v in !outputs.contains(v.value) && (lastUse[v.value] ?? -1) < i }
                forwardPeak = max(forwardPeak, alive.reduce(0) { $0 + $1.count } + out.count + (ws > 0 ? 2 * ws + out.count : 0))
                alive.append((n.output, out.count))
            }
        }
        return (base + (backward ? workspace : forwardPeak), largest, touched)
    }
}

extension Graph {
    /// A text model's embedding output, the value layer IG runs through by default: the first
    /// Embedding's output, followed through the nodes that add constants to it (position and
    /// token-type embeddings folded at load) or other embeddings' lookups (RoBERTa's positions,
    /// computed from the ids at run time), and the LayerNorm that ends them, as far as each
    /// value on the way has one reader. Hugging Face's BERT, RoBERTa, ALBERT, MPNet, DeBERTa and
    /// ModernBERT give the output of their embeddings module, the layer Captum's examples
    /// attribute to. nil where no Embedding reads an input.
    public func embeddingOutput() -> String? {
        guard var node = nodes.firstIndex(where: { ($0.op as? LayerOp)?.layer is Embedding }) else { return nil }
        var value = nodes[node].output
        while true {
            let readers = nodes.indices.filter { nodes[$0].inputs.contains(value) }
            guard readers.count == 1, !outputs.contains(value) else { return value }
            let next = nodes[readers[0]]
            let ends = (next.op as? LayerOp)?.layer is LayerNormLayer
            let other = next.inputs.filter { $0 != value }
            let addsLookup = (next.op as? BinaryGraphOp)?.op == .add && other.count == 1
                && producer[other[0]].map { ((nodes[$0].op as? LayerOp)?.layer is Embedding) } == true
            let extends = (next.inputs.count == 1 && (next.op is ConstantBinaryGraphOp || next.op is IdentityGraphOp)) || addsLookup
            guard extends || (ends && next.inputs.count == 1) else { return value }
            node = readers[0]
            value = next.output
            if ends { return value }
        }
    }
}
