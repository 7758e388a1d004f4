import Attrib
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Activations: OpenCL against the CPU backend, and every backward against
/// central finite differences in Float64.
@Suite struct ActivationTests {
    /// Inputs across the interesting ranges: 0, tiny, the bend, saturation.
    static let inputs: [Double] = [0, 1e-30, -1e-30, 0.5, -0.5, 1, -1, 2.5, -2.5, 6, -6, 15, -15, 40, -40]
        + randomValues(1000, seed: 9, -8, 8)

    /// OpenCL 1.2 (§7.4) allows exp 3 ulp, tanh 5 ulp, erf 16 ulp, log1p 2 ulp;
    /// each activation composes one of these with a few exactly rounded ops,
    /// and an error ε in an intermediate argument moves the result by about
    /// |x·f′(x)|·ε. So |Δ| ≤ 32u·(|f(x)| + |x·f′(x)| + 1·[near 0 underflow guard]·u).
    static func bound(_ dtype: DType, _ y: Double, _ slope: Double) -> Double {
        32 * dtype.unitRoundoff * (abs(y) + abs(slope) + 1e-6)
    }

    @Test("forward and backward parity", arguments: Activation.allCases)
    func parity(_ kind: Activation) throws {
        let x = Self.inputs, dy = randomValues(x.count, seed: 10)
        for device in openCLDevices { for dtype in dtypes(device) {
            func run(_ d: any Device) throws -> ([Double], [Double]) {
                let tx = try Tensor(x, shape: [x.count], dtype: dtype, on: d)
                return (try tx.activated(kind).doubles(),
                        try tx.activationBackward(kind, upstream: Tensor(dy, shape: [dy.count], dtype: dtype, on: d)).doubles())
            }
            let (y, g) = try run(device), (yRef, gRef) = try run(cpu)
            let xs = try Tensor(x, shape: [x.count], dtype: dtype, on: cpu).doubles()
            let slopes = try Tensor(xs, shape: [x.count], dtype: .float64, on: cpu)
                .activationBackward(kind, upstream: Tensor([Double](repeating: 1, count: x.count), shape: [x.count], on: cpu)).doubles()
            expectClose(y, yRef, bound: { Self.bound(dtype, yRef[$0], xs[$0] * slopes[$0]) }, "\(device.id) \(dtype) \(kind) forward")
            // The derivative has one more level of the same functions: the same bound, on dy·f′.
            expectClose(g, gRef, bound: { Self.bound(dtype, gRef[$0], 4 * dy[$0] * (1 + abs(xs[$0]))) }, "\(device.id) \(dtype) \(kind) backward")
        } }
    }

    @Test("backward against central finite differences in Float64", arguments: Activation.allCases)
    func finiteDifferences(_ kind: Activation) throws {
        // Away from relu's kink at 0 and the hard activations' at ±3, where the derivative is
        // not defined (each takes PyTorch's one-sided convention there; knownValues checks it).
        let hard = kind == .hardSigmoid || kind == .hardSwish
        let x = hard ? [-4.0, -2.9, -1.1, -0.3, 0.2, 0.7, 1.9, 2.9, 4.0]
            : kind == .relu6 ? [-1.1, -0.3, 0.2, 3.0, 5.9, 6.2, 7.0] : [-3.0, -1.1, -0.3, 0.2, 0.7, 1.9, 4.0]
        let h = 1e-5
        for device in [cpu as any Device] + openCLDevices.filter({ $0.supports(.float64) }) {
            let tx = try Tensor(x, shape: [x.count], on: device)
            let g = try tx.activationBackward(kind, upstream: Tensor([Double](repeating: 1, count: x.count), shape: [x.count], on: device)).doubles()
            let plus = try Tensor(x.map { $0 + h }, shape: [x.count], on: device).activated(kind).doubles()
            let minus = try Tensor(x.map { $0 - h }, shape: [x.count], on: device).activated(kind).doubles()
            let fd = (0..<x.count).map { (plus[$0] - minus[$0]) / (2 * h) }
            // Truncation h²·|f‴|/6 ≲ 1e-10 here; rounding u·|f|/h ≲ 1e-10.
            expectClose(g, fd, bound: { _ in 1e-8 }, "\(device.id) \(kind) f′ vs finite differences")
        }
    }

    @Test("known values")
    func knownValues() throws {
        let x: [Double] = [-1, 0, 1]
        let want: [Activation: [Double]] = [
            .relu: [0, 0, 1],
            .geluErf: [-0.15865525393145707, 0, 0.8413447460685429],
            .geluTanh: [-0.15880800939172324, 0, 0.8411919906082768],
            .tanh: [-0.7615941559557649, 0, 0.7615941559557649],
            .sigmoid: [0.2689414213699951, 0.5, 0.7310585786300049],
            .softplus: [0.31326168751822286, 0.6931471805599453, 1.3132616875182228],
            .hardSigmoid: [1.0 / 3, 0.5, 2.0 / 3],
            .hardSwish: [-1.0 / 3, 0, 2.0 / 3],
            .relu6: [0, 0, 1],
        ]
        for device in [cpu as any Device] + openCLDevices.filter({ $0.supports(.float64) }) {
            for (kind, w) in want {
                expectClose(try Tensor(x, shape: [3], on: device).activated(kind).doubles(), w, bound: { _ in 1e-14 }, "\(device.id) \(kind)")
            }
        }
        // PyTorch's derivatives at the kinks (torch.nn.functional.hardswish/hardsigmoid backward):
        // hardswish' = 0 below −3, x/3 + ½ on [−3, 3], 1 above; hardsigmoid' = 1/6 strictly inside.
        let kinks = [-3.0, 3.0, -3.5, 3.5]
        for device in [cpu as any Device] + openCLDevices {
            let ones = try Tensor([1, 1, 1, 1], shape: [4], dtype: .float32, on: device)
            let t = try Tensor(kinks, shape: [4], dtype: .float32, on: device)
            #expect(try t.activationBackward(.hardSwish, upstream: ones).doubles() == [-0.5, 1.5, 0, 1], "\(device.id)")
            #expect(try t.activationBackward(.hardSigmoid, upstream: ones).doubles() == [0, 0, 0, 0], "\(device.id)")
            // ReLU6 (hardtanh(0, 6)): 0 at both kinks and outside, 1 strictly inside; 6 above 6.
            let r = try Tensor([0, 6, -0.5, 6.5, 3], shape: [5], dtype: .float32, on: device)
            let ones5 = try Tensor([1, 1, 1, 1, 1], shape: [5], dtype: .float32, on: device)
            #expect(try r.activationBackward(.relu6, upstream: ones5).doubles() == [0, 0, 0, 0, 1], "\(device.id)")
            #expect(try r.activated(.relu6).doubles() == [0, 6, 0, 6, 3], "\(device.id)")
        }
    }
}

/// The GELU layer keeps f′(x) from its forward pass where the device computes f and f′
/// together (the CPU backend in Float32); its numbers must be those of the two-op path.
@Suite struct ActivationLayerDerivativeTests {
    @Test("GELU layer: forward and backward with the kept derivative equal activated + activationBackward bitwise, on every device")
    func keptDerivativeMatches() throws {
        // Tails where Φ or φ underflows (the kernels' zero tests), 0, and the bulk; n not a multiple of 8.
        let x = [-120, -40, -13.5, -9, -3, -1e-30, 0, 1e-30, 2, 9, 40] + randomValues(1000, seed: 77, -6, 6)
        let dy = randomValues(x.count, seed: 78)
        for device in [cpu as any Device] + openCLDevices {
            for dtype in [DType.float32, .float64] where device.supports(dtype) {
                let xt = try Tensor(x, shape: [x.count], dtype: dtype, on: device)
                let dyt = try Tensor(dy, shape: [x.count], dtype: dtype, on: device)
                let layer = ActivationLayer(.geluErf)
                let (y, saved) = try layer.forward(xt)
                let dx = try layer.backward(dyt, saved)
                let what = "\(device.id) \(dtype)"
                // Kept exactly where promised: the CPU backend in Float32.
                #expect(saved.extra.count == (device is CPUDevice && dtype == .float32 ? 1 : 0), "\(what): kept derivative")
                expectEqual(try y.doubles(), try xt.activated(.geluErf).doubles(), "\(what) forward")
                expectEqual(try dx.doubles(), try xt.activationBackward(.geluErf, upstream: dyt).doubles(), "\(what) backward")
            }
        }
    }
}

/// The CPU backend's Float32 GELU (erf form) computes Φ and φ from one exp and one
/// rational fit of erfcx (CVecMath/vecmath.c); its values against the Float64 path
/// (libm's erfc and exp).
@Suite struct GELUFloat32AccuracyTests {
    @Test("CPU Float32 GELU and GELU′ within 16u of Float64, across the fit's range, around 0 and in the tails")
    func againstFloat64() throws {
        // The rational fit covers |z| ≤ 10.5 (x ≈ ±14.85), past which E underflows. Densely
        // around 0, where Φ = 1 − ½E·R switches to ½E·R, and around x = ±1/√2, where an
        // earlier version switched fits.
        var x = stride(from: -16.0, through: 16.0, by: 1.0 / 64).map { $0 } + [0, 1e-30, -1e-30, 1e-3, -1e-3]
        for point in [0, (0.5).squareRoot(), -(0.5).squareRoot()] { x += (-40...40).map { point + Double($0) * 1e-7 } }
        x += randomValues(5000, seed: 21, -10, 10)
        let x32 = x.map { Double(Float($0)) }                                    // the Float32 inputs, exactly
        let t32 = try Tensor(x32, shape: [x32.count], dtype: .float32, on: cpu)
        let t64 = try Tensor(x32, shape: [x32.count], dtype: .float64, on: cpu)
        let ones32 = try Tensor([Double](repeating: 1, count: x32.count), shape: [x32.count], dtype: .float32, on: cpu)
        let ones64 = try Tensor([Double](repeating: 1, count: x32.count), shape: [x32.count], dtype: .float64, on: cpu)
        let (y, d) = (try t32.activated(.geluErf).doubles(), try t32.activationBackward(.geluErf, upstream: ones32).doubles())
        let (yRef, dRef) = (try t64.activated(.geluErf).doubles(), try t64.activationBackward(.geluErf, upstream: ones64).doubles())
        let u = DType.float32.unitRoundoff
        // Φ carries the fit's error (3.7e-7 ≈ 6u after float32 evaluation), the exp's (< 1 ulp,
        // 2u) and a few roundings: about 10u where all align (the largest measured is about 6u);
        // y = x·Φ adds one. f′ = Φ + x·φ sums two such terms, which cancel near the minimum at
        // x ≈ −0.75: bound by their magnitudes. The absolute floor covers results below
        // float32's normal range.
        let tiny = Double(Float.leastNormalMagnitude)
        let phi = x32.map { exp(-$0 * $0 / 2) / (2 * Double.pi).squareRoot() }
        let cdf = x32.map { 0.5 * erfc(-$0 / 2.0.squareRoot()) }
        expectClose(y, yRef, bound: { 16 * u * abs(yRef[$0]) + tiny }, "GELU")
        expectClose(d, dRef, bound: { 16 * u * (cdf[$0] + abs(x32[$0] * phi[$0])) + tiny }, "GELU′")
        // Infinities: GELU(∞) = ∞, GELU′(∞) = 1; GELU(−∞) = 0 = GELU′(−∞). NaN stays NaN.
        let special = try Tensor([.infinity, -.infinity, .nan], shape: [3], dtype: .float32, on: cpu)
        let ys = try special.activated(.geluErf).doubles()
        let ds = try special.activationBackward(.geluErf, upstream: Tensor([1, 1, 1], shape: [3], dtype: .float32, on: cpu)).doubles()
        #expect(ys[0] == .infinity && ys[1] == 0 && ys[2].isNaN, "\(ys)")
        #expect(ds[0] == 1 && ds[1] == 0 && ds[2].isNaN, "\(ds)")
    }
}

/// The CPU backend's Float32 SiLU (Llama's gate): 8 lanes from one inline exp (vecmath.c).
@Suite struct SiLUFloat32AccuracyTests {
    @Test("CPU Float32 SiLU and SiLU′ within 8u of Float64 across both tails and around 0")
    func againstFloat64() throws {
        var x = stride(from: -120.0, through: 120.0, by: 1.0 / 16).map { $0 } + [0, 1e-30, -1e-30, 1e-3, -1e-3]
        x += randomValues(5000, seed: 22, -12, 12)
        let x32 = x.map { Double(Float($0)) }
        let t32 = try Tensor(x32, shape: [x32.count], dtype: .float32, on: cpu)
        let t64 = try Tensor(x32, shape: [x32.count], dtype: .float64, on: cpu)
        let ones = [Double](repeating: 1, count: x32.count)
        let y = try t32.activated(.silu).doubles()
        let d = try t32.activationBackward(.silu, upstream: Tensor(ones, shape: [x32.count], dtype: .float32, on: cpu)).doubles()
        let yRef = try t64.activated(.silu).doubles()
        let dRef = try t64.activationBackward(.silu, upstream: Tensor(ones, shape: [x32.count], on: cpu)).doubles()
        let u = DType.float32.unitRoundoff, tiny = Double(Float.leastNormalMagnitude)
        // σ carries the exp's error (< 1 ulp) and a division, y = x·σ one product: ~4u; f′ = σ +
        // x·e/(1 + e)² sums two terms that cancel near x ≈ −1.28: bound by their magnitudes.
        let sig = x32.map { 1 / (1 + exp(-$0)) }
        expectClose(y, yRef, bound: { 8 * u * abs(yRef[$0]) + tiny }, "SiLU")
        expectClose(d, dRef, bound: { 8 * u * (sig[$0] + abs(x32[$0]) * sig[$0] * (1 - sig[$0])) + tiny }, "SiLU′")
    }
}

/// The CPU backend's Float32 tanh and sigmoid (the tanh MLP's and the stride-2 CNN's): 8 lanes
/// from one inline exp (CVecMath/logistic.c).
@Suite struct TanhSigmoidFloat32AccuracyTests {
    @Test("CPU Float32 tanh, sigmoid, tanh-form GELU and their derivatives within 8u of Float64 (GELU′ by its terms): around 0, across the branch at |x| = 0.3125, into both tails", arguments: [Activation.tanh, .sigmoid, .geluTanh])
    func againstFloat64(_ kind: Activation) throws {
        var x = stride(from: -100.0, through: 100.0, by: 1.0 / 16).map { $0 } + [0, 1e-30, -1e-30, 1e-3, -1e-3, 0.3125, -0.3125]
        x += stride(from: 0.30, through: 0.33, by: 0.0005).flatMap { [$0, -$0] } + randomValues(5000, seed: 23, -12, 12)
        let x32 = x.map { Double(Float($0)) }
        let t32 = try Tensor(x32, shape: [x32.count], dtype: .float32, on: cpu)
        let t64 = try Tensor(x32, shape: [x32.count], dtype: .float64, on: cpu)
        let ones = [Double](repeating: 1, count: x32.count)
        let y = try t32.activated(kind).doubles()
        let d = try t32.activationBackward(kind, upstream: Tensor(ones, shape: [x32.count], dtype: .float32, on: cpu)).doubles()
        // The references in Double from e = exp(−|x|) forms that keep the tails (the Float64
        // backend saturates tanh at ±1 past |x| = 20, so its tanh′ is 0 there, not 4e^(−2|x|)).
        let yRef = try t64.activated(kind).doubles()
        let c = 0.7978845608028654, k = 0.044715
        func gelu(_ v: Double) -> (s: Double, ds: Double, du: Double) {        // σ(2u), σ′(2u), u′
            let u = c * (v + k * v * v * v), e = Glibc.exp(-abs(2 * u)), d = 1 + e
            return (2 * u >= 0 ? 1 / d : e / d, e / (d * d), c * (1 + 3 * k * v * v))
        }
        let dRef = x32.map { v -> Double in
            if kind == .tanh { let e = Glibc.exp(-2 * abs(v)); return 4 * e / ((1 + e) * (1 + e)) }
            if kind == .geluTanh { let g = gelu(v); return g.s + v * 2 * g.ds * g.du }
            let e = Glibc.exp(-abs(v)); return e / ((1 + e) * (1 + e))
        }
        let u = DType.float32.unitRoundoff, tiny = Double(Float.leastNormalMagnitude)
        // tanh below 0.3125: Horner in x² with FMAs and a truncation of 3e-9: ~3u; above, exp
        // (< 1 ulp), 1 − e ≥ 0.46 (no cancellation), one division: ~3u. tanh′: (1 − t)(1 + t) or
        // 4e/(1 + e)², each a few roundings of t or e: ~4u. sigmoid: exp, 1 + e, one division: ~3u;
        // σ′ = e/(1 + e)²: ~4u. 8u leaves twice that.
        // GELU: u = c(x + kx³) carries ~3u relative error, which moves σ(2u) by 2σ′(2u)·|u|·3u: the
        // value's bound is 8u of |f| plus 8u of x·(x·2σ′(2u)·u′) (|u| ≤ |x·u′|). The derivative sums
        // s and x·2σ′(2u)·u′, which cancel near x ≈ −0.75 (as SiLU′'s do); u's error moves σ′(2u)
        // by up to 2·3u·|u| relative, and |u| ≤ 4|x| where σ′(2u) is not negligible: 8u·(1 + 4|x|)
        // of the second term's magnitude, plus 8u of s.
        if kind == .geluTanh {
            let g = x32.map(gelu)
            expectClose(y, yRef, bound: { 8 * u * (abs(yRef[$0]) + abs(x32[$0] * x32[$0] * 2 * g[$0].ds * g[$0].du)) + tiny }, "GELU (tanh)")
            expectClose(d, dRef, bound: { 8 * u * (g[$0].s + abs(x32[$0] * 2 * g[$0].ds * g[$0].du) * (1 + abs(x32[$0]) * 4)) + tiny }, "GELU (tanh)′")
            return
        }
        expectClose(y, yRef, bound: { 8 * u * abs(yRef[$0]) + tiny }, "\(kind)")
        expectClose(d, dRef, bound: { 8 * u * abs(dRef[$0]) + tiny }, "\(kind)′")
    }
}

/// Tanh and sigmoid keep f′ from their forward on the CPU backend (one transcendental for
/// both): the value and the backward must be bitwise those of the two ops apart.
@Suite struct ActivationDerivativeTests {
    @Test("tanh and sigmoid with f′ kept: bitwise the forward and the backward apart (CPU Float32 and Float64)",
          arguments: [Activation.tanh, .sigmoid])
    func keptDerivative(_ kind: Activation) throws {
        // Both signs, the saturated tails and tiny values, where the formulas split.
        var v = randomValues(4096, seed: 41, -30, 30)
        v += [0, -0.0, 1e-30, -1e-30, 20, -20, 20.5, -20.5, 88, -88, 1e-8]
        for dtype in [DType.float32, .float64] {
            let x = try Tensor(v, shape: [v.count], dtype: dtype, on: cpu)
            let (y, d) = try #require(try x.activatedWithDerivative(kind))
            let ones = try Tensor([Double](repeating: 1, count: v.count), shape: [v.count], dtype: dtype, on: cpu)
            let (yy, dd) = (try y.doubles(), try d.doubles())
            let (wy, wd) = (try x.activated(kind).doubles(), try x.activationBackward(kind, upstream: ones).doubles())
            #expect(yy.indices.allSatisfy { yy[$0].bitPattern == wy[$0].bitPattern }, "\(kind) \(dtype) values")
            #expect(dd.indices.allSatisfy { dd[$0].bitPattern == wd[$0].bitPattern }, "\(kind) \(dtype) derivatives")
        }
    }
}

/// The Float32 activations' 16-lane (AVX-512F) and 8-lane (AVX2 + FMA) code: the same formulas in
/// the same order, so the same bits wherever both run. A sweep's results then do not depend on
/// which CPU of a cluster computed them, and the parity bounds above hold for both.
@Suite(.serialized) struct ActivationLaneTests {
    @Test("CPU Float32 activations at 16 and 8 lanes: bitwise the same values, derivatives and input gradients",
          arguments: [Activation.tanh, .sigmoid, .geluTanh, .geluErf, .silu])
    func widths(_ kind: Activation) throws {
        // Both tails, the branch points (|x| = 0.3125 for tanh), signed zeros, tiny and
        // non-finite values; a length that leaves a partial group at either width.
        var v = randomValues(4096 + 13, seed: 57, -12, 12) + randomValues(64, seed: 58, -0.4, 0.4)
        v += [0, -0.0, 1e-30, -1e-30, 1e-40, 0.3125, -0.3125, 20, -20, 40, -40, 88, -88, 200, -200,
              .infinity, -.infinity, .nan]
        let x = try Tensor(v, shape: [v.count], dtype: .float32, on: cpu)
        let dy = try Tensor(randomValues(v.count, seed: 59, -2, 2), shape: [v.count], dtype: .float32, on: cpu)
        func run(_ lanes: Int) throws -> (Int, [[UInt64]]) {
            CPUDevice.capActivationLanes(lanes)
            defer { CPUDevice.capActivationLanes(16) }
            var out = [try x.activated(kind).doubles(), try x.activationBackward(kind, upstream: dy).doubles()]
            if let (y, d) = try x.activatedWithDerivative(kind) { out += [try y.doubles(), try d.doubles()] }
            return (CPUDevice.activationLanes, out.map { $0.map(\.bitPattern) })
        }
        let (w16, a) = try run(16), (w8, b) = try run(8)
        #expect(w8 == 8 || w8 == 1)
        #expect(a.count == b.count)
        for (k, (p, q)) in zip(a, b).enumerated() {
            let first = p.indices.first { p[$0] != q[$0] }
            #expect(first == nil, "\(kind) output \(k): \(w16) lanes against \(w8) differ first at x = \(first.map { v[$0] } ?? 0)")
        }
        // Where the CPU has no AVX-512 both runs took the 8-lane code: say so rather than pass silently.
        if w16 != 16 { print("ActivationLaneTests: this CPU runs \(w16) lanes at most; 16 against 8 not compared") }
    }
}

/// The CPU backend's Float32 Hardswish and Hardsigmoid (MobileNetV3's) and ReLU6 (MobileNetV2's): plain C loops
/// (CVecMath/hard_activations.c) with the scalar formula's operations in its order.
@Suite struct HardActivationFloat32Tests {
    @Test("CPU Float32 Hardswish, Hardsigmoid, ReLU6 and their input gradients: bitwise the formula in Float, at and around the kinks (±3; 0 and 6), NaN passed",
          arguments: [Activation.hardSwish, .hardSigmoid, .relu6])
    func againstFormula(_ kind: Activation) throws {
        let kinks: [Float] = [-3, 3, 0, 6].flatMap { k in [k, k.nextUp, k.nextDown] }
        var x: [Float] = kinks + [0, -0.0, 1e-30, -1e-30, 6, -6, 1e30, -1e30] + stride(from: -8, through: 8, by: 0.0625).map { Float($0) }
        x += randomValues(1001, seed: 24, -5, 5).map { Float($0) }                  // not a multiple of the lanes
        let dy = randomValues(x.count, seed: 25).map { Float($0) }
        func clamp(_ v: Float) -> Float { Swift.min(Swift.max(v + 3, 0), 6) }
        let want = x.map { kind == .relu6 ? Swift.min(Swift.max($0, 0), 6) : kind == .hardSwish ? $0 * clamp($0) / 6 : clamp($0) / 6 }
        let wantDx = zip(x, dy).map { v, g in
            kind == .relu6 ? g * (v > 0 && v < 6 ? 1 : 0)
                : g * (kind == .hardSwish ? (v < -3 ? 0 : v <= 3 ? v / 3 + 0.5 : 1) : (v > -3 && v < 3 ? Float(1) / 6 : 0))
        }
        let t = try Tensor(x, shape: [x.count], on: cpu)
        let y = try t.activated(kind).floats()
        let dx = try t.activationBackward(kind, upstream: Tensor(dy, shape: [x.count], on: cpu)).floats()
        let badY = x.indices.first { y[$0].bitPattern != want[$0].bitPattern }
        let badDx = x.indices.first { dx[$0].bitPattern != wantDx[$0].bitPattern }
        #expect(badY == nil, "\(kind) forward at x = \(badY.map { x[$0] } ?? 0): \(badY.map { y[$0] } ?? 0), expected \(badY.map { want[$0] } ?? 0)")
        #expect(badDx == nil, "\(kind) input gradient at x = \(badDx.map { x[$0] } ?? 0): \(badDx.map { dx[$0] } ?? 0), expected \(badDx.map { wantDx[$0] } ?? 0)")
        // NaN in, NaN out (Swift.max(NaN + 3, 0) is NaN: the comparisons pass it on).
        let nan = try Tensor([Float.nan], shape: [1], on: cpu)
        #expect(try nan.activated(kind).floats()[0].isNaN)
    }
}
