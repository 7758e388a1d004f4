import AttribCore
import AttribModels

/// Ops on integer values, token ids and what a model computes from them at run time (RoBERTa,
/// XLM-R and MPNet number positions from the ids: cumsum(ids ≠ pad)·(ids ≠ pad) + pad, then
/// read token type ids from a buffer by those positions). They have no gradient; each becomes
/// an IntegerGraphOp, computed on the host per batch.
extension ONNXGraphBuilder {
    static let integerOps: Set<String> = ["Equal", "Less", "Greater", "Not", "Cast", "CumSum", "Add", "Sub", "Mul", "GatherElements"]

    mutating func integer(_ n: Onnx_NodeProto, _ a: inout ONNXAttributes) throws {
        let x = n.input[0]
        func shape(_ v: String) throws -> [Int] {
            guard let t = types[v] else { throw a.error("reads '\(v)', which no earlier node produces") }
            return t.shape
        }
        switch n.opType {
        case "Equal", "Less", "Greater", "Add", "Sub", "Mul":
            let b: IntegerGraphOp.Binary = ["Equal": .equal, "Less": .less, "Greater": .greater, "Add": .add, "Sub": .sub, "Mul": .mul][n.opType]!
            let (l, r) = (n.input[0], n.input[1])
            switch (constants[l], constants[r]) {
            case (nil, nil):
                guard try shape(l) == shape(r) else { throw a.error("integer operands of per-sample shapes \(try shape(l)) and \(try shape(r)); one shape is needed") }
                guard types[l]?.dtype == .int32, types[r]?.dtype == .int32 else { throw a.error("an integer value with a floating one") }
                try emit(n, IntegerGraphOp(.binary(b)), inputs: [l, r])
            case (let c?, nil), (nil, let c?):
                let v = constants[l] == nil ? l : r
                let values = try broadcast(try alongBatch(c, v, n), to: try shape(v), n)
                guard values.allSatisfy({ $0 == $0.rounded() && abs($0) < 9e15 }) else { throw a.error("a non-integer constant with an integer value") }
                try emit(n, IntegerGraphOp(.constant(b, values.map { Int64($0) }, constantFirst: constants[l] != nil)), inputs: [v])
            case (.some, .some):
                throw a.error("both operands are constants")
            }
        case "Not":
            try emit(n, IntegerGraphOp(.not), inputs: [x])
        case "Cast":
            let to = try a.int("to")
            _ = try a.int("saturate", default: 1)
            switch to {
            case 2, 3, 4, 5, 6, 7, 12, 13:                   // to an integer type: the values stay (Int32 holds token-sized ones)
                try emit(n, IdentityGraphOp(), inputs: [x])
            case 9:                                          // to bool: nonzero is 1
                let zero = n.output[0] + "/zero"
                try emit(n, IntegerGraphOp(.constant(.equal, [Int64](repeating: 0, count: try shape(x).reduce(1, *)), constantFirst: false)), inputs: [x], output: zero)
                try emit(n, IntegerGraphOp(.not), inputs: [zero])
            case 1, 10, 11, 16:                              // to a floating type: the model's
                try emit(n, IntegerGraphOp(.toFloat(dtype)), inputs: [x])
            default:
                throw a.error("an integer value cast to element type \(to)")
            }
        case "CumSum":
            let s = try shape(x)
            let axis = Int(try constant(n.input[1], n).values.first ?? .nan)
            let ax = axis < 0 ? axis + s.count + 1 : axis
            guard ax >= 1, ax <= s.count else { throw a.error("axis \(axis): a per-sample axis of a value of per-sample shape \(s) is needed") }
            try emit(n, IntegerGraphOp(.cumsum(axis: ax - 1, exclusive: try a.int("exclusive", default: 0) == 1,
                                               reverse: try a.int("reverse", default: 0) == 1)), inputs: [x])
        case "GatherElements":
            guard let table = constants[x], constants[n.input[1]] == nil else {
                throw a.error("only a constant table indexed by an integer value is supported")
            }
            let s = try shape(n.input[1])
            var dims = table.dims
            if dims.count == s.count + 1, dims.first == 1 { dims.removeFirst() }       // the same table for every sample
            let axis = try a.int("axis", default: 0), ax = axis < 0 ? axis + s.count + 1 : axis
            guard table.batch == nil, dims.count == s.count, ax >= 1, ax <= s.count else {
                throw a.error("a table of dims \(table.dims) indexed along axis \(axis) by a value of per-sample shape \(s)")
            }
            let values = table.values
            guard values.allSatisfy({ $0 == $0.rounded() && abs($0) < 9e15 }) else { throw a.error("a non-integer table") }
            try emit(n, IntegerGraphOp(.gatherElements(table: values.map { Int64($0) }, tableShape: dims, axis: ax - 1)), inputs: [n.input[1]])
        default:
            throw unsupported(n)
        }
    }
}
