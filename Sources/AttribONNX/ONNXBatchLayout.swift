import AttribCore
import AttribModels

/// Where an ONNX value's batch dimension N sits, when the file has moved it.
///
/// Every Graph value keeps N first: [N] + its per-sample shape. PyTorch's
/// nn.MultiheadAttention does not: it computes on [L, N, E], folds the heads into the batch
/// ([L, N·H, d], then [N·H, L, d]) and unfolds it again, and torch.onnx.export writes those
/// transposes and reshapes as they are (torchvision's ViT, CLIP's encoders). The builder follows
/// such a value as a view of a batch-first one: the ONNX tensor is the per-sample axes with N
/// inserted before per-sample axis `at`, the `before` axes ending there and the `after` axes
/// starting there merged with N into one ONNX axis. A Transpose or Reshape of the view is then a
/// per-sample Transpose or Reshape of the batch-first value, so the graph never moves the batch
/// and every op keeps its batch-first kernels.
///
/// Example, the ViT's queries: [N, L, E] (first) → Transpose(1, 0, 2) → [L, N, E] (at 1) →
/// Reshape [L, N·H, d] (per sample [L, H, d], at 1, after 1) → Transpose(1, 0, 2) → [N·H, L, d]
/// (per sample [H, L, d], at 0, after 1) → Reshape [N, H, L, d] (first again).
struct BatchLayout: Equatable, CustomStringConvertible {
    var at: Int, before: Int, after: Int
    static let first = BatchLayout(at: 0, before: 0, after: 0)

    /// The ONNX axis that holds N.
    var batchAxis: Int { at - before }
    func rank(sampleRank r: Int) -> Int { r + 1 - before - after }

    /// Each ONNX axis as the per-sample axes it holds in order, N written as -1.
    func axes(sampleRank r: Int) -> [[Int]] {
        let (lo, hi) = (at - before, at + after)
        return (0..<lo).map { [$0] } + [Array(lo..<at) + [-1] + Array(at..<hi)] + (hi..<r).map { [$0] }
    }

    /// The ONNX dims of a value of per-sample shape `s`: entry i is batch[i]·N + values[i].
    func dims(_ s: [Int]) -> (values: [Int], batch: [Int]) {
        var values: [Int] = [], batch: [Int] = []
        for axis in axes(sampleRank: s.count) {
            if axis.contains(-1) {
                values.append(0); batch.append(axis.filter { $0 >= 0 }.reduce(1) { $0 * s[$1] })
            } else {
                values.append(s[axis[0]]); batch.append(0)
            }
        }
        return (values, batch)
    }

    /// Whether ONNX's last axis is one per-sample axis: the axis a product, Softmax or
    /// LayerNormalization reads.
    func lastAxisIsPlain(sampleRank r: Int) -> Bool { at + after < r }

    var description: String {
        self == .first ? "first" : "at ONNX axis \(batchAxis)" + (before + after > 0 ? ", merged with \(before + after) per-sample axes" : "")
    }
}

extension ONNXGraphBuilder {
    /// The ops that follow a moved batch dimension; any other op reading such a value is an error.
    static let layoutAware: Set<String> = [
        "Transpose", "Reshape", "Unsqueeze", "Squeeze", "Gather", "MatMul", "Gemm", "Add", "Sub", "Mul", "Div",
        "Relu", "Tanh", "Sigmoid", "Softplus", "HardSwish", "HardSigmoid", "Gelu", "Erf", "Pow", "Neg", "Where", "Clip", "IsNaN", "Identity", "Dropout", "Cast",
        "Softmax", "LogSoftmax", "LayerNormalization",
    ]

    func layout(_ v: String) -> BatchLayout { layouts[v] ?? .first }

    /// The ONNX dims of value `v` (entry = batch·N + value), as a Shape node reads them.
    func onnxDims(_ v: String) -> (values: [Int], batch: [Int])? {
        guard let t = types[v] else { return nil }
        return layout(v).dims(t.shape)
    }

    /// The value's ONNX rank.
    func onnxRank(_ v: String) throws -> Int {
        guard let t = types[v] else { throw AttribError.io(path: file, detail: "'\(v)' is read before any node produces it") }
        return layout(v).rank(sampleRank: t.shape.count)
    }

    /// An error for an op that cannot follow value `v`'s moved batch.
    func movedBatchError(_ n: Onnx_NodeProto, _ v: String, _ why: String) -> AttribError {
        .io(path: file, detail: "node '\(n.name)' (\(n.opType)) reads '\(v)', whose batch dimension the file has moved (\(layout(v))): \(why); the engine follows a moved batch through Transpose, Reshape, Unsqueeze, Squeeze, Gather of one index, MatMul and Gemm with constant weights, elementwise ops, and Softmax and LayerNormalization over the last axis")
    }

    /// ONNX's Transpose(perm) of `x` as the per-sample transpose it equals.
    mutating func transpose(_ n: Onnx_NodeProto, _ x: String, perm: [Int]) throws {
        guard let s = types[x]?.shape else { throw AttribError.io(path: file, detail: "node '\(n.name)' (Transpose) reads '\(x)', which no earlier node produces") }
        let l = layout(x), groups = l.axes(sampleRank: s.count)
        guard perm.count == groups.count, perm.sorted() == Array(0..<groups.count) else {
            throw AttribError.io(path: file, detail: "node '\(n.name)' (Transpose): perm \(perm) is not a permutation of the \(groups.count) axes of '\(x)'")
        }
        let order = perm.flatMap { groups[$0] }
        let at = order.firstIndex(of: -1)!
        let samplePerm = order.filter { $0 >= 0 }
        let op: any GraphOp = samplePerm == Array(0..<s.count) ? IdentityGraphOp() : TransposeGraphOp(samplePerm)
        try emit(n, op, inputs: [x])
        layouts[n.output[0]] = BatchLayout(at: at, before: l.before, after: l.after)
    }

    /// ONNX's reshape of `x` to `target` (entry = batch·N + value, 0 and -1 already resolved)
    /// as the per-sample reshape it equals: one entry holds N times a whole number c, and the
    /// elements above N in row-major order must be as many before and after, so that each
    /// sample keeps its elements in their order.
    mutating func reshape(_ n: Onnx_NodeProto, _ x: String, to target: [(value: Int, batch: Int)]) throws {
        guard let s = types[x]?.shape else { throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)) reads '\(x)', which no earlier node produces") }
        let shown = target.map { $0.batch == 0 ? String($0.value) : ($0.batch == 1 ? "N" : "\($0.batch)·N") }.joined(separator: ", ")
        func fail(_ why: String) -> AttribError {
            .io(path: file, detail: "node '\(n.name)' (\(n.opType)): '\(x)' of per-sample shape \(s), batch \(layout(x)), to [\(shown)]: \(why)")
        }
        let batched = target.indices.filter { target[$0].batch != 0 }
        guard batched.count == 1, let j = batched.first, target[j].value == 0, target[j].batch > 0 else {
            throw fail("exactly one entry must be a whole multiple of the batch size N")
        }
        guard target.indices.allSatisfy({ $0 == j || target[$0].value >= 1 }) else { throw fail("an entry is not a positive size") }
        let l = layout(x)
        let above = s[..<l.at].reduce(1, *), prefix = target[..<j].reduce(1) { $0 * $1.value }
        let c = target[j].batch
        // The per-sample axes merged with N in the result: a before it, b after it.
        guard above % prefix == 0, c % (above / prefix) == 0 else {
            throw fail("a sample's elements would not stay together in their order (\(above) elements precede N in each row-major index, the new shape puts \(prefix) × a whole part of \(c) there)")
        }
        let (a, b) = (above / prefix, c / (above / prefix))
        let per = target[..<j].map(\.value) + (a > 1 ? [a] : []) + (b > 1 ? [b] : []) + target[(j + 1)...].map(\.value)
        guard per.reduce(1, *) == s.reduce(1, *) else { throw fail("\(per.reduce(1, *)) elements per sample for \(s.reduce(1, *))") }
        let result = BatchLayout(at: j + (a > 1 ? 1 : 0), before: a > 1 ? 1 : 0, after: b > 1 ? 1 : 0)
        try emit(n, per == s ? IdentityGraphOp() : ReshapeGraphOp(per.isEmpty ? [1] : per), inputs: [x])
        layouts[n.output[0]] = result == .first ? nil : result
    }

    /// Reshape's shape operand resolved against `x`: 0 copies x's entry (allowzero = 0), -1 takes
    /// what is left.
    func resolvedShape(_ shape: ONNXConstant, of x: String, _ n: Onnx_NodeProto) throws -> [(value: Int, batch: Int)] {
        guard let (values, batch) = onnxDims(x), let s = types[x]?.shape else {
            throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)) reads '\(x)', which no earlier node produces")
        }
        var t = shape.values.indices.map { i -> (value: Int, batch: Int) in
            let (v, b) = (Int(shape.values[i]), Int(shape.batch?[i] ?? 0))
            return v == 0 && b == 0 && i < values.count ? (values[i], batch[i]) : (v, b)
        }
        if let free = t.firstIndex(where: { $0.value == -1 && $0.batch == 0 }) {
            let known = t.indices.filter { $0 != free }.reduce(1) { $0 * (t[$1].batch != 0 ? t[$1].batch : t[$1].value) }
            // N·Π(s) elements, N once in the batch entry: -1 is Π(s) over the rest, c for N·c.
            let total = s.reduce(1, *)
            guard known > 0, total % known == 0 else {
                throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)): shape \(shape.values) leaves no whole size for its -1")
            }
            // Where no entry was computed from N, the -1 holds it (the dynamo exporter's shapes).
            t[free] = t.contains(where: { $0.batch != 0 }) ? (total / known, 0) : (0, total / known)
        }
        return t
    }
}

extension ONNXGraphBuilder {
    /// A constant operand of value `v` with its dims on v's per-sample axes: unchanged where v
    /// holds the batch first (`broadcast` drops a leading 1); else aligned to v's ONNX axes, the
    /// batch's axis (of size 1 in the constant) replaced by the per-sample axes merged with N.
    func alongBatch(_ c: ONNXConstant, _ v: String, _ n: Onnx_NodeProto) throws -> ONNXConstant {
        let l = layout(v)
        guard l != .first else { return c }
        let rank = try onnxRank(v)
        var dims = c.dims
        while dims.count > rank, dims.first == 1 { dims.removeFirst() }
        dims = [Int](repeating: 1, count: max(0, rank - dims.count)) + dims
        guard dims.count == rank, dims[l.batchAxis] == 1, c.batch == nil else {
            throw movedBatchError(n, v, "a constant of dims \(c.dims) varies along the batch's axis")
        }
        dims.replaceSubrange(l.batchAxis...l.batchAxis, with: [Int](repeating: 1, count: l.before + l.after))
        return c.reshaped(dims)
    }
}
