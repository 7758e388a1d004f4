import AttribCore
import AttribModels

/// Sobol attribution (Fel et al., "Look at the Variance! Efficient Black-box
/// Explanations with Sobol-based Sensitivity Analysis", NeurIPS 2021): total-order
/// Sobol indices of the model's score with respect to the cells of an s×s grid of
/// masks, from forward passes only.
///
/// Steps (docs: ../shared/specs/methods.md; conventions of the authors' code,
/// github.com/fel-thomas/Sobol-Attribution-Method, noted per step):
/// 1. d = s² mask dimensions (c·s² with `perChannel`), N = `designs` (a power of two).
/// 2. N points of dimension 2d from `sampler` (default unscrambled Sobol, scipy's
///    `qmc.Sobol(2d, scramble=False).random(N)`, as the reference's ScipySobolSequence).
/// 3. A = first d columns, B = last d, C_i = A with column i from B; the N(d + 2) masks
///    in the reference's order [A; B; C_1; …; C_d] (sampling.py).
/// 4. Each mask upsampled to the input (nearest by default: torch `interpolate`),
///    and applied (torch_perturbations.py): inpainting x·M + (1 − M)·x₀, blur (x₀ =
///    `cv2.blur(x, (k, k))`), amplitude x·(M − ½)·σ (the code's formula; its docstring
///    says x + (M − ½)·σ).
/// 5. The score of every perturbed input: the model's output for the target (the
///    reference's `model(x)[:, label]`), or its softmax probability.
/// 6. ST_i by `estimator` with V = the unbiased variance of f(A) alone (estimators.py:
///    `sum((a − f0)²)/(N − 1)`); Jansen: ST_i = Σ_n (f(A_n) − f(C_i,n))² / (2N·V).
///    SALib differs: its V is the population variance of f(A) and f(B) together
///    (`SobolEstimators.variance`), and its design interleaves the rows per base point.
///    f(B) is evaluated (N(d + 2) passes, as the reference) though Jansen does not use it.
///    Homma here equals the reference's Homma. Janon and Glen are self-normalised and
///    follow their papers (`TotalOrderEstimator`); the reference's versions carry extra
///    N/(N − 1) factors, and its "Saltelli" estimator is a copy of its Homma, whereas
///    `.saltelli` is Saltelli 2010 (e): mean(y(y − y'))/V. Where V ≤ machine epsilon
///    (a constant score) indices are 0, where the reference returns NaN.
/// 7. The s×s map resized to the input: bicubic as the reference (`cv2.resize`,
///    INTER_CUBIC) or nearest.
public struct SobolAttribution: Sendable {
    /// How the masks perturb the input.
    public enum Perturbation: Sendable, Equatable {
        /// x·M + (1 − M)·x₀ with x₀ the constant `baseline` (the reference: 0).
        case inpainting(baseline: Double)
        /// x·M + (1 − M)·blur(x), blur = `cv2.blur` with a k×k box (the reference's
        /// `blurring(x, sigma=10)` passes its sigma as k).
        case blur(kernelSize: Int)
        /// x·(M − ½)·σ.
        case amplitude(sigma: Double)
    }

    /// The score whose variance is decomposed.
    public enum Score: String, Sendable, CaseIterable {
        /// The model's output for the target, as it comes (the reference).
        case output
        /// softmax(output)[target].
        case probability
    }

    public var gridSize: Int
    public var designs: Int
    public var sampler: SamplerKind
    public var seed: UInt64
    public var perturbation: Perturbation
    public var estimator: TotalOrderEstimator
    public var perChannel: Bool
    public var maskUpsampling: MaskUpsampling
    public var mapResize: ImageResampling.MapResize
    public var score: Score
    /// Caps the rows of a device batch (the plan is otherwise sized from memory).
    public var batchCap: Int?
    /// Overrides the memory budget of the plan, in bytes.
    public var memoryBudget: Int?

    public init(gridSize: Int = 8, designs: Int = 32, sampler: SamplerKind = .sobol, seed: UInt64 = 0,
                perturbation: Perturbation = .inpainting(baseline: 0), estimator: TotalOrderEstimator = .jansen,
                perChannel: Bool = false, maskUpsampling: MaskUpsampling = .nearest,
                mapResize: ImageResampling.MapResize = .bicubic, score: Score = .output,
                batchCap: Int? = nil, memoryBudget: Int? = nil) {
        self.gridSize = gridSize; self.designs = designs; self.sampler = sampler; self.seed = seed
        self.perturbation = perturbation; self.estimator = estimator; self.perChannel = perChannel
        self.maskUpsampling = maskUpsampling; self.mapResize = mapResize; self.score = score
        self.batchCap = batchCap; self.memoryBudget = memoryBudget
    }

    /// Forward passes per input: N(d + 2).
    public func passesPerInput(channels: Int) -> Int { designs * (dimensions(channels: channels) + 2) }

    func dimensions(channels: Int) -> Int { (perChannel ? channels : 1) * gridSize * gridSize }

    /// Checks the settings against an input [c, h, w].
    func validate(channels c: Int, height h: Int, width w: Int) throws {
        let op = "SobolAttribution"
        guard designs >= 2, designs & (designs - 1) == 0 else {
            throw AttribError.invalidArgument(op: op, detail: "nb_design N = \(designs) is not a power of two (≥ 2); the Sobol design is only balanced for N = 2^k, e.g. N = \(SaltelliDesign.nextPowerOfTwo(max(designs, 2)))")
        }
        guard gridSize >= 1, gridSize <= h, gridSize <= w else {
            throw AttribError.invalidArgument(op: op, detail: "grid \(gridSize)×\(gridSize) is larger than the input \(h)×\(w) (or below 1); choose a grid of at most \(min(h, w))")
        }
        let dims = 2 * dimensions(channels: c)
        if sampler == .sobol || sampler == .sobolScrambled, dims > SobolSequence.maxDimension {
            throw AttribError.invalidArgument(op: op, detail: "the design needs a sampler of 2·d = \(dims) dimensions (d = \(perChannel ? "\(c) channels × " : "")\(gridSize)² mask cells), beyond the \(SobolSequence.maxDimension) dimensions of the Joe–Kuo direction table; use a smaller grid\(perChannel ? " or shared masks (perChannel = false)" : "")")
        }
        switch perturbation {
        case .inpainting(let b): guard b.isFinite else { throw AttribError.invalidArgument(op: op, detail: "inpainting baseline \(b) is not finite") }
        case .blur(let k): guard k >= 1 else { throw AttribError.invalidArgument(op: op, detail: "blur kernel size \(k); it must be at least 1") }
        case .amplitude(let s): guard s.isFinite else { throw AttribError.invalidArgument(op: op, detail: "amplitude sigma \(s) is not finite") }
        }
    }

    /// The N(d + 2) masks, row-major [N(d + 2), mc, s, s] (mc = c with `perChannel`, else 1),
    /// in the order [A; B; C_1; …; C_d].
    public func masks(channels c: Int) throws -> [Double] {
        let d = dimensions(channels: c), n = designs
        let points = try sampler.sampler(seed: seed).points(count: n, dimensions: 2 * d)
        var out = [Double](repeating: 0, count: n * (d + 2) * d)
        for k in 0..<n {
            for j in 0..<d {
                out[k * d + j] = points[k * 2 * d + j]               // A
                out[(n + k) * d + j] = points[k * 2 * d + d + j]     // B
            }
        }
        for i in 0..<d {
            let base = (2 + i) * n * d
            for k in 0..<n {
                for j in 0..<d { out[base + k * d + j] = points[k * 2 * d + j] }
                out[base + k * d + i] = points[k * 2 * d + d + i]
            }
        }
        return out
    }

    /// Total-order indices from the N(d + 2) scores of one input, in mask order.
    public func indices(scores y: [Double], dimensions d: Int) -> [Double] {
        let n = designs
        let a = Array(y[0..<n])
        let mean = a.reduce(0, +) / Double(n)
        var v = 0.0
        for t in a { v += (t - mean) * (t - mean) }
        v /= Double(n - 1)
        return (0..<d).map { i in estimator.estimate(a: a, ab: Array(y[(2 + i) * n ..< (3 + i) * n]), variance: v) }
    }

    /// The rows of a forward-only batch: the plan of `ChunkPlan` without what only the
    /// backward pass keeps (gradients, saved activations beyond the live pair, argmax).
    public static func forwardPlan(for model: any AttributionModel, cap: Int? = nil, budget: Int? = nil) -> ChunkPlan {
        ChunkPlan.make(for: model.forwardSweepExecutor.graph, backward: false, on: model.device, dtype: model.dtype, cap: cap, budget: budget)
    }

    /// Explains `inputs` (n × the model's [c, h, w], row-major) for one target class each.
    public func explain(model: any AttributionModel, inputs x: [Double], targets: [Int],
                        control: SweepControl = SweepControl()) throws -> SobolResult {
        let clock = ContinuousClock(), start = clock.now
        let op = "SobolAttribution"
        guard model.inputShape.count == 3 else {
            throw AttribError.shapeMismatch(op: op, detail: "the model's input shape is \(model.inputShape); Sobol attribution on images needs [c, h, w] (use TokenSobolAttribution for token sequences)")
        }
        let (c, h, w) = (model.inputShape[0], model.inputShape[1], model.inputShape[2])
        try validate(channels: c, height: h, width: w)
        let n = targets.count
        try checkInputs(x, n: n, model: model)
        _ = try checkTargets(targets.map { [$0] }, n: n, model: model)
        let device = model.device, dtype = model.dtype
        let s = gridSize, mc = perChannel ? c : 1, d = dimensions(channels: c), perInput = passesPerInput(channels: c)
        let classes = model.outputShape.reduce(1, *)

        let maskTensor = try Tensor(try masks(channels: c), shape: [perInput, mc, s, s], dtype: dtype, on: device)
        let inputTensor = try Tensor(x, shape: [n, c, h, w], dtype: dtype, on: device)
        // x₀ per input (blur), one constant, or none (amplitude).
        var baseline: Tensor?
        var kind = MaskPerturbation.inpainting, sigma = 1.0
        switch perturbation {
        case .inpainting(let b):
            baseline = try Tensor([b], shape: [1], dtype: dtype, on: device)
        case .blur(let k):
            var blurred = [Double](); blurred.reserveCapacity(x.count)
            for i in 0..<n {
                blurred += try ImageResampling.boxBlur(Array(x[i * c * h * w ..< (i + 1) * c * h * w]), channels: c, height: h, width: w, kernelSize: k)
            }
            baseline = try Tensor(blurred, shape: [n, c, h, w], dtype: dtype, on: device)
        case .amplitude(let sg):
            kind = .amplitude; sigma = sg
        }

        let plan = Self.forwardPlan(for: model, cap: batchCap, budget: memoryBudget)
        let totalRows = n * perInput
        var scores = [Double](repeating: 0, count: totalRows)
        var indexMaps: [Double] = [], maps: [Double] = []
        var forward = Duration.zero
        var done = 0, completed = 0, interrupted = false
        while done < totalRows {
            let rows = min(plan.rows, totalRows - done)
            let batch = try Tensor(shape: [rows, c, h, w], dtype: dtype, on: device)
            var r = done
            while r < done + rows {                                // one segment per input
                let i = r / perInput, k = r % perInput
                let len = min(perInput - k, done + rows - r)
                let xi = try inputTensor.rows(i..<(i + 1))
                let base = try baseline.map { $0.shape[0] == n ? try $0.rows(i..<(i + 1)) : $0 }
                try xi.maskPerturb(masks: try maskTensor.rows(k..<(k + len)), kind, baseline: base, sigma: sigma,
                                   mode: maskUpsampling, into: try batch.rows((r - done)..<(r - done + len)))
                r += len
            }
            try device.synchronize()
            let t0 = clock.now
            var out = try model.outputs(batch)
            if score == .probability { out = try out.reshaped([rows, classes]).softmax() }
            let values = try out.doubles()
            forward += clock.now - t0
            for row in 0..<rows {
                let g = done + row
                scores[g] = values[row * classes + targets[g / perInput]]
            }
            done += rows
            while completed < n, (completed + 1) * perInput <= done {
                let st = indices(scores: Array(scores[completed * perInput ..< (completed + 1) * perInput]), dimensions: d)
                indexMaps += st
                maps += try ImageResampling.resize(st, channels: mc, gridHeight: s, gridWidth: s, height: h, width: w, mapResize)
                completed += 1
            }
            control.progress(done, totalRows)
            if done < totalRows, control.shouldStop() {
                interrupted = true
                break
            }
        }
        let total = clock.now - start
        return SobolResult(indices: indexMaps, indexShape: [completed, mc, s, s], maps: maps, mapShape: [completed, mc, h, w],
                           scores: Array(scores[0..<(completed * perInput)]),
                           completedInputs: completed, interrupted: interrupted, plan: plan,
                           forwardPasses: completed * perInput, rowsEvaluated: done,
                           forwardSeconds: forward.seconds, totalSeconds: total.seconds)
    }
}

/// What `SobolAttribution.explain` returns.
public struct SobolResult: Sendable {
    /// Total-order indices [inputs, mc, s, s] (mc = 1 unless per-channel masks).
    public var indices: [Double]
    public var indexShape: [Int]
    /// The indices resized to the input, [inputs, mc, h, w].
    public var maps: [Double]
    public var mapShape: [Int]
    /// The scores f of the finished inputs, [inputs, N(d + 2)] in mask order
    /// [A; B; C_1; …; C_d], for other estimators (`indices(scores:dimensions:)`).
    public var scores: [Double]
    /// Inputs finished (all unless interrupted).
    public var completedInputs: Int
    public var interrupted: Bool
    public var plan: ChunkPlan
    /// Forward passes of the finished inputs (N(d + 2) each).
    public var forwardPasses: Int
    /// Rows evaluated, those of an interrupted input's partial work included.
    public var rowsEvaluated: Int
    /// Seconds in the model's forward passes (device work and reading the scores back).
    public var forwardSeconds: Double
    /// Seconds in all.
    public var totalSeconds: Double
    /// Seconds outside the forward passes: designs, uploads, masks and perturbation,
    /// estimators and resizes.
    public var otherSeconds: Double { totalSeconds - forwardSeconds }
    /// The share of the time outside the forward passes.
    public var outsideForwardShare: Double { totalSeconds > 0 ? otherSeconds / totalSeconds : 0 }
    /// Forward passes per second of forward time.
    public var forwardPassesPerSecond: Double { forwardSeconds > 0 ? Double(rowsEvaluated) / forwardSeconds : 0 }
}

