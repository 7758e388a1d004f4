@testable import AttribMethods
import Attrib
import Testing

/// The gradient family against Captum (Tests/Fixtures/captum/make_fixtures.py),
/// completeness, and the engine's own equivalences (fused/unfused, chunked/whole,
/// OpenCL/CPU).
@Suite struct GradientMethodTests {
    static let models = ["mlp", "cnn"]

    struct Fixture {
        var model: Sequential
        var x: [Double]
        var n: Int
        var targets: [[Int]]
        var dir: String
        func array(_ name: String) throws -> [Double] { try NPY.read(dir + "/" + name + ".npy").doubles() }
    }

    static func fixture(_ name: String, on device: any Device, dtype: DType) throws -> Fixture {
        let dir = fixturePath("captum/" + name)
        let model = try Sequential.load(fixturePath("../../Models/digits-" + name), on: device, dtype: dtype)
        let x = try NPY.read(dir + "/inputs.npy").doubles()
        let t = try NPY.read(dir + "/targets.npy").int32s().map { [Int($0)] }
        return Fixture(model: model, x: x, n: t.count, targets: t, dir: dir)
    }

    /// max |a − b| / max |b|, normwise: single attributions can be ~0.
    static func rel(_ a: [Double], _ b: [Double]) -> Double {
        guard a.count == b.count else { return .infinity }
        var d = 0.0, m = 0.0
        for i in b.indices { d = max(d, abs(a[i] - b[i])); m = max(m, abs(b[i])) }
        return d / max(m, .leastNormalMagnitude)
    }

    /// Float64 runs differ from Captum's float64 only by summation order and Captum's
    /// float32-rounded nodes and weights (relative 6e-8): 1e-6 holds with room. Float32
    /// runs carry ~K·u per layer on ~10 layers of K ≤ 300 terms: the 1e-4.
    static func tolerance(_ dtype: DType) -> Double { dtype == .float64 ? 1e-6 : 1e-4 }

    static var configurations: [(any Device, DType)] {
        [(cpu, .float64), (cpu, .float32)] + openCLDevices.map { ($0, .float32) }
    }

    @Test("Integrated Gradients, all five rules, matches Captum (trapezoid: the spec's weights)", arguments: models)
    func integratedGradients(_ name: String) throws {
        for (device, dtype) in Self.configurations {
            let f = try Self.fixture(name, on: device, dtype: dtype)
            let baselines = try f.array("baselines")
            for rule in IntegrationRule.allCases {
                let captumName = rule == .gaussLegendre ? "gausslegendre" : rule.rawValue
                let r = try IntegratedGradients(rule: rule, steps: 16).attribute(
                    f.model, inputs: f.x, count: f.n, baseline: .values(baselines, count: f.n), targets: f.targets)
                // Captum's trapezoid weights are 1/m halved at the ends (they sum to 1 − 1/m), not the
                // rule's 1/(m − 1): the engine follows the spec, and matches Captum times m/(m − 1).
                let want = try f.array("ig_\(captumName)" + (rule == .riemannTrapezoid ? "_spec" : ""))
                let tol = Self.tolerance(dtype)
                #expect(Self.rel(r.attributions, want) <= tol, "\(device.id) \(dtype) \(rule): \(Self.rel(r.attributions, want))")
                if rule == .riemannTrapezoid {
                    let captum = try f.array("ig_riemann_trapezoid")
                    #expect(Self.rel(r.attributions.map { $0 * 15 / 16 }, captum) <= tol, "\(device.id) trapezoid vs Captum × (m−1)/m")
                }
                let wantDelta = try f.array("ig_\(captumName)" + (rule == .riemannTrapezoid ? "_spec" : "") + "_delta")
                // Deltas are differences of sums of ~64 attributions and two outputs: compare to the outputs' scale.
                for i in 0..<f.n { #expect(abs(r.deltas![i] - wantDelta[i]) <= tol * 10, "\(device.id) \(dtype) \(rule) delta \(i)") }
            }
            let zero = try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(f.model, inputs: f.x, count: f.n, baseline: .zero, targets: f.targets)
            #expect(Self.rel(zero.attributions, try f.array("ig_gausslegendre_zero")) <= Self.tolerance(dtype), "\(device.id) \(dtype) zero baseline")
        }
    }

    @Test("Saliency, signed gradient, Gradient × Input match Captum", arguments: models)
    func plain(_ name: String) throws {
        for (device, dtype) in Self.configurations {
            let f = try Self.fixture(name, on: device, dtype: dtype)
            for (kind, file) in [(GradientMethods.Plain.saliency, "saliency"), (.signedGradient, "saliency_signed"), (.gradientTimesInput, "input_x_gradient")] {
                let r = try GradientMethods.plain(kind, f.model, inputs: f.x, count: f.n, targets: f.targets)
                #expect(Self.rel(r.attributions, try f.array(file)) <= Self.tolerance(dtype), "\(device.id) \(dtype) \(kind)")
            }
        }
    }

    @Test("SmoothGrad, its square and VarGrad match Captum with the same noise", arguments: models)
    func smoothGrad(_ name: String) throws {
        for (device, dtype) in Self.configurations {
            let f = try Self.fixture(name, on: device, dtype: dtype)
            let noise = try f.array("noise")
            for (reduction, file) in [(GradientMethods.NoiseReduction.smoothgrad, "smoothgrad"), (.smoothgradSquared, "smoothgrad_sq"), (.vargrad, "vargrad")] {
                let r = try GradientMethods.smoothGrad(f.model, inputs: f.x, count: f.n, targets: f.targets, samples: 8,
                                                       noise: .given(noise), reduction: reduction)
                // VarGrad is a difference of two means (E[g²] − E[g]²): cancellation costs a factor ~10.
                let tol = Self.tolerance(dtype) * (reduction == .vargrad ? 10 : 1)
                let e = Self.rel(r.attributions, try f.array(file))
                #expect(e <= tol, "\(device.id) \(dtype) \(reduction): \(e)")
            }
        }
    }

    @Test("Expected Gradients and GradientSHAP match Captum with the same draws", arguments: models)
    func expectedGradients(_ name: String) throws {
        for (device, dtype) in Self.configurations {
            let f = try Self.fixture(name, on: device, dtype: dtype)
            let set = try f.array("eg_baselines"), idx = try f.array("eg_baseline_index").map { Int($0) }, alpha = try f.array("eg_alpha")
            for (noise, file) in [(nil as [Double]?, "expected_gradients"), (try f.array("gs_noise"), "gradient_shap")] {
                let r = try GradientMethods.expectedGradients(f.model, inputs: f.x, count: f.n, targets: f.targets, baselineSet: set,
                                                              baselineCount: 16, samples: 8,
                                                              draws: .init(baselineIndex: idx, alpha: alpha, noise: noise))
                #expect(Self.rel(r.attributions, try f.array(file)) <= Self.tolerance(dtype), "\(device.id) \(dtype) \(file)")
            }
        }
    }

    @Test("Completeness: |delta| ≤ 1e-3·|F(x) − F(x')| at m = 64, Gauss–Legendre", arguments: ["digits-mlp", "digits-cnn"])
    func completeness(_ name: String) throws {
        let x = try NPY.read(fixturePath("../../Models/digits-data/test_inputs.npy")).doubles()
        let labels = try NPY.read(fixturePath("../../Models/digits-data/test_labels.npy")).int32s()
        let n = 24
        for device in [cpu as any Device] + openCLDevices {
            let model = try Sequential.load(fixturePath("../../Models/" + name), on: device)
            let xs = Array(x.prefix(n * 64)), targets = labels.prefix(n).map { [Int($0)] }
            let r = try IntegratedGradients(rule: .gaussLegendre, steps: 64).attribute(model, inputs: xs, count: n, baseline: .zero, targets: targets)
            let fx = try model.forward(Tensor(xs, shape: [n, 1, 8, 8], dtype: .float32, on: device)).doubles()
            let f0 = try model.forward(Tensor([Double](repeating: 0, count: n * 64), shape: [n, 1, 8, 8], dtype: .float32, on: device)).doubles()
            for i in 0..<n {
                let gap = abs(fx[i * 10 + targets[i][0]] - f0[i * 10 + targets[i][0]])
                #expect(abs(r.deltas![i]) <= 1e-3 * gap, "\(name) \(device.id) input \(i): delta \(r.deltas![i]), |F(x) − F(x')| = \(gap)")
            }
        }
    }

    @Test("Fused and unfused, chunked and whole, OpenCL and CPU agree", arguments: ["digits-mlp", "digits-cnn"])
    func equivalences(_ name: String) throws {
        let x = Array(try NPY.read(fixturePath("../../Models/digits-data/test_inputs.npy")).doubles().prefix(5 * 64))
        let targets = [[1, 3], [0, 2], [4, 4], [9, 8], [7, 6]]   // two targets per input
        let base = Baseline.uniform(0, 0.2, seed: 5)
        func run(_ device: any Device, _ dtype: DType, fuse: Bool, cap: Int?) throws -> AttributionResult {
            let model = try Sequential.load(fixturePath("../../Models/" + name), on: device, dtype: dtype)
            return try IntegratedGradients(rule: .riemannMiddle, steps: 24, fuseFirstLayer: fuse, batchCap: cap)
                .attribute(model, inputs: x, count: 5, baseline: base, targets: targets)
        }
        // Float64: fusing reorders one sum of 24 weighted terms per element, chunking none.
        let ref = try run(cpu, .float64, fuse: false, cap: nil)
        #expect(ref.shape == [5, 2, 1, 8, 8] && !ref.fused)
        let fused = try run(cpu, .float64, fuse: true, cap: nil)
        #expect(fused.fused)
        #expect(Self.rel(fused.attributions, ref.attributions) <= 1e-12, "fused vs unfused")
        // Caps of 7 rows (steps split across batches) and 50 (two inputs a batch).
        for cap in [7, 50] {
            let chunked = try run(cpu, .float64, fuse: true, cap: cap)
            #expect(Self.rel(chunked.attributions, ref.attributions) <= 1e-12, "cap \(cap)")
            #expect(chunked.rowsEvaluated == 5 * 24)
        }
        for device in openCLDevices {
            for fuse in [false, true] {
                let r = try run(device, .float32, fuse: fuse, cap: 33)
                #expect(Self.rel(r.attributions, ref.attributions) <= 1e-4, "\(device.id) fuse \(fuse): \(Self.rel(r.attributions, ref.attributions))")
            }
        }
    }

    @Test("Path-weighted IG: completeness to F(x) − E_β F(b); the stochastic estimate converges to it")
    func pathSampled() throws {
        let f = try Self.fixture("mlp", on: cpu, dtype: .float64)
        let baselines = try f.array("baselines")
        for density in [PathDensity.uniform, .beta(2, 5)] {
            let r = try IntegratedGradients(rule: .gaussLegendre, steps: 128, density: density)
                .attribute(f.model, inputs: f.x, count: f.n, baseline: .values(baselines, count: f.n), targets: f.targets)
            for i in 0..<f.n { #expect(abs(r.deltas![i]) <= 1e-3, "\(density) delta \(i) = \(r.deltas![i])") }
            let s = try GradientMethods.stochasticPathSampledIG(f.model, inputs: f.x, count: f.n, baseline: .values(baselines, count: f.n),
                                                                targets: f.targets, density: density, samples: 4096, seed: 1)
            // Monte Carlo error ~ std/√4096 ≈ 1.6% of the attribution scale.
            #expect(Self.rel(s.attributions, r.attributions) <= 0.1, "\(density) stochastic vs deterministic: \(Self.rel(s.attributions, r.attributions))")
        }
    }

    @Test("The PS-IG experiment measures slopes near −1 and −½ and a variance ratio near the quadrature's")
    func psigExperiment() throws {
        let f = try Self.fixture("mlp", on: cpu, dtype: .float64)
        let r = try PathSampledIGExperiment.run(f.model, inputs: Array(f.x.prefix(128)), count: 2, targets: Array(f.targets.prefix(2)),
                                                stepCounts: [8, 16, 32, 64], referenceSteps: 256, repeats: 6, noiseDraws: 4000)
        // Left Riemann sums of a smooth integrand: error ≈ c/m, so the fitted slope is −1 up to the
        // next term; Monte Carlo error ∝ m^−½ with seed noise: a wider window.
        #expect(r.deterministicSlope > -1.15 && r.deterministicSlope < -0.85, "deterministic slope \(r.deterministicSlope)")
        #expect(r.stochasticSlope > -0.8 && r.stochasticSlope < -0.25, "stochastic slope \(r.stochasticSlope)")
        // 4000 draws of a variance estimate: relative standard error ≈ √(2/4000) ≈ 2.2% per variance.
        #expect(abs(r.varianceRatio - r.varianceRatioExpected) <= 0.1 * r.varianceRatioExpected, "ratio \(r.varianceRatio) vs \(r.varianceRatioExpected)")
        #expect(abs(r.varianceRatioExpected - 1.0 / 3) < 0.02)
    }

    @Test("NoiseTunnel around IG with zero noise is IG")
    func noiseTunnel() throws {
        let f = try Self.fixture("cnn", on: cpu, dtype: .float64)
        let ig = IntegratedGradients(rule: .gaussLegendre, steps: 8)
        let plain = try ig.attribute(f.model, inputs: f.x, count: f.n, baseline: .zero, targets: f.targets)
        let tunnel = try NoiseTunnel.integratedGradients(ig, f.model, inputs: f.x, count: f.n, baseline: .zero, targets: f.targets,
                                                         samples: 3, noise: .given([Double](repeating: 0, count: f.n * 3 * 64)))
        #expect(Self.rel(tunnel.attributions, plain.attributions) <= 1e-14)
    }

    @Test("Interrupting a sweep keeps the finished inputs")
    func interruption() throws {
        let f = try Self.fixture("mlp", on: cpu, dtype: .float64)
        final class Counter: @unchecked Sendable { var batches = 0 }
        let counter = Counter()
        let control = SweepControl(progress: { _, _ in counter.batches += 1 }, shouldStop: { counter.batches >= 2 })
        let r = try IntegratedGradients(rule: .gaussLegendre, steps: 16, batchCap: 16).attribute(
            f.model, inputs: f.x, count: f.n, baseline: .zero, targets: f.targets, control: control)
        #expect(r.interrupted && r.completedInputs == 2 && r.shape == [2, 1, 8, 8])
        let full = try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(f.model, inputs: f.x, count: f.n, baseline: .zero, targets: f.targets)
        #expect(Self.rel(r.attributions, Array(full.attributions.prefix(128))) <= 1e-14)
    }

    @Test("Bad input: shapes, targets, NaN, steps")
    func badInput() throws {
        let f = try Self.fixture("mlp", on: cpu, dtype: .float32)
        let ig = IntegratedGradients(rule: .gaussLegendre, steps: 8)
        expectAttribError(["4 inputs", "64 values"]) { _ = try ig.attribute(f.model, inputs: Array(f.x.dropLast()), count: f.n, baseline: .zero, targets: f.targets) }
        expectAttribError(["target 10 of input 0", "10 outputs"]) { _ = try ig.attribute(f.model, inputs: f.x, count: f.n, baseline: .zero, targets: [[10], [0], [0], [0]]) }
        var nan = f.x; nan[2 * 64 + 5] = .nan
        expectAttribError(["input 2", "non-finite", "element 5"]) { _ = try ig.attribute(f.model, inputs: nan, count: f.n, baseline: .zero, targets: f.targets) }
        expectAttribError(["riemann_trapezoid", "at least 2 steps"]) {
            _ = try IntegratedGradients(rule: .riemannTrapezoid, steps: 1).attribute(f.model, inputs: f.x, count: f.n, baseline: .zero, targets: f.targets)
        }
        expectAttribError(["baseline"]) { _ = try ig.attribute(f.model, inputs: f.x, count: f.n, baseline: .values([0, 1], count: 1), targets: f.targets) }
    }

    @Test("Gauss–Legendre nodes and weights")
    func gaussLegendre() throws {
        let (x, w) = GaussLegendre.nodes(5)
        // Abramowitz & Stegun 25.4: the 5-point rule.
        let want = [-0.9061798459386640, -0.5384693101056831, 0, 0.5384693101056831, 0.9061798459386640]
        let wantW = [0.2369268850561891, 0.4786286704993665, 0.5688888888888889, 0.4786286704993665, 0.2369268850561891]
        for i in 0..<5 { #expect(abs(x[i] - want[i]) < 1e-15 && abs(w[i] - wantW[i]) < 1e-15) }
        // Exact for polynomials of degree ≤ 2m − 1: ∫₀¹ α^k dα = 1/(k+1).
        let (a, wa) = try IntegrationRule.gaussLegendre.nodes(64)
        for k in [0, 7, 63, 127] {
            let s = zip(a, wa).reduce(0.0) { $0 + $1.1 * pow($1.0, Double(k)) }
            #expect(abs(s - 1 / Double(k + 1)) < 1e-13, "k = \(k): \(s)")
        }
    }

    @Test("Gauss–Legendre at many steps: a few Newton steps per node, and still exact to degree 2m − 1",
          arguments: [5, 64, 1000, 4096])
    func gaussLegendreManySteps(_ m: Int) throws {
        // Tricomi's guesses are within O(m⁻⁴) of the roots, so Newton needs about two steps and a
        // third that moves by less than the tolerance. The old stopping rule (a step below 1e-16)
        // took all 100 steps of its cap for nodes where P_m's rounding noise stays above it.
        let r = GaussLegendre.solved(m)
        #expect(r.maxSteps <= 5, "m = \(m): a node took \(r.maxSteps) Newton steps")
        #expect(zip(r.nodes, r.nodes.dropFirst()).allSatisfy { $0 < $1 } && r.nodes.first! > -1 && r.nodes.last! < 1)
        // ∫₀¹ α^k dα = 1/(k+1) on [0, 1], up to k = 2m − 1: the rule's exactness. A node off by δ
        // moves its term by k·δ·α^(k−1)·w, and Σ w·k·α^(k−1) = 1, so nodes rounded to about
        // 1e-16 move the sum by about 1e-16 at any k, and the sum's own rounding (m terms) by
        // m·u·1/(k+1); 1e-14 holds that with room, and a node off by 1e-12 breaks it.
        let (a, wa) = try IntegrationRule.gaussLegendre.nodes(m)
        for k in Set([0, 1, m, 2 * m - 1]) {
            let s = zip(a, wa).reduce(0.0) { $0 + $1.1 * pow($1.0, Double(k)) }
            #expect(abs(s - 1 / Double(k + 1)) <= 1e-14, "m = \(m), k = \(k): \(s)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
