import Attrib
import Testing

/// Products with a fused epilogue (Kernels/gemm_epilogue.cl, Device.gemmFused) and the graph
/// rule that uses them (Graph.fusingLinearActivations).
///
/// Tolerance: none. With α = 1 the fused kernel forms the same sums in the same order as
/// the plain product (same kernel, same tiles), adds the bias with one rounding as
/// bias_add does, and applies the same f and f′ (activation_math.cl, shared with
/// activation.cl); the multiplier of A is one rounded product, as ew_mul's. So every value
/// must equal the separate ops' bit for bit; an epilogue at the wrong column, a mask at
/// the wrong offset or a skipped bias changes them.
@Suite struct FusedGEMMTests {
    /// An epilogue to test: bias or not, an activation or none, f′ kept or not.
    struct Epilogue: CustomTestStringConvertible, Sendable {
        let bias: Bool, activation: Activation?, derivative: Bool
        var testDescription: String { "\(bias ? "bias+" : "")\(activation.map { "\($0)" } ?? "identity")\(derivative ? "+f′" : "")" }
    }

    /// Every activation with bias and f′ (what the graph rule runs), and the partial forms.
    static let epilogues: [Epilogue] = Activation.allCases.map { Epilogue(bias: true, activation: $0, derivative: true) }
        + [Epilogue(bias: true, activation: nil, derivative: false), Epilogue(bias: false, activation: .tanh, derivative: false)]

    /// The product shapes: edge tiles in every direction, and a strided batch of 2 with Bᵀ.
    static let shapes: [GEMMTests.Case] = [.init(m: 67, n: 45, k: 37), .init(m: 130, n: 70, k: 33, tB: true, batch: 2)]

    @Test("A fused bias + activation + f′ epilogue gives bitwise the product, bias_add, act_forward and act_backward apart, on every OpenCL device",
          arguments: epilogues)
    func epilogueBitwise(_ e: Epilogue) throws {
        for device in openCLDevices.map({ $0.independentHandle() }) {
            // Float64 too for two of them: the epilogue is generic in `real`.
            let types: [DType] = e.activation == .geluErf || e.activation == nil ? dtypes(device) : [.float32]
            for dtype in types { for c in Self.shapes { try Self.checkEpilogue(e, c, on: device, dtype: dtype, what: device.gemmPath()) } }
        }
    }

    @Test("The epilogue in gemm_db.cl and in gemm.cl's direct-read tiles, and the multiplier of A in both, bitwise as apart")
    func otherKernels() throws {
        for device in openCLDevices.map({ $0.independentHandle() }) {
            let sets = [GEMMParameters.doubleBuffered(MWG: 64, NWG: 64, KWG: 16, MDIMC: 8, NDIMC: 8, VW: 4, VWM: 4, VWN: 4, PAD: 4),
                        GEMMParameters(MWG: 8, NWG: 16, KWG: 32, MDIMC: 1, NDIMC: 1, VW: 4, PAD: 0, LOCAL_A: 0, LOCAL_B: 0)]
            for p in sets where p.problem(on: device.info, dtype: .float32) == nil {
                for v in GEMMVariant.all(.float32) { try device.setGEMMParameters(p, for: v) }
                for c in Self.shapes {
                    try Self.checkEpilogue(Epilogue(bias: true, activation: .geluTanh, derivative: true), c, on: device, dtype: .float32, what: "\(p)")
                    if p.kernel == 0 && p.LOCAL_A == 0 {
                        // Tiles that read A straight from memory decline the multiplier (staging it would cost more).
                        let (a, _, _, g) = try Self.operands(c, on: device, dtype: .float32)
                        #expect(try device.gemmFused(g, GEMMEpilogue(multiplierA: a.storage)) == false, "\(device.id) [\(p)]: multiplier fused on direct-read tiles")
                    } else {
                        try Self.checkMultiplier(c, on: device, dtype: .float32, what: "\(p)")
                    }
                }
            }
        }
    }

    @Test("The multiplier of A, (A ⊙ M)·op(B), bitwise ew_mul then the product, for A stored either way, on every OpenCL device (GPU tiles)")
    func multiplierBitwise() throws {
        for device in openCLDevices.map({ $0.independentHandle() }) {
            for dtype in dtypes(device) {
                // The GPU default tiles, which stage A (a CPU device's own defaults decline the multiplier).
                for v in GEMMVariant.all(dtype) { try device.setGEMMParameters(.defaults(for: .gpu), for: v) }
                for c in Self.shapes + [GEMMTests.Case(m: 29, n: 31, k: 70, tA: true, batch: 2)] {
                    try Self.checkMultiplier(c, on: device, dtype: dtype, what: device.gemmPath(transA: c.tA, transB: c.tB))
                }
            }
        }
    }

    @Test("gemm_mma.cl's epilogue and multiplier, with the mma emulated (EMULATE_MMA), bitwise its own product apart, TF32 and BF16")
    func emulatedTensorCores() throws {
        for device in openCLDevices.map({ $0.independentHandle() }) {
            device.setTensorCoreEmulation(true)
            for p in [MatmulPrecision.tf32, .bf16] {
                try device.setMatmulPrecision(p)
                #expect(device.gemmPath().hasPrefix("gemm_mma"), "\(device.id) \(p): not on the mma kernel")
                let c = GEMMTests.Case(m: 67, n: 45, k: 37)
                try Self.checkEpilogue(Epilogue(bias: true, activation: .tanh, derivative: true), c, on: device, dtype: .float32, what: "mma \(p)")
                try Self.checkMultiplier(c, on: device, dtype: .float32, what: "mma \(p)")
            }
        }
    }

    @Test("A fused epilogue is refused with a clear error for β ≠ 0, f′ without an activation, and a short bias")
    func refusals() throws {
        guard let device = openCLDevices.first?.independentHandle() else { return }
        let a = try Tensor(randomValues(12, seed: 1), shape: [3, 4], dtype: .float32, on: device)
        let b = try Tensor(randomValues(20, seed: 2), shape: [4, 5], dtype: .float32, on: device)
        let y = try Tensor.zeros([3, 5], dtype: .float32, on: device)
        let shortBias = try Tensor.zeros([4], dtype: .float32, on: device)
        func product(beta: Double = 0) -> GEMMArguments {
            GEMMArguments(m: 3, n: 5, k: 4, a: a.storage, lda: 4, b: b.storage, ldb: 5, beta: beta, c: y.storage, ldc: 5)
        }
        expectAttribError(["beta = 1", "beta must be 0"]) { _ = try device.gemmFused(product(beta: 1), GEMMEpilogue(activation: .relu)) }
        expectAttribError(["derivative", "needs an activation"]) { _ = try device.gemmFused(product(), GEMMEpilogue(derivative: y.storage)) }
        expectAttribError(["bias needs elements 0..<5", "buffer of 4"]) { _ = try device.gemmFused(product(), GEMMEpilogue(bias: shortBias.storage)) }
        // Turned off, it declines and writes nothing: callers run the ops apart.
        device.setFusedEpilogues(false)
        #expect(try device.gemmFused(product(), GEMMEpilogue(activation: .relu)) == false)
        #expect(try y.doubles().allSatisfy { $0 == 0 })
        #expect(try cpu.gemmFused(product(), GEMMEpilogue(activation: .relu)) == false, "the CPU backend does not fuse")
    }

    @Test("Linear → activation pairs of a sweep graph fuse on OpenCL (not the first affine layer, IG's cut), and IG is bitwise the pairs run apart")
    func graphRule() throws {
        for device in openCLDevices.map({ $0.independentHandle() }) {
            // relu-free hidden layers unlike the bundled models: 6 → 24 (tanh) → 32 (gelu) → 16 (sigmoid) → 3.
            var rng = SplitMix64(seed: 5)
            var layers: [any Layer] = []
            for (i, (fin, fout)) in [(6, 24), (24, 32), (32, 16), (16, 3)].enumerated() {
                let r = 1 / Double(fin).squareRoot()
                layers.append(try Linear(weight: Tensor(rng.uniform(fout * fin, -r, r), shape: [fout, fin], dtype: .float32, on: device),
                                         bias: Tensor(rng.uniform(fout, -r, r), shape: [fout], dtype: .float32, on: device)))
                if i < 3 { layers.append(ActivationLayer([Activation.tanh, .geluErf, .sigmoid][i])) }
            }
            let model = try Sequential(layers: layers, inputShape: [6], device: device, dtype: .float32)
            let kinds = model.sweepExecutor.graph.nodes.map(\.op.kind)
            #expect(kinds == ["Linear", "Activation", "LinearActivation", "LinearActivation", "Linear"], "\(device.id): sweep graph \(kinds)")
            #expect(model.forwardExecutor.graph.nodes.count == 7, "the forward graph keeps every layer")
            let (n, x) = (5, randomValues(30, seed: 6))
            let targets = (0..<n).map { [$0 % 3] }
            func ig() throws -> AttributionResult {
                try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(model, inputs: x, count: n, baseline: .zero, targets: targets)
            }
            let fused = try ig()
            device.setFusedEpilogues(false)
            let apart = try ig()
            device.setFusedEpilogues(true)
            expectEqual(fused.attributions, apart.attributions, "\(device.id) IG fused vs apart")
            expectEqual(fused.deltas ?? [], apart.deltas ?? [], "\(device.id) IG deltas fused vs apart")
            // With GPU tiles the backward's multiply rides in the product too (CPU tiles decline it).
            let tiles = GEMMVariant.all(.float32).map { device.currentGEMMParameters($0) }
            for v in GEMMVariant.all(.float32) { try device.setGEMMParameters(.defaults(for: .gpu), for: v) }
            let fusedGPUTiles = try ig()
            device.setFusedEpilogues(false)
            let apartGPUTiles = try ig()
            device.setFusedEpilogues(true)
            for (v, p) in zip(GEMMVariant.all(.float32), tiles) { try device.setGEMMParameters(p, for: v) }
            expectEqual(fusedGPUTiles.attributions, apartGPUTiles.attributions, "\(device.id) IG fused vs apart, GPU tiles")
            // And against the CPU backend, which runs the layers apart (GradientMethodTests' Float32 bound).
            let onCPU = try Sequential(layers: try layers.map { l in
                guard let lin = l as? Linear else { return l }
                return try Linear(weight: Tensor(lin.weight.doubles(), shape: lin.weight.shape, dtype: .float32, on: cpu),
                                  bias: Tensor(lin.bias!.doubles(), shape: [lin.outFeatures], dtype: .float32, on: cpu))
            }, inputShape: [6], device: cpu, dtype: .float32)
            let reference = try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(onCPU, inputs: x, count: n, baseline: .zero, targets: targets)
            #expect(GradientMethodTests.rel(fused.attributions, reference.attributions) <= GradientMethodTests.tolerance(.float32),
                    "\(device.id) fused IG vs CPU: \(GradientMethodTests.rel(fused.attributions, reference.attributions))")
        }
    }

    /// Convolutions of the implicit-GEMM kernel: stride 2 with padding, 1×1, 5×5 stride 2 (x [N, C, H, W], OC, k, stride, pad).
    static let convolutions: [(x: [Int], oc: Int, k: Int, s: Int, p: Int)] = [([2, 3, 9, 11], 5, 3, 2, 1), ([2, 6, 7, 7], 4, 1, 1, 0), ([1, 3, 12, 10], 6, 5, 2, 2)]

    @Test("conv_igemm.cl with the activation and f′ in its store, and its input gradient of dy ⊙ f′, bitwise the ops apart, every activation, on every OpenCL device")
    func convolutionEpilogue() throws {
        for device in openCLDevices.map({ $0.independentHandle() }) {
            device.setImplicitConvolution(true)
            for dtype in dtypes(device) {
                for (ci, c) in Self.convolutions.enumerated() {
                    let x = try Tensor(randomValues(c.x.reduce(1, *), seed: 21, -2, 2), shape: c.x, dtype: dtype, on: device)
                    let w = try Tensor(randomValues(c.oc * c.x[1] * c.k * c.k, seed: 22), shape: [c.oc, c.x[1], c.k, c.k], dtype: dtype, on: device)
                    let b = try Tensor(randomValues(c.oc, seed: 23), shape: [c.oc], dtype: dtype, on: device)
                    let (s, p) = (Size2D(c.s, c.s), Size2D(c.p, c.p))
                    // Every activation on the first geometry; ReLU and tanh on the others (each a build).
                    let kinds: [Activation] = ci == 0 && dtype == .float32 ? Activation.allCases : [.relu, .tanh]
                    for kind in kinds {
                        let label = "\(device.id) \(dtype) \(kind) conv x\(c.x) k\(c.k) s\(c.s) p\(c.p)"
                        guard let (y, d) = try x.conv2dImplicitActivated(weight: w, bias: b, stride: s, padding: p, activation: kind) else {
                            Issue.record("\(label): declined"); continue
                        }
                        let z = try #require(try x.conv2dImplicit(weight: w, bias: b, stride: s, padding: p))
                        let layer = ActivationLayer(kind)
                        let (want, saved) = try layer.forward(z)
                        let ones = try Tensor([Double](repeating: 1, count: z.count), shape: z.shape, dtype: dtype, on: device)
                        expectEqual(try y.doubles(), try want.doubles(), label + " y")
                        expectEqual(try d.doubles(), try layer.backward(ones, saved).doubles(), label + " f′")
                        // The backward's operand: dy ⊙ f′ gathered, against multiplying first.
                        let dy = try Tensor(randomValues(z.count, seed: 24), shape: z.shape, dtype: dtype, on: device)
                        let got = try #require(try dy.conv2dInputGradientImplicit(weight: w, imageShape: c.x, stride: s, padding: p, multiplier: d))
                        let apart = try #require(try dy.multiplying(d).conv2dInputGradientImplicit(weight: w, imageShape: c.x, stride: s, padding: p))
                        expectEqual(try got.doubles(), try apart.doubles(), label + " dx of dy ⊙ f′")
                    }
                }
            }
        }
    }

    @Test("Conv → activation pairs of a sweep graph fuse where convolutions run as implicit GEMMs; the op takes the fused path, and IG is bitwise the pairs apart")
    func convolutionGraphRule() throws {
        let dir = fixturePath("unlike/relu-cnn")
        let x = try NPY.read(dir + "/inputs.npy").doubles()
        let targets = try NPY.read(dir + "/targets.npy").int32s().map { [Int($0)] }
        for device in openCLDevices.map({ $0.independentHandle() }) {
            device.setImplicitConvolution(true)
            let model = try Sequential.load(dir, on: device)
            // One implicit GEMM per convolution, not the small-image dense maps.
            for case let conv as Conv2d in model.layers { conv.unrollSmallImages = false }
            let kinds = model.sweepExecutor.graph.nodes.map(\.op.kind)
            #expect(kinds.filter { $0 == "ConvActivation" }.count == 1, "\(device.id): sweep graph \(kinds) (the first convolution is IG's cut)")
            let op = try #require(model.sweepExecutor.graph.nodes.first { $0.op.kind == "ConvActivation" }?.op)
            let input = try Tensor(randomValues(2 * 16 * 4 * 4, seed: 25), shape: [2, 16, 4, 4], dtype: model.dtype, on: device)
            #expect(try op.forward([input]).saved.layer == nil, "\(device.id): the fused op ran its layers apart")
            func ig() throws -> AttributionResult {
                try IntegratedGradients(rule: .gaussLegendre, steps: 16).attribute(model, inputs: x, count: targets.count, baseline: .zero, targets: targets)
            }
            let fused = try ig()
            device.setFusedEpilogues(false)
            let apart = try ig()
            device.setFusedEpilogues(true)
            expectEqual(fused.attributions, apart.attributions, "\(device.id) relu-cnn IG, fused vs apart")
            let captum = try NPY.read(dir + "/ig.npy").doubles()
            #expect(GradientMethodTests.rel(fused.attributions, captum) <= GradientMethodTests.tolerance(.float32), "\(device.id) relu-cnn IG vs Captum")
        }
    }

    // MARK: helpers

    /// The case's operands: A and B as GEMMTests lays them out (no padding or offset), and a bias.
    static func operands(_ c: GEMMTests.Case, on device: any Device, dtype: DType) throws -> (a: Tensor, b: Tensor, bias: Tensor, g: GEMMArguments) {
        let (ar, ac) = c.tA ? (c.k, c.m) : (c.m, c.k)
        let (br, bc) = c.tB ? (c.n, c.k) : (c.k, c.n)
        let a = try Tensor(randomValues(c.batch * ar * ac, seed: 11, -2, 2), shape: [c.batch * ar * ac], dtype: dtype, on: device)
        let b = try Tensor(randomValues(c.batch * br * bc, seed: 12), shape: [c.batch * br * bc], dtype: dtype, on: device)
        let bias = try Tensor(randomValues(c.n, seed: 13), shape: [c.n], dtype: dtype, on: device)
        let y = try Tensor.zeros([c.batch * c.m * c.n], dtype: dtype, on: device)
        let g = GEMMArguments(transA: c.tA, transB: c.tB, m: c.m, n: c.n, k: c.k, a: a.storage, lda: ac, strideA: ar * ac,
                              b: b.storage, ldb: bc, strideB: br * bc, c: y.storage, ldc: c.n, strideC: c.m * c.n, batch: c.batch)
        return (a, b, bias, g)
    }

    static func checkEpilogue(_ e: Epilogue, _ c: GEMMTests.Case, on device: OpenCLDevice, dtype: DType, what: String) throws {
        let (_, _, bias, g) = try operands(c, on: device, dtype: dtype)
        let count = c.batch * c.m * c.n
        let y = try Tensor(shape: [count], dtype: dtype, on: device), d = try Tensor.zeros([count], dtype: dtype, on: device)
        var fused = g
        fused.c = y.storage
        let epilogue = GEMMEpilogue(bias: e.bias ? bias.storage : nil, activation: e.activation, derivative: e.derivative ? d.storage : nil)
        #expect(try device.gemmFused(fused, epilogue), "\(device.id): declined")
        // Apart: the product, bias_add over all rows, then f and f′ (act_backward with dy = 1).
        try device.gemm(g)
        let z = try Tensor.zeros([count], dtype: dtype, on: device)
        try device.copy(n: count, x: g.c, y: z.storage)
        if e.bias { try device.biasAdd(rows: c.batch * c.m, cols: c.n, bias: bias.storage, y: z.storage) }
        let want = try Tensor.zeros([count], dtype: dtype, on: device), wantD = try Tensor.zeros([count], dtype: dtype, on: device)
        if let kind = e.activation {
            try device.activation(kind, n: count, x: z.storage, y: want.storage)
            try device.activationBackward(kind, n: count, x: z.storage, dy: Tensor([Double](repeating: 1, count: count), shape: [count], dtype: dtype, on: device).storage, dx: wantD.storage)
        } else {
            try device.copy(n: count, x: z.storage, y: want.storage)
        }
        let label = "\(device.id) \(dtype) [\(what)] \(e.testDescription) \(c.testDescription)"
        expectEqual(try y.doubles(), try want.doubles(), label + " y")
        if e.derivative { expectEqual(try d.doubles(), try wantD.doubles(), label + " f′") }
    }

    static func checkMultiplier(_ c: GEMMTests.Case, on device: OpenCLDevice, dtype: DType, what: String) throws {
        let (a, _, _, g) = try operands(c, on: device, dtype: dtype)
        let mask = try Tensor(randomValues(a.count, seed: 14, -1.5, 1.5), shape: a.shape, dtype: dtype, on: device)
        let count = c.batch * c.m * c.n
        let y = try Tensor(shape: [count], dtype: dtype, on: device)
        var fused = g
        fused.c = y.storage
        #expect(try device.gemmFused(fused, GEMMEpilogue(multiplierA: mask.storage)), "\(device.id): declined")
        var apart = g
        apart.a = try a.multiplying(mask).storage
        try device.gemm(apart)
        let want = try Tensor.zeros([count], dtype: dtype, on: device)
        try device.copy(n: count, x: g.c, y: want.storage)
        expectEqual(try y.doubles(), try want.doubles(), "\(device.id) \(dtype) [\(what)] (A ⊙ M)·B \(c.testDescription)")
    }
}
