import Attrib
import Testing

/// IG's whole-path op for small CNNs (Sequential+CNNPath.swift, CVecMath/cnn_path.c): each
/// input's path forward and back in one op, with steps in the lanes. It computes the same
/// values in the same order as the batches run layer by layer, so its attributions are held
/// to bitwise equality with them; its deltas take F(x) and F(x′) from a separate pass over
/// the ends, whose head products have other row counts than the batches', so they agree to
/// the rounding of those outputs.
@Suite struct CNNPathTests {
    /// At least 4 inputs per worker thread, the least the whole path runs for.
    static var wholeCount: Int { 4 * (cpu.info.blas?.threads ?? 1) + 1 }

    static func digitsCNN(_ dtype: DType = .float32, on device: any Device = cpu) throws -> Sequential {
        try Sequential.load(fixturePath("../../Models/digits-cnn"), on: device, dtype: dtype)
    }

    /// A CNN of random weights: a first convolution from `input`'s channels, then a stage
    /// (3×3 convolution, GELU, 2×2 pooling) per entry of `stages` (output channels, bias or
    /// not), Flatten, and a head of 7 classes.
    static func randomCNN(input: [Int], first: Int, stages: [(Int, Bool)], seed: UInt64) throws -> Sequential {
        func conv(_ c: Int, _ oc: Int, seed: UInt64, bias: Bool) throws -> Conv2d {
            try Conv2d(weight: Tensor(randomValues(oc * c * 9, seed: seed, -0.6, 0.6), shape: [oc, c, 3, 3], dtype: .float32, on: cpu),
                       bias: bias ? Tensor(randomValues(oc, seed: seed + 1, -0.2, 0.2), shape: [oc], dtype: .float32, on: cpu) : nil,
                       stride: [1, 1], padding: [1, 1])
        }
        let pool = { try Pool2d(max: false, kernel: [2, 2], stride: [2, 2]) }
        var layers: [any Layer] = [try conv(input[0], first, seed: seed, bias: true), ActivationLayer(.geluErf), try pool()]
        var (c, h, w) = (first, input[1] / 2, input[2] / 2)
        for (k, (oc, bias)) in stages.enumerated() {
            layers += [try conv(c, oc, seed: seed + 2 * UInt64(k + 1), bias: bias), ActivationLayer(.geluErf), try pool()]
            (c, h, w) = (oc, h / 2, w / 2)
        }
        let features = c * h * w
        let head = try Linear(weight: Tensor(randomValues(7 * features, seed: seed + 40), shape: [7, features], dtype: .float32, on: cpu),
                              bias: Tensor(randomValues(7, seed: seed + 41), shape: [7], dtype: .float32, on: cpu))
        return try Sequential(layers: layers + [Flatten(), head], inputShape: input, device: cpu)
    }

    /// IG with the whole path on and off over the same inputs, baselines and targets.
    static func both(_ model: Sequential, n: Int, steps: Int, rule: IntegrationRule, targets: [[Int]], baseline: Baseline,
                     cap: Int? = nil) throws -> (whole: AttributionResult, batches: AttributionResult) {
        let x = randomValues(n * model.inputSize, seed: 70, -1, 1)
        var ig = IntegratedGradients(rule: rule, steps: steps, batchCap: cap)
        #expect(ig.runsWhole(model, count: n), "the whole path is offered for \(n) inputs")
        let whole = try ig.attribute(model, inputs: x, count: n, baseline: baseline, targets: targets)
        ig.wholePath = false
        #expect(!ig.runsWhole(model, count: n))
        return (whole, try ig.attribute(model, inputs: x, count: n, baseline: baseline, targets: targets))
    }

    /// Deltas: Σ attributions − (F(x) − F(x′)), where F comes from head products over other
    /// row counts; the two differ by the rounding of F (a few units of 2⁻²⁴ relative to the
    /// terms of the head's sums, about 1e-6 of |F| here), so 1e-5 of the largest |F| holds.
    static func expectDeltasAgree(_ a: AttributionResult, _ b: AttributionResult, scale: Double, _ what: String) {
        guard let da = a.deltas, let db = b.deltas, da.count == db.count else { Issue.record("\(what): deltas missing"); return }
        let worst = zip(da, db).map { abs($0 - $1) }.max() ?? 0
        #expect(worst <= 1e-5 * max(1, scale), "\(what): deltas differ by \(worst)")
    }

    @Test("Digits CNN: the whole path gives bitwise the batches' attributions (m = 64 and 13, two targets, per-input baselines)")
    func digitsBitwise() throws {
        let model = try Self.digitsCNN(), n = Self.wholeCount
        for (steps, rule) in [(64, IntegrationRule.gaussLegendre), (13, .riemannTrapezoid)] {
            let targets = (0..<n).map { [$0 % 10, ($0 * 7 + 3) % 10] }
            let base = Baseline.values(randomValues(n * 64, seed: 71, -0.5, 0.5), count: n)
            let (w, b) = try Self.both(model, n: n, steps: steps, rule: rule, targets: targets, baseline: base)
            #expect(w.shape == [n, 2, 1, 8, 8] && w.completedInputs == n && w.rowsEvaluated == n * steps)
            #expect(w.attributions.map(\.bitPattern) == b.attributions.map(\.bitPattern), "attributions, m = \(steps)")
            let fScale = try model.forward(Tensor(randomValues(n * 64, seed: 70, -1, 1), shape: [n, 1, 8, 8], dtype: .float32, on: cpu)).doubles().map(abs).max() ?? 1
            Self.expectDeltasAgree(w, b, scale: fScale, "m = \(steps)")
        }
    }

    @Test("Two stages, one without bias, an oblong input, one baseline for all: bitwise the batches")
    func twoStagesBitwise() throws {
        // 16×8 → 8×4 → 4×2 → 2×1: every stage's convolution runs by bands in the batches, directly.
        let model = try Self.randomCNN(input: [2, 16, 8], first: 3, stages: [(4, false), (5, true)], seed: 50), n = Self.wholeCount
        #expect(model.runsIGPathWhole(from: 1) && model.rowsOuterSpan(from: 1) != nil)
        let targets = (0..<n).map { [$0 % 7] }
        let (w, b) = try Self.both(model, n: n, steps: 21, rule: .riemannMiddle, targets: targets, baseline: .constant(0.25))
        #expect(w.attributions.map(\.bitPattern) == b.attributions.map(\.bitPattern), "attributions")
        Self.expectDeltasAgree(w, b, scale: 10, "two stages")
        // Not a replay of the batches' arithmetic by accident: a different step count moves them.
        let (w2, _) = try Self.both(model, n: n, steps: 22, rule: .riemannMiddle, targets: targets, baseline: .constant(0.25))
        #expect(w2.attributions != w.attributions)
    }

    @Test("Larger images, whose convolutions the batches run as products (no bands): the same to rounding")
    func largerImages() throws {
        // 16×16 → 8×8 → 4×4 → 2×2: the 8×8 stage is too large for bands (Conv2dUnrolled.worthwhile).
        let model = try Self.randomCNN(input: [1, 16, 16], first: 6, stages: [(8, true), (8, true)], seed: 80), n = Self.wholeCount
        #expect(model.runsIGPathWhole(from: 1) && model.rowsOuterSpan(from: 1) == nil)
        let (w, b) = try Self.both(model, n: n, steps: 16, rule: .gaussLegendre, targets: (0..<n).map { [$0 % 7, 6] }, baseline: .zero)
        // The products sum each output's ≤ 72 taps in another order: a few units of 2⁻²⁴ per
        // layer, through 3 convolutions, GELUs and the sum over 16 steps; 1e-5 holds with room.
        #expect(GradientMethodTests.rel(w.attributions, b.attributions) <= 1e-5, "\(GradientMethodTests.rel(w.attributions, b.attributions))")
        Self.expectDeltasAgree(w, b, scale: 10, "larger images")
    }

    @Test("Where the batches split an input's steps the whole path sums them in one run: the same to rounding")
    func splitSteps() throws {
        let model = try Self.digitsCNN(), n = Self.wholeCount
        let (w, b) = try Self.both(model, n: n, steps: 64, rule: .gaussLegendre, targets: (0..<n).map { [$0 % 10] }, baseline: .zero, cap: 24)
        // Chunk sums added in another order: each attribution is a sum of 64 terms, ~64·u of its terms' magnitude.
        #expect(GradientMethodTests.rel(w.attributions, b.attributions) <= 64 * 6e-8 * 10)
    }

    @Test("The whole path against Captum: the IG fixtures' inputs repeated to run it, all five rules")
    func captum() throws {
        let f = try GradientMethodTests.fixture("cnn", on: cpu, dtype: .float32)
        let copies = (Self.wholeCount + f.n - 1) / f.n, n = copies * f.n
        let x = (0..<copies).flatMap { _ in f.x }, targets = (0..<copies).flatMap { _ in f.targets }
        let baselines = try f.array("baselines"), base = Baseline.values((0..<copies).flatMap { _ in baselines }, count: n)
        for rule in IntegrationRule.allCases {
            let ig = IntegratedGradients(rule: rule, steps: 16)
            #expect(ig.runsWhole(f.model, count: n))
            let r = try ig.attribute(f.model, inputs: x, count: n, baseline: base, targets: targets)
            let captumName = rule == .gaussLegendre ? "gausslegendre" : rule.rawValue
            let want = try f.array("ig_\(captumName)" + (rule == .riemannTrapezoid ? "_spec" : ""))
            for k in 0..<copies {
                let part = Array(r.attributions[(k * want.count)..<((k + 1) * want.count)])
                #expect(GradientMethodTests.rel(part, want) <= GradientMethodTests.tolerance(.float32), "\(rule) copy \(k): \(GradientMethodTests.rel(part, want))")
            }
        }
    }

    @Test("Interrupted between chunks, the whole path keeps the finished inputs, equal to a full run's")
    func interruption() throws {
        let model = try Self.digitsCNN(), n = max(9, Self.wholeCount)
        var ig = IntegratedGradients(rule: .riemannMiddle, steps: 32)
        ig.wholeChunkRows = 8 * 32                                             // chunks of 8 inputs
        let x = randomValues(n * 64, seed: 72, 0, 1), targets = (0..<n).map { [$0 % 10] }
        final class Counter: @unchecked Sendable { var chunks = 0 }
        let counter = Counter()
        let control = SweepControl(progress: { _, _ in counter.chunks += 1 }, shouldStop: { counter.chunks >= 1 })
        let cut = try ig.attribute(model, inputs: x, count: n, baseline: .zero, targets: targets, control: control)
        #expect(cut.interrupted && cut.completedInputs == 8 && cut.shape == [8, 1, 8, 8] && cut.deltas?.count == 8)
        let full = try ig.attribute(model, inputs: x, count: n, baseline: .zero, targets: targets)
        // The path sums are bitwise the same; the first layer's one backward product then runs
        // over 8 inputs instead of n, which OpenBLAS may block differently: 9 taps × 16
        // channels per input pixel, so rounding well under 1e-5 of the largest attribution.
        #expect(GradientMethodTests.rel(cut.attributions, Array(full.attributions.prefix(8 * 64))) <= 1e-5)
    }

    @Test("Not taken: few inputs, Float64, PS-IG, unfused, other activations or pooling, OpenCL devices")
    func whereNotTaken() throws {
        let model = try Self.digitsCNN(), n = Self.wholeCount
        let ig = IntegratedGradients(rule: .gaussLegendre, steps: 16)
        #expect(ig.runsWhole(model, count: n))
        #expect(!ig.runsWhole(model, count: 4 * (cpu.info.blas?.threads ?? 1) - 1), "fewer than 4 inputs per thread")
        #expect(!ig.runsWhole(try Self.digitsCNN(.float64), count: n), "Float64")
        #expect(!IntegratedGradients(rule: .gaussLegendre, steps: 16, density: .uniform).runsWhole(model, count: n), "PS-IG")
        #expect(!IntegratedGradients(rule: .gaussLegendre, steps: 16, fuseFirstLayer: false).runsWhole(model, count: n), "unfused")
        var plain = ig; plain.rowsOuter = false
        #expect(!plain.runsWhole(model, count: n), "not rows-outer")
        for device in openCLDevices { #expect(!ig.runsWhole(try Self.digitsCNN(on: device), count: n), "\(device.id)") }
        // The digits CNN with ReLU, or max pooling, in its second stage.
        let layers = model.layers
        let relu = try Sequential(layers: Array(layers[0..<4]) + [ActivationLayer(.relu)] + Array(layers[5...]), inputShape: [1, 8, 8], device: cpu)
        let maxPool = try Sequential(layers: Array(layers[0..<5]) + [try Pool2d(max: true, kernel: [2, 2], stride: [2, 2])] + Array(layers[6...]),
                                     inputShape: [1, 8, 8], device: cpu)
        #expect(!relu.runsIGPathWhole(from: 1) && !maxPool.runsIGPathWhole(from: 1))
        #expect(!model.runsIGPathWhole(from: 0) && !model.runsIGPathWhole(from: 3), "from the first layer, or mid-model")
    }

    @Test("Bad input to the whole-path op: shapes and targets are named")
    func badInput() throws {
        let model = try Self.digitsCNN(), n = 3
        let z = try Tensor.zeros([n, 8, 16, 8], dtype: .float32, on: cpu)
        let alphas = try Tensor([0.25, 0.75], shape: [2], dtype: .float32, on: cpu), weights = try Tensor([0.5, 0.5], shape: [2], dtype: .float32, on: cpu)
        let sums = [try Tensor.zeros([n, 8, 16, 8], dtype: .float32, on: cpu)]
        expectAttribError(["igPathGradientSum", "[3, 16, 8, 8]", "[n, 8, 16, 8]"]) {
            let nchw = try Tensor.zeros([n, 16, 8, 8], dtype: .float32, on: cpu)
            _ = try model.igPathGradientSum(pathFrom: nchw, baselines: nchw, alphas: alphas, weights: weights, targets: [[0], [1], [2]], from: 1, into: sums)
        }
        expectAttribError(["igPathGradientSum", "target 10", "10 classes"]) {
            _ = try model.igPathGradientSum(pathFrom: z, baselines: z, alphas: alphas, weights: weights, targets: [[0], [10], [2]], from: 1, into: sums)
        }
        expectAttribError(["igPathGradientSum", "2 target lists for 3 inputs"]) {
            _ = try model.igPathGradientSum(pathFrom: z, baselines: z, alphas: alphas, weights: weights, targets: [[0], [1]], from: 1, into: sums)
        }
        #expect(try model.igPathGradientSum(pathFrom: z, baselines: z, alphas: alphas, weights: weights, targets: [[0], [1], [2]], from: 3, into: sums) == false,
                "declined mid-model, nothing written")
    }
}
