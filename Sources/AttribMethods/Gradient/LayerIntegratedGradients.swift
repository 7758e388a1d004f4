import AttribCore
import AttribModels
import FoundationEssentials

/// Integrated Gradients at an inner value of a graph: Captum's LayerIntegratedGradients (layer
/// output). For text models the inputs are token ids, which have no gradient, so the path runs
/// through the embedding output instead: with v = value(x) and v′ = value(baseline ids),
///
///     A = (v − v′) ⊙ Σ_k w_k ∂F_target/∂v |_(v′ + α_k(v − v′)),
///
/// each α_k's value fed in place of the computed one (the graph's replace hook) while the rest
/// of the graph still reads the real ids. A token's score is the sum of its row of A over the
/// hidden dimension, as Captum users sum it. The convergence delta is Σ A − (F(x) − F(baseline)).
public struct LayerIntegratedGradients: Sendable {
    public var rule: IntegrationRule
    public var steps: Int
    /// A cap on rows (input × step) per device batch; nil: as many as the memory plan allows.
    public var batchRows: Int?
    /// The device memory a batch may take (nil: ChunkPlan's default for the device).
    public var memoryBudget: Int?

    public init(rule: IntegrationRule = .gaussLegendre, steps: Int = 64, batchRows: Int? = nil, memoryBudget: Int? = nil) {
        self.rule = rule; self.steps = steps; self.batchRows = batchRows.map { max(1, $0) }; self.memoryBudget = memoryBudget
    }

    /// Rows per batch for the path (a forward and a backward to the layer) and for the forward
    /// passes alone, from the graph's activations per row (ChunkPlan), capped by `batchRows`. A
    /// transformer's rows are large (BERT-base at T = 128: about 180 MB each with its backward),
    /// so a fixed count would run out of memory on a long input or a small host.
    public func plans(for graph: Graph, input: String, dtype: DType, on device: any Device) -> (path: ChunkPlan, forward: ChunkPlan) {
        (ChunkPlan.make(for: graph, from: [input], backward: true, on: device, dtype: dtype, cap: batchRows, budget: memoryBudget),
         ChunkPlan.make(for: graph, from: [input], backward: false, on: device, dtype: dtype, cap: batchRows, budget: memoryBudget))
    }

    public struct Result: Sendable {
        /// [N] + the value's per-sample shape.
        public var attributions: [Double]
        public var shape: [Int]
        /// Σ over the last axis: [N] + the value's shape without its last axis (per token).
        public var tokenScores: [Double]
        public var tokenShape: [Int]
        public var deltas: [Double]
        public var rowsEvaluated: Int
        public var seconds: Double
        /// The batches the path ran in.
        public var plan: ChunkPlan
        /// Inputs whose every step ran: all of them, unless the control stopped the sweep (then
        /// the arrays hold these first inputs only).
        public var completedInputs: Int
        public var interrupted: Bool
        /// The class attributed for each input: the ones given, or each input's top output.
        public var targets: [Int] = []
    }

    /// `ids` [n] + the input's per-sample shape (token ids as Int32); `baselineIDs` the same shape
    /// (one baseline per input); `targets` one class per input, or nil for each input's top output
    /// (read from the forward the path needs anyway, so predicting costs no extra pass).
    public func attribute(_ exec: GraphExecutor, input: String, layer: String, output: String, ids: [Int32], baselineIDs: [Int32],
                          count n: Int, targets given: [Int]?, device: any Device, control: SweepControl = SweepControl()) throws -> Result {
        let clock = ContinuousClock(), start = clock.now
        let g = exec.graph
        guard let inType = g.types[input], g.inputs.contains(where: { $0.name == input }) else {
            throw AttribError.invalidArgument(op: "layer IG", detail: "'\(input)' is not an input of the graph (inputs: \(g.inputs.map(\.name)))")
        }
        guard let vType = g.types[layer], g.producer[layer] != nil else {
            throw AttribError.invalidArgument(op: "layer IG", detail: "'\(layer)' is not an inner value of the graph")
        }
        guard let outType = g.types[output] else { throw AttribError.invalidArgument(op: "layer IG", detail: "'\(output)' is not a value of the graph") }
        let per = inType.count, d = vType.count, classes = outType.count
        guard n >= 1, ids.count == n * per, baselineIDs.count == n * per, given == nil || given!.count == n else {
            throw AttribError.shapeMismatch(op: "layer IG", detail: "\(ids.count) ids and \(baselineIDs.count) baseline ids for \(n) inputs of \(inType.shape), \(given?.count ?? n) targets")
        }
        if let given, let bad = given.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw AttribError.invalidArgument(op: "layer IG", detail: "target \(given[bad]) of input \(bad) is not one of the \(classes) outputs")
        }
        let (alphas, weights) = try rule.nodes(steps)
        let dtype = vType.dtype
        let (plan, forwardPlan) = plans(for: g, input: input, dtype: dtype, on: device)
        // The layer's value and the outputs of every input, in batches of the forward plan.
        func run(_ x: [Int32]) throws -> (v: [Double], f: [Double]) {
            var v: [Double] = [], f: [Double] = []
            for lo in stride(from: 0, to: n, by: forwardPlan.rows) {
                let rows = min(forwardPlan.rows, n - lo)
                let r = try exec.forward([input: Tensor(indices: Array(x[(lo * per)..<((lo + rows) * per)]), shape: [rows] + inType.shape, on: device)],
                                         outputs: [output], hooks: .init(capture: [layer]))
                v += try r[layer]!.doubles(); f += try r[output]!.doubles()
            }
            return (v, f)
        }
        let (v, fx) = try run(ids), (vb, fb) = try run(baselineIDs)
        // The first of the largest outputs where none is given.
        let targets = given ?? (0..<n).map { i in (0..<classes).max { fx[i * classes + $0] < fx[i * classes + $1] }! }
        var sums = [Double](repeating: 0, count: n * d)
        let m = alphas.count, total = n * m
        var done = 0, rows = 0
        var interrupted = false
        while done < total {
            if control.shouldStop() { interrupted = true; break }
            let r = min(plan.rows, total - done)
            var path = [Double](repeating: 0, count: r * d), rowIDs = [Int32](repeating: 0, count: r * per)
            var up = [Double](repeating: 0, count: r * classes)
            for k in 0..<r {
                let row = done + k, i = row / m, a = alphas[row % m]
                for j in 0..<d { path[k * d + j] = vb[i * d + j] + a * (v[i * d + j] - vb[i * d + j]) }
                for j in 0..<per { rowIDs[k * per + j] = ids[i * per + j] }
                up[k * classes + targets[i]] = 1
            }
            let feeds = [input: try Tensor(indices: rowIDs, shape: [r] + inType.shape, on: device)]
            let replaced = try Tensor(path, shape: [r] + vType.shape, dtype: dtype, on: device)
            let fwd = try exec.forward(feeds, outputs: [output], hooks: .init(replace: [layer: replaced]), gradientsFor: [layer])
            let grads = try exec.backward(fwd, upstream: [output: Tensor(up, shape: [r] + outType.shape, dtype: dtype, on: device)],
                                          wrt: [layer])[layer]!.doubles()
            for k in 0..<r {
                let row = done + k, i = row / m, w = weights[row % m]
                for j in 0..<d { sums[i * d + j] += w * grads[k * d + j] }
            }
            done += r; rows += r
            control.progress(done, total)
        }
        // Interrupted, the inputs whose every step ran (rows go input by input).
        let c = done / m
        var a = [Double](repeating: 0, count: c * d)
        for i in 0..<(c * d) { a[i] = (v[i] - vb[i]) * sums[i] }
        let last = vType.shape.last ?? 1, tokens = d / last
        let scores = (0..<(c * tokens)).map { t in a[(t * last)..<((t + 1) * last)].reduce(0, +) }
        let deltas = (0..<c).map { i in
            a[(i * d)..<((i + 1) * d)].reduce(0, +) - (fx[i * classes + targets[i]] - fb[i * classes + targets[i]])
        }
        return Result(attributions: a, shape: [c] + vType.shape, tokenScores: scores, tokenShape: [c] + vType.shape.dropLast(),
                      deltas: deltas, rowsEvaluated: rows, seconds: (clock.now - start).seconds, plan: plan,
                      completedInputs: c, interrupted: interrupted, targets: Array(targets.prefix(c)))
    }
}
