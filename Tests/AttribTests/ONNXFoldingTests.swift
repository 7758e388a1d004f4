import Attrib
import AttribONNX
import SwiftProtobuf
import Foundation
import Testing

/// What the builder folds at load (ONNXFolding.swift) on small graphs written by hand: integer
/// shape arithmetic divides as integers, constants transpose, scatter and slice backwards, and a
/// Pad by nothing is the identity. Each result checked by the numbers it gives a value op.
@Suite struct ONNXFoldingTests {
    /// A graph with one float input "x" [N] + `sample`, output "y", the nodes and initializers given.
    static func load(_ nodes: [Onnx_NodeProto], _ initializers: [Onnx_TensorProto], sample: [Int64]) throws -> ONNXModel {
        var g = Onnx_GraphProto()
        g.name = "g"; g.node = nodes; g.initializer = initializers
        func value(_ name: String) -> Onnx_ValueInfoProto {
            var v = Onnx_ValueInfoProto()
            v.name = name
            v.type.tensorType.elemType = 1
            v.type.tensorType.shape.dim = ([nil] + sample).map { d in
                var x = Onnx_TensorShapeProto.Dimension()
                if let d { x.dimValue = d } else { x.dimParam = "N" }
                return x
            }
            return v
        }
        g.input = [value("x")]
        var y = Onnx_ValueInfoProto()
        y.name = "y"
        g.output = [y]
        var m = Onnx_ModelProto()
        m.irVersion = 8; m.graph = g
        var o = Onnx_OperatorSetIdProto(); o.version = 17
        m.opsetImport = [o]
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("attrib-onnx-fold-\(UUID().uuidString).onnx").path
        _ = FileManager.default.createFile(atPath: p, contents: try m.serializedBytes() as Data)
        defer { try? FileManager.default.removeItem(atPath: p) }
        return try ONNXModel.load(p, on: cpu, dtype: .float64)
    }

    static func node(_ op: String, _ inputs: [String], _ output: String, ints: [String: [Int64]] = [:]) -> Onnx_NodeProto {
        var n = Onnx_NodeProto()
        n.name = output; n.opType = op; n.input = inputs; n.output = [output]
        n.attribute = ints.sorted { $0.key < $1.key }.map { k, v in
            var a = Onnx_AttributeProto()
            a.name = k; a.type = .ints; a.ints = v
            return a
        }
        return n
    }

    static func int64(_ name: String, _ dims: [Int64], _ v: [Int64]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dims = dims; t.dataType = 7; t.int64Data = v
        return t
    }

    static func float(_ name: String, _ dims: [Int64], _ v: [Float]) -> Onnx_TensorProto {
        var t = Onnx_TensorProto()
        t.name = name; t.dims = dims; t.dataType = 1; t.floatData = v
        return t
    }

    static func forward(_ m: ONNXModel, _ x: [Double], _ shape: [Int]) throws -> Tensor {
        try GraphExecutor(m.graph).forward(["x": Tensor(x, shape: shape, dtype: .float64, on: cpu)])["y"]!
    }

    /// torch.chunk's split size as exporters write it around a shape: d = (C + 2) / 3 in int64,
    /// then x[:, d:2d]. For C = 6, d = 2 (8 / 3 truncated); a true division, 2.67, made the slice
    /// 2..<5, three columns (MaxViT's q, k and v were 65 wide where 64 were meant).
    @Test("integer shape arithmetic divides as integers: x[:, d:2d] with d = (6 + 2) / 3 = 2")
    func integerDivision() throws {
        let nodes = [
            Self.node("Shape", ["x"], "s"), Self.node("Gather", ["s", "one"], "c"),
            Self.node("Add", ["c", "two"], "c2"), Self.node("Div", ["c2", "three"], "d"),
            Self.node("Mul", ["d", "two"], "e"),
            Self.node("Unsqueeze", ["d", "axis0"], "starts"), Self.node("Unsqueeze", ["e", "axis0"], "ends"),
            Self.node("Slice", ["x", "starts", "ends", "one1"], "y"),
        ]
        let inits = [Self.int64("one", [], [1]), Self.int64("two", [], [2]), Self.int64("three", [], [3]),
                     Self.int64("axis0", [1], [0]), Self.int64("one1", [1], [1])]
        let m = try Self.load(nodes, inits, sample: [6])
        let x = (0..<12).map(Double.init)
        let y = try Self.forward(m, x, [2, 6])
        #expect(y.shape == [2, 2])
        #expect(try y.doubles() == [2, 3, 8, 9])
    }

    /// A constant C [2, 3] transposed to [3, 2], reversed along its first axis (x[::-1], starts
    /// -1, ends INT64_MIN + 1, steps -1) and its row 1 overwritten by ScatterND, then added to
    /// x [N, 3, 2]: Swin's shifted-window mask arithmetic, folded at load.
    @Test("constants transpose, slice backwards and scatter at load (Swin's window mask): the exact result added to x")
    func transposeReverseScatter() throws {
        let nodes = [
            Self.node("Transpose", ["C"], "ct", ints: ["perm": [1, 0]]),
            Self.node("Slice", ["ct", "minus1", "lowest", "axis0", "minus1"], "rev"),
            Self.node("ScatterND", ["rev", "row1", "nines"], "r"),
            Self.node("Add", ["x", "r"], "y"),
        ]
        let inits = [Self.float("C", [2, 3], [1, 2, 3, 4, 5, 6]), Self.int64("minus1", [1], [-1]),
                     Self.int64("lowest", [1], [Int64.min + 1]), Self.int64("axis0", [1], [0]),
                     Self.int64("row1", [1, 1], [1]), Self.float("nines", [1, 2], [9, 9])]
        let m = try Self.load(nodes, inits, sample: [3, 2])
        // Cᵀ = [[1, 4], [2, 5], [3, 6]]; reversed [[3, 6], [2, 5], [1, 4]]; row 1 ← [9, 9].
        let r: [Double] = [3, 6, 9, 9, 1, 4]
        let x = (0..<12).map { Double($0) * 0.5 }
        #expect(try Self.forward(m, x, [2, 3, 2]).doubles() == x.indices.map { x[$0] + r[$0 % 6] })
        #expect(m.graph.nodes.count == 1, "everything but the add folded: \(m.graph.nodes.map(\.op.kind))")
    }

    @Test("Pad by nothing is the identity; Pad by something is refused naming the node and the pads")
    func pad() throws {
        let zero = try Self.load([Self.node("Pad", ["x", "pads"], "y")], [Self.int64("pads", [4], [0, 0, 0, 0])], sample: [3])
        let x = (0..<6).map(Double.init)
        #expect(try Self.forward(zero, x, [2, 3]).doubles() == x)
        expectAttribError(["node 'y' (Pad)", "pads [0, 1, 0, 1]", "only padding by nothing"]) {
            _ = try Self.load([Self.node("Pad", ["x", "pads"], "y")], [Self.int64("pads", [4], [0, 1, 0, 1])], sample: [3])
        }
    }

    /// Split into pieces (ModernBERT's q, k, v): sizes given, or equal with a smaller last one.
    @Test("Split of a value: sizes given, and equal parts with a smaller last one (ONNX's rule)")
    func split() throws {
        var given = Self.node("Split", ["x", "sizes"], "a")
        given.output = ["a", "y"]
        given.attribute = [{ var a = Onnx_AttributeProto(); a.name = "axis"; a.type = .int; a.i = 1; return a }()]
        let m = try Self.load([given], [Self.int64("sizes", [2], [2, 3])], sample: [5])
        let x = (0..<10).map(Double.init)
        #expect(try Self.forward(m, x, [2, 5]).doubles() == [2, 3, 4, 7, 8, 9])
        var equal = Self.node("Split", ["x"], "a")
        equal.output = ["a", "b", "y"]
        equal.attribute = given.attribute
        let e = try Self.load([equal], [], sample: [5])
        #expect(try Self.forward(e, x, [2, 5]).doubles() == [4, 9])                 // pieces 2, 2, 1
    }

    /// Where with a constant condition: the mask fill of attention (−∞ where masked), and two
    /// values; the gradient reaches only the chosen elements.
    @Test("Where with a constant condition: a −∞ fill and a choice between two values, with their gradients")
    func whereMask() throws {
        var cond = Onnx_TensorProto()
        cond.name = "cond"; cond.dims = [3]; cond.dataType = 9; cond.int32Data = [1, 0, 1]
        let m = try Self.load([Self.node("Where", ["cond", "fill", "x"], "y")], [cond, Self.float("fill", [], [-.infinity])], sample: [3])
        let exec = GraphExecutor(m.graph)
        let x: [Double] = [1, 2, 3, 4, 5, 6]
        let run = try exec.forward(["x": Tensor(x, shape: [2, 3], dtype: .float64, on: cpu)], gradientsFor: ["x"])
        #expect(try run["y"]!.doubles() == [-.infinity, 2, -.infinity, -.infinity, 5, -.infinity])
        let g = try exec.backward(run, upstream: ["y": Tensor([Double](repeating: 1, count: 6), shape: [2, 3], dtype: .float64, on: cpu)], wrt: ["x"])
        #expect(try g["x"]!.doubles() == [0, 1, 0, 0, 1, 0])
        let two = try Self.load([Self.node("Neg", ["x"], "n"), Self.node("Where", ["cond", "x", "n"], "y")], [cond], sample: [3])
        #expect(try Self.forward(two, x, [2, 3]).doubles() == [1, -2, 3, 4, -5, 6])
    }

    /// A causal mask at load: Trilu of ones, compared with LessOrEqual, the larger of two
    /// constants, all folded; the graph keeps the one product.
    @Test("Trilu, LessOrEqual and Max of constants fold: a causal mask times x")
    func causalMask() throws {
        var trilu = Self.node("Trilu", ["ones"], "upper")
        trilu.attribute = [{ var a = Onnx_AttributeProto(); a.name = "upper"; a.type = .int; a.i = 1; return a }()]
        let nodes = [trilu, Self.node("LessOrEqual", ["upper", "zero"], "lower"),          // 1 on and below the diagonal... and 0 above
                     Self.node("Max", ["lower", "zero"], "mask"), Self.node("Cast", ["mask"], "maskf"), Self.node("Mul", ["x", "maskf"], "y")]
        var cast = nodes[3]
        cast.attribute = [{ var a = Onnx_AttributeProto(); a.name = "to"; a.type = .int; a.i = 1; return a }()]
        let m = try Self.load([nodes[0], nodes[1], nodes[2], cast, nodes[4]],
                              [Self.float("ones", [3, 3], [Float](repeating: 1, count: 9)), Self.float("zero", [], [0])], sample: [3, 3])
        #expect(m.graph.nodes.count == 1)
        let x = (1...9).map(Double.init)
        // upper = triu(ones): 1 on and above the diagonal; ≤ 0 marks the strictly lower part.
        #expect(try Self.forward(m, x, [1, 3, 3]).doubles() == [0, 0, 0, 4, 0, 0, 7, 8, 0])
    }

    /// The dynamo exporter guards an attention's softmax with Where(IsNaN(p), 0, p): the value
    /// itself (inputs and weights are finite, masks folded constants). IsNaN read any other way
    /// is refused by name.
    @Test("Where(IsNaN(x), c, x) is x; IsNaN of a value read otherwise is refused naming the node")
    func nanGuard() throws {
        let m = try Self.load([Self.node("IsNaN", ["x"], "isnan"), Self.node("Where", ["isnan", "zero", "x"], "y")],
                              [Self.float("zero", [], [0])], sample: [3])
        let x: [Double] = [1, -2, 3, 4, 5, -6]
        #expect(try Self.forward(m, x, [2, 3]).doubles() == x)
        #expect(m.graph.nodes.map(\.op.kind) == ["Identity"])
        expectAttribError(["node 'y' (Cast)", "reads 'isnan', IsNaN of a value", "Where(IsNaN(x), c, x)"]) {
            var cast = Self.node("Cast", ["isnan"], "y")
            cast.attribute = [{ var a = Onnx_AttributeProto(); a.name = "to"; a.type = .int; a.i = 1; return a }()]
            _ = try Self.load([Self.node("IsNaN", ["x"], "isnan"), cast], [], sample: [3])
        }
    }
}
