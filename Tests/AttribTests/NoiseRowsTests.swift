import Attrib
import Glibc
import Testing

/// SmoothGrad draws each batch's noise when it builds the batch (Noise.rows), from the seeded
/// stream skipped to the batch's rows, instead of all of a sweep's noise up front.
/// Tolerance: none. The draws are the same numbers in the same places, so the attributions
/// must be the same bits as with the whole stream drawn first and given.
@Suite struct NoiseRowsTests {
    @Test("SmoothGrad with seeded noise drawn per batch equals it with the whole stream given, bitwise: whole inputs, steps split over batches, thread tiles")
    func sameNoise() throws {
        let model = try Sequential.load(fixturePath("unlike/tanh-mlp"), on: cpu)
        let (n, samples, d) = (6, 5, 64)
        let x = randomValues(n * d, seed: 61, 0, 1), targets = (0..<n).map { [$0 % 10] }
        var rng = SplitMix64(seed: 62)
        let whole = (0..<n * samples * d / 2).flatMap { _ -> [Double] in
            // The stream as GradientMethods draws it: Box–Muller pairs, σ = 0.2.
            let u1 = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &rng), u2 = Double.random(in: 0..<1, using: &rng)
            let r = 0.2 * (-2 * log(u1)).squareRoot()
            return [r * cos(2 * .pi * u2), r * sin(2 * .pi * u2)]
        }
        for cap in [nil, 3, 7] as [Int?] {   // whole inputs a batch (tiles), then steps split over batches
            for reduction in GradientMethods.NoiseReduction.allCases {
                let drawn = try GradientMethods.smoothGrad(model, inputs: x, count: n, targets: targets, samples: samples,
                                                           noise: .gaussian(sigma: 0.2, seed: 62), reduction: reduction, batchCap: cap)
                let given = try GradientMethods.smoothGrad(model, inputs: x, count: n, targets: targets, samples: samples,
                                                           noise: .given(whole), reduction: reduction, batchCap: cap)
                expectEqual(drawn.attributions, given.attributions, "\(reduction), batch cap \(cap.map(String.init) ?? "none")")
                // A unit's share of the stream (forInputs, as the CLI passes it): the same numbers.
                let unit = try GradientMethods.smoothGrad(model, inputs: Array(x[d...]), count: n - 1, targets: Array(targets[1...]), samples: samples,
                                                          noise: GradientMethods.Noise.gaussian(sigma: 0.2, seed: 62).forInputs(1..<n, samples: samples, d: d),
                                                          reduction: reduction, batchCap: cap)
                let unitGiven = try GradientMethods.smoothGrad(model, inputs: Array(x[d...]), count: n - 1, targets: Array(targets[1...]), samples: samples,
                                                               noise: .given(Array(whole[(samples * d)...])), reduction: reduction, batchCap: cap)
                expectEqual(unit.attributions, unitGiven.attributions, "\(reduction), a unit, batch cap \(cap.map(String.init) ?? "none")")
            }
        }
        expectAttribError(["noise", "10 noise values", "6 inputs × 5 samples × 64 values"]) {
            _ = try GradientMethods.smoothGrad(model, inputs: x, count: n, targets: targets, samples: samples, noise: .given(Array(whole.prefix(10))))
        }
    }
}
