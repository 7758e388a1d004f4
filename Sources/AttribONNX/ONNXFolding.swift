#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AttribCore
import AttribModels

/// Folding at load: the shape arithmetic exporters emit around a dynamic batch dimension
/// (Shape → Gather → Unsqueeze → Concat → Reshape; ConstantOfShape, Equal, Where, Expand), and
/// any op whose inputs are all constants (BERT's position ids and attention mask), become
/// constants, so the graph keeps only the ops that touch the data.
///
/// The batch size N is unknown at load: an entry may be `batch·N + value` (ONNXConstant.batch
/// holds the coefficients). A constant whose first dimension is 1 is the same for every sample
/// (a "batched" constant: ConstantOfShape([N, T]) is [1, T]), which is how `broadcast` reads it.
extension ONNXGraphBuilder {
    /// The ops folded when every input is a constant (or Shape reads a value).
    static let foldable: Set<String> = ["Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Add", "Sub", "Mul", "Div", "Mod",
                                        "Equal", "Where", "ConstantOfShape", "Expand", "Slice", "Sqrt", "Reshape", "Range", "Neg",
                                        "Identity", "Less", "Greater", "Not", "Pow", "GatherElements", "Transpose", "ScatterND",
                                        "Abs", "Log", "Exp", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Reciprocal", "Min", "Max", "And", "Or", "Trilu", "LessOrEqual", "GreaterOrEqual", "Clip", "IsNaN"]

    /// Folds `n` when it can: true when its output is now a constant.
    mutating func fold(_ n: Onnx_NodeProto) throws -> Bool {
        guard Self.foldable.contains(n.opType), n.output.count == 1 else { return false }
        var a = ONNXAttributes(n, file: file)
        let ins = n.input.map { $0.isEmpty ? nil : constants[$0] }
        if n.opType == "Shape" {
            let full: [Int], coef: [Double]
            if let d = onnxDims(n.input[0]) {
                // [N] + the per-sample shape, or where the file moved the batch its ONNX dims
                // (ONNXBatchLayout.swift); start..<end (opset 15).
                full = d.values; coef = d.batch.map(Double.init)
            } else if let c = constants[n.input[0]] {
                full = c.batchedFirst ? [0] + c.dims.dropFirst() : c.dims
                coef = (c.batchedFirst ? [1.0] : []) + [Double](repeating: 0, count: c.dims.count - (c.batchedFirst ? 1 : 0))
            } else { return false }
            let r = full.count
            func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
            let (s, e) = (clamp(try a.int("start", default: 0)), clamp(try a.int("end", default: r)))
            var shape = ONNXConstant(dims: [max(0, e - s)], values: full[s..<max(s, e)].map(Double.init), batch: Array(coef[s..<max(s, e)]))
            shape.isInteger = true
            constants[n.output[0]] = shape
            try a.checkAllRead()
            return true
        }
        // Expand of a value to its own shape is the identity (handled as a data op); ConstantOfShape
        // reads only its shape operand; everything else needs every input constant.
        // (Clip's min and max are optional: an empty name is no bound.)
        let given = n.opType == "Clip" ? n.input.indices.allSatisfy { n.input[$0].isEmpty || ins[$0] != nil } : ins.allSatisfy { $0 != nil }
        guard given || n.opType == "ConstantOfShape" && ins.first != nil else { return false }
        let c = ins.compactMap { $0 }
        var out: ONNXConstant
        switch n.opType {
        case "Identity": out = c[0]
        case "Cast":
            let to = try a.int("to")
            _ = try a.int("saturate", default: 1)
            // To an integer type (2-7, 12, 13): truncation toward zero; to bool (9): nonzero.
            let integer: Set<Int> = [2, 3, 4, 5, 6, 7, 12, 13]
            let f: (Double) -> Double = integer.contains(to) ? { $0.rounded(.towardZero) } : to == 9 ? { $0 != 0 ? 1 : 0 } : { $0 }
            if c[0].batch != nil && !integer.contains(to) && to != 1 && to != 11 { throw a.error("a batch-dependent value cast to type \(to)") }
            out = ONNXConstant(dims: c[0].dims, values: c[0].values.map(f), batch: c[0].batch)
        case "Neg": out = try c[0].map(n) { -$0 }
        // Elementwise maps of constants: MPNet's relative-position buckets (Abs, Log, Min),
        // rotary tables from positions (Sin, Cos), computed at load in Double.
        case "Abs": out = try c[0].map(n) { abs($0) }
        case "IsNaN": out = try c[0].map(n) { $0.isNaN ? 1 : 0 }
        case "Log": out = try c[0].map(n) { Glibc.log($0) }
        case "Exp": out = try c[0].map(n) { Glibc.exp($0) }
        case "Floor": out = try c[0].map(n) { $0.rounded(.down) }
        case "Ceil": out = try c[0].map(n) { $0.rounded(.up) }
        case "Round": out = try c[0].map(n) { $0.rounded(.toNearestOrEven) }
        case "Sign": out = try c[0].map(n) { $0 > 0 ? 1 : $0 < 0 ? -1 : 0 }
        case "Sin": out = try c[0].map(n) { Glibc.sin($0) }
        case "Cos": out = try c[0].map(n) { Glibc.cos($0) }
        case "Reciprocal": out = try c[0].map(n) { 1 / $0 }
        case "Min", "Max":
            guard !c.isEmpty else { throw a.error("no inputs") }
            out = c[0]
            for other in c.dropFirst() { out = try binary(n.opType, out, other, n) }
        case "And", "Or":
            out = try binary(n.opType, c[0], c[1], n)
        case "Clip":
            // Bounds from the optional inputs 1 and 2 (an empty name: none).
            out = c[0]
            if n.input.count > 1, !n.input[1].isEmpty, let lo = constants[n.input[1]] { out = try binary("Max", out, lo, n) }
            if n.input.count > 2, !n.input[2].isEmpty, let hi = constants[n.input[2]] { out = try binary("Min", out, hi, n) }
        case "Sqrt": out = try c[0].map(n) { $0.squareRoot() }
        case "Not": out = try c[0].map(n) { $0 == 0 ? 1 : 0 }
        case "Add", "Sub", "Mul", "Div", "Mod", "Pow", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual":
            if n.opType == "Mod" { _ = try a.int("fmod", default: 0) }
            out = try binary(n.opType, c[0], c[1], n)
        case "Where":
            guard c[0].batch == nil else { throw a.error("a condition that depends on the batch size") }
            let dims = try broadcastDims([c[0].dims, c[1].dims, c[2].dims], n)
            let (k, x, y) = (c[0].expanded(to: dims), c[1].expanded(to: dims), c[2].expanded(to: dims))
            let (kv, xv, yv) = (k.values, x.values, y.values)     // each read once (see ONNXConstant.values)
            var v = [Double](repeating: 0, count: kv.count), b: [Double]? = (x.batch != nil || y.batch != nil) ? v : nil
            for i in v.indices {
                v[i] = kv[i] != 0 ? xv[i] : yv[i]
                b?[i] = (kv[i] != 0 ? x : y).batch?[i] ?? 0
            }
            out = ONNXConstant(dims: dims, values: v, batch: b)
        case "Unsqueeze", "Squeeze":
            let axes = c.count > 1 ? c[1].values.map { Int($0) } : try a.ints("axes", default: [])
            var dims = c[0].dims
            if n.opType == "Unsqueeze" {
                let r = dims.count + axes.count
                for ax in axes.map({ $0 < 0 ? $0 + r : $0 }).sorted() { dims.insert(1, at: min(ax, dims.count)) }
            } else {
                let r = dims.count
                let drop = axes.isEmpty ? Set(dims.indices.filter { dims[$0] == 1 }) : Set(axes.map { $0 < 0 ? $0 + r : $0 })
                dims = dims.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
            }
            out = c[0].reshaped(dims)
        case "Concat":
            let axis = try a.int("axis")
            guard c.allSatisfy({ $0.dims.count == c[0].dims.count }), !c[0].dims.isEmpty else { throw a.error("constants of different ranks") }
            let r = c[0].dims.count, ax = axis < 0 ? axis + r : axis
            let outer = c[0].dims[..<ax].reduce(1, *), inner = c[0].dims[(ax + 1)...].reduce(1, *)
            var v: [Double] = [], b: [Double]? = c.contains { $0.batch != nil } ? [] : nil
            let parts = c.map(\.values)
            for o in 0..<outer {
                for (t, tv) in zip(c, parts) {
                    let w = t.dims[ax] * inner
                    v += tv[(o * w)..<((o + 1) * w)]
                    b? += t.batch.map { Array($0[(o * w)..<((o + 1) * w)]) } ?? [Double](repeating: 0, count: w)
                }
            }
            var dims = c[0].dims
            dims[ax] = c.reduce(0) { $0 + $1.dims[ax] }
            out = ONNXConstant(dims: dims, values: v, batch: b)
        case "Gather":
            let axis = try a.int("axis", default: 0)
            let r = c[0].dims.count, ax = axis < 0 ? axis + r : axis
            guard r >= 1, ax >= 0, ax < r else { throw a.error("axis \(axis) of a constant of dims \(c[0].dims)") }
            let outer = c[0].dims[..<ax].reduce(1, *), dim = c[0].dims[ax], inner = c[0].dims[(ax + 1)...].reduce(1, *)
            var v: [Double] = [], b: [Double]? = c[0].batch == nil ? nil : []
            let (table, indices) = (c[0].values, c[1].values.map { Int($0) })
            for o in 0..<outer {
                for i in indices {
                    let j = i < 0 ? i + dim : i
                    guard j >= 0, j < dim else { throw a.error("index \(i) out of range for dimension \(dim)") }
                    let at = (o * dim + j) * inner
                    v += table[at..<(at + inner)]
                    b? += c[0].batch![at..<(at + inner)]
                }
            }
            out = ONNXConstant(dims: Array(c[0].dims[..<ax]) + c[1].dims + Array(c[0].dims[(ax + 1)...]), values: v, batch: b)
        case "GatherElements":
            // out[i…, j, k…] = data[i…, idx[i…, j, k…], k…] along `axis` (BERT's token type ids
            // read from a buffer by position).
            let (d, idx) = (c[0], c[1])
            let r = d.dims.count, axis = try a.int("axis", default: 0), ax = axis < 0 ? axis + r : axis
            guard d.batch == nil, idx.dims.count == r, ax >= 0, ax < r else { throw a.error("data of dims \(d.dims), indices of dims \(idx.dims), axis \(axis)") }
            var v = [Double](repeating: 0, count: idx.count)
            let (dv, iv) = (d.values, idx.values)
            var index = [Int](repeating: 0, count: r)
            for k in 0..<idx.count {
                var src = 0
                for i in 0..<r {
                    var j = i == ax ? Int(iv[k]) : index[i]
                    if i == ax && j < 0 { j += d.dims[i] }
                    guard j >= 0, j < d.dims[i] else { throw a.error("index \(j) out of range for dimension \(d.dims[i])") }
                    src = src * d.dims[i] + j
                }
                v[k] = dv[src]
                var i = r - 1
                while i >= 0 { index[i] += 1; if index[i] < idx.dims[i] { break }; index[i] = 0; i -= 1 }
            }
            out = ONNXConstant(dims: idx.dims, values: v, batch: nil)
            out.batchedFirst = idx.batchedFirst || d.batchedFirst
        case "ConstantOfShape":
            let fill = try a.tensor("value").map { try ONNXConstant($0, file: file).values.first ?? 0 } ?? 0
            let shape = c[0]
            guard shape.dims.count == 1 else { throw a.error("shape of dims \(shape.dims)") }
            out = try ONNXConstant(dims: batchedDims(shape, n), values: [], batch: nil).filled(fill)
            out.batchedFirst = shape.batch?.first.map { $0 != 0 } ?? false
        case "Expand":
            let dims = try broadcastDims([c[0].dims, try batchedDims(c[1], n)], n)
            out = c[0].expanded(to: dims)
            out.batchedFirst = c[0].batchedFirst || (c[1].batch?.first.map { $0 != 0 } ?? false)
        case "Reshape":
            _ = try a.int("allowzero", default: 0)
            var target = try batchedDims(c[1], n)
            for i in target.indices where c[1].values[i] == 0 && c[1].batch?[i] ?? 0 == 0 { target[i] = c[0].dims[i] }
            if let m = target.firstIndex(of: -1) { target[m] = c[0].count / max(1, target.enumerated().filter { $0.offset != m }.map(\.element).reduce(1, *)) }
            guard target.reduce(1, *) == c[0].count else { throw a.error("shape \(target) for a constant of dims \(c[0].dims)") }
            out = c[0].reshaped(target)     // row-major order kept
        case "Slice":
            let t = c[0]
            guard t.batch == nil || t.dims.count == 1 else { throw a.error("a batch-dependent constant sliced") }
            let starts = c[1].values.map { Int(clamping: Int64(max(min($0, 9e18), -9e18))) }, ends = c[2].values.map { Int(clamping: Int64(max(min($0, 9e18), -9e18))) }
            let axes = c.count > 3 ? c[3].values.map { Int($0) } : Array(0..<starts.count)
            let steps = c.count > 4 ? c[4].values.map { Int($0) } : [Int](repeating: 1, count: starts.count)
            var cur = t
            for (k, axis) in axes.enumerated() {
                let r = cur.dims.count, ax = axis < 0 ? axis + r : axis
                let dim = cur.dims[ax]
                let step = steps[k]
                guard step != 0 else { throw a.error("step 0") }
                // ONNX's clamping: a negative entry counts from the end; going forwards starts and
                // ends clamp to [0, dim], going backwards (x[::-1]) starts to [0, dim - 1] and ends
                // to [-1, dim - 1], -1 meaning past index 0.
                func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { min(max(v < 0 ? v + dim : v, lo), hi) }
                let idx = step > 0 ? Array(stride(from: clamp(starts[k], 0, dim), to: clamp(ends[k], 0, dim), by: step))
                                   : Array(stride(from: clamp(starts[k], 0, dim - 1), to: clamp(ends[k], -1, dim - 1), by: step))
                cur = try gather(cur, axis: ax, idx)
            }
            out = cur
        case "Trilu":
            // The upper (or lower) triangle of each matrix of the last two axes, from diagonal k:
            // a causal mask built at load (GPT-2's, GPT-NeoX's).
            let t = c[0], r = t.dims.count
            guard r >= 2, t.batch == nil else { throw a.error("a constant of dims \(t.dims)") }
            let k = c.count > 1 ? Int(c[1].values.first ?? 0) : 0
            let upper = try a.int("upper", default: 1) == 1
            let (rows, cols) = (t.dims[r - 2], t.dims[r - 1])
            var v = t.values
            for i in v.indices {
                let (row, col) = ((i / cols) % rows, i % cols)
                if upper ? col - row < k : col - row > k { v[i] = 0 }
            }
            out = ONNXConstant(dims: t.dims, values: v)
            out.batchedFirst = t.batchedFirst
        case "Transpose":
            // Of a constant (Swin's relative-position tables): entries moved on the host.
            let t = c[0], r = t.dims.count
            let perm = try a.ints("perm", default: Array((0..<r).reversed()))
            guard t.batch == nil, !t.batchedFirst, perm.sorted() == Array(0..<r) else { throw a.error("perm \(perm) of a constant of dims \(t.dims)") }
            let dims = perm.map { t.dims[$0] }
            var strides = [Int](repeating: 1, count: r)
            for i in stride(from: r - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * t.dims[i + 1] }
            let tv = t.values
            var v = [Double](repeating: 0, count: tv.count), index = [Int](repeating: 0, count: r)
            for k in v.indices {
                var src = 0
                for (i, p) in perm.enumerated() { src += index[i] * strides[p] }
                v[k] = tv[src]
                var i = r - 1
                while i >= 0 { index[i] += 1; if index[i] < dims[i] { break }; index[i] = 0; i -= 1 }
            }
            out = ONNXConstant(dims: dims, values: v)
        case "ScatterND":
            // data with updates written at index tuples (Swin's shifted-window mask, built at
            // load): indices [..., k] address data's first k axes; later writes win, as ONNX's
            // reduction "none" (whose duplicates are undefined) computes in order.
            let (d, idx, upd) = (c[0], c[1], c[2])
            guard try a.string("reduction", default: "none") == "none" else { throw a.error("a reduction other than none") }
            guard d.batch == nil, idx.batch == nil, upd.batch == nil, let k = idx.dims.last, k >= 1, k <= d.dims.count else {
                throw a.error("data of dims \(d.dims), indices of dims \(idx.dims)")
            }
            let inner = d.dims[k...].reduce(1, *), tuples = idx.count / k
            guard upd.count == tuples * inner else { throw a.error("updates of dims \(upd.dims) for \(tuples) index tuples of \(inner) elements") }
            var v = d.values
            let (iv, uv) = (idx.values, upd.values)
            for t in 0..<tuples {
                var at = 0
                for j in 0..<k {
                    var i = Int(iv[t * k + j])
                    if i < 0 { i += d.dims[j] }
                    guard i >= 0, i < d.dims[j] else { throw a.error("index \(Int(iv[t * k + j])) out of range for dimension \(d.dims[j])") }
                    at = at * d.dims[j] + i
                }
                for e in 0..<inner { v[at * inner + e] = uv[t * inner + e] }
            }
            out = ONNXConstant(dims: d.dims, values: v)
        case "Range":
            guard c.allSatisfy({ $0.batch == nil }) else { throw a.error("a batch-dependent range") }
            let (s, e, d) = (c[0].values[0], c[1].values[0], c[2].values[0])
            guard d != 0 else { throw a.error("delta 0") }
            let count = max(0, Int(((e - s) / d).rounded(.up)))
            out = ONNXConstant(dims: [count], values: (0..<count).map { s + Double($0) * d }, batch: nil)
        default:
            return false
        }
        try a.checkAllRead()
        // Elementwise results of a batched constant stay batched (same rank, first dim 1).
        if ["Add", "Sub", "Mul", "Div", "Where", "Cast", "Identity", "Equal", "Not", "Neg", "Sqrt", "Pow", "Less", "Greater", "Abs", "Log", "Exp",
            "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Reciprocal", "Min", "Max", "And", "Or", "LessOrEqual", "GreaterOrEqual"].contains(n.opType),
           c.contains(where: { $0.batchedFirst && $0.dims.count == out.dims.count }) {
            out.batchedFirst = true
        }
        // The element type: integer results of integer operands, comparisons and casts to
        // integer or bool types (the shape arithmetic's int64); floating otherwise.
        switch n.opType {
        case "Shape", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Sign", "IsNaN": out.isInteger = true
        case "Abs", "Neg", "Min", "Max", "Floor", "Ceil", "Round", "Clip": out.isInteger = c.allSatisfy(\.isInteger)
        case "Cast": out.isInteger = [2, 3, 4, 5, 6, 7, 9, 12, 13].contains(try a.int("to"))
        case "Add", "Sub", "Mul", "Div", "Mod", "Pow": out.isInteger = c[0].isInteger && c[1].isInteger
        case "Where": out.isInteger = c[1].isInteger && c[2].isInteger
        case "Sqrt", "Log", "Exp", "Sin", "Cos", "Reciprocal": out.isInteger = false
        case "ConstantOfShape": out.isInteger = try a.tensor("value").map { [2, 3, 4, 5, 6, 7, 9, 12, 13].contains(Int($0.dataType)) } ?? false
        default: out.isInteger = c.first?.isInteger ?? false          // a copy (Trilu's too), a gather, a reshape of its data; Range of its start
        }
        // Entries that no longer depend on N (a slice of a shape past its batch entry) are plain.
        if out.batch?.allSatisfy({ $0 == 0 }) ?? false { out.batch = nil }
        constants[n.output[0]] = out
        return true
    }

    /// The dims a shape operand asks for: its one batch-dependent entry (N, first) becomes 1.
    func batchedDims(_ shape: ONNXConstant, _ n: Onnx_NodeProto) throws -> [Int] {
        try shape.values.indices.map { i in
            let b = shape.batch?[i] ?? 0
            if b == 0 { return Int(shape.values[i]) }
            guard i == 0, b == 1, shape.values[i] == 0 else {
                throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)): shape entry \(i) depends on the batch size other than as the first dimension")
            }
            return 1
        }
    }

    func broadcastDims(_ all: [[Int]], _ n: Onnx_NodeProto) throws -> [Int] {
        let r = all.map(\.count).max() ?? 0
        var out = [Int](repeating: 1, count: r)
        for d in all {
            let p = [Int](repeating: 1, count: r - d.count) + d
            for i in 0..<r where p[i] != 1 {
                guard out[i] == 1 || out[i] == p[i] || p[i] == -1 else {
                    throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)): dims \(all) do not broadcast")
                }
                if p[i] != -1 { out[i] = p[i] }
            }
        }
        return out
    }

    func binary(_ op: String, _ x: ONNXConstant, _ y: ONNXConstant, _ n: Onnx_NodeProto) throws -> ONNXConstant {
        let dims = try broadcastDims([x.dims, y.dims], n)
        let (p, q) = (x.expanded(to: dims), y.expanded(to: dims))
        let symbolic = p.batch != nil || q.batch != nil
        let (pv, qv) = (p.values, q.values)
        var v = [Double](repeating: 0, count: pv.count), b = [Double](repeating: 0, count: v.count)
        func fail(_ why: String) -> AttribError { .io(path: file, detail: "node '\(n.name)' (\(op)): \(why) depends on the batch size") }
        for i in v.indices {
            let (a, ab, c, cb) = (pv[i], p.batch?[i] ?? 0, qv[i], q.batch?[i] ?? 0)
            switch op {
            case "Add": v[i] = a + c; b[i] = ab + cb
            case "Sub": v[i] = a - c; b[i] = ab - cb
            case "Mul":
                guard ab == 0 || cb == 0 else { throw fail("a product of two batch sizes") }
                // (A coefficient of 0 stays 0 beside an infinite value: MPNet's log(0) buckets.)
                v[i] = a * c; b[i] = (ab == 0 ? 0 : ab * c) + (cb == 0 ? 0 : cb * a)
            case "Div":
                guard cb == 0 else { throw fail("a division by the batch size") }
                if symbolic && ab != 0 {
                    guard ab.truncatingRemainder(dividingBy: c) == 0, a.truncatingRemainder(dividingBy: c) == 0 else { throw fail("a division") }
                }
                // Integer division (truncating, as ONNX's Div of integer types) for integer
                // operands and for integer-valued batch-dependent shape arithmetic; true otherwise.
                let integral = (x.isInteger && y.isInteger) || (a == a.rounded() && c == c.rounded() && symbolic)
                v[i] = integral ? (a / c).rounded(.towardZero) : a / c; b[i] = ab == 0 ? 0 : ab / c
            case "Min", "Max", "And", "Or":
                guard ab == 0 && cb == 0 else { throw fail(op) }
                switch op {
                case "Min": v[i] = Swift.min(a, c)
                case "Max": v[i] = Swift.max(a, c)
                case "And": v[i] = a != 0 && c != 0 ? 1 : 0
                default: v[i] = a != 0 || c != 0 ? 1 : 0
                }
            case "Mod":
                guard ab == 0 && cb == 0 else { throw fail("a remainder") }
                v[i] = a - c * (a / c).rounded(.down)
            case "Pow":
                guard ab == 0 && cb == 0 else { throw fail("a power") }
                v[i] = foldPow(a, c)
            case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual":
                if ab == 0 && cb == 0 {
                    switch op {
                    case "Equal": v[i] = a == c ? 1 : 0
                    case "Less": v[i] = a < c ? 1 : 0
                    case "Greater": v[i] = a > c ? 1 : 0
                    case "LessOrEqual": v[i] = a <= c ? 1 : 0
                    default: v[i] = a >= c ? 1 : 0
                    }
                } else if op == "Equal", cb == 0, ab > 0, c < ab + a {
                    v[i] = 0          // b·N + a with N ≥ 1 is at least b + a: never a smaller constant (the -1 of Expand)
                } else if op == "Equal", ab == 0, cb > 0, a < cb + c {
                    v[i] = 0
                } else { throw fail("a comparison") }
                b[i] = 0
            default: throw fail(op)
            }
        }
        let anyBatch = b.contains { $0 != 0 }
        return ONNXConstant(dims: dims, values: v, batch: anyBatch ? b : nil)
    }

    /// Entries `idx` of `axis`.
    func gather(_ t: ONNXConstant, axis ax: Int, _ idx: [Int]) throws -> ONNXConstant {
        let outer = t.dims[..<ax].reduce(1, *), dim = t.dims[ax], inner = t.dims[(ax + 1)...].reduce(1, *)
        var v: [Double] = [], b: [Double]? = t.batch == nil ? nil : []
        let tv = t.values
        for o in 0..<outer {
            for j in idx {
                let at = (o * dim + j) * inner
                v += tv[at..<(at + inner)]
                b? += t.batch![at..<(at + inner)]
            }
        }
        var dims = t.dims
        dims[ax] = idx.count
        return ONNXConstant(dims: dims, values: v, batch: b)
    }
}

/// aᵇ for folding: exact repeated products for small integer powers (shape arithmetic), libm
/// otherwise.
func foldPow(_ a: Double, _ b: Double) -> Double {
    if b == b.rounded(), abs(b) < 64 {
        var r = 1.0
        for _ in 0..<Int(abs(b)) { r *= a }
        return b < 0 ? 1 / r : r
    }
    return exp(b * log(a))
}

extension ONNXConstant {
    /// Broadcast (NumPy rules) to `dims`.
    func expanded(to dims: [Int]) -> ONNXConstant {
        if self.dims == dims { return self }
        let r = dims.count
        let own = [Int](repeating: 1, count: r - self.dims.count) + self.dims
        let total = dims.reduce(1, *)
        var v = [Double](repeating: 0, count: total), b: [Double]? = batch == nil ? nil : v
        var index = [Int](repeating: 0, count: r)
        let values = self.values                 // once (see ONNXConstant.values)
        for k in 0..<total {
            var src = 0
            for i in 0..<r { src = src * own[i] + (own[i] == 1 ? 0 : index[i]) }
            v[k] = values.isEmpty ? 0 : values[src]
            b?[k] = batch![src]
            var i = r - 1
            while i >= 0 { index[i] += 1; if index[i] < dims[i] { break }; index[i] = 0; i -= 1 }
        }
        return ONNXConstant(dims: dims, values: v, batch: b)
    }

    func filled(_ value: Double) -> ONNXConstant {
        ONNXConstant(dims: dims, values: [Double](repeating: value, count: dims.reduce(1, *)), batch: nil)
    }

    func map(_ n: Onnx_NodeProto, _ f: (Double) -> Double) throws -> ONNXConstant {
        guard batch == nil else { throw AttribError.io(path: "", detail: "node '\(n.name)' (\(n.opType)) of a batch-dependent value") }
        return ONNXConstant(dims: dims, values: values.map(f), batch: nil)
    }
}
