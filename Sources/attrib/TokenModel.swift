import ArgumentParser
import Attrib

/// A token-id ONNX model (BERT-style: one integer input of token ids, one output of logits), as
/// `attrib predict` and `attrib layer-ig` load it, read its ids and run it.
struct TokenModel {
    let file: String
    let graph: Graph
    let exec: GraphExecutor
    let input: String
    /// One input's shape ([T]) and element count.
    let shape: [Int], perInput: Int
    let output: String
    let classes: Int

    /// Token ids from a .npy of [N] + the input's shape (or [N, its element count]): integers, or
    /// whole-number floats; at most `limit` rows.
    func readIDs(_ path: String, limit: Int? = nil) throws -> [Int32] {
        let a = try NPY.read(path, rows: limit)
        guard a.shape.count >= 1, a.count % perInput == 0, Array(a.shape.dropFirst()) == shape || a.shape == [a.count / perInput, perInput] else {
            throw AttribError.shapeMismatch(op: path, detail: "ids have shape \(a.shape); the model takes [N] + \(shape)")
        }
        guard a.dtype.isFloatingPoint else { return try a.int32s() }
        return try a.doubles().enumerated().map { i, v in
            guard v == v.rounded(), abs(v) < 2e9 else { throw AttribError.invalidArgument(op: path, detail: "element \(i) is \(v), not a token id") }
            return Int32(v)
        }
    }

    /// The outputs for `ids` (whole inputs), in batches of `rows` inputs.
    func logits(_ ids: [Int32], rows: Int, on device: any Device) throws -> [Double] {
        let n = ids.count / perInput
        var out: [Double] = []
        for lo in stride(from: 0, to: n, by: max(1, rows)) {
            let k = min(rows, n - lo)
            out += try exec.forward([input: Tensor(indices: Array(ids[(lo * perInput)..<((lo + k) * perInput)]), shape: [k] + shape, on: device)])[output]!.doubles()
        }
        return out
    }
}

extension TokenModel {
    /// The loaded graph as a token model, or nil where it has not one token-id input and one output.
    init?(_ g: Graph, file: String) throws {
        guard g.inputs.count == 1, g.inputs[0].type.dtype == .int32, g.outputs.count == 1 else { return nil }
        let shape = g.inputs[0].type.shape
        // Forwards on the graph with its slices moved early (the last block on the [CLS] row).
        self.init(file: file, graph: g, exec: GraphExecutor(try g.selectingRowsEarly()), input: g.inputs[0].name, shape: shape,
                  perInput: shape.reduce(1, *), output: g.outputs[0], classes: g.types[g.outputs[0]]!.count)
    }
}
