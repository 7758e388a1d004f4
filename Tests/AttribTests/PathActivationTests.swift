import Attrib
import Testing

/// The IG path built inside the activation it meets first, and f′ folded into the
/// step-weighted sum (Device.pathActivationWithDerivative, pathWeightedSumTimes), and the
/// sweep rule that uses them (IntegratedGradients.pathActivation).
///
/// Tolerance: none. The fused ops compute each path element with pathInterpolate's
/// expression, f and f′ with the routine the activation layer apart uses, and each g·f′
/// with one rounding before it is weighted, so they must equal the ops apart bit for bit
/// (zeros' signs aside, which the comparison of values ignores); a path at the wrong
/// step, a wrong kind or a skipped multiply changes values.
@Suite struct PathActivationTests {
    static var devices: [any Device] { [cpu] + openCLDevices }

    @Test("Path + activation + f′ in one pass equals pathInterpolate, the activation layer's forward and f′ as its backward applies it, bitwise",
          arguments: Activation.allCases)
    func pathActivation(_ kind: Activation) throws {
        for device in Self.devices {
            for dtype in dtypes(device) {
                // d = 37: rows that are not whole 8-lane groups; one baseline per input and one shared.
                let (n, m, d) = (3, 5, 37)
                // Every fifth feature 0 in the input and the baselines: a path exactly at 0 there, where
                // ReLU's f′ (0, not 1) and every kink are decided.
                func zeroed(_ v: [Double]) -> [Double] { v.enumerated().map { $0.offset % d % 5 == 0 ? 0 : $0.element } }
                let x = try Tensor(zeroed(randomValues(n * d, seed: 1, -3, 3)), shape: [n, d], dtype: dtype, on: device)
                let alphas = try Tensor(randomValues(m, seed: 2, 0, 1), shape: [m], dtype: dtype, on: device)
                for baseRows in [n, 1] {
                    let base = try Tensor(zeroed(randomValues(baseRows * d, seed: 3, -3, 3)), shape: [baseRows, d], dtype: dtype, on: device)
                    let label = "\(device.info.id) \(dtype) \(kind) baselines \(baseRows)"
                    guard let (y, fp) = try x.pathActivatedWithDerivative(kind, baselines: base, alphas: alphas) else {
                        // Only the CPU backend's Float32 SiLU and tanh-GELU decline (separate 8-lane kernels).
                        #expect(device is CPUDevice && dtype == .float32 && (kind == .silu || kind == .geluTanh), "\(label): declined")
                        continue
                    }
                    let layer = ActivationLayer(kind)
                    let (want, saved) = try layer.forward(try x.pathInterpolated(baselines: base, alphas: alphas))
                    let ones = try Tensor([Double](repeating: 1, count: n * m * d), shape: [n * m, d], dtype: dtype, on: device)
                    expectEqual(try y.doubles(), try want.doubles(), label + " f")
                    expectEqual(try fp.doubles(), try layer.backward(ones, saved).doubles(), label + " f′")
                }
            }
        }
    }

    @Test("The step-weighted sum of g ⊙ f′ equals multiplying, then pathWeightedSum, bitwise, on every device")
    func weightedSumTimes() throws {
        for device in Self.devices {
            for dtype in dtypes(device) {
                let (n, m, d) = (4, 7, 29)
                let g = try Tensor(randomValues(n * m * d, seed: 4), shape: [n * m, d], dtype: dtype, on: device)
                let v = try Tensor(randomValues(n * m * d, seed: 5), shape: [n * m, d], dtype: dtype, on: device)
                let w = try Tensor(randomValues(m, seed: 6, 0, 1), shape: [m], dtype: dtype, on: device)
                expectEqual(try g.pathWeightedSum(weights: w, times: v).doubles(), try g.multiplying(v).pathWeightedSum(weights: w).doubles(),
                            "\(device.info.id) \(dtype)")
            }
        }
    }

    @Test("IG on models whose path meets an activation first (tanh-mlp, relu-cnn): the rule fires, and the attributions are bitwise those with it off",
          arguments: ["tanh-mlp", "relu-cnn"])
    func integratedGradients(_ name: String) throws {
        let dir = fixturePath("unlike/" + name)
        let x = try NPY.read(dir + "/inputs.npy").doubles()
        let targets = try NPY.read(dir + "/targets.npy").int32s().map { [Int($0)] }
        for (device, dtype) in GradientMethodTests.configurations {
            let model = try Sequential.load(dir, on: device, dtype: dtype)
            var ig = IntegratedGradients(rule: .gaussLegendre, steps: 16)
            let expected: Activation = name == "tanh-mlp" ? .tanh : .relu
            #expect(ig.pathActivation(model)?.kind == expected, "\(name) on \(device.info.id): the path's activation not found")
            let fused = try ig.attribute(model, inputs: x, count: targets.count, baseline: .zero, targets: targets)
            ig.fusePathActivation = false
            #expect(ig.pathActivation(model) == nil)
            let apart = try ig.attribute(model, inputs: x, count: targets.count, baseline: .zero, targets: targets)
            expectEqual(fused.attributions, apart.attributions, "\(name) on \(device.info.id) \(dtype)")
            expectEqual(fused.deltas ?? [], apart.deltas ?? [], "\(name) deltas on \(device.info.id) \(dtype)")
        }
    }
}
