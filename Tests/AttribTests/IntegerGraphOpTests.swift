import Attrib
import Testing

/// Integer ops on token ids (IntegerGraphOp): each against the rule by hand, from Int32 ids and
/// from whole-number floats, no gradient, and bad indices or values named.
@Suite struct IntegerGraphOpTests {
    /// Runs one op on [2] + `shape` inputs given as Int32 values (or as floats where `floats`).
    static func run(_ op: IntegerGraphOp, _ inputs: [[Int32]], shape: [Int], floats: Bool = false) throws -> Tensor {
        let names = inputs.indices.map { "x\($0)" }
        let graph = try Graph(inputs: names.map { ($0, ValueType(shape, .int32)) }, nodes: [GraphNode("op", op, inputs: names, output: "y")], outputs: ["y"])
        var feeds: [String: Tensor] = [:]
        for (name, v) in zip(names, inputs) {
            feeds[name] = floats ? try Tensor(v.map(Double.init), shape: [2] + shape, dtype: .float32, on: cpu)
                                 : try Tensor(indices: v, shape: [2] + shape, on: cpu)
        }
        return try GraphExecutor(graph).forward(feeds)["y"]!
    }

    /// RoBERTa's position ids for pad 1: cumsum(ids ≠ 1)·(ids ≠ 1) + 1, by the ops a file writes.
    @Test("RoBERTa's position ids from Equal, Not, CumSum, Mul and Add, from Int32 ids and from float ids", arguments: [false, true])
    func positionIDs(floats: Bool) throws {
        let ids: [Int32] = [0, 5, 7, 1, 1, 0, 9, 9, 9, 1]                          // [2, 5], pad = 1
        let mask = try Self.run(IntegerGraphOp(.constant(.equal, [1, 1, 1, 1, 1], constantFirst: false)), [ids], shape: [5], floats: floats)
        #expect(try mask.int32s() == [0, 0, 0, 1, 1, 0, 0, 0, 0, 1])
        let keep = try Self.run(IntegerGraphOp(.not), [try mask.int32s()], shape: [5])
        let sums = try Self.run(IntegerGraphOp(.cumsum(axis: 0, exclusive: false, reverse: false)), [try keep.int32s()], shape: [5])
        #expect(try sums.int32s() == [1, 2, 3, 3, 3, 1, 2, 3, 4, 4])
        let product = try Self.run(IntegerGraphOp(.binary(.mul)), [try sums.int32s(), try keep.int32s()], shape: [5])
        let positions = try Self.run(IntegerGraphOp(.constant(.add, [1, 1, 1, 1, 1], constantFirst: false)), [try product.int32s()], shape: [5])
        #expect(try positions.int32s() == [2, 3, 4, 1, 1, 2, 3, 4, 5, 1])
        #expect(positions.dtype == .int32)
    }

    @Test("CumSum exclusive and reversed along either axis; Sub with the constant first; comparisons")
    func cumsumAndBinary() throws {
        let v: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]                    // [2, 2, 3]
        let ex = try Self.run(IntegerGraphOp(.cumsum(axis: 1, exclusive: true, reverse: false)), [v], shape: [2, 3])
        #expect(try ex.int32s() == [0, 1, 3, 0, 4, 9, 0, 7, 15, 0, 10, 21])
        let rev = try Self.run(IntegerGraphOp(.cumsum(axis: 0, exclusive: false, reverse: true)), [v], shape: [2, 3])
        #expect(try rev.int32s() == [5, 7, 9, 4, 5, 6, 17, 19, 21, 10, 11, 12])
        let sub = try Self.run(IntegerGraphOp(.constant(.sub, [10, 10, 10, 10, 10, 10], constantFirst: true)), [v], shape: [2, 3])
        #expect(try sub.int32s() == v.map { 10 - $0 })
        let less = try Self.run(IntegerGraphOp(.constant(.less, [3, 3, 3, 3, 3, 3], constantFirst: false)), [v], shape: [2, 3])
        #expect(try less.int32s() == v.map { $0 < 3 ? 1 : 0 })
        let f = try Self.run(IntegerGraphOp(.toFloat(.float64)), [v], shape: [2, 3])
        let fv = try f.doubles()
        #expect(f.dtype == .float64 && fv == v.map(Double.init))
    }

    @Test("GatherElements from a constant table by integer indices (a negative one counts from the end); an index out of range is named")
    func gatherElements() throws {
        // Table [1, 4] (the same for every sample), indices [2, 1, 3] per sample along axis 1.
        let op = IntegerGraphOp(.gatherElements(table: [10, 11, 12, 13], tableShape: [1, 4], axis: 1))
        let y = try Self.run(op, [[0, 3, -1, 2, 2, 1]], shape: [1, 3])
        #expect(try y.int32s() == [10, 13, 13, 12, 12, 11])
        expectAttribError(["index 4 out of range for axis 1 of size 4", "element 1"]) { _ = try Self.run(op, [[0, 4, 1, 1, 1, 1]], shape: [1, 3]) }
        // Ids as floats must be whole numbers.
        let graph = try Graph(inputs: [("x", ValueType([1], .int32))], nodes: [GraphNode("op", IntegerGraphOp(.not), inputs: ["x"], output: "y")], outputs: ["y"])
        expectAttribError(["element 1 is 0.5, not an integer"]) {
            _ = try GraphExecutor(graph).forward(["x": Tensor([1, 0.5], shape: [2, 1], dtype: .float32, on: cpu)])
        }
    }

    @Test("no gradient flows through an integer op; shape rules name the op")
    func noGradient() throws {
        let op = IntegerGraphOp(.not)
        #expect(!op.isDifferentiable(input: 0))
        #expect(throws: (any Error).self) { _ = try IntegerGraphOp(.binary(.add)).outputType([ValueType([2], .int32), ValueType([3], .int32)]) }
        #expect(throws: (any Error).self) { _ = try IntegerGraphOp(.cumsum(axis: 2, exclusive: false, reverse: false)).outputType([ValueType([2, 3], .int32)]) }
        #expect(throws: (any Error).self) { _ = try IntegerGraphOp(.constant(.add, [1, 2], constantFirst: false)).outputType([ValueType([3], .int32)]) }
    }
}
