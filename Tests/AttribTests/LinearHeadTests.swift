import Attrib
@testable import AttribMethods
import AttribONNX
import Testing

/// IG with the sweep graph's Linear head taken as weight rows (Graph.linearHead,
/// IntegratedGradients.gatherHead): the forward stops at the head's input, the upstream
/// gradient there is the target's weight row, and the head runs on the end steps alone.
///
/// Tolerances: the attributions none. The head's own backward, dy·W with dy one-hot, sums one
/// 1·w with zeros, which is w exactly, so every gradient is the same bit for bit (a wrong row,
/// a row for the ends or a shifted step changes values). The deltas take F(x) and F(x′) from a
/// product over the end rows alone instead of the whole batch, which a BLAS may block and round
/// differently: a product of depth ≤ 256 moves by about √K·u of its terms, so 1e-5 (Float32)
/// and 1e-12 (Float64) of the largest |F| hold it.
@Suite struct LinearHeadTests {
    static func models(on device: any Device, _ dtype: DType) throws -> [(String, any AttributionModel)] {
        [("tanh-mlp", try Sequential.load(fixturePath("unlike/tanh-mlp"), on: device, dtype: dtype)),
         ("digits-mlp", try Sequential.load(fixturePath("../../Models/digits-mlp"), on: device, dtype: dtype)),
         ("resmlp", try ONNXModel.attributionModel(at: fixturePath("onnx/resmlp/model.onnx"), on: device, dtype: dtype))]
    }

    @Test("IG with the head as weight rows: bitwise the attributions with the head run forward and back, one and two targets, on every device")
    func sameAttributions() throws {
        let n = 5
        let x = randomValues(n * 64, seed: 31, 0, 1)
        for device in [cpu as any Device] + openCLDevices {
            for dtype in dtypes(device) {
                for (name, model) in try Self.models(on: device, dtype) {
                    for targets in [(0..<n).map { [$0 % 10] }, (0..<n).map { [$0 % 10, 7] }] {
                        let what = "\(name) \(device.info.id) \(dtype), \(targets[0].count) target(s)"
                        var ig = IntegratedGradients(rule: .gaussLegendre, steps: 16)
                        let head = try #require(ig.head(model), "\(what): the head rule did not fire")
                        #expect(head.linear.outFeatures == 10)
                        let rows = try ig.attribute(model, inputs: x, count: n, baseline: .zero, targets: targets)
                        ig.gatherHead = false
                        #expect(ig.head(model) == nil)
                        let full = try ig.attribute(model, inputs: x, count: n, baseline: .zero, targets: targets)
                        expectEqual(rows.attributions, full.attributions, what)
                        let scale = try model.forwardExecutor.forward([model.inputName: Tensor(x, shape: [n] + model.inputShape, dtype: dtype, on: device)])[model.outputName]!
                            .doubles().map(abs).max()!
                        expectClose(rows.deltas ?? [], full.deltas ?? [], bound: { _ in (dtype == .float32 ? 1e-5 : 1e-12) * scale }, what + " deltas")
                        #expect((rows.deltas ?? []).count == n * targets[0].count)
                    }
                }
            }
        }
    }

    @Test("The sampling methods' sweep with the head as weight rows: bitwise its sums with the head run forward and back, on every device")
    func sampleSweep() throws {
        let (n, samples) = (5, 3)
        let points = randomValues(n * samples * 64, seed: 51, 0, 1)
        for device in [cpu as any Device] + openCLDevices {
            for dtype in dtypes(device) {
                for (name, model) in try Self.models(on: device, dtype) {
                    var sweep = SampleSweep(model: model, n: n, samples: samples, targets: (0..<n).map { [$0 % 10, 3] },
                                            plan: ChunkPlan.make(for: model), control: SweepControl(), points: { c in
                                                Array(points[c.inputs.lowerBound * samples * 64..<c.inputs.upperBound * samples * 64]) },
                                            weights: [0.5, 0.25, 0.25], squares: true)
                    let rows = try sweep.run()
                    sweep.gatherHead = false
                    let full = try sweep.run()
                    for t in 0..<2 {
                        expectEqual(try rows.sums[t].doubles(), try full.sums[t].doubles(), "\(name) \(device.info.id) \(dtype) target \(t)")
                        expectEqual(try rows.squareSums![t].doubles(), try full.squareSums![t].doubles(), "\(name) \(device.info.id) \(dtype) squares \(t)")
                    }
                }
            }
        }
    }

    @Test("The head rule stays off where its rows would be wrong: path-weighted IG (it needs F on every step), and a head whose input is what the batches feed")
    func whereItApplies() throws {
        let mlp = try Sequential.load(fixturePath("unlike/tanh-mlp"), on: cpu)
        #expect(IntegratedGradients(rule: .gaussLegendre, steps: 16, density: .uniform).head(mlp) == nil, "PS-IG")
        // Linear → tanh → Linear: the path lives after the tanh, so the batches feed the head's input itself.
        let w1 = try Tensor(randomValues(8 * 4, seed: 41), shape: [8, 4], dtype: .float32, on: cpu)
        let w2 = try Tensor(randomValues(3 * 8, seed: 42), shape: [3, 8], dtype: .float32, on: cpu)
        let short = try Sequential(layers: [try Linear(weight: w1, bias: nil), ActivationLayer(.tanh), try Linear(weight: w2, bias: nil)],
                                   inputShape: [4], device: cpu)
        #expect(IntegratedGradients(rule: .gaussLegendre, steps: 16).head(short) == nil, "the head's input is fed")
        let r = try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(short, inputs: randomValues(8, seed: 43), count: 2,
                                                                                    baseline: .zero, targets: [[0], [2]])
        #expect(r.completedInputs == 2 && (r.deltas ?? []).allSatisfy { abs($0) < 1e-4 })
        // Without the fused first layer and the path's activation the head's input is still computed: the rule holds.
        var plain = IntegratedGradients(rule: .gaussLegendre, steps: 16, fuseFirstLayer: false)
        plain.fusePathActivation = false
        #expect(plain.head(mlp) != nil)
    }
}
