import AttribCore
import AttribModels

/// The gradient family of methods.md around the sample engine. Every method
/// takes host inputs [n] + the model's input shape, flattened, and one or more
/// target classes per input, and returns [n, targets] + input shape (the
/// targets axis dropped for one target).
public enum GradientMethods {
    /// Saliency |∇F(x)| (or the signed gradient), and Gradient × Input x ⊙ ∇F(x).
    public enum Plain: String, Sendable, CaseIterable { case saliency, signedGradient = "gradient", gradientTimesInput = "gradient_x_input" }

    public static func plain(_ kind: Plain, _ model: any AttributionModel, inputs x: [Double], count n: Int, targets: [[Int]],
                             batchCap: Int? = nil, control: SweepControl = SweepControl()) throws -> AttributionResult {
        let clock = ContinuousClock(), start = clock.now
        try checkInputs(x, n: n, model: model)
        _ = try checkTargets(targets, n: n, model: model)
        let d = model.inputSize
        let plan = ChunkPlan.make(for: model, cap: batchCap)
        var sweep = SampleSweep(model: model, n: n, samples: 1, targets: targets, plan: plan, control: control,
                                points: { c in Array(x[c.inputs.lowerBound * d..<c.inputs.upperBound * d]) }, weights: [1])
        if kind == .gradientTimesInput { sweep.multipliers = sweep.points }
        let out = try sweep.run()
        return try finish(out, model: model, targets: targets, plan: plan, start: start, clock: clock) { v in
            kind == .saliency ? v.map(abs) : v
        }
    }

    /// SmoothGrad's variants (Captum's nt_type): the mean of the gradients, of their
    /// squares, or their variance E[g²] − E[g]².
    public enum NoiseReduction: String, Sendable, CaseIterable { case smoothgrad, smoothgradSquared = "smoothgrad_sq", vargrad }

    /// Noise for SmoothGrad-like methods: drawn from a seed, or given as [n, samples] + input shape.
    public enum Noise: Sendable {
        case gaussian(sigma: Double, seed: UInt64)
        /// The seeded stream from its element `first` on: a unit's share of a sweep's noise
        /// (`forInputs`), drawn where it is used.
        case gaussianFrom(sigma: Double, seed: UInt64, first: Int)
        case given([Double])

        /// σ, the seed and the first element of a seeded stream; nil for given values.
        private var stream: (sigma: Double, seed: UInt64, first: Int)? {
            switch self {
            case let .gaussian(sigma, seed): return (sigma, seed, 0)
            case let .gaussianFrom(sigma, seed, first): return (sigma, seed, first)
            case .given: return nil
            }
        }

        func values(n: Int, samples: Int, d: Int) throws -> [Double] {
            if let g = stream { return gaussianDraws(n * samples * d, sigma: g.sigma, seed: g.seed, from: g.first) }
            try check(n: n, samples: samples, d: d)
            guard case .given(let v) = self else { return [] }
            return v
        }

        /// Throws where given values are not one per input, sample and value; a seeded stream
        /// has any length.
        func check(n: Int, samples: Int, d: Int) throws {
            if let c = count, c != n * samples * d {
                throw AttribError.shapeMismatch(op: "noise", detail: "\(c) noise values for \(n) inputs × \(samples) samples × \(d) values")
            }
        }

        /// How many values were given (nil for a seeded stream).
        var count: Int? { if case .given(let v) = self { return v.count } else { return nil } }

        /// The noise of one chunk's rows, [c.rows, d] in the chunk's order, as `values` lays out
        /// the whole sweep's: a Gaussian's draws for those rows alone (its stream skipped to
        /// them), or those rows of the given values. A sweep then holds a batch's noise at a
        /// time, drawn by the thread that builds the batch (thread tiles draw in parallel), not
        /// all of it up front on one.
        func rows(_ c: Chunk, samples: Int, d: Int) -> [Double] {
            if let g = stream {
                if c.steps == 0..<samples { return gaussianDraws(c.rows * d, sigma: g.sigma, seed: g.seed, from: g.first + c.inputs.lowerBound * samples * d) }
                return c.inputs.flatMap { i in gaussianDraws(c.steps.count * d, sigma: g.sigma, seed: g.seed, from: g.first + (i * samples + c.steps.lowerBound) * d) }
            }
            guard case .given(let v) = self else { return [] }
            return c.inputs.flatMap { i in v[((i * samples + c.steps.lowerBound) * d)..<((i * samples + c.steps.upperBound) * d)] }
        }

        /// The noise of inputs `r` of a sweep, as the whole sweep would draw it for them: a unit
        /// of a sharded or resumed sweep gets the same numbers as a one-process run.
        public func forInputs(_ r: Range<Int>, samples: Int, d: Int) -> Noise {
            if let g = stream { return .gaussianFrom(sigma: g.sigma, seed: g.seed, first: g.first + r.lowerBound * samples * d) }
            guard case .given(let v) = self else { return self }
            return .given(Array(v[(r.lowerBound * samples * d)..<(r.upperBound * samples * d)]))
        }
    }

    /// SmoothGrad: gradients (signed, as Captum's NoiseTunnel around Saliency(abs=False))
    /// at x + ε, ε ~ N(0, σ²I), reduced over `samples` draws.
    public static func smoothGrad(_ model: any AttributionModel, inputs x: [Double], count n: Int, targets: [[Int]],
                                  samples: Int, noise: Noise, reduction: NoiseReduction = .smoothgrad,
                                  batchCap: Int? = nil, control: SweepControl = SweepControl()) throws -> AttributionResult {
        let clock = ContinuousClock(), start = clock.now
        try checkInputs(x, n: n, model: model)
        _ = try checkTargets(targets, n: n, model: model)
        guard samples >= 1 else { throw AttribError.invalidArgument(op: "smoothgrad", detail: "samples must be ≥ 1, got \(samples)") }
        let d = model.inputSize
        try noise.check(n: n, samples: samples, d: d)
        let plan = ChunkPlan.make(for: model, cap: batchCap)
        let sweep = SampleSweep(model: model, n: n, samples: samples, targets: targets, plan: plan, control: control,
                                points: { c in noisyRows(x, noise.rows(c, samples: samples, d: d), c, d: d) },
                                weights: Array(repeating: 1 / Double(samples), count: samples), squares: reduction != .smoothgrad)
        let out = try sweep.run()
        let squares = try out.squareSums.map { try $0.map { try $0.doubles() } }
        return try finish(out, model: model, targets: targets, plan: plan, start: start, clock: clock) { mean, t in
            switch reduction {
            case .smoothgrad: return mean
            case .smoothgradSquared: return squares![t]
            case .vargrad: return zip(squares![t], mean).map { $0 - $1 * $1 }
            }
        }
    }

    /// The draws of Expected Gradients / GradientSHAP, [n, samples] each: which
    /// baseline, which α, and (GradientSHAP) the noise on the input.
    public struct ExpectationDraws: Sendable {
        public var baselineIndex: [Int]
        public var alpha: [Double]
        public var noise: [Double]?
        public init(baselineIndex: [Int], alpha: [Double], noise: [Double]? = nil) {
            self.baselineIndex = baselineIndex; self.alpha = alpha; self.noise = noise
        }

        /// Seeded draws: uniform baseline indices and α ~ U(0, 1), plus N(0, σ²) noise when σ > 0.
        public static func random(n: Int, samples: Int, baselines: Int, d: Int, sigma: Double, seed: UInt64) -> ExpectationDraws {
            random(n: n, samples: samples, baselines: baselines, d: d, sigma: sigma, seed: seed, inputs: 0..<n)
        }

        /// The draws of inputs `r` of an n-input sweep, equal to those rows of the whole sweep's.
        public static func random(n: Int, samples: Int, baselines: Int, d: Int, sigma: Double, seed: UInt64, inputs r: Range<Int>) -> ExpectationDraws {
            ExpectationDrawPlan(n: n, samples: samples, baselines: baselines, d: d, sigma: sigma, seed: seed).draws(inputs: r)
        }
    }

    /// A sweep's Expected Gradients draws, made once and handed out per unit: the baseline indices
    /// and α of all n inputs (two numbers per sample, cheap; the index draw's rejection step makes
    /// their count uneven, so they are drawn in order), and the generator's state after them, from
    /// which each unit's noise (n·samples·d values in all) is reached by skipping.
    public struct ExpectationDrawPlan: Sendable {
        public let samples: Int, d: Int, sigma: Double
        let baselineIndex: [Int], alpha: [Double]
        let noiseStart: SplitMix64

        public init(n: Int, samples: Int, baselines: Int, d: Int, sigma: Double, seed: UInt64) {
            var rng = SplitMix64(seed: seed)
            var counter = CountingGenerator(base: rng)
            baselineIndex = (0..<n * samples).map { _ in Int.random(in: 0..<baselines, using: &counter) }
            alpha = (0..<n * samples).map { _ in Double.random(in: 0..<1, using: &counter) }
            rng.advance(by: counter.draws)
            noiseStart = rng
            self.samples = samples; self.d = d; self.sigma = sigma
        }

        /// The draws of inputs `r`.
        public func draws(inputs r: Range<Int>) -> ExpectationDraws {
            let rows = (r.lowerBound * samples)..<(r.upperBound * samples)
            let noise = sigma > 0 ? gaussianDraws(r.count * samples * d, sigma: sigma, after: noiseStart, from: r.lowerBound * samples * d) : nil
            return ExpectationDraws(baselineIndex: Array(baselineIndex[rows]), alpha: Array(alpha[rows]), noise: noise)
        }
    }

    /// Expected Gradients (no noise) and GradientSHAP (noise on x): the mean over samples
    /// of (x̃ − b) ⊙ ∇F(b + α(x̃ − b)), b from the baseline set [k] + input shape, x̃ = x + ε
    /// (Captum's GradientShap, whose difference uses the noisy input).
    public static func expectedGradients(_ model: any AttributionModel, inputs x: [Double], count n: Int, targets: [[Int]],
                                         baselineSet: [Double], baselineCount k: Int, samples: Int, draws: ExpectationDraws,
                                         batchCap: Int? = nil, control: SweepControl = SweepControl()) throws -> AttributionResult {
        let clock = ContinuousClock(), start = clock.now
        try checkInputs(x, n: n, model: model)
        try checkInputs(baselineSet, n: k, model: model, what: "baseline")
        _ = try checkTargets(targets, n: n, model: model)
        let d = model.inputSize
        guard draws.baselineIndex.count == n * samples, draws.alpha.count == n * samples,
              draws.baselineIndex.allSatisfy({ $0 >= 0 && $0 < k }), draws.noise.map({ $0.count == n * samples * d }) ?? true else {
            throw AttribError.shapeMismatch(op: "expected gradients", detail: "draws must hold \(n)×\(samples) baseline indices in 0..<\(k), as many α, and noise of \(n * samples * d) values")
        }
        func noisy(_ i: Int, _ s: Int, _ j: Int) -> Double { x[i * d + j] + (draws.noise?[(i * samples + s) * d + j] ?? 0) }
        func rows(_ c: Chunk, _ f: (Int, Int, Int) -> Double) -> [Double] { chunkRows(c, d: d, f) }
        let plan = ChunkPlan.make(for: model, cap: batchCap)
        let sweep = SampleSweep(
            model: model, n: n, samples: samples, targets: targets, plan: plan, control: control,
            points: { c in rows(c) { i, s, j in
                let b = baselineSet[draws.baselineIndex[i * samples + s] * d + j], a = draws.alpha[i * samples + s]
                return b + a * (noisy(i, s, j) - b)
            } },
            multipliers: { c in rows(c) { i, s, j in noisy(i, s, j) - baselineSet[draws.baselineIndex[i * samples + s] * d + j] } },
            weights: Array(repeating: 1 / Double(samples), count: samples))
        return try finish(try sweep.run(), model: model, targets: targets, plan: plan, start: start, clock: clock) { v in v }
    }

    /// Stochastic path-sampled IG, for comparison with the deterministic sum: the mean
    /// over samples of (x − b_β) ⊙ ∇F(b_β + t(x − b_β)), β ~ p, t ~ U(0, 1), b_β = x' + β(x − x').
    public static func stochasticPathSampledIG(_ model: any AttributionModel, inputs x: [Double], count n: Int, baseline: Baseline,
                                               targets: [[Int]], density: PathDensity, samples: Int, seed: UInt64,
                                               batchCap: Int? = nil, control: SweepControl = SweepControl()) throws -> AttributionResult {
        let clock = ContinuousClock(), start = clock.now
        try checkInputs(x, n: n, model: model)
        _ = try checkTargets(targets, n: n, model: model)
        let d = model.inputSize
        let (bv, bRows) = try baseline.resolve(inputs: x, n: n, sampleShape: model.inputShape)
        var rng = SplitMix64(seed: seed)
        let beta = (0..<n * samples).map { _ in density.sample(&rng) }
        let t = (0..<n * samples).map { _ in Double.random(in: 0..<1, using: &rng) }
        func base(_ i: Int, _ j: Int) -> Double { bv[(bRows == 1 ? 0 : i) * d + j] }
        func rows(_ c: Chunk, _ f: (Int, Int, Int) -> Double) -> [Double] { chunkRows(c, d: d, f) }
        let plan = ChunkPlan.make(for: model, cap: batchCap)
        let sweep = SampleSweep(
            model: model, n: n, samples: samples, targets: targets, plan: plan, control: control,
            points: { c in rows(c) { i, s, j in
                let b = base(i, j) + beta[i * samples + s] * (x[i * d + j] - base(i, j))
                return b + t[i * samples + s] * (x[i * d + j] - b)
            } },
            multipliers: { c in rows(c) { i, s, j in (1 - beta[i * samples + s]) * (x[i * d + j] - base(i, j)) } },
            weights: Array(repeating: 1 / Double(samples), count: samples))
        return try finish(try sweep.run(), model: model, targets: targets, plan: plan, start: start, clock: clock) { v in v }
    }

    /// Noise rows x_i + ε_{i,s} of a chunk.
    /// x + ε for a chunk's rows, ε the chunk's own noise ([c.rows, d], Noise.rows).
    static func noisyRows(_ x: [Double], _ eps: [Double], _ c: Chunk, d: Int) -> [Double] {
        let (i0, s0, per) = (c.inputs.lowerBound, c.steps.lowerBound, c.steps.count)
        return chunkRows(c, d: d) { i, s, j in x[i * d + j] + eps[((i - i0) * per + s - s0) * d + j] }
    }

    /// Downloads the finished inputs' sums, applies `transform` per target, and lays them out as [n, targets] + shape.
    static func finish(_ out: SampleSweep.Output, model: any AttributionModel, targets: [[Int]], plan: ChunkPlan,
                       start: ContinuousClock.Instant, clock: ContinuousClock,
                       _ transform: ([Double], Int) throws -> [Double]) throws -> AttributionResult {
        let d = model.inputSize, tCount = targets[0].count, done = out.completed
        var flat = [Double]()
        if done > 0 {
            let perTarget = try (0..<tCount).map { t in try transform(try out.sums[t].rows(0..<done).doubles(), t) }
            for i in 0..<done { for t in 0..<tCount { flat.append(contentsOf: perTarget[t][i * d..<(i + 1) * d]) } }
        }
        let shape = tCount == 1 ? [done] + model.inputShape : [done, tCount] + model.inputShape
        return AttributionResult(attributions: flat, shape: shape, deltas: nil, completedInputs: done, interrupted: out.interrupted,
                                 plan: plan, seconds: (clock.now - start).seconds, rowsEvaluated: out.rows, fused: false)
    }

    static func finish(_ out: SampleSweep.Output, model: any AttributionModel, targets: [[Int]], plan: ChunkPlan,
                       start: ContinuousClock.Instant, clock: ContinuousClock, _ transform: ([Double]) throws -> [Double]) throws -> AttributionResult {
        try finish(out, model: model, targets: targets, plan: plan, start: start, clock: clock) { v, _ in try transform(v) }
    }
}
