import AttribCore

/// Integer arithmetic on token ids and on values made from them, with no gradient: RoBERTa's
/// (XLM-R's, MPNet's) position ids, cumsum(ids ≠ pad)·(ids ≠ pad) + pad, computed from the ids
/// of each batch. A few integers per token: read back, computed on the host in Int64, and
/// written once per batch as Int32 (bools as 0 and 1), or as floating values for `.toFloat`.
/// Token ids may arrive as whole-number floats (a .npy of ids), as the embedding takes them.
public struct IntegerGraphOp: GraphOp {
    public enum Binary: String, Sendable { case add, sub, mul, equal, less, greater }

    public enum Kind: Sendable {
        /// Two values of one per-sample shape.
        case binary(Binary)
        /// A value and a constant of its per-sample shape (the front-end broadcasts it);
        /// `constantFirst`: c op x.
        case constant(Binary, [Int64], constantFirst: Bool)
        /// 1 where the value is 0, else 0 (ONNX Not of a bool; a Cast to bool is `.constant(.equal, 0)` then this).
        case not
        /// Running sums along a per-sample axis (ONNX CumSum).
        case cumsum(axis: Int, exclusive: Bool, reverse: Bool)
        /// out[…, j, …] = table[…, idx[…, j, …], …] along a per-sample axis, the table the
        /// same for every sample (ONNX GatherElements from a constant; BERT-style token type
        /// ids read from a buffer by position).
        case gatherElements(table: [Int64], tableShape: [Int], axis: Int)
        /// The values as floating point numbers of `dtype`.
        case toFloat(DType)
    }

    public let operation: Kind
    public init(_ operation: Kind) { self.operation = operation }

    public var kind: String { "Integer" }
    var operationName: String {
        switch operation {
        case .binary(let b), .constant(let b, _, _): return b.rawValue
        case .not: return "not"
        case .cumsum: return "cumsum"
        case .gatherElements: return "gatherElements"
        case .toFloat: return "toFloat"
        }
    }
    public var description: String { "Integer(\(operationName))" }
    public var arity: Int { if case .binary = operation { return 2 } else { return 1 } }
    public func isDifferentiable(input i: Int) -> Bool { false }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        if case .binary = operation, inputs[1].shape != x.shape {
            throw AttribError.shapeMismatch(op: description, detail: "operands per sample are \(x.shape) and \(inputs[1].shape); one shape is needed")
        }
        switch operation {
        case .constant(_, let c, _):
            guard c.count == x.count else {
                throw AttribError.shapeMismatch(op: description, detail: "a constant of \(c.count) values for a value of per-sample shape \(x.shape)")
            }
        case .cumsum(let axis, _, _):
            guard axis >= 0, axis < x.shape.count else { throw AttribError.shapeMismatch(op: description, detail: "axis \(axis) of per-sample shape \(x.shape)") }
        case .gatherElements(let table, let ts, let axis):
            guard ts.count == x.shape.count, axis >= 0, axis < ts.count, table.count == ts.reduce(1, *),
                  ts.indices.allSatisfy({ $0 == axis || ts[$0] == x.shape[$0] }) else {
                throw AttribError.shapeMismatch(op: description, detail: "a table of shape \(ts) indexed along axis \(axis) by a value of per-sample shape \(x.shape)")
            }
        case .toFloat(let d):
            return ValueType(x.shape, d)
        default: break
        }
        return ValueType(x.shape, .int32)
    }

    /// A tensor's values as Int64, from Int32 or whole-number floats.
    static func integers(_ t: Tensor, _ op: String) throws -> [Int64] {
        if t.dtype == .int32 { return try t.int32s().map(Int64.init) }
        return try t.doubles().enumerated().map { i, v in
            guard v == v.rounded(), abs(v) < 2e9 else { throw AttribError.invalidArgument(op: op, detail: "element \(i) is \(v), not an integer") }
            return Int64(v)
        }
    }

    static func apply(_ b: Binary, _ p: Int64, _ q: Int64) -> Int64 {
        switch b {
        case .add: return p &+ q
        case .sub: return p &- q
        case .mul: return p &* q
        case .equal: return p == q ? 1 : 0
        case .less: return p < q ? 1 : 0
        case .greater: return p > q ? 1 : 0
        }
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0], n = x.batchSize, per = x.count / max(1, n), sample = Array(x.shape.dropFirst())
        let a = try Self.integers(x, description)
        var out = [Int64](repeating: 0, count: a.count)
        switch operation {
        case .binary(let b):
            let c = try Self.integers(inputs[1], description)
            for i in out.indices { out[i] = Self.apply(b, a[i], c[i]) }
        case .constant(let b, let c, let first):
            for i in out.indices { out[i] = first ? Self.apply(b, c[i % per], a[i]) : Self.apply(b, a[i], c[i % per]) }
        case .not:
            for i in out.indices { out[i] = a[i] == 0 ? 1 : 0 }
        case .cumsum(let axis, let exclusive, let reverse):
            let dim = sample[axis], inner = sample[(axis + 1)...].reduce(1, *), outer = a.count / max(1, dim * inner)
            for o in 0..<outer {
                for k in 0..<inner {
                    var total: Int64 = 0
                    for step in 0..<dim {
                        let j = reverse ? dim - 1 - step : step, at = (o * dim + j) * inner + k
                        if exclusive { out[at] = total; total &+= a[at] } else { total &+= a[at]; out[at] = total }
                    }
                }
            }
        case .gatherElements(let table, let ts, let axis):
            let (dim, inner) = (sample[axis], sample[(axis + 1)...].reduce(1, *))
            let (tableDim, tableInner) = (ts[axis], ts[(axis + 1)...].reduce(1, *))
            precondition(tableInner == inner)
            for i in out.indices {
                let within = i % per, o = within / (dim * inner), k = within % inner
                var j = Int(a[i])
                if j < 0 { j += tableDim }
                guard j >= 0, j < tableDim else {
                    throw AttribError.invalidArgument(op: description, detail: "index \(a[i]) out of range for axis \(axis) of size \(tableDim) (element \(i))")
                }
                out[i] = table[(o * tableDim + j) * tableInner + k]
            }
        case .toFloat(let d):
            return (try Tensor(a.map(Double.init), shape: x.shape, dtype: d, on: x.device), OpSaved())
        }
        if let bad = out.firstIndex(where: { $0 < Int64(Int32.min) || $0 > Int64(Int32.max) }) {
            throw AttribError.invalidArgument(op: description, detail: "element \(bad) is \(out[bad]), outside Int32")
        }
        return (try Tensor(indices: out.map { Int32($0) }, shape: x.shape, on: x.device), OpSaved())
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] { needed.map { _ in nil } }
}
