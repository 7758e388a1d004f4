/// Timing of the GEMM op on a device, with its error against the CPU backend.
public struct GEMMMeasurement: Codable, Sendable {
    public var device: String
    public var deviceName: String
    public var dtype: DType
    public var m: Int, n: Int, k: Int
    public var repetitions: Int
    public var secondsPerCall: Double
    public var gflops: Double
    /// The device's FP32 peak, where derivable.
    public var peakGFLOPS: Double?
    /// gflops / peak, where the peak is known.
    public var peakShare: Double?
    /// max |C − C_cpu| / max |C_cpu|; nil on the CPU backend itself (the reference).
    public var maxRelativeError: Double?
    /// The bound that error should respect: k·u (u the unit round-off), the
    /// worst-case growth of a k-term dot product relative to max |A||B|.
    public var errorBound: Double
    /// Tile parameters in use (OpenCL), or the tensor-core kernel.
    public var parameters: String?
    /// The arithmetic of the product (--precision), and the peak the share is of:
    /// FP32 lanes for fp32, the dense tensor-core peak for tf32 and bf16 where known.
    public var precision: MatmulPrecision = .fp32
}

public enum GEMMBenchmark {
    /// Times C = A·B (m×k · k×n) on `device`: a warm-up call (program build
    /// included), then repetitions doubling until `minSeconds` have passed.
    public static func measure(on device: any Device, m: Int, n: Int, k: Int, dtype: DType = .float32,
                               transA: Bool = false, transB: Bool = false,
                               minSeconds: Double = 0.5, seed: UInt64 = 1,
                               checkAgainstCPU: Bool = true) throws -> GEMMMeasurement {
        var rng = SplitMix64(seed: seed)
        let av = rng.uniform(m * k), bv = rng.uniform(k * n)
        let aShape = transA ? [k, m] : [m, k], bShape = transB ? [n, k] : [k, n]
        let a = try Tensor(av, shape: aShape, dtype: dtype, on: device)
        let b = try Tensor(bv, shape: bShape, dtype: dtype, on: device)
        let c = try Tensor(shape: [m, n], dtype: dtype, on: device)
        func run(_ a: Tensor, _ b: Tensor, into c: Tensor) throws {
            try a.matmul(b, transposeSelf: transA, transposeOther: transB, beta: 0, into: c)
        }
        try run(a, b, into: c)
        try device.synchronize()
        let clock = ContinuousClock()
        var reps = 1, elapsed = 0.0
        while true {
            let t0 = clock.now
            for _ in 0..<reps { try run(a, b, into: c) }
            try device.synchronize()
            elapsed = (clock.now - t0).seconds
            if elapsed >= minSeconds || reps >= 1 << 12 { break }
            reps = elapsed > 0 ? max(reps * 2, Int(Double(reps) * minSeconds / elapsed * 1.1)) : reps * 2
        }
        let perCall = elapsed / Double(reps)
        let gflops = 2 * Double(m) * Double(n) * Double(k) / perCall / 1e9
        var relErr: Double? = nil
        // The CPU reference costs more than the timing on a GPU (a 2048³ product per call);
        // the tuner checks each candidate on its own small awkward shape instead.
        if checkAgainstCPU, !(device is CPUDevice) {
            let cpu = CPUDevice.shared
            let ref = try Tensor(shape: [m, n], dtype: dtype, on: cpu)
            try run(Tensor(av, shape: aShape, dtype: dtype, on: cpu), Tensor(bv, shape: bShape, dtype: dtype, on: cpu), into: ref)
            let r = try ref.doubles(), d = try c.doubles()
            var maxDiff = 0.0, maxRef = 0.0
            for i in r.indices { maxDiff = max(maxDiff, abs(r[i] - d[i])); maxRef = max(maxRef, abs(r[i])) }
            relErr = maxDiff / max(maxRef, .leastNormalMagnitude)
        }
        let precision = dtype == .float32 ? device.matmulPrecision : .fp32
        let cl = device as? OpenCLDevice
        let tensorPeak = precision == .fp32 ? nil : cl?.tensorPeakGFLOPS(precision)?.gflops
        let path = dtype == .float32 ? cl?.gemmPath(transA: transA, transB: transB) : nil
        let onTensorCores = precision != .fp32 && path?.hasPrefix("gemm_mma") == true
        let peak = onTensorCores ? tensorPeak : device.info.fp32PeakGFLOPS
        // Rounded operands: each product errs by up to 2u_p relative (u_p the operand
        // rounding's unit round-off), on top of the k·u of the Float32 sums.
        let bound = Double(k) * dtype.unitRoundoff + (precision == .fp32 ? 0 : 2 * precision.unitRoundoff)
        return GEMMMeasurement(
            device: device.info.id, deviceName: device.info.name, dtype: dtype, m: m, n: n, k: k,
            repetitions: reps, secondsPerCall: perCall, gflops: gflops,
            peakGFLOPS: peak, peakShare: peak.map { gflops / $0 }, maxRelativeError: relErr,
            errorBound: bound,
            parameters: path ?? cl?.currentGEMMParameters(GEMMVariant(dtype: dtype, transA: transA, transB: transB)).description,
            precision: precision)
    }
}
