/// Times every candidate GEMM parameter set on an OpenCL device, per dtype and
/// transpose combination, and keeps the fastest that also computes the right product.
public enum GEMMTuner {
    public struct Trial: Sendable {
        public var variant: GEMMVariant
        public var parameters: GEMMParameters
        /// GFLOP/s, or nil when the set was rejected (see `problem`).
        public var gflops: Double?
        public var problem: String?
        /// Wall time of the trial: the program's build, the check and the timing.
        public var seconds = 0.0
    }

    /// Runs the trials of one variant at size×size×size and stores the winner in the
    /// tuning cache. Each candidate is first checked on an awkward shape (edge tiles,
    /// alpha and beta) against the CPU backend; a wrong one is never chosen.
    public static func tune(_ device: OpenCLDevice, size: Int, variant: GEMMVariant,
                            candidates: [GEMMParameters]? = nil, budgetSeconds: Double? = nil,
                            progress: (Trial) -> Void = { _ in }) throws -> (best: Trial?, trials: [Trial]) {
        let previous = device.currentGEMMParameters(variant)
        var trials: [Trial] = []
        let clock = ContinuousClock(), tuningStarted = clock.now
        for p in candidates ?? GEMMParameters.candidates(for: device.info.kind) {
            var trial = Trial(variant: variant, parameters: p)
            let started = clock.now
            // The budget bounds the search: once spent, the remaining candidates are
            // reported untried (the list puts the likeliest first).
            if let budgetSeconds, (started - tuningStarted).seconds >= budgetSeconds {
                trial.problem = "not tried: the tuning budget of \(Int(budgetSeconds)) s was spent"
            } else if let why = p.problem(on: device.info, dtype: variant.dtype) {
                trial.problem = why
            } else {
                do {
                    try device.setGEMMParameters(p, for: variant)
                    if let err = try verify(device, variant) {
                        trial.problem = err
                    } else {
                        trial.gflops = try GEMMBenchmark.measure(on: device, m: size, n: size, k: size, dtype: variant.dtype,
                                                                 transA: variant.transA, transB: variant.transB, minSeconds: 0.3,
                                                                 checkAgainstCPU: false).gflops
                    }
                } catch {
                    trial.problem = "\(error)"
                }
            }
            trial.seconds = (clock.now - started).seconds
            trials.append(trial)
            progress(trial)
        }
        let best = trials.filter { $0.gflops != nil }.max { $0.gflops! < $1.gflops! }
        if let best {
            try device.setGEMMParameters(best.parameters, for: variant)
            try GEMMTuningCache.store(best.parameters, gflops: best.gflops!, variant: variant, for: device.info)
        } else {
            try device.setGEMMParameters(previous, for: variant)
        }
        return (best, trials)
    }

    /// nil when the current parameters give the CPU backend's product on 67×45×37
    /// (edge tiles everywhere) with alpha = 1.5 and beta = 0.5; else what differs.
    static func verify(_ device: OpenCLDevice, _ v: GEMMVariant) throws -> String? {
        let (m, n, k) = (67, 45, 37)
        var rng = SplitMix64(seed: 7)
        let av = rng.uniform(k * m), bv = rng.uniform(n * k), cv = rng.uniform(m * n)
        func run(_ d: any Device) throws -> [Double] {
            let c = try Tensor(cv, shape: [m, n], dtype: v.dtype, on: d)
            try Tensor(av, shape: v.transA ? [k, m] : [m, k], dtype: v.dtype, on: d).matmul(
                Tensor(bv, shape: v.transB ? [n, k] : [k, n], dtype: v.dtype, on: d), transposeSelf: v.transA, transposeOther: v.transB,
                alpha: 1.5, beta: 0.5, into: c)
            return try c.doubles()
        }
        let got = try run(device), want = try run(CPUDevice.shared)
        // Entries are sums of k products of values in [-1, 1], scaled by 1.5, plus 0.5·C:
        // each backend's rounding error is below (k + 2)·u·(1.5k + 0.5); two of them differ by twice that.
        let bound = Double(k + 2) * v.dtype.unitRoundoff * (1.5 * Double(k) + 0.5) * 2
        for i in got.indices where !(abs(got[i] - want[i]) <= bound) {
            return "wrong product: entry \(i) is \(got[i]), expected \(want[i])"
        }
        return nil
    }
}
