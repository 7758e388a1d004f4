import AttribCore

/// Runs a graph on one device: a forward pass over a batch, and a reverse-mode backward
/// from upstream gradients at any values to the inputs and to any named inner value.
///
/// Hooks are names: a run can capture any value, replace any value (activation patching),
/// and a backward can stop the gradient at any value (GradDrop). Activations are kept only
/// as long as something needs them: every forward frees each value after its last reader
/// (unless it is an output or captured); one kept for a backward also keeps what the ops that
/// lead to the requested gradients saved (their OpSaved holds it), and nothing of the others.
/// So a decoder's raw and scaled attention scores, which no backward reads, are gone as soon
/// as the softmax has run: at T = 2048 they were two [H, T, T] values per layer.
public struct GraphExecutor: Sendable {
    public let graph: Graph
    public init(_ graph: Graph) { self.graph = graph }

    /// A hook on one value, as PyTorch's forward and tensor hooks: `forward` maps the value
    /// as computed to the value every reader sees (a partial patch: some rows' boxes taken from
    /// another run); `backward`, if any, maps the gradient at the value to the gradient that
    /// flows on to what computed it (the patched boxes zeroed: they were constants). The
    /// gradient reported for the value itself is the one before `backward`.
    public struct ValueHook: Sendable {
        public var forward: @Sendable (Tensor) throws -> Tensor
        public var backward: (@Sendable (Tensor) throws -> Tensor)?
        public init(forward: @escaping @Sendable (Tensor) throws -> Tensor, backward: (@Sendable (Tensor) throws -> Tensor)? = nil) {
            self.forward = forward; self.backward = backward
        }
    }

    /// What a forward pass did hooks-wise.
    public struct Hooks: Sendable {
        /// Values to return beside the outputs.
        public var capture: Set<String>
        /// Values replaced by these tensors ([N] + the value's shape): every reader sees the
        /// replacement, and no gradient flows from it to the node that produced the original.
        public var replace: [String: Tensor]
        /// Values passed through a hook (see ValueHook).
        public var modify: [String: ValueHook]
        public init(capture: Set<String> = [], replace: [String: Tensor] = [:], modify: [String: ValueHook] = [:]) {
            self.capture = capture; self.replace = replace; self.modify = modify
        }
    }

    /// A forward pass: its outputs and captured values, and what a backward needs.
    public struct Run: Sendable {
        public let batch: Int
        /// The graph's outputs and the captured values, by name.
        public let values: [String: Tensor]
        /// Per node, what its op saved (nil where no backward will pass through it).
        let saved: [OpSaved?]
        /// The values a backward may ask gradients for (those the run kept state for).
        let gradientRoots: Set<String>
        /// Values replaced in this run.
        let replaced: Set<String>
        /// The backward halves of this run's value hooks.
        let gradientHooks: [String: @Sendable (Tensor) throws -> Tensor]
        public subscript(_ name: String) -> Tensor? { values[name] }
    }

    /// The values whose gradient depends on one of `roots`: the roots and everything
    /// computed from them through differentiable inputs.
    func dependents(of roots: Set<String>, replaced: Set<String>) -> Set<String> {
        var d = roots
        for n in graph.nodes where !replaced.contains(n.output) {
            if n.inputs.indices.contains(where: { n.op.isDifferentiable(input: $0) && d.contains(n.inputs[$0]) }) { d.insert(n.output) }
        }
        return d
    }

    /// Runs the graph on `feeds`: the graph inputs, [N] + their shapes, one N for all; or,
    /// to run from a cut, any values (IG's path built after the first affine layer feeds that
    /// layer's output). Only the nodes that `outputs` (default: the graph's) and the captures
    /// need are run; a value they need that is neither fed nor computable is an error.
    /// `gradientsFor` names the values a later `backward` will ask gradients for (inputs,
    /// fed or inner values); nil runs forward only.
    public func forward(_ feeds: [String: Tensor], outputs: [String]? = nil, hooks: Hooks = Hooks(),
                        gradientsFor: Set<String>? = nil) throws -> Run {
        var env: [String: Tensor] = [:]
        var batch: Int?
        for (name, x) in feeds.sorted(by: { $0.key < $1.key }) {
            guard let type = graph.types[name] else {
                throw AttribError.invalidArgument(op: "Graph.forward", detail: "\"\(name)\" is fed but is no value of the graph (inputs: \(graph.inputs.map(\.name)))")
            }
            let n = x.shape.first ?? 0
            let what = graph.producer[name] == nil ? "input" : "value"
            guard x.rank == type.shape.count + 1, Array(x.shape.dropFirst()) == type.shape else {
                throw AttribError.shapeMismatch(op: "Graph.forward", detail: "\(what) \"\(name)\" has shape \(x.shape); the model takes [N] + \(type.shape)")
            }
            // Token ids may also arrive as whole-number floats (a .npy of ids); the
            // embedding that reads them checks each.
            guard x.dtype == type.dtype || (type.dtype == .int32 && x.dtype.isFloatingPoint) else {
                throw AttribError.shapeMismatch(op: "Graph.forward", detail: "\(what) \"\(name)\" is \(x.dtype); the model takes \(type.dtype)")
            }
            if let b = batch, b != n {
                throw AttribError.shapeMismatch(op: "Graph.forward", detail: "\(what) \"\(name)\" has \(n) rows, another fed value \(b)")
            }
            batch = n
            env[name] = x
        }
        let wanted = outputs ?? graph.outputs
        for o in wanted where graph.types[o] == nil {
            throw AttribError.invalidArgument(op: "Graph.forward", detail: "output \"\(o)\", which is no value of the graph")
        }
        for name in hooks.capture.union(hooks.modify.keys) where graph.types[name] == nil {
            throw AttribError.invalidArgument(op: "Graph.forward", detail: "capture of \"\(name)\", which is no value of the graph")
        }
        // The nodes to run: those the wanted values and captures reach back to, stopping
        // at fed values.
        var run = [Bool](repeating: false, count: graph.nodes.count)
        var pending = Array(Set(wanted).union(hooks.capture))
        while let v = pending.popLast() {
            if env[v] != nil { continue }
            guard let i = graph.producer[v] else {
                throw AttribError.invalidArgument(op: "Graph.forward", detail: "graph input \"\(v)\" (\(graph.types[v]!)) is not fed")
            }
            if run[i] { continue }
            run[i] = true
            pending += graph.nodes[i].inputs
        }
        let n = batch ?? 0
        for (name, h) in hooks.modify where env[name] != nil { env[name] = try h.forward(env[name]!) }
        for (name, t) in hooks.replace {
            guard let type = graph.types[name] else {
                throw AttribError.invalidArgument(op: "Graph.forward", detail: "replacement for \"\(name)\", which is no value of the graph")
            }
            guard t.shape == [n] + type.shape, t.dtype == type.dtype else {
                throw AttribError.shapeMismatch(op: "Graph.forward", detail: "replacement for \"\(name)\" is \(t.shape) \(t.dtype); the value is [\(n)] + \(type)")
            }
            if env[name] != nil { env[name] = t }
        }
        let replaced = Set(hooks.replace.keys)
        let roots = gradientsFor ?? []
        for r in roots where graph.types[r] == nil {
            throw AttribError.invalidArgument(op: "Graph.forward", detail: "gradient for \"\(r)\", which is no value of the graph")
        }
        let needsState = gradientsFor == nil ? [] : dependents(of: roots, replaced: replaced)
        let keep = Set(wanted).union(hooks.capture)
        var saved = [OpSaved?](repeating: nil, count: graph.nodes.count)
        for (i, node) in graph.nodes.enumerated() where run[i] {
            if let r = hooks.replace[node.output] {
                env[node.output] = r
            } else {
                let ins = node.inputs.map { env[$0]! }
                let (y, s) = try OpProfile.time(node.op.kind + " forward", ins.first?.device) { try node.op.forward(ins) }
                env[node.output] = try hooks.modify[node.output]?.forward(y) ?? y
                if needsState.contains(node.output) { saved[i] = s }
            }
            // What a backward needs is held by the ops' saved state, not by env.
            for v in Set(node.inputs) where graph.lastUse[v] == i && !keep.contains(v) { env[v] = nil }
        }
        var values: [String: Tensor] = [:]
        for k in keep { values[k] = env[k] }
        return Run(batch: n, values: values, saved: saved, gradientRoots: roots, replaced: replaced.union(feeds.keys),
                   gradientHooks: hooks.modify.compactMapValues(\.backward))
    }

    /// Reverse mode from `upstream` (∂L/∂value for any values, [N] + their shapes) to the
    /// values in `wrt`, which the run must have been asked for (`gradientsFor`). Where
    /// `stopGradient` names a value, the gradient there is zero, and so nothing flows back
    /// through it (a backward hook that zeroes the gradient, as GradDrop's is written in
    /// PyTorch). A value in `wrt` that no upstream reaches gets zeros.
    public func backward(_ run: Run, upstream: [String: Tensor], wrt: Set<String>, stopGradient: Set<String> = []) throws -> [String: Tensor] {
        if let missing = wrt.first(where: { !run.gradientRoots.contains($0) }) {
            throw AttribError.invalidArgument(op: "Graph.backward", detail: "gradient for \"\(missing)\", which the forward pass was not asked to keep (gradientsFor: \(run.gradientRoots.sorted()))")
        }
        for s in stopGradient where graph.types[s] == nil {
            throw AttribError.invalidArgument(op: "Graph.backward", detail: "stop-gradient at \"\(s)\", which is no value of the graph")
        }
        var grads: [String: Tensor] = [:]
        for (name, g) in upstream {
            guard let type = graph.types[name] else {
                throw AttribError.invalidArgument(op: "Graph.backward", detail: "upstream gradient for \"\(name)\", which is no value of the graph")
            }
            guard g.shape == [run.batch] + type.shape, g.dtype == type.dtype else {
                throw AttribError.shapeMismatch(op: "Graph.backward", detail: "upstream gradient for \"\(name)\" is \(g.shape) \(g.dtype); the value is [\(run.batch)] + \(type)")
            }
            grads[name] = g
        }
        let live = dependents(of: wrt, replaced: run.replaced)
        for (i, node) in graph.nodes.enumerated().reversed() {
            if stopGradient.contains(node.output) { grads[node.output] = nil; continue }
            guard var dy = grads[node.output], !run.replaced.contains(node.output) else { continue }
            if let h = run.gradientHooks[node.output] { dy = try h(dy) }
            let needed = node.inputs.indices.map { node.op.isDifferentiable(input: $0) && live.contains(node.inputs[$0]) }
            if !wrt.contains(node.output) { grads[node.output] = nil }
            guard needed.contains(true) else { continue }
            guard let s = run.saved[i] else {
                throw AttribError.invalidArgument(op: "Graph.backward", detail: "node \(node.name) (\(node.op.kind)) kept no state for a backward")
            }
            let dx = try OpProfile.time(node.op.kind + " backward", dy.device) { try node.op.backward(dy, s, needed: needed) }
            for (j, v) in node.inputs.enumerated() where needed[j] {
                guard let g = dx[j] else { continue }
                if let acc = grads[v] {
                    // A value read by several nodes (a residual stream): gradients add.
                    grads[v] = try acc.adding(g)
                } else {
                    grads[v] = g
                }
            }
        }
        for s in stopGradient { grads[s] = nil }   // graph inputs among them
        var out: [String: Tensor] = [:]
        for w in wrt {
            let type = graph.types[w]!
            out[w] = try grads[w] ?? Tensor.zeros([run.batch] + type.shape, dtype: type.dtype, on: deviceOf(run, upstream))
        }
        return out
    }

    private func deviceOf(_ run: Run, _ upstream: [String: Tensor]) -> any Device {
        (upstream.values.first ?? run.values.values.first!).device
    }
}
