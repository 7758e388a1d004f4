import Attrib
#if canImport(Glibc)
import Glibc
#endif
import Testing

/// Deletion and insertion curves (RISE) on a model whose curve is known by hand,
/// perfect against random and worst maps, and bad input.
@Suite struct EvaluationTests {
    /// logits = (w·x, 0) for x [1, 2, 2] flattened, so p₀ = σ(w·x) = 1/(1 + e^(−w·x)).
    static let w: [Double] = [3, 0.5, 2, 1]
    static func model(_ device: any Device = cpu, _ t: DType = .float64) throws -> Sequential {
        let weight = try Tensor(w + [0, 0, 0, 0], shape: [2, 4], dtype: t, on: device)
        return try Sequential(layers: [Flatten(), try Linear(weight: weight, bias: nil)], inputShape: [1, 2, 2], device: device, dtype: t)
    }
    static func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }

    @Test("Deletion and insertion of a linear model equal the hand-computed curves and AUCs")
    func byHand() throws {
        let x: [Double] = [1, 1, 1, 1]
        // Perfect map (the contributions w_i·x_i): order 0 (3), 2 (2), 3 (1), 1 (0.5).
        let del = try DeletionInsertion(kind: .deletion, steps: 4).evaluate(model: try Self.model(), inputs: x, maps: Self.w, targets: [0])
        let wantDel = [6.5, 3.5, 1.5, 0.5, 0].map(Self.sigmoid)
        expectClose(del.curves[0], wantDel, bound: { _ in 1e-14 }, "deletion curve")
        #expect(del.fractions == [0, 0.25, 0.5, 0.75, 1])
        let aucDel = (wantDel[0] / 2 + wantDel[1] + wantDel[2] + wantDel[3] + wantDel[4] / 2) / 4
        #expect(abs(del.aucs[0] - aucDel) <= 1e-14)
        let ins = try DeletionInsertion(kind: .insertion, steps: 4).evaluate(model: try Self.model(), inputs: x, maps: Self.w, targets: [0])
        expectClose(ins.curves[0], [0, 3, 5, 6, 6.5].map(Self.sigmoid), bound: { _ in 1e-14 }, "insertion curve")
        // Steps that do not divide the features: n_k = ⌊k·4/3⌋ = 0, 1, 2, 4.
        let del3 = try DeletionInsertion(kind: .deletion, steps: 3).evaluate(model: try Self.model(), inputs: x, maps: Self.w, targets: [0])
        expectClose(del3.curves[0], [6.5, 3.5, 1.5, 0].map(Self.sigmoid), bound: { _ in 1e-14 }, "3 steps")
        // A substrate of 0.5 for deletion: removed features keep half their contribution.
        let half = try DeletionInsertion(kind: .deletion, steps: 4, substrate: .constant(0.5)).evaluate(model: try Self.model(), inputs: x, maps: Self.w, targets: [0])
        expectClose(half.curves[0], [6.5, 5, 4, 3.5, 3.25].map(Self.sigmoid), bound: { _ in 1e-14 }, "substrate 0.5")
        // Class 1 (logit 0): p₁ = 1 − p₀.
        let other = try DeletionInsertion(kind: .deletion, steps: 4).evaluate(model: try Self.model(), inputs: x, maps: Self.w, targets: [1])
        expectClose(other.curves[0], wantDel.map { 1 - $0 }, bound: { _ in 1e-14 }, "class 1")
    }

    @Test("A perfect map beats random and worst maps: lowest deletion AUC, highest insertion AUC")
    func perfectVersusRandom() throws {
        // 16 features, x = 1, weights 1…16 shuffled: p₀ = σ((Σ kept w − 60)/10) keeps the curve off 0/1.
        var rng = SplitMix64(seed: 3)
        var weights = (1...16).map(Double.init)
        weights.shuffle(using: &rng)
        let weight = try Tensor(weights.map { $0 / 10 } + [Double](repeating: 0, count: 16), shape: [2, 16], dtype: .float64, on: cpu)
        let model = try Sequential(layers: [Flatten(), try Linear(weight: weight, bias: try Tensor([-6.0, 0], shape: [2], dtype: .float64, on: cpu))],
                                   inputShape: [1, 4, 4], device: cpu, dtype: .float64)
        let x = [Double](repeating: 1, count: 16)
        let perfect = weights, worst = weights.map { -$0 }, random = randomValues(16, seed: 9)
        let maps = perfect + random + worst
        let inputs = x + x + x
        for kind in DeletionInsertion.Kind.allCases {
            let r = try DeletionInsertion(kind: kind, steps: 16).evaluate(model: model, inputs: inputs, maps: maps, targets: [0, 0, 0])
            if kind == .deletion { #expect(r.aucs[0] < r.aucs[1] && r.aucs[1] < r.aucs[2], "deletion AUCs \(r.aucs)") }
            else { #expect(r.aucs[0] > r.aucs[1] && r.aucs[1] > r.aucs[2], "insertion AUCs \(r.aucs)") }
            // Every step of every input in one batch; chunked batches give the same curves.
            let chunked = try DeletionInsertion(kind: kind, steps: 16, batchCap: 5).evaluate(model: model, inputs: inputs, maps: maps, targets: [0, 0, 0])
            expectClose(chunked.curves.flatMap { $0 }, r.curves.flatMap { $0 }, bound: { _ in 1e-14 }, "chunked \(kind)")
        }
    }

    @Test("OpenCL curves equal the CPU's on the digits CNN with Sobol maps (probabilities to 4·281·ε)")
    func deviceParity() throws {
        let x = Array(try NPY.read(fixturePath("../../Models/digits-data/test_inputs.npy")).doubles().prefix(4 * 64))
        let labels = try NPY.read(fixturePath("../../Models/digits-data/test_labels.npy")).int32s().prefix(4).map { Int($0) }
        let cpuModel = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu, dtype: .float64)
        let maps = try SobolAttribution(gridSize: 4, designs: 8).explain(model: cpuModel, inputs: x, targets: labels).maps
        for dev in openCLDevices {
            for t in dtypes(dev) {
                for kind in DeletionInsertion.Kind.allCases {
                    let e = DeletionInsertion(kind: kind, steps: 16, substrate: kind == .insertion ? .blur(kernelSize: 3) : .constant(0))
                    let want = try e.evaluate(model: try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu, dtype: t), inputs: x, maps: maps, targets: labels)
                    let got = try e.evaluate(model: try Sequential.load(fixturePath("../../Models/digits-cnn"), on: dev, dtype: t), inputs: x, maps: maps, targets: labels)
                    // Logits differ by ≤ 4·281·ε·(1 + |z|) (SobolAttributionTests.scoreBound); a softmax
                    // probability moves by at most twice the largest logit change (|∂p/∂z| ≤ ½ per
                    // logit, summed): 2·4·281·ε·(1 + 30) with |z| ≤ 30 here.
                    let eps = t == .float64 ? Double.ulpOfOne : Double(Float.ulpOfOne)
                    expectClose(got.curves.flatMap { $0 }, want.curves.flatMap { $0 }, bound: { _ in 2 * 4 * 281 * eps * 31 }, "\(dev.info.id) \(t) \(kind)")
                }
            }
        }
    }

    @Test("Bad input: coarse maps, steps beyond the features, non-finite maps")
    func badInput() throws {
        let m = try Self.model()
        expectAttribError(["full-size", "resize"]) { _ = try DeletionInsertion(kind: .deletion).evaluate(model: m, inputs: [1, 1, 1, 1], maps: [1], targets: [0]) }
        expectAttribError(["steps = 5", "4 features"]) { _ = try DeletionInsertion(kind: .deletion, steps: 5).evaluate(model: m, inputs: [1, 1, 1, 1], maps: Self.w, targets: [0]) }
        expectAttribError(["non-finite"]) { _ = try DeletionInsertion(kind: .insertion, steps: 2).evaluate(model: m, inputs: [1, 1, 1, 1], maps: [1, .nan, 0, 0], targets: [0]) }
    }
}
