import Attrib
import Testing

/// Sobol attribution (Fel et al.): the mask ops' OpenCL/CPU parity, the method
/// against an independent NumPy implementation (Tests/Fixtures/sobol/
/// make_sobol_fixtures.py) on the digits CNN, the token variant, bad input.
@Suite struct SobolAttributionTests {
    /// Unit roundoff ε (the spacing of 1) of a dtype.
    static func eps(_ t: DType) -> Double { t == .float64 ? Double.ulpOfOne : Double(Float.ulpOfOne) }

    /// Masks with values in [0, 1], and images and baselines in [−1, 1].
    static func data(m: Int, mc: Int, g: Int, c: Int, h: Int, w: Int, seed: UInt64) -> ([Double], [Double], [Double]) {
        (randomValues(m * mc * g * g, seed: seed, 0, 1), randomValues(c * h * w, seed: seed + 1), randomValues(c * h * w, seed: seed + 2))
    }

    /// Geometries: integer and non-integer ratios, identity, one-per-channel masks.
    static let geometries: [(m: Int, mc: Int, g: Int, c: Int, h: Int, w: Int)] = [
        (5, 1, 3, 1, 8, 8), (4, 1, 8, 3, 28, 28), (3, 2, 4, 2, 8, 8), (2, 1, 8, 1, 8, 8), (3, 3, 5, 3, 7, 13),
    ]

    /// Nearest: integer indices and, with FP contraction off in sobol.cl, the same
    /// roundings as the CPU loop: equal bit for bit. Bilinear: the only operation that may
    /// round differently is the division giving λ (OpenCL single precision allows 2.5 ulp,
    /// double is exact), so λ differs by ≤ 3ε; the two lerps move by ≤ 3ε·|m₁ − m₀| ≤ 3ε each
    /// (masks in [0, 1]), and the rounding of each later operation may then flip: ≤ 16ε in all
    /// for a mask, times (|x| + |x₀|) or |x|·σ after the perturbation.
    static func bound(_ mode: MaskUpsampling, _ t: DType, scale: Double) -> Double {
        mode == .nearest ? 0 : 16 * eps(t) * max(scale, 1)
    }

    @Test("Mask upsampling: OpenCL equals the CPU backend (nearest exactly, bilinear to 16ε)")
    func upsampleParity() throws {
        for dev in openCLDevices {
            for t in dtypes(dev) {
                for (i, g) in Self.geometries.enumerated() {
                    let (masks, _, _) = Self.data(m: g.m, mc: g.mc, g: g.g, c: g.c, h: g.h, w: g.w, seed: UInt64(10 + i))
                    for mode in MaskUpsampling.allCases {
                        let want = try Tensor(masks, shape: [g.m, g.mc, g.g, g.g], dtype: t, on: cpu).upsampledMasks(height: g.h, width: g.w, mode: mode).doubles()
                        let got = try Tensor(masks, shape: [g.m, g.mc, g.g, g.g], dtype: t, on: dev).upsampledMasks(height: g.h, width: g.w, mode: mode).doubles()
                        expectClose(got, want, bound: { _ in Self.bound(mode, t, scale: 1) }, "\(dev.info.id) \(t) \(mode) \(g)")
                    }
                }
            }
        }
    }

    @Test("Mask upsampling on the CPU: nearest and bilinear by hand (torch interpolate conventions)")
    func upsampleByHand() throws {
        // 2×2 → 4×4. Nearest: src = ⌊dst·2/4⌋ = 0, 0, 1, 1. Bilinear (align_corners=False):
        // src = (dst + ½)/2 − ½ = −¼ (→ 0), ¼, ¾, 1¼ (→ i0 = 1, i1 = 1): weights of the second
        // cell 0, ¼, ¾, 1.
        let m = try Tensor([0.0, 1, 2, 3], shape: [1, 1, 2, 2], dtype: .float64, on: cpu)
        expectEqual(try m.upsampledMasks(height: 4, width: 4, mode: .nearest).doubles(),
                    [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3], "nearest")
        let l = [0, 0.25, 0.75, 1.0]
        var want: [Double] = []
        for y in l { for x in l { want.append(2 * y + x) } }
        expectClose(try m.upsampledMasks(height: 4, width: 4, mode: .bilinear).doubles(), want, bound: { _ in 1e-15 }, "bilinear")
    }

    @Test("Perturbations (inpainting with a tensor or constant x₀, amplitude): OpenCL equals the CPU backend")
    func perturbParity() throws {
        for dev in openCLDevices {
            for t in dtypes(dev) {
                for (i, g) in Self.geometries.enumerated() {
                    let (masks, x, x0) = Self.data(m: g.m, mc: g.mc, g: g.g, c: g.c, h: g.h, w: g.w, seed: UInt64(40 + i))
                    for mode in MaskUpsampling.allCases {
                        for (name, kind, base, sigma) in [("inpaint-tensor", MaskPerturbation.inpainting, x0, 1.0),
                                                          ("inpaint-constant", .inpainting, [0.375], 1.0),
                                                          ("amplitude", .amplitude, [], 1.7)] {
                            func run(_ d: any Device) throws -> [Double] {
                                let xt = try Tensor(x, shape: [g.c, g.h, g.w], dtype: t, on: d)
                                let bt = base.isEmpty ? nil : try Tensor(base, shape: [base.count], dtype: t, on: d)
                                return try xt.maskPerturbed(masks: try Tensor(masks, shape: [g.m, g.mc, g.g, g.g], dtype: t, on: d),
                                                            kind, baseline: bt, sigma: sigma, mode: mode).doubles()
                            }
                            // |x| ≤ 1, |x₀| ≤ 1: scale 2 (inpainting) or σ = 1.7 (amplitude).
                            expectClose(try run(dev), try run(cpu), bound: { _ in Self.bound(mode, t, scale: 2) }, "\(dev.info.id) \(t) \(name) \(mode) \(g)")
                        }
                    }
                }
            }
        }
    }

    @Test("Perturbations on the CPU match their formulas (reference: x·M + (1 − M)·x₀, x·(M − ½)·σ)")
    func perturbFormulas() throws {
        let (masks, x, x0) = Self.data(m: 3, mc: 1, g: 4, c: 2, h: 8, w: 8, seed: 77)
        let up = try Tensor(masks, shape: [3, 1, 4, 4], dtype: .float64, on: cpu).upsampledMasks(height: 8, width: 8).doubles()
        let xt = try Tensor(x, shape: [2, 8, 8], dtype: .float64, on: cpu), mt = try Tensor(masks, shape: [3, 1, 4, 4], dtype: .float64, on: cpu)
        let inp = try xt.maskPerturbed(masks: mt, .inpainting, baseline: try Tensor(x0, shape: [128], dtype: .float64, on: cpu)).doubles()
        let amp = try xt.maskPerturbed(masks: mt, .amplitude, sigma: 2.5).doubles()
        var wantI: [Double] = [], wantA: [Double] = []
        for k in 0..<3 { for j in 0..<128 {
            let m = up[k * 64 + j % 64]
            wantI.append(x[j] * m + (1 - m) * x0[j]); wantA.append(x[j] * (m - 0.5) * 2.5)
        } }
        expectEqual(inp, wantI, "inpainting"); expectEqual(amp, wantA, "amplitude")
    }

    // MARK: the method against the NumPy reference

    struct Case { var name: String; var method: SobolAttribution }
    static let cases: [Case] = [
        Case(name: "grid8", method: SobolAttribution(gridSize: 8, designs: 32)),
        Case(name: "grid3_blur", method: SobolAttribution(gridSize: 3, designs: 16, perturbation: .blur(kernelSize: 3))),
        Case(name: "grid4_amplitude", method: SobolAttribution(gridSize: 4, designs: 16, perturbation: .amplitude(sigma: 1),
                                                               maskUpsampling: .bilinear)),
    ]

    static func read(_ name: String) throws -> [Double] { try NPY.read(fixturePath("sobol/" + name + ".npy")).doubles() }
    static func inputs() throws -> ([Double], [Int]) {
        (try read("inputs"), try NPY.read(fixturePath("sobol/labels.npy")).int32s().map { Int($0) })
    }

    /// First-order bound on |ΔST_i| when every score moves by at most η. Jansen
    /// ST_i = S_i/(2N·V), S_i = Σ(a − c_i)², V = Σ(a − ā)²/(N − 1): |ΔS_i| ≤ 4η·Σ|a − c_i| + 4Nη²,
    /// |ΔV| ≤ 2η·Σ|a − ā|·2/(N − 1) + 4η², so |ΔST_i| ≤ ST_i·(|ΔS_i|/S_i + |ΔV|/V) + …; doubled
    /// for the second-order terms, plus 64ε·ST_i for the sums' own roundings.
    static func jansenBound(scores y: [Double], n: Int, d: Int, eta: Double, eps: Double) -> [Double] {
        let a = Array(y[0..<n]), mean = a.reduce(0, +) / Double(n)
        var v = 0.0, sa = 0.0
        for t in a { v += (t - mean) * (t - mean); sa += abs(t - mean) }
        v /= Double(n - 1)
        let dv = 4 * eta * sa / Double(n - 1) + 4 * eta * eta
        return (0..<d).map { i in
            var s = 0.0, sd = 0.0
            for k in 0..<n { let e = a[k] - y[(2 + i) * n + k]; s += e * e; sd += abs(e) }
            let st = s / (2 * Double(n) * v)
            let ds = 4 * eta * sd + 4 * Double(n) * eta * eta
            return 2 * (st * (dv / v) + ds / (2 * Double(n) * v)) + 64 * eps * st + 1e-300
        }
    }

    @Test("Float64 on the CPU equals the NumPy reference to 1e-5 (indices, resized maps, Homma)", arguments: [0, 1, 2])
    func reference(_ c: Int) throws {
        let (x, labels) = try Self.inputs()
        let k = Self.cases[c]
        let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu, dtype: .float64)
        let r = try k.method.explain(model: model, inputs: x, targets: labels)
        #expect(r.completedInputs == 3 && !r.interrupted)
        // Both are float64 throughout, differing only by summation order (~1e-15 relative):
        // the 1e-5 holds with ample room.
        expectClose(r.indices, try Self.read(k.name + "_sti"), bound: { _ in 1e-5 }, "\(k.name) indices")
        expectClose(r.maps, try Self.read(k.name + "_resized"), bound: { _ in 1e-5 }, "\(k.name) resized maps")
        expectClose(r.scores, try Self.read(k.name + "_outputs"), bound: { _ in 1e-9 }, "\(k.name) scores")
        var homma = k.method; homma.estimator = .homma
        let d = r.indexShape.dropFirst().reduce(1, *), per = r.scores.count / 3
        let h = (0..<3).flatMap { homma.indices(scores: Array(r.scores[$0 * per ..< ($0 + 1) * per]), dimensions: d) }
        expectClose(h, try Self.read(k.name + "_homma"), bound: { _ in 1e-5 }, "\(k.name) homma")
    }

    /// Scores of the float32 model against float64: the logits are sums of K products
    /// along the chain (9 + 144 + 128 = 281 terms through conv, conv, linear), each
    /// rounding ≤ K·ε relative to the sum of |terms|; 4·281·ε·(1 + |y|) covers it with the
    /// GELUs and pools. The indices then move by at most `jansenBound` with η the
    /// scores' largest difference.
    static func scoreBound(_ y: Double, _ t: DType) -> Double { 4 * 281 * eps(t) * (1 + abs(y)) }

    @Test("Float32 on the CPU and every OpenCL device: scores and indices within the derived bound of the reference")
    func float32AndDevices() throws {
        let (x, labels) = try Self.inputs()
        let k = Self.cases[0]
        let ref = try Self.read(k.name + "_outputs"), sti = try Self.read(k.name + "_sti")
        let devices: [any Device] = [cpu] + openCLDevices
        for dev in devices {
            for t in dtypes(dev) {
                let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: dev, dtype: t)
                let r = try k.method.explain(model: model, inputs: x, targets: labels)
                expectClose(r.scores, ref, bound: { Self.scoreBound(ref[$0], t) }, "\(dev.info.id) \(t) scores")
                let per = 32 * 66
                for i in 0..<3 {
                    let ys = Array(ref[i * per ..< (i + 1) * per]), got = Array(r.scores[i * per ..< (i + 1) * per])
                    let eta = zip(ys, got).map { abs($0 - $1) }.max()!
                    let b = Self.jansenBound(scores: ys, n: 32, d: 64, eta: eta, eps: Self.eps(t))
                    expectClose(Array(r.indices[i * 64 ..< (i + 1) * 64]), Array(sti[i * 64 ..< (i + 1) * 64]),
                                bound: { b[$0] }, "\(dev.info.id) \(t) indices of input \(i)")
                }
            }
        }
    }

    @Test("Per-channel masks, chunking and interruption")
    func chunkingAndInterrupt() throws {
        let (x, labels) = try Self.inputs()
        let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu, dtype: .float64)
        let whole = try SobolAttribution(gridSize: 4, designs: 8).explain(model: model, inputs: x, targets: labels)
        let chunked = try SobolAttribution(gridSize: 4, designs: 8, batchCap: 37).explain(model: model, inputs: x, targets: labels)
        // The same rows in other batches: the CPU forward is row-independent up to BLAS
        // blocking, so the scores agree to a few ε of the logits.
        expectClose(chunked.scores, whole.scores, bound: { 1e-12 * (1 + abs(whole.scores[$0])) }, "chunked scores")
        #expect(whole.indexShape == [3, 1, 4, 4] && whole.mapShape == [3, 1, 8, 8])
        #expect(whole.forwardPasses == 3 * 8 * 18)
        let stop = try SobolAttribution(gridSize: 4, designs: 8, batchCap: 100)
            .explain(model: model, inputs: x, targets: labels, control: SweepControl(shouldStop: { true }))
        #expect(stop.interrupted && stop.completedInputs == 0 && stop.indices.isEmpty)
        let stop2 = try SobolAttribution(gridSize: 4, designs: 8, batchCap: 150)
            .explain(model: model, inputs: x, targets: labels, control: SweepControl(shouldStop: { true }))
        #expect(stop2.interrupted && stop2.completedInputs == 1 && stop2.indices.count == 16)
        expectEqual(stop2.indices, Array(whole.indices.prefix(16)), "first input after an interruption")
    }

    @Test("Token variant: indices equal a hand-written Jansen on the binarised design; additive scores rank by weight")
    func tokens() throws {
        let weights: [Double] = [0.1, 3, 0.5, 2, 1]
        let tokens: [Int32] = [11, 12, 13, 14, 15]
        let score: ([Int32]) throws -> [Double] = { batch in
            stride(from: 0, to: batch.count, by: 5).map { r in (0..<5).reduce(0.0) { $0 + (batch[r + $1] == 0 ? 0 : weights[$1]) } }
        }
        let method = TokenSobolAttribution(designs: 64, batchSize: 50)
        let r = try method.explain(tokens: tokens, replacement: 0, score: score)
        // By hand: masks from the sampler, keep iff m ≥ ½, Jansen with V over f(A), unbiased.
        let n = 64, d = 5
        let p = try SobolSequence().points(count: n, dimensions: 2 * d)
        func f(_ m: [Double]) -> Double { (0..<d).reduce(0.0) { $0 + (m[$1] >= 0.5 ? weights[$1] : 0) } }
        let a = (0..<n).map { f(Array(p[$0 * 2 * d ..< $0 * 2 * d + d])) }
        let mean = a.reduce(0, +) / Double(n)
        let v = a.reduce(0.0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n - 1)
        let want = (0..<d).map { i -> Double in
            var s = 0.0
            for k in 0..<n {
                var m = Array(p[k * 2 * d ..< k * 2 * d + d]); m[i] = p[k * 2 * d + d + i]
                s += (a[k] - f(m)) * (a[k] - f(m))
            }
            return s / (2 * Double(n) * v)
        }
        expectClose(r.indices, want, bound: { _ in 1e-12 }, "token indices")
        // Additive in independent fair coins: ST_t = w_t²/Σw² exactly; the ranking must follow.
        #expect(DeletionInsertion.order(r.indices) == [1, 3, 4, 2, 0])
        #expect(r.rowsEvaluated == n * (d + 2))
    }

    @Test("Bad input: N not a power of two, a grid larger than the input, a design beyond the Sobol table")
    func badInput() throws {
        let (x, labels) = try Self.inputs()
        let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu, dtype: .float64)
        expectAttribError(["N = 24", "power of two"]) { _ = try SobolAttribution(designs: 24).explain(model: model, inputs: x, targets: labels) }
        expectAttribError(["grid 9×9", "larger than the input 8×8"]) { _ = try SobolAttribution(gridSize: 9).explain(model: model, inputs: x, targets: labels) }
        // 17 channels, per-channel 8×8 masks: d = 1088, 2d = 2176 > 2048.
        let w = try Tensor([Double](repeating: 0, count: 2 * 17 * 64), shape: [2, 17 * 64], dtype: .float64, on: cpu)
        let wide = try Sequential(layers: [Flatten(), try Linear(weight: w, bias: nil)], inputShape: [17, 8, 8], device: cpu, dtype: .float64)
        let xs = [Double](repeating: 0.5, count: 17 * 64)
        expectAttribError(["2176", "2048", "perChannel"]) {
            _ = try SobolAttribution(perChannel: true).explain(model: wide, inputs: xs, targets: [0])
        }
        _ = try SobolAttribution(gridSize: 2, designs: 4, perChannel: true).explain(model: wide, inputs: xs, targets: [0])
        expectAttribError(["2 planes", "3 channels"]) {
            let xt = try Tensor(shape: [3, 4, 4], dtype: .float64, on: cpu), mt = try Tensor(shape: [1, 2, 2, 2], dtype: .float64, on: cpu)
            _ = try xt.maskPerturbed(masks: mt, .amplitude)
        }
        expectAttribError(["2050", "2048"]) {
            _ = try TokenSobolAttribution().explain(tokens: [Int32](repeating: 1, count: 1025), replacement: 0, score: { _ in [] })
        }
    }

    @Test("Timing split on the digits CNN (grid 8, N = 32): printed, share outside forward passes")
    func timing() throws {
        let x = Array(try NPY.read(fixturePath("../../Models/digits-data/test_inputs.npy")).doubles().prefix(16 * 64))
        let labels = try NPY.read(fixturePath("../../Models/digits-data/test_labels.npy")).int32s().prefix(16).map { Int($0) }
        for dev in [cpu as any Device] + openCLDevices {
            let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: dev, dtype: .float32)
            _ = try SobolAttribution().explain(model: model, inputs: Array(x.prefix(64)), targets: [labels[0]])   // warm up (kernel builds)
            let r = try SobolAttribution().explain(model: model, inputs: x, targets: labels)
            print("sobol timing \(dev.info.id) (\(dev.info.name)): \(r.totalSeconds / 16) s per image, \(Int(r.forwardPassesPerSecond)) forward passes/s, outside forward \(100 * r.outsideForwardShare)% (batch \(r.plan.rows) rows)")
            #expect(r.completedInputs == 16)
        }
    }
}
