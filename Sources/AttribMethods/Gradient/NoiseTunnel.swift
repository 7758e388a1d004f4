import AttribCore
import AttribModels

/// NoiseTunnel: SmoothGrad's averaging around another method (methods.md), here
/// Integrated Gradients: the method runs on x + ε for each of `samples` draws
/// (all draws of all inputs in one sweep, batched like any other), and the
/// attributions are reduced per input as SmoothGrad reduces gradients.
public enum NoiseTunnel {
    public static func integratedGradients(_ ig: IntegratedGradients, _ model: any AttributionModel, inputs x: [Double], count n: Int,
                                           baseline: Baseline, targets: [[Int]], samples: Int, noise: GradientMethods.Noise,
                                           reduction: GradientMethods.NoiseReduction = .smoothgrad,
                                           control: SweepControl = SweepControl()) throws -> AttributionResult {
        try checkInputs(x, n: n, model: model)
        let tCount = try checkTargets(targets, n: n, model: model)
        let d = model.inputSize
        let eps = try noise.values(n: n, samples: samples, d: d)
        let noisy = (0..<n * samples).flatMap { r in (0..<d).map { j in x[(r / samples) * d + j] + eps[r * d + j] } }
        // A baseline given per input is repeated for each of its draws.
        var expandedBaseline = baseline
        if case let .values(v, rows) = baseline, rows == n, n > 1 {
            expandedBaseline = .values((0..<n * samples).flatMap { r in v[(r / samples) * d..<(r / samples + 1) * d] }, count: n * samples)
        }
        let inner = try ig.attribute(model, inputs: noisy, count: n * samples, baseline: expandedBaseline,
                                     targets: (0..<n * samples).map { targets[$0 / samples] }, control: control)
        let done = inner.completedInputs / samples
        let per = tCount * d
        var out = [Double](repeating: 0, count: done * per)
        for i in 0..<done {
            var mean = [Double](repeating: 0, count: per), sq = mean
            for s in 0..<samples {
                let a = inner.attributions[(i * samples + s) * per..<(i * samples + s + 1) * per]
                for (j, v) in a.enumerated() { mean[j] += v / Double(samples); sq[j] += v * v / Double(samples) }
            }
            for j in 0..<per {
                switch reduction {
                case .smoothgrad: out[i * per + j] = mean[j]
                case .smoothgradSquared: out[i * per + j] = sq[j]
                case .vargrad: out[i * per + j] = sq[j] - mean[j] * mean[j]
                }
            }
        }
        var result = inner
        result.attributions = out
        result.shape = (tCount == 1 ? [done] : [done, tCount]) + model.inputShape
        result.deltas = nil
        result.completedInputs = done
        return result
    }
}
