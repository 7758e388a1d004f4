import AttribCore
import AttribModels

/// Integrated Gradients and path-weighted IG (PS-IG), run as device batches of
/// inputs × steps (methods.md):
///   IG = (x − x') ⊙ Σₖ wₖ g(αₖ),   PS-IG = (x − x') ⊙ Σₖ wₖ W(αₖ) g(αₖ).
/// Inputs and baselines are uploaded once; each batch's interpolated inputs are
/// built on the device and its gradients reduced there by weight; only the
/// attributions (and the objective values for the deltas) come back.
///
/// Fused first affine layer: when the model's input goes straight into a Linear or Conv2d
/// (through any Flatten or Reshape; `Graph.firstAffine`, a rule on any graph), pre-activations are affine in α, z(α) = z' + α(z − z'), so the
/// first layer runs twice per input instead of m times, the path is built in z,
/// and the input gradient is (x − x') ⊙ L₁ᵀ(Σₖ wₖ δₖ): one backward product for
/// all steps. The same numbers as the unfused path, to rounding. Where the input has other
/// readers too (a skip add of x), they read the interpolated input on every step, and their
/// step-weighted input gradient is added to that product's.
public struct IntegratedGradients: Sendable {
    public var rule: IntegrationRule = .gaussLegendre
    public var steps: Int = 64
    /// nil: plain IG. Set: path-weighted IG with W = this density's CDF (PS-IG).
    public var density: PathDensity? = nil
    public var fuseFirstLayer = true
    /// With the fused first layer, hold the path's images rows outermost through the
    /// convolution stack where the model allows it (Sequential.rowsOuterSpan: the CPU
    /// backend's banded convolutions), saving their transposes. The same numbers, bitwise.
    public var rowsOuter = true
    /// Rows-outer, run each input's whole path in one op where the model allows it
    /// (`runsWhole`). The same attributions, bitwise; off, the path runs in batches, layer
    /// by layer (for comparison, and to measure the difference).
    public var wholePath = true
    /// Rows (inputs × steps) per chunk of a whole-path sweep, between which progress is
    /// reported and Ctrl-C is seen; memory does not depend on it. About 0.1 s on 2 cores.
    public var wholeChunkRows = 1 << 15
    /// Where the path's first op is an activation (`pathActivation`), build the path inside
    /// it and fold f′ into the step-weighted sum (Device.pathActivationWithDerivative and
    /// pathWeightedSumTimes): the path and the gradient before f′ are never written. The
    /// same attributions, bitwise; off, for comparison and timing.
    public var fusePathActivation = true
    /// On the CPU backend with several threads, run each batch of the graph path as one share
    /// of its inputs per thread, each share through the whole graph on its own thread
    /// (`CPUDevice.eachTile`), where the batch holds whole inputs, at least one per thread. The
    /// same attributions to rounding (the products run over other blocks of rows); off, every
    /// op of a batch is split over the threads.
    public var threadTiles = threadTilesByDefault
    /// Where the sweep graph ends in a Linear head (`Graph.linearHead`), stop the forward at
    /// its input and take the upstream gradient there as the targets' weight rows; the head
    /// runs on the end steps' rows alone, for F(x) and F(x′). Bitwise the same attributions;
    /// off, the head runs forward and back on every row (for comparison).
    public var gatherHead = headRowsByDefault
    /// A cap on rows per device batch (the CLI's --batch).
    public var batchCap: Int? = nil
    /// Device memory to size batches from (default: see ChunkPlan).
    public var memoryBudget: Int? = nil

    public init(rule: IntegrationRule = .gaussLegendre, steps: Int = 64, density: PathDensity? = nil,
                fuseFirstLayer: Bool = true, batchCap: Int? = nil, memoryBudget: Int? = nil) {
        self.rule = rule; self.steps = steps; self.density = density; self.fuseFirstLayer = fuseFirstLayer
        self.batchCap = batchCap; self.memoryBudget = memoryBudget
    }

    /// The first affine layer the path can start after, where fusing is on.
    func fused(_ model: any AttributionModel) -> FirstAffine? {
        fuseFirstLayer ? model.forwardExecutor.graph.firstAffine() : nil
    }

    /// The values a sweep's batches are fed: the cut, and the input too where it has side readers.
    func feeds(_ model: any AttributionModel) -> Set<String> {
        guard let f = fused(model) else { return [model.inputName] }
        return f.sideReaders ? [f.output, model.inputName] : [f.output]
    }

    /// The fused layer's index in a Sequential (its graph's node i is layer i): the key of the
    /// CPU backend's rows-outer and whole-path CNN sweeps, which are Sequential's alone.
    func sequentialLayer(_ model: any AttributionModel, _ f: FirstAffine?) -> (Sequential, Int)? {
        guard let seq = model as? Sequential, let f, !f.sideReaders, let i = Int(f.output), i == f.node else { return nil }
        return (seq, i)
    }

    /// The activation the path meets first and the value it writes, where fusing is on and
    /// the sweep graph reads the path's value (the input, or the first affine layer's output)
    /// by one activation node alone whose output is not the graph's: a rule on any graph (an
    /// MLP's Linear → tanh, a CNN's Conv → ReLU), not on a model's shape.
    public func pathActivation(_ model: any AttributionModel) -> (kind: Activation, output: String)? {
        guard fusePathActivation else { return nil }
        let graph = model.sweepExecutor.graph, cut = fused(model)?.output ?? model.inputName
        let readers = graph.nodes.filter { $0.inputs.contains(cut) }
        guard readers.count == 1, let n = readers.first, n.inputs == [cut], !graph.outputs.contains(cut),
              let act = (n.op as? LayerOp)?.layer as? ActivationLayer, !graph.outputs.contains(n.output) else { return nil }
        return (act.kind, n.output)
    }

    /// The device batches a sweep on this model runs in.
    public func plan(for model: any AttributionModel) -> ChunkPlan {
        ChunkPlan.make(for: model.forwardExecutor.graph, from: feeds(model), backward: true, on: model.device, dtype: model.dtype,
                       cap: batchCap, budget: memoryBudget)
    }

    /// How many inputs the first device batch of a sweep over n inputs holds.
    public func firstBatchInputs(for model: any AttributionModel, count n: Int) -> Int {
        // Bad step counts are reported by attribute(); here they only must not divide by zero.
        guard steps >= 1, n >= 1 else { return 1 }
        if runsWhole(model, count: n) { return wholeChunks(n: n).first?.inputs.count ?? 1 }
        let b = batching(on: model.device, rows: plan(for: model).rows)
        return chunks(n: n, m: steps + b.ends, rows: b.rows).first?.inputs.count ?? 1
    }

    /// Whether a sweep over n inputs runs each input's path in one op (Sequential+CNNPath:
    /// a small CNN on the CPU backend, fused and rows-outer, plain IG). Bitwise the sums of
    /// the batches. Only with at least 4 inputs per worker thread, as it shares out whole
    /// inputs: with fewer the batches keep every thread busy.
    public func runsWhole(_ model: any AttributionModel, count n: Int) -> Bool {
        guard wholePath, rowsOuter, density == nil, let (seq, f) = sequentialLayer(model, fused(model)), seq.layers[f] is Conv2d else { return false }
        let threads = model.device.info.blas?.threads ?? 1
        return n >= 4 * threads && seq.runsIGPathWhole(from: f + 1)
    }

    /// The chunks of a whole-path sweep: whole inputs, about `wholeChunkRows` rows each, so
    /// that progress and Ctrl-C come several times a second.
    func wholeChunks(n: Int) -> [Chunk] {
        let per = max(1, wholeChunkRows / max(1, steps))
        return stride(from: 0, to: n, by: per).map { Chunk(inputs: $0..<min(n, $0 + per), steps: 0..<steps, completesInputs: true) }
    }

    /// The steps a sweep adds after the path's m for its ends, and the rows a batch holds.
    /// On the CPU backend the ends ride along in the path's batches as steps m (α = 1) and
    /// m + 1 (α = 0), with weight 0 and no upstream gradient, and their outputs are F(x) and
    /// F(x′) for the delta: a separate pass over the ends read every weight again for a few
    /// rows, on one input of the wide MLP at m = 64 a fifth of the sweep. A batch then holds
    /// as many inputs as without the ends, each 2 rows longer (at most a fifth more rows, as
    /// m ≥ 8), so no input's steps are split that were not before. Elsewhere (a GPU, where
    /// the pass is cheap and reading outputs back per batch is not), with m < 8, or where one
    /// input's steps fill a batch, the ends get their own pass.
    func batching(on device: any Device, rows: Int) -> (ends: Int, rows: Int) {
        guard device is CPUDevice, steps >= 8, steps + 2 <= rows else { return (0, rows) }
        return (2, (rows / steps) * (steps + 2))
    }

    /// Whether a sweep's Sequential CNN runs its convolutions by bands rows-outer, and whether
    /// its path is held rows-outer (banded, or for the whole-path op); both false on the graph path.
    func layouts(_ model: any AttributionModel, whole: Bool) -> (banded: Bool, rowsOuter: Bool) {
        guard let (seq, f) = sequentialLayer(model, fused(model)), rowsOuter else { return (false, false) }
        let banded = seq.rowsOuterSpan(from: f + 1) != nil
        return (banded, whole || banded)
    }

    /// The sweep graph's Linear head where a sweep takes it as weight rows (`gatherHead`): plain
    /// IG on the graph path, the head's input computed by the graph from what the batches feed.
    public func head(_ model: any AttributionModel) -> LinearHead? {
        guard gatherHead, density == nil, !layouts(model, whole: runsWhole(model, count: Int.max)).rowsOuter else { return nil }
        return model.sweepExecutor.graph.linearHead(fed: feeds(model).union(pathActivation(model).map { [$0.output] } ?? []))
    }

    /// Whether a sweep over n inputs runs its batches in thread tiles (`threadTiles`), as its
    /// first batch does.
    public func runsInThreadTiles(_ model: any AttributionModel, count n: Int) -> Bool {
        guard steps >= 1, n >= 1, !runsWhole(model, count: n), !layouts(model, whole: false).rowsOuter else { return false }
        let b = batching(on: model.device, rows: plan(for: model).rows)
        guard let first = chunks(n: n, m: steps + b.ends, rows: b.rows).first else { return false }
        return tiles(of: first, steps: steps + b.ends, on: model.device).count > 1
    }

    /// The tiles a batch of the graph path runs as: its inputs cut into one contiguous share
    /// per thread where `threadTiles` applies, else the batch whole.
    func tiles(of c: Chunk, steps mRun: Int, on device: any Device) -> [Chunk] {
        threadTiles ? AttribMethods.threadTiles(c, steps: mRun, on: device) : [c]
    }

    /// [a rows r; b rows r], [2·r.count, …]: both ends of a block of inputs for one pass.
    static func stacked(_ a: Tensor, _ b: Tensor, rows r: Range<Int>) throws -> Tensor {
        let k = r.count
        let both = try Tensor(shape: [2 * k] + a.shape.dropFirst(), dtype: a.dtype, on: a.device)   // every row written below
        try a.rows(r).copy(into: both.rows(0..<k))
        try b.rows(r).copy(into: both.rows(k..<2 * k))
        return both
    }

    /// Attributions for host inputs x ([n] + model input shape, flattened) toward
    /// `targets[i]` (one or more classes per input).
    public func attribute(_ model: any AttributionModel, inputs x: [Double], count n: Int, baseline: Baseline,
                          targets: [[Int]], control: SweepControl = SweepControl()) throws -> AttributionResult {
        let clock = ContinuousClock(), start = clock.now
        try checkInputs(x, n: n, model: model)
        let tCount = try checkTargets(targets, n: n, model: model)
        let (alphas, baseWeights) = try rule.nodes(steps)
        let weights = density.map { p in zip(alphas, baseWeights).map { $1 * p.cdf($0) } } ?? baseWeights
        let d = model.inputSize, m = steps, device = model.device, dtype = model.dtype
        let classes = model.outputShape.reduce(1, *)
        let (bValues, bRows) = try baseline.resolve(inputs: x, n: n, sampleShape: model.inputShape)
        try checkInputs(bValues, n: bRows, model: model, what: "baseline")
        let bAll = bRows == n ? bValues : (0..<n).flatMap { _ in bValues }

        let fused = self.fused(model)
        let seqFused = sequentialLayer(model, fused)
        let start0 = seqFused.map { $0.1 + 1 } ?? 0
        // The graph the batches run, from the cut where the path lives: the model's input, or
        // the first affine layer's output.
        let exec = model.sweepExecutor, output = exec.graph.outputs[0], inputName = model.inputName
        let cut = fused?.output ?? inputName
        // The input's other readers (a skip add of x) read the interpolated input on every step.
        let side = fused?.sideReaders ?? false
        let plan = plan(for: model)
        let xT = try Tensor(x, shape: [n] + model.inputShape, dtype: dtype, on: device)
        let bT = try Tensor(bAll, shape: [n] + model.inputShape, dtype: dtype, on: device)
        // The steps the batches run: the path's m, then its ends where they ride along.
        let whole = runsWhole(model, count: n)
        let (endCount, batchRows) = whole ? (0, plan.rows) : batching(on: device, rows: plan.rows), mRun = m + endCount
        let alphaT = try Tensor(alphas + [1, 0].prefix(endCount), shape: [mRun], dtype: dtype, on: device)
        let weightT = try Tensor(weights + [0, 0].prefix(endCount), shape: [mRun], dtype: dtype, on: device)
        // F(x) and F(x′) per input, [n, classes] each, filled from the batches' end steps.
        var fx = [Double](repeating: .nan, count: endCount > 0 ? n * classes : 0), fb = fx

        // Where the path lives: the inputs, or the first affine layer's outputs.
        var pathX: Tensor, pathB: Tensor
        if let f = fused {
            // Inputs and baselines through the first layer in one pass per block, [x; x′], so
            // its weight is read once for both (on one input, two one-row passes otherwise);
            // blocks of plan.rows / 2 inputs keep the temporaries to a batch's size.
            let outShape = exec.graph.types[f.output]!.shape
            pathX = try Tensor(shape: [n] + outShape, dtype: dtype, on: device)   // every row written below
            pathB = try Tensor(shape: [n] + outShape, dtype: dtype, on: device)
            let per = max(1, plan.rows / 2)
            for lo in stride(from: 0, to: n, by: per) {
                let r = lo..<min(n, lo + per), k = r.count
                let first = try exec.forward([inputName: Self.stacked(xT, bT, rows: r)], outputs: [cut])[cut]!
                try first.rows(0..<k).copy(into: pathX.rows(r))
                try first.rows(k..<2 * k).copy(into: pathB.rows(r))
            }
        } else {
            pathX = xT; pathB = bT
        }
        // The path rows-outer ([n, H, C, W]) where the layers after the first run so: one
        // transpose per input here and one per input at the end, none per batch.
        // The whole path takes it rows-outer too, whether or not its convolutions run by bands.
        let seq = seqFused?.0
        let (banded, rowsOuter) = layouts(model, whole: whole)
        if rowsOuter { pathX = try pathX.transposed12(); pathB = try pathB.transposed12() }
        let pathShape = Array(pathX.shape.dropFirst())
        let accumulators = try (0..<tCount).map { _ in try Tensor.zeros([n] + pathShape, dtype: dtype, on: device) }
        // The side readers' step-weighted input gradients, [n] + input shape per target.
        let sideAccumulators = side ? try (0..<tCount).map { _ in try Tensor.zeros([n] + model.inputShape, dtype: dtype, on: device) } : []
        // Σₖ wₖ p(αₖ) F(γ(αₖ)) per input and target, for the path-weighted delta.
        var pathMeans = [Double](repeating: 0, count: n * tCount)

        let pathAct = rowsOuter ? nil : pathActivation(model)
        // The head as weight rows (`gatherHead`): the table is the head's weight with a row of
        // zeros after it, [classes + 1, in], the upstream of the end steps, which carry no gradient.
        let head = rowsOuter ? nil : self.head(model)
        let headTable: Tensor? = try head.map { h in
            let table = try Tensor.zeros([classes + 1, h.linear.inFeatures], dtype: h.linear.weight.dtype, on: device)
            try h.linear.weight.copy(into: table.rows(0..<classes))
            return table
        }
        let plan0 = whole ? wholeChunks(n: n) : chunks(n: n, m: mRun, rows: batchRows)
        let (pathXs, pathBs) = (pathX, pathB)
        /// One batch: its forward and backward, its gradients summed into the accumulators' rows
        /// of its inputs; what it adds elsewhere comes back (the ends' outputs, the path means),
        /// so that batches of disjoint inputs can run at once (thread tiles).
        func runBatch(_ c: Chunk) throws -> BatchOutcome {
            var outcome = BatchOutcome()
            let layers = start0..<(seq?.layers.count ?? 0), (xs, bs, steps) = (try pathXs.rows(c.inputs), try pathBs.rows(c.inputs), try alphaT.rows(c.steps))
            // Rows-outer, the path is built inside the first fused pass and the steps summed
            // inside the last one where the device offers it (the CPU backend, Float32 GELU).
            // Elsewhere the graph runs from the cut.
            let trace = rowsOuter ? try seq!.traceRowsOuter(pathFrom: xs, baselines: bs, alphas: steps, layers: layers) : nil
            // Where the path meets an activation first and the device fuses them, the graph runs
            // from the activation's output, and f′ waits for the step-weighted sum.
            var feed = cut, fPrime: Tensor?
            var run: GraphExecutor.Run?
            if !rowsOuter {
                var feeds: [String: Tensor] = [:]
                if side { feeds[inputName] = try xT.rows(c.inputs).pathInterpolated(baselines: bT.rows(c.inputs), alphas: steps) }
                if let pa = pathAct, let (a, d) = try xs.pathActivatedWithDerivative(pa.kind, baselines: bs, alphas: steps) {
                    feed = pa.output; fPrime = d
                    feeds[feed] = a
                } else {
                    feeds[cut] = try xs.pathInterpolated(baselines: bs, alphas: steps)
                }
                run = try exec.forward(feeds, outputs: head.map { [$0.input] }, gradientsFor: side ? [feed, inputName] : [feed])
            }
            // The outputs, or with the head as weight rows its input, [rows, in].
            let result = trace?.output ?? run![head?.input ?? output]!
            if c.steps.upperBound > m {
                // The end steps' outputs (on the CPU backend, where reading them is a copy); the
                // head, where it is taken as weight rows, runs on those rows alone.
                var endRows: [(row: Int, input: Int, step: Int)] = []
                for (k, i) in c.inputs.enumerated() {
                    for (s, step) in c.steps.enumerated() where step >= m { endRows.append((k * c.steps.count + s, i, step)) }
                }
                let out: [Double]
                if let head {
                    out = try head.linear.forward(result.gatherRows(IndexTensor(endRows.map { Int32($0.row) }, on: device))).y.doubles()
                } else {
                    let all = try result.reshaped([c.rows, classes]).doubles()
                    out = endRows.flatMap { all[($0.row * classes)..<(($0.row + 1) * classes)] }
                }
                for (j, e) in endRows.enumerated() { outcome.ends.append((e.input, e.step == m, Array(out[(j * classes)..<((j + 1) * classes)]))) }
            }
            for t in 0..<tCount {
                // The upstream gradient: one-hot at the outputs, or the targets' weight rows at the
                // head's input (the zero row for the end steps).
                var upstream: Tensor?, up: Tensor
                if let headTable {
                    var index = [Int32](repeating: Int32(classes), count: c.rows)
                    for (k, i) in c.inputs.enumerated() {
                        for (s, step) in c.steps.enumerated() where step < m { index[k * c.steps.count + s] = Int32(targets[i][t]) }
                    }
                    up = try headTable.gatherRows(IndexTensor(index, on: device))
                } else {
                    upstream = try oneHotUpstream(targets, target: t, inputs: c.inputs, perInput: c.steps.count, classes: classes,
                                                  firstStep: c.steps.lowerBound, liveSteps: m, dtype: dtype, device: device)
                    up = try upstream!.reshaped(result.shape)
                }
                let w = try weightT.rows(c.steps)
                let partial: Tensor
                if let trace { partial = try seq!.pathGradientSum(trace, upstream: up, layers: layers, weights: w) }
                else {
                    let grads = try exec.backward(run!, upstream: [head?.input ?? output: up], wrt: side ? [feed, inputName] : [feed])
                    partial = try fPrime.map { try grads[feed]!.pathWeightedSum(weights: w, times: $0) } ?? grads[feed]!.pathWeightedSum(weights: w)
                    if side { try sideAccumulators[t].rows(c.inputs).axpy(1, grads[inputName]!.pathWeightedSum(weights: w)) }
                }
                try accumulators[t].rows(c.inputs).axpy(1, partial)
                if let p = density {
                    // F along the path, for E_β[F(b)] in the delta (small: one value per row).
                    let selected: Tensor = try result.multiplying(upstream!.reshaped(result.shape))   // no head rows with a density
                    let f: [Double] = try selected.reshaped([c.rows, classes]).reduceRows(RowReduction.sum).doubles()
                    for (k, i) in c.inputs.enumerated() {
                        for (s, step) in c.steps.enumerated() where step < m {
                            outcome.means.append((i * tCount + t, baseWeights[step] * p.density(alphas[step]) * f[k * c.steps.count + s]))
                        }
                    }
                }
            }
            return outcome
        }
        var completed = 0, rowsDone = 0, interrupted = false
        for c in plan0 {
            if control.shouldStop() { interrupted = true; break }
            if whole {
                // Each input's whole path in one op; the chunk only paces progress and Ctrl-C.
                guard try seq!.igPathGradientSum(pathFrom: pathX.rows(c.inputs), baselines: pathB.rows(c.inputs), alphas: alphaT,
                                                  weights: weightT, targets: Array(targets[c.inputs]), from: start0,
                                                  into: accumulators.map { try $0.rows(c.inputs) }) else {
                    throw AttribError.invalidArgument(op: "IntegratedGradients", detail: "\(device.info.id) declined the whole-path op it had offered for \(seq!.layers[start0...].map(\.description).joined(separator: " → "))")
                }
                rowsDone += c.inputs.count * m
                completed = c.inputs.upperBound
                control.progress(rowsDone, n * m)
                continue
            }
            let tiles = rowsOuter ? [c] : self.tiles(of: c, steps: mRun, on: device)
            let outcomes = tiles.count > 1 ? try CPUDevice.eachTile(tiles.count) { try runBatch(tiles[$0]) } : [try runBatch(c)]
            for o in outcomes {
                for (i, isX, row) in o.ends {
                    if isX { fx.replaceSubrange((i * classes)..<((i + 1) * classes), with: row) }
                    else { fb.replaceSubrange((i * classes)..<((i + 1) * classes), with: row) }
                }
                for (k, v) in o.means { pathMeans[k] += v }
            }
            rowsDone += c.inputs.count * max(0, min(c.steps.upperBound, m) - c.steps.lowerBound)   // path rows only
            if c.completesInputs { completed = c.inputs.upperBound }
            control.progress(rowsDone, n * m)
        }
        if completed == 0 {
            return AttributionResult(attributions: [], shape: [0], deltas: [], completedInputs: 0, interrupted: interrupted, plan: plan,
                                     seconds: (clock.now - start).seconds, rowsEvaluated: rowsDone, fused: fused != nil)
        }

        // Attribution = (x − x') ⊙ (input gradient of the weighted sum), for the finished inputs.
        let done = 0..<completed
        let diff = try xT.rows(done).subtracting(bT.rows(done))
        var attributions: [[Double]] = []
        for t in 0..<tCount {
            var g = try accumulators[t].rows(done)
            if rowsOuter { g = try g.transposed12() }                   // back to NCHW
            if let f = fused {
                // One backward product through the first affine layer for all steps.
                let layerInput = exec.graph.types[f.layerInput]!.shape
                g = try f.layer.backward(g, Saved(input: try diff.reshaped([completed] + layerInput), output: g))
                g = try g.reshaped(diff.shape)
                if side { try g.axpy(1, sideAccumulators[t].rows(done)) }
            }
            attributions.append(try diff.multiplying(g).doubles())
        }
        // Deltas: Σ attribution − (F(x) − F(x')), or − (F(x) − E_β F(b)) when path-weighted.
        // F(x) and F(x') came with the batches where the ends rode along (`batching`); else
        // from the path's ends as the sweep holds them (after the fused first layer,
        // rows-outer where it ran so): the layers the batches ran, not a whole forward pass.
        // Both ends of a block of inputs go through in one pass, [x-ends; x′-ends], so each
        // weight is read once for both, in passes of at most max(2, plan.rows) rows, so
        // memory stays bounded however many inputs there are.
        let per = max(1, plan.rows / 2)
        for lo in stride(from: 0, to: endCount > 0 ? 0 : completed, by: per) {
            let r = lo..<min(completed, lo + per), k = r.count
            let ends = try Self.stacked(pathX, pathB, rows: r)
            let layers = start0..<(seq?.layers.count ?? 0)
            // Rows-outer for the whole path alone (no span): back to NCHW for the layers. The
            // forward-pass graph (Graph.forForwards: channels-last, Swish fused) keeps the cut.
            let forward = model.forwardSweepExecutor
            var feeds = [cut: try rowsOuter ? ends.transposed12() : ends]
            if side { feeds[inputName] = try Self.stacked(xT, bT, rows: r) }
            let out = try (banded ? seq!.traceRowsOuter(ends, layers: layers).output : forward.forward(feeds)[output]!).doubles()
            fx += out[0..<k * classes]
            fb += out[k * classes..<2 * k * classes]
        }
        var flat = [Double](), deltas = [Double]()
        for i in done {
            for t in 0..<tCount {
                let a = attributions[t][i * d..<(i + 1) * d]
                flat.append(contentsOf: a)
                let fxv = fx[i * classes + targets[i][t]], fbv = fb[i * classes + targets[i][t]]
                let reference = density == nil ? fbv : pathMeans[i * tCount + t]
                deltas.append(a.reduce(0, +) - (fxv - reference))
            }
        }
        let shape = tCount == 1 ? [completed] + model.inputShape : [completed, tCount] + model.inputShape
        return AttributionResult(attributions: flat, shape: shape, deltas: deltas, completedInputs: completed,
                                 interrupted: interrupted, plan: plan, seconds: (clock.now - start).seconds,
                                 rowsEvaluated: rowsDone, fused: fused != nil)
    }
}

/// What one batch of an IG sweep adds besides its accumulator rows (`attribute`'s runBatch).
struct BatchOutcome: Sendable {
    /// The end steps' outputs: the input, whether the row is its α = 1 end (else the baseline's), the row.
    var ends: [(Int, Bool, [Double])] = []
    /// Terms of the path-weighted delta's means: the index into them, the term.
    var means: [(Int, Double)] = []
}
