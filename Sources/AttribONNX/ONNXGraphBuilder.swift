import AttribCore
import AttribModels
import FoundationEssentials

/// Turns an ONNX GraphProto into a Graph, node by node in the file's (topological) order,
/// knowing each value's per-sample type as it goes (the ops' own shape rules), which the
/// mapping needs: a constant is broadcast to the value it meets, Reshape's 0 entries copy a
/// dimension, a BatchNormalization folds into the convolution that feeds it.
struct ONNXGraphBuilder {
    let file: String, opset: Int
    let device: any Device, dtype: DType
    var constants: [String: ONNXConstant] = [:]
    var types: [String: ValueType] = [:]
    var nodes: [GraphNode] = []
    /// Convolutions made so far, by output value: their index in `nodes` and host weights,
    /// for folding a BatchNormalization into them.
    var convolutions: [String: (index: Int, weight: ONNXConstant, bias: [Double], stride: [Int], padding: [Int], groups: Int)] = [:]
    var readers: [String: Int] = [:]
    /// Bias-less Linear nodes from MatMul, by output: where a constant Add follows, it becomes their bias.
    var linearProducts: [String: Int] = [:]
    /// Every Linear node by output (MatMul or Gemm with a constant weight, a bias taken in), for
    /// folding a BatchNormalization that follows into it.
    var linearLayers: [String: Int] = [:]
    /// Nodes that add, subtract or multiply by one scalar, by output: (op, scalar), for the GELU rewrite.
    var scalarNodes: [String: (op: BinaryOp, value: Double)] = [:]
    /// IsNaN of a value, by output: the value it tests, for the NaN guard Where(IsNaN(x), c, x)
    /// (the dynamo exporter's attention) and nothing else.
    var nanTests: [String: String] = [:]
    /// Values whose batch dimension the file has moved from first (ONNXBatchLayout.swift).
    var layouts: [String: BatchLayout] = [:]
    /// Whether an input's batch dimension is symbolic (a dynamic batch): then a Reshape entry
    /// of -1 with no Shape arithmetic holds N (the dynamo exporter's [L, -1, 3, E]).
    var symbolicBatch = false

    init(file: String, opset: Int, device: any Device, dtype: DType) {
        self.file = file; self.opset = opset; self.device = device; self.dtype = dtype
    }

    mutating func build(_ g: Onnx_GraphProto) throws -> Graph {
        for t in g.initializer { constants[t.name] = try ONNXConstant(t, file: file) }
        for n in g.node { for i in n.input where !i.isEmpty { readers[i, default: 0] += 1 } }
        var inputs: [(name: String, type: ValueType)] = []
        for v in g.input where constants[v.name] == nil {
            guard case .tensorType? = v.type.value else { throw AttribError.io(path: file, detail: "graph input '\(v.name)' is not a tensor") }
            let t = v.type.tensorType
            let dims = t.shape.dim
            guard dims.count >= 2 else {
                throw AttribError.io(path: file, detail: "graph input '\(v.name)' has rank \(dims.count); the engine needs a batch dimension first and at least one more")
            }
            if case .dimValue? = dims[0].value {} else { symbolicBatch = true }
            var shape: [Int] = []
            for (i, d) in dims.enumerated().dropFirst() {
                guard case .dimValue(let dv)? = d.value, dv >= 1, dv <= Int64(Int32.max) else {
                    let shown: String
                    if case .dimParam(let p)? = d.value { shown = "symbolic ('\(p)')" } else { shown = String(d.dimValue) }
                    throw AttribError.io(path: file, detail: "graph input '\(v.name)' dimension \(i) is \(shown); only the first (batch) dimension may vary")
                }
                shape.append(Int(d.dimValue))
            }
            let elem: DType
            switch t.elemType {
            case 1, 11: elem = dtype                      // float, double: the model's dtype
            case 6, 7: elem = .int32                      // token ids
            default: throw AttribError.io(path: file, detail: "graph input '\(v.name)' has element type \(t.elemType); float, double, int32 and int64 are supported")
            }
            inputs.append((v.name, ValueType(shape, elem)))
            types[v.name] = ValueType(shape, elem)
        }
        guard !inputs.isEmpty else { throw AttribError.io(path: file, detail: "the graph has no input that is not an initializer") }
        for n in g.node { try add(n) }
        fuseExactGELU(outputs: Set(g.output.map(\.name)))
        fuseTanhGELU(outputs: Set(g.output.map(\.name)))
        let outputs = g.output.map(\.name)
        for o in outputs where types[o] == nil {
            throw AttribError.io(path: file, detail: "graph output '\(o)' is produced by no node the engine ran")
        }
        for o in outputs where layout(o) != .first {
            throw AttribError.io(path: file, detail: "graph output '\(o)' has its batch dimension \(layout(o)); outputs must hold it first")
        }
        do { return try Graph(inputs: inputs, nodes: nodes, outputs: outputs) } catch {
            throw AttribError.io(path: file, detail: "\(error)")
        }
    }

    /// Appends a node's op, checking its output type now so that later nodes see it.
    mutating func emit(_ n: Onnx_NodeProto, _ op: any GraphOp, inputs: [String], output: String? = nil) throws {
        let name = n.name.isEmpty ? (n.output.first ?? "?") : n.name
        let out = output ?? n.output[0]
        let ins = try inputs.map { v -> ValueType in
            guard let t = types[v] else { throw AttribError.io(path: file, detail: "node '\(name)' (\(n.opType)) reads '\(v)', which no earlier node produces") }
            return t
        }
        do { types[out] = try op.outputType(ins) } catch {
            throw AttribError.io(path: file, detail: "node '\(name)' (\(n.opType)) does not fit its inputs \(zip(inputs, ins).map { "\($0): \($1)" }.joined(separator: ", ")): \(error)")
        }
        nodes.append(GraphNode(name, op, inputs: inputs, output: out))
    }

    func constant(_ name: String, _ n: Onnx_NodeProto) throws -> ONNXConstant {
        guard let c = constants[name] else {
            throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)): input '\(name)' must be a constant (an initializer or a Constant node)")
        }
        return c
    }

    /// The constant broadcast (NumPy rules, trailing dimensions aligned) to a per-sample shape;
    /// a leading dimension of 1 for the batch is dropped.
    func broadcast(_ c: ONNXConstant, to shape: [Int], _ n: Onnx_NodeProto) throws -> [Double] {
        var dims = c.dims
        if dims.count == shape.count + 1, dims.first == 1 { dims.removeFirst() }
        guard dims.count <= shape.count else {
            throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)): constant of dims \(c.dims) does not broadcast to the per-sample shape \(shape)")
        }
        dims = [Int](repeating: 1, count: shape.count - dims.count) + dims
        for (a, b) in zip(dims, shape) where a != b && a != 1 {
            throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)): constant of dims \(c.dims) does not broadcast to the per-sample shape \(shape)")
        }
        let total = shape.reduce(1, *)
        let values = c.values                    // once: a Float32 constant widens on each read
        // A scalar (an attention's 1/√d, broadcast to [heads, T, T]) or a constant already of the
        // shape: no index walk, which took 6.5% of a ViT-B/16 load for the scalars alone.
        if values.count == 1 { return [Double](repeating: values[0], count: total) }
        if dims == shape { return values }
        var out = [Double](repeating: 0, count: total)
        var index = [Int](repeating: 0, count: shape.count)
        for k in 0..<total {
            var src = 0
            for (i, d) in dims.enumerated() { src = src * d + (d == 1 ? 0 : index[i]) }
            out[k] = values[src]
            var i = shape.count - 1
            while i >= 0 { index[i] += 1; if index[i] < shape[i] { break }; index[i] = 0; i -= 1 }
        }
        return out
    }

    /// A convolution layer from host weights: a grouped one where group > 1.
    func convolution(_ w: ONNXConstant, _ bias: [Double], _ stride: [Int], _ padding: [Int], _ groups: Int) throws -> any Layer {
        let wt = try w.tensor(dtype: dtype, on: device), bt = try Tensor(bias, shape: [w.dims[0]], dtype: dtype, on: device)
        return groups == 1 ? try Conv2d(weight: wt, bias: bt, stride: stride, padding: padding)
                           : try GroupedConv2d(weight: wt, bias: bt, groups: groups, stride: stride, padding: padding)
    }

    func unsupported(_ n: Onnx_NodeProto) -> AttribError {
        let op = "\(n.domain.isEmpty ? "" : n.domain + ".")\(n.opType)"
        if n.domain.isEmpty, ONNXModel.supportedOps.contains(n.opType) {
            // A listed op in a form the engine does not run (Equal of floating values: shape
            // arithmetic folds at load and integer ops run on token ids, nothing else).
            let ins = n.input.filter { !$0.isEmpty }.map { v in constants[v].map { "constant \($0.dims)" } ?? types[v].map { "\($0)" } ?? "?" }
            return .io(path: file, detail: "node '\(n.name)' has op type \(op) (opset \(opset)) on inputs \(ins.joined(separator: ", ")): the engine runs \(op) only on constants (folded at load)\(Self.integerOps.contains(n.opType) ? " and on integer values (token ids)" : "") or where the list of supported ops says, not here")
        }
        return .io(path: file, detail: "node '\(n.name)' has op type \(op) (opset \(opset)), which the engine does not implement; supported: \(ONNXModel.supportedOps.joined(separator: ", "))")
    }

    mutating func add(_ n: Onnx_NodeProto) throws {
        guard n.domain.isEmpty || n.domain == "ai.onnx" else { throw unsupported(n) }
        // Every op makes a value: its first output names it (FuzzONNX: a Conv node without
        // outputs reached n.output[0] and trapped).
        guard let first = n.output.first, !first.isEmpty else {
            throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)) has no output")
        }
        var a = ONNXAttributes(n, file: file)
        let x = n.input.first ?? ""
        func sampleShape(_ v: String) throws -> [Int] {
            guard let t = types[v] else { throw AttribError.io(path: file, detail: "node '\(n.name)' (\(n.opType)) reads '\(v)', which no earlier node produces") }
            return t.shape
        }
        func activation(_ k: Activation) throws { try emit(n, LayerOp(ActivationLayer(k)), inputs: [x]) }
        // Shape arithmetic and all-constant ops become constants (ONNXFolding.swift).
        if try fold(n) { return }
        // A value whose batch the file moved: only the ops that follow it may read it, and the
        // output of an op that keeps the layout (elementwise, last-axis) has the input's.
        let values = n.input.filter { !$0.isEmpty && constants[$0] == nil && types[$0] != nil }
        if let moved = values.first(where: { layout($0) != .first }), !Self.layoutAware.contains(n.opType) {
            throw movedBatchError(n, moved, "\(n.opType) is not one of those")
        }
        if let t = n.input.first(where: { nanTests[$0] != nil }), n.opType != "Where" || n.input.first != t {
            throw a.error("reads '\(t)', IsNaN of a value, which the engine runs only as the NaN guard Where(IsNaN(x), c, x)")
        }
        // Arithmetic on token ids (RoBERTa's position ids): integer ops on the host.
        if Self.integerOps.contains(n.opType), values.contains(where: { types[$0]?.dtype == .int32 }) {
            guard values.allSatisfy({ layout($0) == .first }) else { throw movedBatchError(n, values[0], "integer values must hold the batch first") }
            try integer(n, &a)
            try a.checkAllRead()
            return
        }
        let inLayout = values.first.map(layout) ?? .first
        defer { if inLayout != .first, layouts[first] == nil, types[first] != nil, !["Transpose", "Reshape", "Unsqueeze", "Squeeze", "Gather"].contains(n.opType) { layouts[first] = inLayout } }
        switch n.opType {
        case "Constant":
            guard n.attribute.count == 1, n.attribute[0].name == "value", n.attribute[0].type == .tensor else {
                throw a.error("only a Constant with a tensor 'value' is supported")
            }
            constants[n.output[0]] = try ONNXConstant(n.attribute[0].t, file: file)
            return
        case "Identity":
            // The TorchScript exporter's constant folding leaves Identity nodes on shared
            // initializers (ResNet's convolution weights): the output is the same constant.
            if let c = constants[x] { constants[n.output[0]] = c; return }
            try emit(n, IdentityGraphOp(), inputs: [x])
        case "Dropout":
            // Inference: the identity. Its mask output must go unused.
            if n.output.count > 1, readers[n.output[1]] ?? 0 > 0 { throw a.error("its mask output is read; only inference (identity) is supported") }
            _ = try a.int("seed", default: 0)
            try emit(n, IdentityGraphOp(), inputs: [x])
        case "Pad":
            // Swin pads each feature map up to a multiple of its window: at sizes that are
            // multiples already, by nothing, which is the identity. Padding by something is not
            // implemented.
            let mode = try a.string("mode", default: "constant")
            let pads = n.input.count > 1 && !n.input[1].isEmpty ? try constant(n.input[1], n) : nil
            guard let pads, pads.batch == nil else { throw a.error("pads must be a constant (folded at load)") }
            if n.input.count > 3, !n.input[3].isEmpty { _ = try constant(n.input[3], n) }
            guard pads.values.allSatisfy({ $0 == 0 }) else {
                throw a.error("pads \(pads.values.map { Int($0) }) (mode \(mode)); only padding by nothing (the identity) is supported")
            }
            try emit(n, IdentityGraphOp(), inputs: [x])
        case "Clip":
            // Of a value: ReLU6 (MobileNetV2's, torch.clamp(x, 0, 6)) or ReLU; bounds from the
            // optional min and max inputs (opset 11 on), each a constant scalar.
            func bound(_ k: Int, _ none: Double) throws -> Double {
                guard n.input.count > k, !n.input[k].isEmpty else { return none }
                let c = try constant(n.input[k], n)
                guard c.count == 1, c.batch == nil else { throw a.error("its \(k == 1 ? "min" : "max") must be one constant value") }
                return c.values[0]
            }
            let (lo, hi) = (try bound(1, -.infinity), try bound(2, .infinity))
            switch (lo, hi) {
            case (0, 6): try activation(.relu6)
            case (0, .infinity): try activation(.relu)
            default: throw a.error("Clip(\(lo), \(hi)) of a value; Clip(0, 6) (ReLU6) and Clip(0) (ReLU) are supported")
            }
        case "Erf": try activation(.erf)
        case "Cast":
            // A value cast to a floating type (attention's softmax back to the query's dtype): the
            // engine computes in one floating dtype throughout, so this is the identity.
            let to = try a.int("to")
            _ = try a.int("saturate", default: 1)
            guard to == 1 || to == 11 || to == 10 || to == 16, types[x]?.dtype.isFloatingPoint ?? false else {
                throw a.error("a value cast to element type \(to); only casts between floating types are supported on values")
            }
            try emit(n, IdentityGraphOp(), inputs: [x])
        case "LayerNormalization":
            let s = try sampleShape(x)
            let axis = try a.int("axis", default: -1)
            let rank = try onnxRank(x)
            guard axis == -1 || axis == rank - 1 else { throw a.error("axis = \(axis): only the last axis is supported") }
            guard layout(x).lastAxisIsPlain(sampleRank: s.count) else { throw movedBatchError(n, x, "its last axis holds the batch") }
            _ = try a.int("stash_type", default: 1)
            guard n.output.count == 1 || n.output.dropFirst().allSatisfy({ $0.isEmpty || (readers[$0] ?? 0) == 0 }) else {
                throw a.error("its Mean or InvStdDev output is read; only the normalized output is supported")
            }
            let last = s.last!
            let scale = try constant(n.input[1], n)
            let bias = n.input.count > 2 && !n.input[2].isEmpty ? try constant(n.input[2], n) : nil
            guard scale.count == last, bias?.count ?? last == last else { throw a.error("scale and bias must have \(last) entries") }
            let layer = try LayerNormLayer(normalizedShape: [last], eps: try a.float("epsilon", default: 1e-5),
                                      weight: try scale.tensor([last], dtype: dtype, on: device), bias: try bias?.tensor([last], dtype: dtype, on: device),
                                      device: device, dtype: dtype)
            try emit(n, LayerOp(layer), inputs: [x])
        case "Gather":
            // A table indexed by token ids: an embedding (BERT's word embeddings).
            if let table = constants[x], constants[n.input[1]] == nil {
                guard table.dims.count == 2, table.batch == nil, try a.int("axis", default: 0) == 0 else {
                    throw a.error("a constant of dims \(table.dims) indexed by a value; a [vocabulary, dim] table on axis 0 is supported")
                }
                try emit(n, LayerOp(try Embedding(weight: table.tensor(dtype: dtype, on: device))), inputs: [n.input[1]])
                break
            }
            // A value indexed by a constant along a per-sample axis (a ViT's class token: x[:, 0]).
            guard let idx = constants[n.input[1]], idx.batch == nil, idx.count == 1 else { throw a.error("only a constant index into a value is supported (embeddings come with the text models)") }
            // (Also a moved batch's value: in_proj's [3, L, N, E] split into q, k and v.)
            let s = try sampleShape(x), l = layout(x), groups = l.axes(sampleRank: s.count)
            let axis = try a.int("axis", default: 0), ax = axis < 0 ? axis + groups.count : axis
            guard ax >= 0, ax < groups.count else { throw a.error("axis \(axis) out of range for rank \(groups.count)") }
            guard groups[ax].count == 1, let p = groups[ax].first, p >= 0 else { throw a.error("axis \(axis) holds the batch dimension") }
            let i = Int(idx.values[0]), j = i < 0 ? i + s[p] : i
            guard j >= 0, j < s[p] else { throw a.error("index \(i) out of range for dimension \(s[p])") }
            let sliced = n.output[0] + "/slice"
            try emit(n, SliceGraphOp(axis: p, start: j, end: j + 1), inputs: [x], output: sliced)
            var target = s, result = l
            if idx.dims.isEmpty { target.remove(at: p); if p < l.at { result.at -= 1 } } else { target[p] = 1 }
            try emit(n, ReshapeGraphOp(target.isEmpty ? [1] : target), inputs: [sliced])
            if result != .first { layouts[n.output[0]] = result }
        case "Slice":
            let s = try sampleShape(x), rank = s.count + 1
            let starts = try constant(n.input[1], n).values, ends = try constant(n.input[2], n).values
            let axes = n.input.count > 3 && !n.input[3].isEmpty ? try constant(n.input[3], n).values.map { Int($0) } : Array(0..<starts.count)
            let steps = n.input.count > 4 && !n.input[4].isEmpty ? try constant(n.input[4], n).values : [Double](repeating: 1, count: starts.count)
            var cur = x
            for (k, axis) in axes.enumerated() {
                let ax = axis < 0 ? axis + rank : axis
                guard steps[k] >= 1, steps[k] == steps[k].rounded() else { throw a.error("step \(steps[k]); only positive steps are supported on values") }
                let step = Int(steps[k])
                if ax == 0 {
                    // Only the whole batch (0 to "the end", which exporters write as INT64_MAX or INT32_MAX).
                    guard starts[k] == 0, ends[k] >= 2_147_483_647, step == 1 else { throw a.error("it slices the batch dimension") }
                    continue
                }
                guard ax < rank else { throw a.error("axis \(axis) out of range") }
                let dim = s[ax - 1]
                func clamp(_ v: Double) -> Int { let i = v >= 9e18 ? dim : v <= -9e18 ? 0 : Int(v); return min(max(i < 0 ? i + dim : i, 0), dim) }
                let (lo, hi) = (clamp(starts[k]), clamp(ends[k]))
                guard lo < hi else { throw a.error("an empty slice (\(lo)..<\(hi)) of axis \(axis)") }
                if lo == 0 && hi == dim && step == 1 { continue }
                let out = k == axes.count - 1 ? n.output[0] : n.output[0] + "/axis\(ax)"
                try emit(n, SliceGraphOp(axis: ax - 1, start: lo, end: hi, step: step), inputs: [cur], output: out)
                cur = out
            }
            if cur == x { try emit(n, IdentityGraphOp(), inputs: [x]) }
            else if cur != n.output[0] { try emit(n, IdentityGraphOp(), inputs: [cur]) }
        case "Expand":
            // A value expanded to its own shape (exporters' guard for broadcasting) is itself.
            let shape = try constant(n.input[1], n)
            let dims = try batchedDims(shape, n)
            let s = try sampleShape(x)
            let own = [1] + s
            let padded = [Int](repeating: 1, count: max(0, own.count - dims.count)) + dims
            guard padded.count == own.count, zip(padded, own).allSatisfy({ $0 == $1 || $0 == 1 }) else {
                throw a.error("expanding a value of per-sample shape \(s) to \(dims) is not supported")
            }
            try emit(n, IdentityGraphOp(), inputs: [x])
        case "Relu": try activation(.relu)
        case "Tanh": try activation(.tanh)
        case "Sigmoid": try activation(.sigmoid)
        case "Softplus": try activation(.softplus)
        case "HardSwish": try activation(.hardSwish)
        case "HardSigmoid":
            // PyTorch's Hardsigmoid exports α = 1/6, β = ½ (ONNX's defaults are 0.2 and 0.5).
            let (alpha, beta) = (try a.float("alpha", default: 0.2), try a.float("beta", default: 0.5))
            guard abs(alpha - 1.0 / 6) < 1e-6, beta == 0.5 else {
                throw a.error("alpha = \(alpha), beta = \(beta): only PyTorch's hard sigmoid (alpha 1/6, beta 0.5) is implemented")
            }
            try activation(.hardSigmoid)
        case "Gelu":
            switch try a.string("approximate", default: "none") {
            case "none": try activation(.geluErf)
            case "tanh": try activation(.geluTanh)
            case let s: throw a.error("approximate = \(s); none and tanh are supported")
            }
        case "Softmax", "LogSoftmax":
            let rank = try onnxRank(x)
            let axis = try a.int("axis", default: -1)
            guard axis == -1 || axis == rank - 1 else { throw a.error("axis = \(axis): only the last axis (of rank \(rank)) is supported") }
            guard layout(x).lastAxisIsPlain(sampleRank: try sampleShape(x).count) else { throw movedBatchError(n, x, "its last axis holds the batch") }
            try emit(n, LayerOp(SoftmaxLayer(log: n.opType == "LogSoftmax")), inputs: [x])
        case "Flatten":
            guard try a.int("axis", default: 1) == 1 else { throw a.error("axis must be 1 (flatten each sample)") }
            try emit(n, LayerOp(Flatten()), inputs: [x])
        case "GlobalAveragePool": try emit(n, GlobalAvgPoolGraphOp(), inputs: [x])
        case "ReduceMean":
            // The dynamo exporter's adaptive_avg_pool2d(x, 1): the mean over an image's H and W.
            let axes = opset >= 18 ? (n.input.count > 1 && !n.input[1].isEmpty ? try constant(n.input[1], n).values.map { Int($0) } : [])
                                   : try a.ints("axes", default: [])
            let keep = try a.int("keepdims", default: 1) == 1
            _ = try a.int("noop_with_empty_axes", default: 0)
            let s = try sampleShape(x)
            guard s.count == 3, Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3] else {
                throw a.error("axes \(axes) of a value of per-sample shape \(s); the mean over an image's H and W ([N, C, H, W], axes 2 and 3) is supported")
            }
            if keep { try emit(n, GlobalAvgPoolGraphOp(), inputs: [x]); break }
            try emit(n, GlobalAvgPoolGraphOp(), inputs: [x], output: n.output[0] + "/pooled")
            try emit(n, ReshapeGraphOp([s[0]]), inputs: [n.output[0] + "/pooled"])
        case "Transpose":
            // Moving the batch (nn.MultiheadAttention's [L, N, E]) is followed as a layout.
            let rank = try onnxRank(x)
            try transpose(n, x, perm: try a.ints("perm", default: Array((0..<rank).reversed())))
        case "Concat":
            let axis = try a.int("axis")
            // Constant inputs (a class token) are repeated over the batch, from a value input.
            guard let reference = n.input.first(where: { constants[$0] == nil }) else { throw a.error("no input is a value") }
            let rank = try sampleShape(reference).count + 1
            let ax = axis < 0 ? axis + rank : axis
            guard ax >= 1, ax < rank else { throw a.error("axis \(axis) is the batch dimension or out of range") }
            var inputs: [String] = []
            for (k, v) in n.input.enumerated() {
                guard let c = constants[v] else { inputs.append(v); continue }
                var dims = c.dims
                if dims.count == rank, dims.first == 1 { dims.removeFirst() }
                guard dims.count == rank - 1, c.batch == nil else { throw a.error("constant input \(k) of dims \(c.dims) for values of rank \(rank)") }
                let name = n.output[0] + "/constant\(k)"
                try emit(n, BroadcastConstantGraphOp(values: c.values, shape: dims, dtype: dtype), inputs: [reference], output: name)
                inputs.append(name)
            }
            try emit(n, ConcatGraphOp(axis: ax - 1, count: inputs.count), inputs: inputs)
        case "Unsqueeze", "Squeeze":
            // Of a value (constants are folded): a reshape, which may leave the batch elsewhere.
            guard let (values, batch) = onnxDims(x) else { throw a.error("reads '\(x)', which no earlier node produces") }
            let axes = n.input.count > 1 && !n.input[1].isEmpty ? try constant(n.input[1], n).values.map { Int($0) } : []
            var dims = Array(zip(values, batch)).map { (value: $0.0, batch: $0.1) }
            if n.opType == "Unsqueeze" {
                let r = dims.count + axes.count
                let at = axes.map { $0 < 0 ? $0 + r : $0 }.sorted()
                guard !at.isEmpty, at.allSatisfy({ $0 >= 0 && $0 < r }), Set(at).count == at.count else { throw a.error("axes \(axes) for a result of rank \(r)") }
                for ax in at { dims.insert((1, 0), at: ax) }
            } else {
                let r = dims.count
                let drop = axes.isEmpty ? Set(dims.indices.filter { dims[$0] == (1, 0) }) : Set(axes.map { $0 < 0 ? $0 + r : $0 })
                guard drop.allSatisfy({ $0 >= 0 && $0 < r && dims[$0] == (1, 0) }) else {
                    throw a.error("axes \(axes) of '\(x)' (dims \(dims.map { $0.batch == 0 ? String($0.value) : "N" })): only axes of size 1 other than the batch can go")
                }
                dims = dims.enumerated().filter { !drop.contains($0.offset) }.map(\.element)
            }
            try reshape(n, x, to: dims)
        case "Reshape":
            _ = try a.int("allowzero", default: 0)
            let shape = try constant(n.input[1], n)
            // The batch placed anywhere but first, or merged with other axes, or a value whose
            // batch has moved: the layout rule. A -1 that is not first and one sample's worth
            // after it holds N where the batch is dynamic and no entry was computed from it.
            let movesBatch = (shape.batch ?? []).enumerated().contains(where: { $0.element != 0 && ($0.offset != 0 || $0.element != 1) })
            let freeHoldsN = symbolicBatch && shape.batch == nil && shape.values.firstIndex(of: -1).map { free in
                free != 0 || shape.values.dropFirst().reduce(1, *) != Double(types[x]?.shape.reduce(1, *) ?? 0)
            } ?? false
            if layout(x) != .first || movesBatch || freeHoldsN {
                try reshape(n, x, to: try resolvedShape(shape, of: x, n))
                break
            }
            // The batch size N, folded from Shape, is the first entry: 0 copies it.
            let target = try shape.values.indices.map { i -> Int in
                let b = shape.batch?[i] ?? 0
                guard b == 0 || (i == 0 && b == 1 && shape.values[i] == 0) else { throw a.error("shape entry \(i) depends on the batch size other than as the batch dimension") }
                return b == 0 ? Int(shape.values[i]) : 0
            }
            let s = try sampleShape(x)
            guard let first = target.first, first == 0 || first == -1 || first >= 1 else { throw a.error("shape \(target) has no batch dimension") }
            // Per sample: drop the batch entry; a 0 copies the input's dimension there.
            let per = target.dropFirst().enumerated().map { i, v in v == 0 && i + 1 < s.count + 1 ? s[i] : v }
            guard first <= 0 || per.contains(-1) || per.reduce(1, *) == s.reduce(1, *) else {
                throw a.error("shape \(target) changes the batch dimension")
            }
            try emit(n, ReshapeGraphOp(per.isEmpty ? [1] : per), inputs: [x])
        case "Split":
            // Into pieces along an axis (ModernBERT's q, k, v): a Slice each, of a value or a constant.
            let axis = try a.int("axis", default: 0)
            let parts = n.output.count
            let sizes: [Int]? = n.input.count > 1 && !n.input[1].isEmpty ? try constant(n.input[1], n).values.map { Int($0) } : nil
            _ = try a.int("num_outputs", default: parts)
            if let c = constants[x] {
                let ax = axis < 0 ? axis + c.dims.count : axis
                guard ax >= 0, ax < c.dims.count, c.batch == nil else { throw a.error("axis \(axis) of a constant of dims \(c.dims)") }
                var start = 0
                for (k, size) in try splitSizes(c.dims[ax], sizes, parts, a).enumerated() {
                    var piece = try gather(c, axis: ax, Array(start..<(start + size)))
                    piece.isInteger = c.isInteger
                    constants[n.output[k]] = piece
                    start += size
                }
                break
            }
            let sh = try sampleShape(x), ax = axis < 0 ? axis + sh.count + 1 : axis
            guard ax >= 1, ax <= sh.count else { throw a.error("axis \(axis): the batch dimension or out of range for per-sample shape \(sh)") }
            var start = 0
            for (k, size) in try splitSizes(sh[ax - 1], sizes, parts, a).enumerated() {
                if !n.output[k].isEmpty {
                    try emit(n, SliceGraphOp(axis: ax - 1, start: start, end: start + size), inputs: [x], output: n.output[k])
                }
                start += size
            }
        case "IsNaN":
            // Of a value: only read by the NaN guard below.
            nanTests[n.output[0]] = x
            return
        case "Where" where nanTests[n.input[0]] != nil:
            // Where(IsNaN(x), c, x), the dynamo exporter's guard after an attention's softmax (a
            // row masked everywhere gives NaN there): x. Inputs and weights are checked finite
            // and the masks are constants folded at load, so x holds NaN only where a constant
            // mask hides a whole row, which these exports do not make; such a NaN would pass.
            guard n.input[2] == nanTests[n.input[0]], constants[n.input[1]] != nil else {
                throw a.error("a NaN test of a value as a condition; Where(IsNaN(x), c, x) is supported")
            }
            try emit(n, IdentityGraphOp(), inputs: [n.input[2]])
        case "Where":
            // A constant condition choosing between a value and a constant (an attention mask
            // filled with the lowest float, DeBERTa's) or two values: y = a⊙keep + fill, the
            // fill holding the constant where it is chosen and 0 elsewhere, so that −∞ fills.
            guard let cond = constants[n.input[0]] else { throw a.error("only a constant condition is supported (a mask computed at load)") }
            let (l, r) = (n.input[1], n.input[2])
            guard let v = [l, r].first(where: { constants[$0] == nil }) else { throw a.error("no operand is a value") }
            let shape = try sampleShape(v)
            for o in [l, r] where constants[o] == nil {
                guard try sampleShape(o) == shape, layout(o) == layout(v) else { throw a.error("the two values differ in shape or batch layout") }
            }
            let k = try broadcast(try alongBatch(cond, v, n), to: shape, n).map { $0 != 0 }
            func tensor(_ values: [Double]) throws -> Tensor { try Tensor(values, shape: shape, dtype: dtype, on: device) }
            func masked(_ value: String, where pick: Bool, _ name: String) throws -> String {
                try emit(n, ConstantBinaryGraphOp(.mul, tensor(k.map { $0 == pick ? 1 : 0 })), inputs: [value], output: name)
                return name
            }
            switch (constants[l], constants[r]) {
            case (nil, nil):
                let (p, q) = (try masked(l, where: true, n.output[0] + "/then"), try masked(r, where: false, n.output[0] + "/else"))
                try emit(n, BinaryGraphOp(.add), inputs: [p, q])
            case (let c?, nil), (nil, let c?):
                let constantIsThen = constants[l] != nil
                let fill = try broadcast(try alongBatch(c, v, n), to: shape, n)
                let kept = try masked(v, where: !constantIsThen, n.output[0] + "/kept")
                try emit(n, ConstantBinaryGraphOp(.add, tensor(k.indices.map { k[$0] == constantIsThen ? fill[$0] : 0 })), inputs: [kept])
            case (.some, .some):
                throw a.error("both operands are constants with a value condition")
            }
        case "Neg":
            // Of a value (rotary embeddings' rotate_half): a scale by −1, exact.
            try emit(n, ScaleGraphOp(-1), inputs: [x])
        case "Pow":
            // A value to a constant whole power (GELU's x³; shape arithmetic's powers fold at load).
            guard let e = constants[n.input[1]], e.count == 1, e.batch == nil else { throw a.error("the exponent must be one constant") }
            let p = e.values[0]
            guard p == p.rounded(), PowGraphOp.exponents.contains(Int(p)) else {
                throw a.error("exponent \(p) of a value; whole exponents \(PowGraphOp.exponents) are supported")
            }
            try emit(n, PowGraphOp(exponent: Int(p)), inputs: [x])
        case "Add", "Sub", "Mul", "Div":
            let (l, r) = (n.input[0], n.input[1])
            let (lc, rc) = (constants[l], constants[r])
            let op: BinaryOp = n.opType == "Add" ? .add : n.opType == "Mul" || n.opType == "Div" ? .mul : .sub
            switch (lc, rc) {
            case (nil, nil):
                guard n.opType != "Div" else { throw a.error("division of two values is not supported") }
                let (ls, rs) = (try sampleShape(l), try sampleShape(r))
                guard layout(l) == layout(r), layout(l) == .first || ls == rs else {
                    throw movedBatchError(n, layout(l) != .first ? l : r, "the two operands hold the batch differently (\(layout(l)), \(layout(r))) or differ in shape")
                }
                // A gate broadcast over trailing dimensions (squeeze-and-excitation).
                if n.opType == "Mul", BroadcastMulGraphOp.leading(ls, rs) != nil {
                    try emit(n, BroadcastMulGraphOp(), inputs: [l, r])
                } else if n.opType == "Mul", BroadcastMulGraphOp.leading(rs, ls) != nil {
                    try emit(n, BroadcastMulGraphOp(), inputs: [r, l])
                } else {
                    try emit(n, BinaryGraphOp(op), inputs: [l, r])
                }
            case (nil, let c?), (let c?, nil):
                let v = lc == nil ? l : r
                // A bias after a bias-less product (exporters write Linear as MatMul + Add): the
                // Linear takes it, one op and one pass over the output fewer.
                if n.opType == "Add", let p = linearProducts[v], readers[v] == 1, let lin = (nodes[p].op as? LayerOp)?.layer as? Linear,
                   lin.bias == nil, c.count == lin.outFeatures, c.dims.last == lin.outFeatures, c.dims.dropLast().allSatisfy({ $0 == 1 }) {
                    let biased = try Linear(weight: lin.weight, bias: Tensor(c.values, shape: [lin.outFeatures], dtype: dtype, on: device))
                    nodes[p] = GraphNode(nodes[p].name, LayerOp(biased), inputs: nodes[p].inputs, output: n.output[0])
                    types[n.output[0]] = types[v]
                    types[v] = nil
                    linearProducts[v] = nil
                    linearLayers[v] = nil
                    linearLayers[n.output[0]] = p
                    break
                }
                var values = try broadcast(try alongBatch(c, v, n), to: try sampleShape(v), n)
                if n.opType == "Div" {
                    guard lc == nil else { throw a.error("a constant divided by a value is not supported") }
                    values = values.map { 1 / $0 }
                }
                let t = try Tensor(values, shape: try sampleShape(v), dtype: dtype, on: device)
                try emit(n, ConstantBinaryGraphOp(op, t, constantFirst: lc != nil && op == .sub, uniform: c.count == 1 ? values[0] : nil), inputs: [v])
                if c.count == 1, !(lc != nil && op == .sub) { scalarNodes[n.output[0]] = (op, values[0]) }
            case (.some, .some):
                throw a.error("both operands are constants (a shape computation the engine does not fold yet)")
            }
        case "MatMul":
            if let w = constants[n.input[1]] {
                guard layout(x).lastAxisIsPlain(sampleRank: try sampleShape(x).count) else { throw movedBatchError(n, x, "its last axis holds the batch") }
                guard w.dims.count == 2 else { throw a.error("constant operand of dims \(w.dims); [in, out] is supported") }
                linearProducts[n.output[0]] = nodes.count
                linearLayers[n.output[0]] = nodes.count
                try emit(n, LayerOp(try Self.linear(fromTransposed: w, bias: nil, dtype: dtype, on: device)), inputs: [x])
            } else {
                // Both with the batch where the other has it (Swin's windows merged with N), and
                // their last two axes plain: the per-sample batched product, the layout kept.
                let (l, r) = (layout(n.input[0]), layout(n.input[1]))
                let (lr, rr) = (try sampleShape(n.input[0]).count, try sampleShape(n.input[1]).count)
                let plainPair = l.at + l.after <= lr - 2 && r.at + r.after <= rr - 2
                if let moved = n.input.prefix(2).first(where: { layout($0) != .first }), l != r || !plainPair {
                    throw movedBatchError(n, moved, "a product of two values needs the batch in the same place in both, outside their last two axes")
                }
                try emit(n, MatMulGraphOp(), inputs: [n.input[0], n.input[1]])
            }
        case "Gemm":
            let (alpha, beta) = (try a.float("alpha", default: 1), try a.float("beta", default: 1))
            guard try a.int("transA", default: 0) == 0 else { throw a.error("transA = 1 is not supported") }
            guard layout(x).lastAxisIsPlain(sampleRank: try sampleShape(x).count) else { throw movedBatchError(n, x, "its last axis holds the batch") }
            let transB = try a.int("transB", default: 0) == 1
            let w = try constant(n.input[1], n)
            guard w.dims.count == 2 else { throw a.error("B has dims \(w.dims); a matrix is needed") }
            let (out, inn) = transB ? (w.dims[0], w.dims[1]) : (w.dims[1], w.dims[0])
            // [out, in], times alpha (transB = 1 already stores it [out, in]).
            var bias: Tensor?
            if n.input.count > 2, !n.input[2].isEmpty {
                let c = try constant(n.input[2], n)
                bias = try Tensor(try broadcast(c, to: [out], n).map { beta * $0 }, shape: [out], dtype: dtype, on: device)
            }
            linearLayers[n.output[0]] = nodes.count
            if !transB && alpha == 1 {
                try emit(n, LayerOp(try Self.linear(fromTransposed: w, bias: bias, dtype: dtype, on: device)), inputs: [x])
            } else {
                let wt = transB ? (alpha == 1 ? w : ONNXConstant(dims: w.dims, values: w.values.map { alpha * $0 })) : w.transposed2D(scale: alpha)
                try emit(n, LayerOp(try Linear(weight: wt.tensor([out, inn], dtype: dtype, on: device), bias: bias)), inputs: [x])
            }
        case "Conv":
            let w = try constant(n.input[1], n)
            guard w.dims.count == 4 else { throw a.error("weight of dims \(w.dims); 2-D convolutions are supported") }
            let k = try a.ints("kernel_shape", default: Array(w.dims.suffix(2)))
            guard k == Array(w.dims.suffix(2)) else { throw a.error("kernel_shape \(k) differs from the weight's \(w.dims)") }
            guard try a.string("auto_pad", default: "NOTSET") == "NOTSET" else { throw a.error("auto_pad is not supported; give pads") }
            let dilations = try a.ints("dilations", default: [1, 1]), group = try a.int("group", default: 1)
            guard dilations.count == 2, dilations.allSatisfy({ $0 >= 1 }) else { throw a.error("dilations \(dilations) must be a pair ≥ 1") }
            guard group >= 1, w.dims[0] % group == 0 else { throw a.error("group = \(group) does not divide the \(w.dims[0]) output channels") }
            let strides = try a.ints("strides", default: [1, 1])
            let pads = try a.ints("pads", default: [0, 0, 0, 0])
            guard pads.count == 4, pads[0] == pads[2], pads[1] == pads[3] else { throw a.error("pads \(pads) are not symmetric") }
            let bias = n.input.count > 2 && !n.input[2].isEmpty ? try constant(n.input[2], n).values : [Double](repeating: 0, count: w.dims[0])
            // A dilated kernel as the dense kernel it equals (zeros between the taps).
            let dense = dilations == [1, 1] ? w : { let (v, d) = Conv2d.dilatedWeight(w.values, shape: w.dims, dilation: dilations); return ONNXConstant(dims: d, values: v) }()
            convolutions[n.output[0]] = (nodes.count, dense, bias, strides, [pads[0], pads[1]], group)
            try emit(n, LayerOp(try convolution(dense, bias, strides, [pads[0], pads[1]], group)), inputs: [x])
        case "BatchNormalization":
            // Inference: y = γ(x − μ)/√(σ² + ε) + β per channel, folded into the convolution
            // that feeds it when nothing else reads the convolution's output.
            let eps = try a.float("epsilon", default: 1e-5)
            _ = try a.float("momentum", default: 0.9)
            guard try a.int("training_mode", default: 0) == 0 else { throw a.error("training_mode = 1 is not supported") }
            guard n.output.count == 1 || n.output.dropFirst().allSatisfy({ (readers[$0] ?? 0) == 0 }) else {
                throw a.error("its running mean or variance output is read; only inference is supported")
            }
            let (gamma, beta, mean, variance) = (try constant(n.input[1], n).values, try constant(n.input[2], n).values,
                                                 try constant(n.input[3], n).values, try constant(n.input[4], n).values)
            let s = try sampleShape(x)
            guard let channels = s.first, [gamma, beta, mean, variance].allSatisfy({ $0.count == channels }) else {
                throw a.error("parameters of \([gamma, beta, mean, variance].map(\.count)) entries for an input of per-sample shape \(s): one per channel (its axis 1) is needed")
            }
            // y = x·scale + shift per channel.
            let scale = zip(gamma, variance).map { $0 / ($1 + eps).squareRoot() }
            let shift = (0..<channels).map { beta[$0] - mean[$0] * scale[$0] }
            guard let conv = convolutions[x], readers[x] == 1 else {
                // After a Linear that nothing else reads (BatchNorm1d on features): folded into it.
                if s.count == 1, let p = linearLayers[x], readers[x] == 1, let lin = (nodes[p].op as? LayerOp)?.layer as? Linear {
                    var w = try lin.weight.doubles(), b = try lin.bias?.doubles() ?? [Double](repeating: 0, count: channels)
                    let per = lin.inFeatures
                    for o in 0..<channels {
                        for j in 0..<per { w[o * per + j] *= scale[o] }
                        b[o] = b[o] * scale[o] + shift[o]
                    }
                    let folded = try Linear(weight: Tensor(w, shape: [channels, per], dtype: dtype, on: device),
                                            bias: Tensor(b, shape: [channels], dtype: dtype, on: device))
                    nodes[p] = GraphNode(nodes[p].name, LayerOp(folded), inputs: nodes[p].inputs, output: n.output[0])
                    types[n.output[0]] = types[x]
                    types[x] = nil
                    linearLayers[n.output[0]] = p
                    break
                }
                // Anywhere else (DenseNet's norm of a concatenation, read by later layers too;
                // a norm after a ReLU): one pass per channel.
                try emit(n, ChannelAffineGraphOp(scale: Tensor(scale, shape: [channels], dtype: dtype, on: device),
                                                 shift: Tensor(shift, shape: [channels], dtype: dtype, on: device), axis: 0), inputs: [x])
                break
            }
            let oc = conv.weight.dims[0], per = conv.weight.count / oc
            guard channels == oc else { throw a.error("parameters do not have \(oc) channels") }
            var w = conv.weight.values, b = conv.bias
            for c in 0..<oc {
                for j in 0..<per { w[c * per + j] *= scale[c] }
                b[c] = b[c] * scale[c] + shift[c]
            }
            let old = nodes[conv.index]
            let folded = try convolution(ONNXConstant(dims: conv.weight.dims, values: w), b, conv.stride, conv.padding, conv.groups)
            nodes[conv.index] = GraphNode(old.name, LayerOp(folded), inputs: old.inputs, output: n.output[0])
            types[n.output[0]] = types[x]
            types[x] = nil
        case "MaxPool", "AveragePool":
            let k = try a.ints("kernel_shape")
            let strides = try a.ints("strides", default: [1, 1])
            let pads = try a.ints("pads", default: [0, 0, 0, 0])
            guard pads.count == 4, pads[0] == pads[2], pads[1] == pads[3] else { throw a.error("pads \(pads) are not symmetric") }
            let ceilMode = try a.int("ceil_mode", default: 0)
            guard ceilMode == 0 || ceilMode == 1 else { throw a.error("ceil_mode = \(ceilMode); 0 or 1 is needed") }
            guard try a.string("auto_pad", default: "NOTSET") == "NOTSET" else { throw a.error("auto_pad is not supported") }
            if n.opType == "MaxPool" {
                guard try a.ints("dilations", default: [1, 1]) == [1, 1] else { throw a.error("dilations other than 1 are not supported") }
                guard try a.int("storage_order", default: 0) == 0 else { throw a.error("storage_order = 1 is not supported") }
                guard n.output.count == 1 || (readers[n.output[1]] ?? 0) == 0 else { throw a.error("its Indices output is read") }
            }
            let includePad = n.opType == "AveragePool" ? try a.int("count_include_pad", default: 0) == 1 : true
            let layer: any Layer = pads == [0, 0, 0, 0] && ceilMode == 0 ? try Pool2d(max: n.opType == "MaxPool", kernel: k, stride: strides)
                : try PaddedPool2d(max: n.opType == "MaxPool", kernel: k, stride: strides, padding: [pads[0], pads[1]],
                                   countIncludePad: includePad, ceilMode: ceilMode == 1)
            try emit(n, LayerOp(layer), inputs: [x])
        default:
            throw unsupported(n)
        }
        try a.checkAllRead()
    }
}

extension ONNXGraphBuilder {
    /// A Linear from a weight stored [in, out] (a MatMul's, a Gemm's with transB = 0): the file's
    /// bytes uploaded as Wᵀ, W made from it by the device's transpose, and Wᵀ handed to the
    /// layer, which keeps or packs it rather than transposing W back. Why: a Swift transpose of
    /// the constant and the packing's reads across W's rows were a third of a ViT-B/16 load.
    static func linear(fromTransposed w: ONNXConstant, bias: Tensor?, dtype: DType, on device: any Device) throws -> Linear {
        let wt = try w.tensor(dtype: dtype, on: device)                     // [in, out]
        return try Linear(weight: wt.transposed01(), bias: bias, transposed: wt)   // W [out, in]
    }
}

extension ONNXGraphBuilder {
    /// The sizes of Split's pieces of an axis of `dim`: as given (they must add up to it), else
    /// `parts` equal pieces, the last smaller where they do not divide (ONNX's rule).
    func splitSizes(_ dim: Int, _ given: [Int]?, _ parts: Int, _ a: ONNXAttributes) throws -> [Int] {
        if let given {
            guard given.count == parts, given.allSatisfy({ $0 >= 1 }), given.reduce(0, +) == dim else {
                throw a.error("split sizes \(given) for \(parts) outputs of an axis of \(dim)")
            }
            return given
        }
        let each = (dim + parts - 1) / parts
        let sizes = (0..<parts).map { min(each, dim - $0 * each) }
        guard sizes.allSatisfy({ $0 >= 1 }) else { throw a.error("\(parts) outputs of an axis of \(dim)") }
        return sizes
    }
}
