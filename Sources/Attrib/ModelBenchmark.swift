/// Forward + backward throughput of a model: the work of one input-gradient call
/// (outputs and ∂F/∂input for one class per row) per batch.
public struct ModelMeasurement: Codable, Sendable {
    public var device: String
    public var batch: Int
    public var repetitions: Int
    public var secondsPerBatch: Double
    public var samplesPerSecond: Double
}

public enum ModelBenchmark {
    /// Times one input-gradient call of `model` on a random batch (inputs uploaded once): the
    /// forward and backward the gradient sweeps run (its sweep executor), from a one-hot upstream
    /// at the output (row i's class i mod classes). A warm-up call, then repetitions doubling
    /// until `minSeconds` have passed. Any model the loaders make: a Sequential directory, an
    /// ONNX file (its loader refuses token-id inputs by name).
    public static func measure(_ model: any AttributionModel, batch: Int, minSeconds: Double = 0.5, seed: UInt64 = 3) throws -> ModelMeasurement {
        let exec = model.sweepExecutor, input = model.inputName, output = exec.graph.outputs[0]
        var rng = SplitMix64(seed: seed)
        let x = try Tensor(rng.uniform(batch * model.inputSize, 0, 1), shape: [batch] + model.inputShape, dtype: model.dtype, on: model.device)
        let classes = model.outputCount
        var oneHot = [Double](repeating: 0, count: batch * classes)          // [batch, classes]
        for i in 0..<batch { oneHot[i * classes + i % classes] = 1 }
        let upstream = try Tensor(oneHot, shape: [batch] + model.outputShape, dtype: model.dtype, on: model.device)
        func call() throws {
            let run = try exec.forward([input: x], gradientsFor: [input])
            _ = try exec.backward(run, upstream: [output: upstream], wrt: [input])
        }
        try call()
        try model.device.synchronize()
        let clock = ContinuousClock()
        var reps = 1, elapsed = 0.0
        while true {
            let t0 = clock.now
            for _ in 0..<reps { try call() }
            try model.device.synchronize()
            elapsed = (clock.now - t0).seconds
            if elapsed >= minSeconds || reps >= 1 << 16 { break }
            reps = elapsed > 0 ? max(reps * 2, Int(Double(reps) * minSeconds / elapsed * 1.1)) : reps * 2
        }
        let perBatch = elapsed / Double(reps)
        return ModelMeasurement(device: model.device.info.id, batch: batch, repetitions: reps,
                                secondsPerBatch: perBatch, samplesPerSecond: Double(batch) / perBatch)
    }
}
