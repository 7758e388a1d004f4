import AttribCore

extension Sequential {
    /// The model as a graph: input "input" ([inputShape], the model's dtype, or Int32 ids
    /// when the first layer is an Embedding), then one node per layer, named by its index
    /// as in the state_dict ("0", "1", …), whose output value has the same name. The layers
    /// are shared, not copied.
    public func graph() throws -> Graph { try Self.chainGraph(layers, inputShape: inputShape, dtype: dtype) }

    static func chainGraph(_ layers: [any Layer], inputShape: [Int], dtype: DType) throws -> Graph {
        let inputType = ValueType(inputShape, layers.first is Embedding ? .int32 : dtype)
        var nodes: [GraphNode] = []
        var previous = "input"
        for (i, layer) in layers.enumerated() {
            nodes.append(GraphNode(String(i), LayerOp(layer), inputs: [previous], output: String(i)))
            previous = String(i)
        }
        return try Graph(inputs: [("input", inputType)], nodes: nodes, outputs: [previous])
    }
}
