/// Forward + backward throughput of a model: the work of one gradient call
/// (outputs and ∂F/∂input for a class-index objective) per batch.
public struct ModelMeasurement: Codable, Sendable {
    public var device: String
    public var batch: Int
    public var repetitions: Int
    public var secondsPerBatch: Double
    public var samplesPerSecond: Double
}

public enum ModelBenchmark {
    /// Times `model.gradients` on a random batch (inputs uploaded once): a warm-up
    /// call, then repetitions doubling until `minSeconds` have passed.
    public static func measure(_ model: Sequential, batch: Int, minSeconds: Double = 0.5, seed: UInt64 = 3) throws -> ModelMeasurement {
        var rng = SplitMix64(seed: seed)
        let x = try Tensor(rng.uniform(batch * model.inputSize, 0, 1), shape: [batch] + model.inputShape, dtype: model.dtype, on: model.device)
        let classes = model.outputShape.reduce(1, *)
        let objective = Objective.classIndex((0..<batch).map { $0 % classes })
        _ = try model.gradients(x, objective: objective)
        try model.device.synchronize()
        let clock = ContinuousClock()
        var reps = 1, elapsed = 0.0
        while true {
            let t0 = clock.now
            for _ in 0..<reps { _ = try model.gradients(x, objective: objective) }
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
