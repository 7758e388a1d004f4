import AttribCore

extension Sequential {
    /// An MLP with ReLU between Linear layers and random weights, uniform in
    /// ±1/√fan_in (PyTorch's default init range) from `seed`: for benchmarks
    /// (e.g. sizes [784, 4096, 4096, 10], the "wide MLP").
    public static func randomMLP(_ sizes: [Int], on device: any Device, dtype: DType = .float32, seed: UInt64 = 0) throws -> Sequential {
        guard sizes.count >= 2, sizes.allSatisfy({ $0 >= 1 }) else {
            throw AttribError.invalidArgument(op: "randomMLP", detail: "sizes \(sizes): need at least two, all ≥ 1")
        }
        var rng = SplitMix64(seed: seed)
        var layers: [any Layer] = []
        for i in 0..<(sizes.count - 1) {
            let (fin, fout) = (sizes[i], sizes[i + 1])
            let r = 1 / Double(fin).squareRoot()
            layers.append(try Linear(weight: Tensor(rng.uniform(fout * fin, -r, r), shape: [fout, fin], dtype: dtype, on: device),
                                     bias: Tensor(rng.uniform(fout, -r, r), shape: [fout], dtype: dtype, on: device)))
            if i < sizes.count - 2 { layers.append(ActivationLayer(.relu)) }
        }
        return try Sequential(layers: layers, inputShape: [sizes[0]], device: device, dtype: dtype)
    }
}
