/// Times every candidate GEMM parameter set on an OpenCL device and keeps the
/// fastest that also computes the right product.
public enum GEMMTuner {
    public struct Trial: Sendable {
        public var parameters: GEMMParameters
        /// GFLOP/s, or nil when the set was rejected (see `problem`).
        public var gflops: Double?
        public var problem: String?
    }

    /// Runs the trials at size×size×size and stores the winner in the tuning
    /// cache. Each candidate is first checked on an awkward shape (edge tiles,
    /// transposes) against the CPU backend; a wrong one is never chosen.
    public static func tune(_ device: OpenCLDevice, size: Int, dtype: DType = .float32,
                            candidates: [GEMMParameters] = GEMMParameters.candidates,
                            progress: (Trial) -> Void = { _ in }) throws -> (best: Trial?, trials: [Trial]) {
        let previous = device.currentGEMMParameters(dtype: dtype)
        var trials: [Trial] = []
        for p in candidates {
            var trial = Trial(parameters: p)
            if let why = p.problem(on: device.info, dtype: dtype) {
                trial.problem = why
            } else {
                do {
                    try device.setGEMMParameters(p, dtype: dtype)
                    if let err = try verify(device, dtype: dtype) {
                        trial.problem = err
                    } else {
                        trial.gflops = try GEMMBenchmark.measure(on: device, m: size, n: size, k: size, dtype: dtype, minSeconds: 0.3).gflops
                    }
                } catch {
                    trial.problem = "\(error)"
                }
            }
            trials.append(trial)
            progress(trial)
        }
        let best = trials.filter { $0.gflops != nil }.max { $0.gflops! < $1.gflops! }
        if let best {
            try device.setGEMMParameters(best.parameters, dtype: dtype)
            try GEMMTuningCache.store(best.parameters, gflops: best.gflops!, dtype: dtype, for: device.info)
        } else {
            try device.setGEMMParameters(previous, dtype: dtype)
        }
        return (best, trials)
    }

    /// nil when the current parameters give the CPU backend's product on
    /// 67×45×37 with both operands transposed and beta = 0.5; else what differs.
    static func verify(_ device: OpenCLDevice, dtype: DType) throws -> String? {
        let (m, n, k) = (67, 45, 37)
        var rng = SplitMix64(seed: 7)
        let av = rng.uniform(k * m), bv = rng.uniform(n * k), cv = rng.uniform(m * n)
        func run(_ d: any Device) throws -> [Double] {
            let c = try Tensor(cv, shape: [m, n], dtype: dtype, on: d)
            try Tensor(av, shape: [k, m], dtype: dtype, on: d).matmul(
                Tensor(bv, shape: [n, k], dtype: dtype, on: d), transposeSelf: true, transposeOther: true,
                alpha: 1.5, beta: 0.5, into: c)
            return try c.doubles()
        }
        let got = try run(device), want = try run(CPUDevice.shared)
        // Entries are sums of k products of values in [-1, 1], scaled by 1.5, plus 0.5·C:
        // the rounding error is below (k + 2)·u·(1.5k + 0.5) in each.
        let bound = Double(k + 2) * dtype.unitRoundoff * (1.5 * Double(k) + 0.5) * 2
        for i in got.indices where !(abs(got[i] - want[i]) <= bound) {
            return "wrong product: entry \(i) is \(got[i]), expected \(want[i])"
        }
        return nil
    }
}
