import AttribCore

// Ops that move values without arithmetic: transpose (any permutation of the per-sample
// dimensions), slice and concatenation along one per-sample axis. Each backward is the
// adjoint move: the inverse permutation, the slice written into zeros, the slices.

/// Elements before and after per-sample axis `axis` of a [N] + shape tensor, and its size:
/// the tensor seen as [outer, dim, inner].
func axisSplit(_ batch: Int, _ shape: [Int], _ axis: Int) -> (outer: Int, dim: Int, inner: Int) {
    (batch * shape[..<axis].reduce(1, *), shape[axis], shape[(axis + 1)...].reduce(1, *))
}

/// A per-sample axis that may be negative (counted from the end), checked.
func resolveAxis(_ axis: Int, rank: Int, _ op: String) throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0, a < rank else {
        throw AttribError.invalidArgument(op: op, detail: "axis \(axis) of a per-sample shape of rank \(rank)")
    }
    return a
}

/// Permutes the per-sample dimensions: output dimension i is input dimension perm[i]
/// (the batch dimension stays first). Run as block swaps, each one device transpose of
/// [prefix, B, C, suffix] → [prefix, C, B, suffix]: one pass for the usual cases
/// ([T, H, dh] → [H, T, dh], [C, H, W] → [H, W, C]), at most rank − 1 in all.
public struct TransposeGraphOp: GraphOp {
    public let perm: [Int]
    public init(_ perm: [Int]) { self.perm = perm }
    public var kind: String { "Transpose" }
    public var description: String { "Transpose(\(perm))" }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        guard perm.count == x.shape.count, perm.sorted() == Array(0..<perm.count) else {
            throw AttribError.invalidArgument(op: description, detail: "not a permutation of the \(x.shape.count) dimensions of \(x.shape)")
        }
        return ValueType(perm.map { x.shape[$0] }, x.dtype)
    }

    /// Moves `x` ([N] + shape) so that its dimensions follow `perm`.
    static func permute(_ x: Tensor, _ perm: [Int]) throws -> Tensor {
        var cur = Array(0..<perm.count)          // which input dimension sits at each place
        var shape = x.sampleShape, y = x
        for p in 0..<perm.count where cur[p] != perm[p] {
            let j = cur.firstIndex(of: perm[p])!
            // The longest run starting at j that is also next in the target order.
            var len = 1
            while j + len < cur.count, p + len < perm.count, cur[j + len] == perm[p + len] { len += 1 }
            let a = y.batchSize * shape[..<p].reduce(1, *), b = shape[p..<j].reduce(1, *)
            let c = shape[j..<(j + len)].reduce(1, *), d = shape[(j + len)...].reduce(1, *)
            let moved = try y.reshaped([a, b, c, d]).transposed12()
            cur = Array(cur[..<p]) + Array(cur[j..<(j + len)]) + Array(cur[p..<j]) + Array(cur[(j + len)...])
            shape = Array(shape[..<p]) + Array(shape[j..<(j + len)]) + Array(shape[p..<j]) + Array(shape[(j + len)...])
            y = try moved.reshaped([x.batchSize] + shape)
        }
        return y
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        _ = try outputType([ValueType(inputs[0].sampleShape, inputs[0].dtype)])
        return (try Self.permute(inputs[0], perm), OpSaved())
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        var inverse = perm
        for (i, p) in perm.enumerated() { inverse[p] = i }
        return [try Self.permute(dy, inverse)]
    }
}

/// Elements [start, end) of one per-sample axis (ONNX Slice with one axis and step 1;
/// the q, k, v thirds of a fused attention projection).
public struct SliceGraphOp: GraphOp {
    /// Every `step`-th index of start..<end (step ≥ 1; Swin's patch merging takes x[0::2]).
    public let axis: Int, start: Int, end: Int, step: Int
    public init(axis: Int, start: Int, end: Int, step: Int = 1) { self.axis = axis; self.start = start; self.end = end; self.step = step }
    public var kind: String { "Slice" }
    public var description: String { "Slice(axis \(axis), \(start)..<\(end)\(step == 1 ? "" : " by \(step)"))" }
    public var arity: Int { 1 }
    /// Indices taken along the axis.
    var taken: Int { (end - start + step - 1) / step }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        let a = try resolveAxis(axis, rank: x.shape.count, description)
        guard start >= 0, end <= x.shape[a], start < end, step >= 1 else {
            throw AttribError.invalidArgument(op: description, detail: "range \(start)..<\(end)\(step == 1 ? "" : " by \(step)") does not fit axis \(a) of size \(x.shape[a]) (shape \(x.shape))")
        }
        var s = x.shape
        s[a] = taken
        return ValueType(s, x.dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]
        let t = try outputType([ValueType(x.sampleShape, x.dtype)])
        let a = try resolveAxis(axis, rank: t.shape.count, description)
        let (outer, dim, inner) = axisSplit(x.batchSize, x.sampleShape, a)
        let y = try Tensor(shape: [x.batchSize] + t.shape, dtype: x.dtype, on: x.device)
        if step == 1 {
            let w = (end - start) * inner                                       // one run per outer index
            try y.copyBox((outer, 1, w), from: x, sourceOffset: start * inner, sourceStrides: (dim * inner, 0), offset: 0, strides: (w, 0))
        } else {
            try y.copyBox((outer, taken, inner), from: x, sourceOffset: start * inner, sourceStrides: (dim * inner, step * inner),
                          offset: 0, strides: (taken * inner, inner))
        }
        return (y, OpSaved(shapes: [x.shape]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        let shape = saved.shapes[0]
        let a = try resolveAxis(axis, rank: shape.count - 1, description)
        let (outer, dim, inner) = axisSplit(shape[0], Array(shape.dropFirst()), a)
        let dx = try Tensor.zeros(shape, dtype: dy.dtype, on: dy.device)
        if step == 1 {
            let w = (end - start) * inner
            try dx.copyBox((outer, 1, w), from: dy, sourceOffset: 0, sourceStrides: (w, 0), offset: start * inner, strides: (dim * inner, 0))
        } else {
            try dx.copyBox((outer, taken, inner), from: dy, sourceOffset: 0, sourceStrides: (taken * inner, inner),
                           offset: start * inner, strides: (dim * inner, step * inner))
        }
        return [dx]
    }
}

/// The inputs joined along one per-sample axis, in order (ONNX Concat, torch.cat).
public struct ConcatGraphOp: GraphOp {
    public let axis: Int, arity: Int
    public init(axis: Int, count: Int) { self.axis = axis; self.arity = count }
    public var kind: String { "Concat" }
    public var description: String { "Concat(axis \(axis), \(arity) inputs)" }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let first = inputs[0]
        let a = try resolveAxis(axis, rank: first.shape.count, description)
        var total = 0
        for (i, x) in inputs.enumerated() {
            var s = x.shape, f = first.shape
            guard s.count == f.count, x.dtype == first.dtype else {
                throw AttribError.shapeMismatch(op: description, detail: "input \(i) is \(x); input 0 is \(first)")
            }
            s[a] = 0; f[a] = 0
            guard s == f else { throw AttribError.shapeMismatch(op: description, detail: "input \(i) is \(x.shape); input 0 is \(first.shape): only axis \(a) may differ") }
            total += x.shape[a]
        }
        var s = first.shape
        s[a] = total
        return ValueType(s, first.dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let t = try outputType(inputs.map { ValueType($0.sampleShape, $0.dtype) })
        let a = try resolveAxis(axis, rank: t.shape.count, description)
        let n = inputs[0].batchSize
        let y = try Tensor(shape: [n] + t.shape, dtype: t.dtype, on: inputs[0].device)
        let (outer, dim, inner) = axisSplit(n, t.shape, a)
        var at = 0
        for x in inputs {
            let w = x.shape[a + 1] * inner
            try y.copyBox((outer, 1, w), from: x, sourceOffset: 0, sourceStrides: (w, 0), offset: at * inner, strides: (dim * inner, 0))
            at += x.shape[a + 1]
        }
        return (y, OpSaved(shapes: inputs.map(\.shape)))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        let a = try resolveAxis(axis, rank: dy.rank - 1, description)
        var at = 0
        return try saved.shapes.enumerated().map { i, shape in
            defer { at += shape[a + 1] }
            guard needed[i] else { return nil }
            return try SliceGraphOp(axis: a, start: at, end: at + shape[a + 1]).forward([dy]).y
        }
    }
}
