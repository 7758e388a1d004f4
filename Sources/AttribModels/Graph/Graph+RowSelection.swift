import AttribCore

extension Graph {
    /// The graph with each slice moved above the ops that work row by row, so those ops compute
    /// only the rows the slice keeps.
    ///
    /// Why: a classifier reads one token's row at its end (BERT's pooler and a ViT's head take
    /// token 0, `Gather(axis 1, 0)`, a Slice here), yet its last block computes every token: for
    /// BERT-base at 128 tokens the last block's attention output, both norms and its MLP are
    /// 9 of its 12 products per token, about 6% of the model, forward and backward. Slicing
    /// commutes with any op that treats the sliced axis as rows: Linear, LayerNorm and softmax
    /// over another axis, elementwise ops (with the constant sliced too), scales, reshapes that
    /// keep the axes up to the sliced one, transposes (the slice moves to the permuted axis) and
    /// the rows of a product's left operand. The rule applies to any graph; it moves a slice
    /// only where every reader of the sliced value takes the same rows and the value is neither
    /// an input, an output nor in `keep` (values a caller captures, replaces or differentiates
    /// at). Where an op's input has other readers (the keys and values of the last attention,
    /// the residual stream), the slice stops there, as a new Slice of that input.
    /// The outputs are the same values, up to the rounding of products with fewer rows.
    public func selectingRowsEarly(keeping keep: Set<String> = []) throws -> Graph {
        var g = self
        // One slice at a time, until none moves; a graph of L nodes moves at most L slices.
        for _ in 0..<(nodes.count + 1) {
            guard let next = try g.movingOneSlice(keeping: keep) else { return g }
            g = next
        }
        return g
    }

    /// The graph with one slice moved above its value's producer, or nil where none can move.
    private func movingOneSlice(keeping keep: Set<String>) throws -> Graph? {
        var readers: [String: [Int]] = [:]
        for (i, n) in nodes.enumerated() { for v in Set(n.inputs) { readers[v, default: []].append(i) } }
        let graphInputs = Set(inputs.map(\.name))
        for (si, s) in nodes.enumerated() {
            guard let slice = s.op as? SliceGraphOp, let v = s.inputs.first, !keep.contains(v), !outputs.contains(v),
                  !graphInputs.contains(v), let pi = producer[v], let vType = types[v] else { continue }
            let axis = slice.axis < 0 ? slice.axis + vType.shape.count : slice.axis
            // Every reader of v must be a slice of the same rows (the duplicates read the moved one).
            let same = readers[v, default: []]
            guard same.allSatisfy({ j in
                guard let o = nodes[j].op as? SliceGraphOp else { return false }
                return (o.axis < 0 ? o.axis + vType.shape.count : o.axis) == axis && o.start == slice.start && o.end == slice.end
            }) else { continue }
            let p = nodes[pi]
            let inTypes = p.inputs.map { types[$0]! }
            guard let moved = try Self.rowsMoved(p.op, axis: axis, start: slice.start, end: slice.end, inputs: inTypes, output: vType) else { continue }
            // The new nodes: a slice of each input that carries the rows (one already there is
            // reused), then the op on the slices, producing the first slice's output value.
            var added: [GraphNode] = [], newInputs: [String] = []
            for (k, x) in p.inputs.enumerated() {
                guard let a = moved.inputAxes[k] else { newInputs.append(x); continue }
                let name = "\(x)/rows\(slice.start)..<\(slice.end)@\(a)"
                if types[name] == nil, !added.contains(where: { $0.output == name }) {
                    added.append(GraphNode("\(p.name)/rows.\(k)", SliceGraphOp(axis: a, start: slice.start, end: slice.end), inputs: [x], output: name))
                }
                newInputs.append(name)
            }
            added.append(GraphNode(p.name, moved.op, inputs: newInputs, output: s.output))
            // The other slices of v read the moved one's value through an identity.
            var rewritten: [GraphNode] = []
            for (i, n) in nodes.enumerated() {
                if i == pi { rewritten += added; continue }
                if i == si { continue }
                if same.contains(i) { rewritten.append(GraphNode(n.name, IdentityGraphOp(), inputs: [s.output], output: n.output)); continue }
                rewritten.append(n)
            }
            return try Graph(inputs: inputs, nodes: rewritten, outputs: outputs)
        }
        return nil
    }

    /// How `op`, whose output is sliced on per-sample `axis` (rows start..<end), runs on sliced
    /// inputs: the op for the fewer rows and, per input, the axis to slice it on (nil: read
    /// whole). nil where the op does not work row by row along that axis.
    static func rowsMoved(_ op: any GraphOp, axis a: Int, start: Int, end: Int, inputs: [ValueType], output: ValueType)
        throws -> (op: any GraphOp, inputAxes: [Int?])? {
        let rank = output.shape.count, notLast = a < rank - 1
        switch op {
        case let l as LayerOp:
            switch l.layer {
            case is Linear where notLast, is ActivationLayer:
                return (op, [a])
            case let n as LayerNormLayer where notLast && n.normalizedShape.count == 1:
                return (op, [a])
            case is SoftmaxLayer where notLast:
                return (op, [a])
            default: return nil
            }
        case is LinearActivationGraphOp where notLast:
            return (op, [a])
        case is BinaryGraphOp where inputs.allSatisfy({ $0 == output }):
            return (op, inputs.map { _ in a })
        case is IdentityGraphOp, is ScaleGraphOp:
            return (op, [a])
        case let c as ConstantBinaryGraphOp:
            // The constant holds the value's per-sample shape: its rows are sliced too.
            let sliced = try SliceGraphOp(axis: a, start: start, end: end).forward([c.constant.reshaped([1] + c.constant.shape)]).y
            return (ConstantBinaryGraphOp(c.op, try sliced.reshaped(Array(sliced.shape.dropFirst())), constantFirst: c.constantFirst, uniform: c.uniform), [a])
        case is ReshapeGraphOp:
            // Only where the axes up to the sliced one are the same before and after.
            let x = inputs[0].shape
            guard x.count > a, Array(x.prefix(a + 1)) == Array(output.shape.prefix(a + 1)) else { return nil }
            var target = output.shape
            target[a] = end - start
            return (ReshapeGraphOp(target), [a])
        case let t as TransposeGraphOp:
            return (op, [t.perm[a]])
        case is MatMulGraphOp:
            // The rows of a product are its left operand's rows; a leading (batch) axis is both
            // operands'.
            if a == rank - 2 { return (op, [a, nil]) }
            if a < rank - 2 { return (op, [a, a]) }
            return nil
        default:
            return nil
        }
    }
}
