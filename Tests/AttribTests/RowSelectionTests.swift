import Attrib
import AttribONNX
import Foundation
import Testing

/// `Graph.selectingRowsEarly`: slices moved above the ops that work row by row. On the ONNX
/// transformers (a classifier's [CLS] row), the rewritten graph computes fewer elements and
/// gives the same logits and gradients; on hand-built graphs, each rule and each stop.
@Suite struct RowSelectionTests {
    /// Elements of one sample's values: what the graph computes.
    static func elements(_ g: Graph) -> Int { g.nodes.reduce(0) { $0 + g.types[$1.output]!.count } }

    @Test("ONNX transformers: the rewritten graph computes fewer elements and gives the same logits and input gradients (Float64 1e-12; OpenCL Float32 1e-5)",
          arguments: ["tinybert/model.onnx", "tinybert/dynamo/model.onnx", "tinyvit/model.onnx", "tvvit/model.onnx", "tvvit/dynamo/model.onnx"])
    func transformers(_ file: String) throws {
        let devices: [any Device] = [cpu] + openCLDevices
        for device in devices {
            let dtype: DType = device === cpu ? .float64 : .float32
            let g = try ONNXModel.load(fixturePath("onnx/\(file)"), on: device, dtype: dtype).graph
            let input = g.inputs[0]
            let text = input.type.dtype == .int32
            // Token ids: differentiate at the embedding output; images: at the input.
            let at = text ? g.embeddingOutput()! : input.name
            let moved = try g.selectingRowsEarly(keeping: [at])
            #expect(Self.elements(moved) < Self.elements(g) * 97 / 100, "\(file): \(Self.elements(moved)) of \(Self.elements(g)) elements")
            let n = 3
            let feed: Tensor
            if text {
                let ids = try NPY.read(fixturePath("onnx/tinybert/ids.npy")).int32s()
                feed = try Tensor(indices: Array(ids.prefix(n * input.type.count)), shape: [n] + input.type.shape, on: device)
            } else {
                var rng = SplitMix64(seed: 7)
                feed = try Tensor(rng.uniform(n * input.type.count, -1, 1), shape: [n] + input.type.shape, dtype: dtype, on: device)
            }
            let classes = g.types[g.outputs[0]]!.count
            var up = [Double](repeating: 0, count: n * classes)
            for i in 0..<n { up[i * classes + (i % classes)] = 1 }
            func run(_ graph: Graph) throws -> (logits: [Double], grad: [Double]) {
                let exec = GraphExecutor(graph)
                let r = try exec.forward([input.name: feed], gradientsFor: [at])
                let gr = try exec.backward(r, upstream: [graph.outputs[0]: Tensor(up, shape: [n] + g.types[g.outputs[0]]!.shape, dtype: dtype, on: device)], wrt: [at])
                return (try r[graph.outputs[0]]!.doubles(), try gr[at]!.doubles())
            }
            let a = try run(g), b = try run(moved)
            // The same sums over fewer rows: Float64 to rounding; Float32 products of other
            // row counts may block differently (1e-5 of the largest value).
            let tol = dtype == .float64 ? 1e-12 : 1e-5
            #expect(GradientMethodTests.rel(b.logits, a.logits) <= tol, "\(file) \(device.id): logits \(GradientMethodTests.rel(b.logits, a.logits))")
            #expect(GradientMethodTests.rel(b.grad, a.grad) <= tol, "\(file) \(device.id): gradient \(GradientMethodTests.rel(b.grad, a.grad))")
        }
    }

    /// x [4, 6] → Linear → LayerNorm → + x → GELU → Slice(axis 0, 1..<2) → Linear: the slice
    /// can move to the top (x is an input: it stops there, as a slice of x).
    static func chain(keep: Set<String> = [], extraReader: Bool = false, sliceLast: Bool = false) throws -> Graph {
        var rng = SplitMix64(seed: 3)
        let w1 = try Tensor(rng.uniform(36, -0.5, 0.5), shape: [6, 6], dtype: .float64, on: cpu)
        let w2 = try Tensor(rng.uniform(12, -0.5, 0.5), shape: [2, 6], dtype: .float64, on: cpu)
        let ln = try LayerNormLayer(normalizedShape: [6], eps: 1e-5, weight: nil, bias: nil, device: cpu, dtype: .float64)
        var nodes = [
            GraphNode("l1", LayerOp(try Linear(weight: w1, bias: nil)), inputs: ["x"], output: "h"),
            GraphNode("ln", LayerOp(ln), inputs: ["h"], output: "n"),
            GraphNode("res", BinaryGraphOp(.add), inputs: ["n", "x"], output: "r"),
            GraphNode("act", LayerOp(ActivationLayer(.geluTanh)), inputs: ["r"], output: "a"),
            sliceLast ? GraphNode("pick", SliceGraphOp(axis: 1, start: 1, end: 3), inputs: ["a"], output: "s")
                      : GraphNode("pick", SliceGraphOp(axis: 0, start: 1, end: 2), inputs: ["a"], output: "s"),
            GraphNode("head", LayerOp(try Linear(weight: sliceLast ? try Tensor(rng.uniform(4, -0.5, 0.5), shape: [2, 2], dtype: .float64, on: cpu) : w2, bias: nil)),
                      inputs: ["s"], output: "y"),
        ]
        var outputs = ["y"]
        if extraReader { nodes.append(GraphNode("other", LayerOp(ActivationLayer(.tanh)), inputs: ["n"], output: "o")); outputs.append("o") }
        return try Graph(inputs: [("x", ValueType([4, 6], .float64))], nodes: nodes, outputs: outputs)
    }

    @Test("Rules and stops: the slice moves through Linear, LayerNorm, add and activation to the input; a kept value, another reader or a slice of the normalized axis stops it")
    func rulesAndStops() throws {
        var rng = SplitMix64(seed: 9)
        let x = try Tensor(rng.uniform(3 * 24, -1, 1), shape: [3, 4, 6], dtype: .float64, on: cpu)
        func outputs(_ g: Graph) throws -> [Double] {
            let r = try GraphExecutor(g).forward(["x": x])
            return try g.outputs.flatMap { try r[$0]!.doubles() }
        }
        // To the top: every op then reads one row.
        let g = try Self.chain(), m = try g.selectingRowsEarly()
        #expect(m.types["h"] == nil && m.types["n"] == nil && m.types["a"] == nil, "\(m.nodes.map(\.output))")
        #expect(m.nodes.filter { $0.op is SliceGraphOp }.map(\.inputs) == [["x"]], "one slice, of the input")
        #expect(m.nodes.compactMap { m.types[$0.output] }.allSatisfy { $0.shape.first == 1 }, "every value one row")
        #expect(GradientMethodTests.rel(try outputs(m), try outputs(g)) <= 1e-14)
        // A kept value: the slice stops below it (the LayerNorm's output is computed whole).
        let k = try Self.chain().selectingRowsEarly(keeping: ["n"])
        #expect(k.types["n"]?.shape == [4, 6] && k.types["h"]?.shape == [4, 6])
        #expect(GradientMethodTests.rel(try outputs(k), try outputs(g)) <= 1e-14)
        // Another reader of n: n stays whole, the residual add's other side is sliced.
        let e = try Self.chain(extraReader: true), em = try e.selectingRowsEarly()
        #expect(em.types["n"]?.shape == [4, 6])
        #expect(em.nodes.contains { $0.op is SliceGraphOp && $0.inputs == ["n"] } && em.nodes.contains { $0.op is SliceGraphOp && $0.inputs == ["x"] })
        #expect(GradientMethodTests.rel(try outputs(em), try outputs(e)) <= 1e-14)
        // A slice of the last axis (the one Linear and LayerNorm reduce over) does not move
        // past them; the activation is elementwise, so it moves above that alone.
        let l = try Self.chain(sliceLast: true), lm = try l.selectingRowsEarly()
        #expect(lm.types["r"] == nil && lm.types["n"]?.shape == [4, 6], "\(lm.nodes.map(\.output))")
        #expect(GradientMethodTests.rel(try outputs(lm), try outputs(l)) <= 1e-14)
    }
}
