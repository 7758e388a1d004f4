import AttribCore

/// Sobol attribution over the T positions of a token sequence (d = T): the
/// design of `SobolAttribution` (N(T + 2) masks in the order [A; B; C_1; …; C_T],
/// same samplers and estimators, V = unbiased variance of f(A)), each mask
/// binarised to keep or replace tokens, and the perturbed sequences scored by a
/// caller's closure (a transformer, a classifier over token ids, …).
///
/// Binarisation (the reference has no text variant): position t keeps its token
/// where m_t ≥ `threshold` (default ½, so each token is kept with probability ½
/// under a uniform design) and becomes `replacement` otherwise. With the
/// unscrambled Sobol sequence the first design point (all zeros) replaces every
/// token and the second (all ½) keeps every token.
public struct TokenSobolAttribution: Sendable {
    public var designs: Int
    public var sampler: SamplerKind
    public var seed: UInt64
    public var estimator: TotalOrderEstimator
    public var threshold: Double
    /// Sequences per call of the scoring closure.
    public var batchSize: Int

    public init(designs: Int = 32, sampler: SamplerKind = .sobol, seed: UInt64 = 0,
                estimator: TotalOrderEstimator = .jansen, threshold: Double = 0.5, batchSize: Int = 256) {
        self.designs = designs; self.sampler = sampler; self.seed = seed
        self.estimator = estimator; self.threshold = threshold; self.batchSize = batchSize
    }

    /// The total-order index of each of the T positions of `tokens`. `score` gets a batch
    /// [B, T] of token ids, row-major, and returns B scores.
    public func explain(tokens: [Int32], replacement: Int32,
                        score: ([Int32]) throws -> [Double],
                        control: SweepControl = SweepControl()) throws -> TokenSobolResult {
        let op = "TokenSobolAttribution"
        let clock = ContinuousClock(), start = clock.now
        let t = tokens.count
        guard t >= 1 else { throw AttribError.invalidArgument(op: op, detail: "the sequence is empty") }
        guard batchSize >= 1 else { throw AttribError.invalidArgument(op: op, detail: "batch size \(batchSize); it must be at least 1") }
        guard threshold.isFinite else { throw AttribError.invalidArgument(op: op, detail: "threshold \(threshold) is not finite") }
        // The image method's checks and design, with a 1×T "grid" (d = T).
        var image = SobolAttribution(gridSize: 1, designs: designs, sampler: sampler, seed: seed, estimator: estimator)
        try image.validate(channels: 1, height: 1, width: 1)
        if sampler == .sobol || sampler == .sobolScrambled, 2 * t > SobolSequence.maxDimension {
            throw AttribError.invalidArgument(op: op, detail: "the design needs a sampler of 2·d = \(2 * t) dimensions (d = \(t) tokens), beyond the \(SobolSequence.maxDimension) dimensions of the Joe–Kuo direction table")
        }
        image.perChannel = true       // d = channels · 1² = T
        let masks = try image.masks(channels: t)
        let rows = designs * (t + 2)
        var scores = [Double](repeating: 0, count: rows)
        var done = 0, scoreTime = Duration.zero
        while done < rows {
            let b = min(batchSize, rows - done)
            var batch = [Int32](repeating: replacement, count: b * t)
            for r in 0..<b {
                for p in 0..<t where masks[(done + r) * t + p] >= threshold { batch[r * t + p] = tokens[p] }
            }
            let t0 = clock.now
            let ys = try score(batch)
            scoreTime += clock.now - t0
            guard ys.count == b else {
                throw AttribError.shapeMismatch(op: op, detail: "the scoring closure returned \(ys.count) scores for a batch of \(b) sequences")
            }
            for (r, y) in ys.enumerated() { scores[done + r] = y }
            done += b
            control.progress(done, rows)
            if done < rows, control.shouldStop() {
                return TokenSobolResult(indices: [], completed: false, rowsEvaluated: done, scores: [],
                                        scoreSeconds: scoreTime.seconds, totalSeconds: (clock.now - start).seconds)
            }
        }
        let st = image.indices(scores: scores, dimensions: t)
        return TokenSobolResult(indices: st, completed: true, rowsEvaluated: done, scores: scores,
                                scoreSeconds: scoreTime.seconds, totalSeconds: (clock.now - start).seconds)
    }
}

/// What `TokenSobolAttribution.explain` returns.
public struct TokenSobolResult: Sendable {
    /// ST_t per position (empty when interrupted).
    public var indices: [Double]
    public var completed: Bool
    public var rowsEvaluated: Int
    /// The N(T + 2) scores in mask order (empty when interrupted).
    public var scores: [Double]
    /// Seconds inside the scoring closure, and in all.
    public var scoreSeconds: Double
    public var totalSeconds: Double
}
