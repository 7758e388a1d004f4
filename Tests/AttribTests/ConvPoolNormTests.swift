import Attrib
import Testing

/// im2col / col2im / transpose01 / row bias (convolution as one GEMM), max and
/// average pooling, layer norm: parity of every OpenCL device with the CPU
/// backend, truth against naive Float64 references written here, finite
/// differences for the backward passes, and bad input.
///
/// Test data are Float32-representable (rounded through Float), so a Float32
/// tensor holds exactly the values the Float64 references see.
@Suite struct ConvPoolNormTests {
    static var allDevices: [any Device] { [cpu as any Device] + openCLDevices }

    /// One window geometry: an NCHW batch, kernel, stride, padding.
    struct Case: Sendable, CustomTestStringConvertible {
        let n, c, h, w, kh, kw, sh, sw, ph, pw: Int
        init(_ n: Int, _ c: Int, _ h: Int, _ w: Int, k: (Int, Int), s: (Int, Int), p: (Int, Int) = (0, 0)) {
            self.n = n; self.c = c; self.h = h; self.w = w
            (kh, kw) = k; (sh, sw) = s; (ph, pw) = p
        }
        var oh: Int { (h + 2 * ph - kh) / sh + 1 }
        var ow: Int { (w + 2 * pw - kw) / sw + 1 }
        var shape: [Int] { [n, c, h, w] }
        var kernel: Size2D { Size2D(kh, kw) }
        var stride: Size2D { Size2D(sh, sw) }
        var padding: Size2D { Size2D(ph, pw) }
        var colsRows: Int { c * kh * kw }
        var colsCols: Int { n * oh * ow }
        var testDescription: String { "x\(shape) k[\(kh),\(kw)] s[\(sh),\(sw)] p[\(ph),\(pw)]" }
    }

    /// N=2, C=3, H=9, W=11 with kernels 3×3 and [2, 3], strides 1 and 2, padding 0 and 1;
    /// plus mixed strides/paddings and a 1×1 kernel.
    static let convCases: [Case] = {
        var cases: [Case] = []
        for k in [(3, 3), (2, 3)] { for s in [1, 2] { for p in [0, 1] { cases.append(Case(2, 3, 9, 11, k: k, s: (s, s), p: (p, p))) } } }
        cases.append(Case(2, 3, 9, 11, k: (3, 2), s: (2, 1), p: (1, 0)))
        cases.append(Case(1, 2, 5, 4, k: (1, 1), s: (2, 3)))
        cases.append(Case(1, 1, 2, 3, k: (4, 5), s: (1, 2), p: (1, 1)))   // kernel = padded image
        return cases
    }()

    /// Pooling: overlapping windows (stride < kernel), stride = kernel on sizes the
    /// kernel does not divide, and mixed.
    static let poolCases: [Case] = [
        Case(2, 3, 9, 11, k: (3, 3), s: (2, 2)),
        Case(2, 3, 9, 11, k: (2, 3), s: (1, 1)),
        Case(2, 3, 9, 11, k: (2, 2), s: (2, 2)),
        Case(2, 3, 5, 12, k: (2, 2), s: (2, 2)),     // the CPU's 2×2 loop: blocks of 8 and 4 columns
        Case(2, 3, 9, 11, k: (3, 2), s: (3, 2)),
        Case(2, 3, 9, 11, k: (3, 3), s: (1, 2)),
        Case(1, 2, 4, 5, k: (4, 5), s: (1, 1)),
    ]

    static func f32(_ v: [Double]) -> [Double] { v.map { Double(Float($0)) } }

    // MARK: naive Float64 references

    static func refIm2col(_ x: [Double], _ g: Case) -> [Double] {
        var out = [Double](repeating: 0, count: g.colsRows * g.colsCols)
        for ci in 0..<g.c { for ki in 0..<g.kh { for kj in 0..<g.kw {
            let row = (ci * g.kh + ki) * g.kw + kj
            for ni in 0..<g.n { for oy in 0..<g.oh { for ox in 0..<g.ow {
                let iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj
                let col = (ni * g.oh + oy) * g.ow + ox
                if iy >= 0, iy < g.h, ix >= 0, ix < g.w { out[row * g.colsCols + col] = x[((ni * g.c + ci) * g.h + iy) * g.w + ix] }
            } } }
        } } }
        return out
    }

    /// col2im as the scatter im2col's adjoint is: every entry added to the pixel it was read from.
    static func refCol2im(_ cols: [Double], _ g: Case) -> [Double] {
        var x = [Double](repeating: 0, count: g.n * g.c * g.h * g.w)
        for ci in 0..<g.c { for ki in 0..<g.kh { for kj in 0..<g.kw {
            let row = (ci * g.kh + ki) * g.kw + kj
            for ni in 0..<g.n { for oy in 0..<g.oh { for ox in 0..<g.ow {
                let iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj
                if iy >= 0, iy < g.h, ix >= 0, ix < g.w {
                    x[((ni * g.c + ci) * g.h + iy) * g.w + ix] += cols[row * g.colsCols + (ni * g.oh + oy) * g.ow + ox]
                }
            } } }
        } } }
        return x
    }

    /// The direct 7-loop convolution (cross-correlation), and Σ|w·x| + |b| per output for the bound.
    static func refConv(_ x: [Double], _ wt: [Double], _ b: [Double], oc: Int, _ g: Case) -> (y: [Double], mag: [Double]) {
        var y = [Double](repeating: 0, count: g.n * oc * g.oh * g.ow), mag = y
        for ni in 0..<g.n { for o in 0..<oc { for oy in 0..<g.oh { for ox in 0..<g.ow {
            var s = b[o], m = abs(b[o])
            for ci in 0..<g.c { for ki in 0..<g.kh { for kj in 0..<g.kw {
                let iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj
                guard iy >= 0, iy < g.h, ix >= 0, ix < g.w else { continue }
                let p = wt[((o * g.c + ci) * g.kh + ki) * g.kw + kj] * x[((ni * g.c + ci) * g.h + iy) * g.w + ix]
                s += p; m += abs(p)
            } } }
            let e = ((ni * oc + o) * g.oh + oy) * g.ow + ox
            y[e] = s; mag[e] = m
        } } } }
        return (y, mag)
    }

    /// Max pooling with PyTorch's rule (first maximum wins, NaN propagates).
    static func refMaxPool(_ x: [Double], _ g: Case) -> (y: [Double], argmax: [Int32]) {
        var y: [Double] = [], arg: [Int32] = []
        for plane in 0..<(g.n * g.c) { for oy in 0..<g.oh { for ox in 0..<g.ow {
            var m = -Double.infinity, idx = oy * g.sh * g.w + ox * g.sw
            for ky in 0..<g.kh { for kx in 0..<g.kw {
                let p = (oy * g.sh + ky) * g.w + ox * g.sw + kx, v = x[plane * g.h * g.w + p]
                if v > m || v.isNaN { m = v; idx = p }
            } }
            y.append(m); arg.append(Int32(idx))
        } } }
        return (y, arg)
    }

    /// Average pooling, and Σ|x| of each window for the bound.
    static func refAvgPool(_ x: [Double], _ g: Case) -> (y: [Double], mag: [Double]) {
        var y: [Double] = [], mag: [Double] = []
        for plane in 0..<(g.n * g.c) { for oy in 0..<g.oh { for ox in 0..<g.ow {
            var s = 0.0, m = 0.0
            for ky in 0..<g.kh { for kx in 0..<g.kw {
                let v = x[plane * g.h * g.w + (oy * g.sh + ky) * g.w + ox * g.sw + kx]; s += v; m += abs(v)
            } }
            y.append(s / Double(g.kh * g.kw)); mag.append(m)
        } } }
        return (y, mag)
    }

    /// The pooling backward as a scatter: each window's dy to its argmax (max) or spread over it (avg);
    /// also Σ|terms| per pixel for the bound.
    static func refPoolBackward(_ dy: [Double], argmax: [Int32]?, _ g: Case) -> (dx: [Double], mag: [Double]) {
        var dx = [Double](repeating: 0, count: g.n * g.c * g.h * g.w), mag = dx
        let div = Double(g.kh * g.kw)
        for plane in 0..<(g.n * g.c) { for oy in 0..<g.oh { for ox in 0..<g.ow {
            let o = (plane * g.oh + oy) * g.ow + ox
            if let argmax {
                dx[plane * g.h * g.w + Int(argmax[o])] += dy[o]; mag[plane * g.h * g.w + Int(argmax[o])] += abs(dy[o])
            } else {
                for ky in 0..<g.kh { for kx in 0..<g.kw {
                    let p = plane * g.h * g.w + (oy * g.sh + ky) * g.w + ox * g.sw + kx
                    dx[p] += dy[o] / div; mag[p] += abs(dy[o])
                } }
            }
        } } }
        return (dx, mag)
    }

    // MARK: im2col, col2im, transpose01, row bias, conv2d

    @Test("im2col: exact on every device; col2im: truth, parity, and the adjoint identity", arguments: convCases)
    func im2colCol2im(_ g: Case) throws {
        let x = Self.f32(randomValues(g.n * g.c * g.h * g.w, seed: 101))
        let cv = Self.f32(randomValues(g.colsRows * g.colsCols, seed: 102))
        let colsRef = Self.refIm2col(x, g), imgRef = Self.refCol2im(cv, g)
        let imgMag = Self.refCol2im(cv.map(abs), g)
        for device in Self.allDevices { for dtype in dtypes(device) {
            let u = dtype.unitRoundoff, what = "\(device.id) \(dtype) \(g.testDescription)"
            let xt = try Tensor(x, shape: g.shape, dtype: dtype, on: device)
            let cols = try xt.im2col(kernel: g.kernel, stride: g.stride, padding: g.padding)
            #expect(cols.shape == [g.colsRows, g.colsCols], "\(what)")
            // A copy with zeros: exact.
            let colsGot = try cols.doubles()
            expectEqual(colsGot, colsRef, "\(what) im2col")
            let ct = try Tensor(cv, shape: [g.colsRows, g.colsCols], dtype: dtype, on: device)
            let img = try ct.col2im(imageShape: g.shape, kernel: g.kernel, stride: g.stride, padding: g.padding).doubles()
            // At most kh·kw terms per pixel summed in the compute type, in (ki, kj)
            // order: |Δ| ≤ kh·kw·u·Σ|terms| (0 in Float64, where the reference adds
            // in the same order; kept as a bound for generality).
            expectClose(img, imgRef, bound: { Double(g.kh * g.kw) * u * imgMag[$0] }, "\(what) col2im vs reference")
            if device is OpenCLDevice {
                // Same terms, same order, plain adds (nothing to contract to FMA): bitwise.
                let imgCPU = try Tensor(cv, shape: [g.colsRows, g.colsCols], dtype: dtype, on: cpu)
                    .col2im(imageShape: g.shape, kernel: g.kernel, stride: g.stride, padding: g.padding).doubles()
                expectEqual(img, imgCPU, "\(what) col2im parity")
            }
            // Adjoint: ⟨im2col(x), C⟩ = ⟨x, col2im(C)⟩. Both dot products are taken here in
            // Float64; im2col is exact, col2im carries ≤ kh·kw·u·imgMag per pixel, and the two
            // Float64 dots of `count` terms add ≤ count·2⁻⁵³·Σ|terms| each.
            var lhs = 0.0, rhs = 0.0, lhsMag = 0.0, bound = 0.0
            for i in colsGot.indices { lhs += colsGot[i] * cv[i]; lhsMag += abs(colsGot[i] * cv[i]) }
            for i in x.indices { rhs += x[i] * img[i]; bound += abs(x[i]) * Double(g.kh * g.kw) * u * imgMag[i] }
            bound += 2 * Double(colsGot.count + x.count) * 0x1p-53 * 2 * lhsMag
            #expect(abs(lhs - rhs) <= bound, "\(what): ⟨im2col(x), C⟩ = \(lhs), ⟨x, col2im(C)⟩ = \(rhs), bound \(bound)")
        } }
    }

    @Test("transpose01 and the row bias: exact, both backends", arguments: [(1, 1, 1), (3, 7, 1), (4, 2, 99), (2, 33, 17), (70, 45, 1), (33, 40, 2)])
    func transposeAndRowBias(_ dims: (Int, Int, Int)) throws {
        let (a, b, c) = dims
        let x = Self.f32(randomValues(a * b * c, seed: 103)), bias = Self.f32(randomValues(a, seed: 104))
        for device in Self.allDevices { for dtype in dtypes(device) {
            let what = "\(device.id) \(dtype) [\(a), \(b), \(c)]"
            let t = try Tensor(x, shape: [a, b, c], dtype: dtype, on: device).transposed01()
            #expect(t.shape == [b, a, c], "\(what)")
            var want = [Double](repeating: 0, count: x.count)
            for i in 0..<a { for j in 0..<b { for k in 0..<c { want[(j * a + i) * c + k] = x[(i * b + j) * c + k] } } }
            expectEqual(try t.doubles(), want, "\(what) transpose01")            // a permutation: exact
            let back = try t.transposed01()
            expectEqual(try back.doubles(), x, "\(what) transpose01 twice")
            // y[r, …] += bias[r]: one add, exactly rounded in the compute type.
            let y = try Tensor(x, shape: [a, b, c], dtype: dtype, on: device)
            try y.addRowBias(try Tensor(bias, shape: [a], dtype: dtype, on: device))
            let sum: [Double] = x.indices.map { i in
                let r = i / (b * c)
                return dtype == .float32 ? Double(Float(x[i]) + Float(bias[r])) : x[i] + bias[r]
            }
            expectEqual(try y.doubles(), sum, "\(what) addRowBias")
        } }
    }

    @Test("conv2d as im2col + one GEMM + row bias + transpose01 vs the naive 7-loop convolution", arguments: convCases)
    func convolution(_ g: Case) throws {
        let oc = 4
        let x = Self.f32(randomValues(g.n * g.c * g.h * g.w, seed: 105))
        let wt = Self.f32(randomValues(oc * g.c * g.kh * g.kw, seed: 106)), b = Self.f32(randomValues(oc, seed: 107))
        let (want, mag) = Self.refConv(x, wt, b, oc: oc, g)
        let k = Double(g.c * g.kh * g.kw)
        for dtype in [DType.float32, .float64] {
            var results: [String: [Double]] = [:]
            for device in Self.allDevices where device.supports(dtype) {
                let y = try Tensor(x, shape: g.shape, dtype: dtype, on: device).conv2d(
                    weight: try Tensor(wt, shape: [oc, g.c, g.kh, g.kw], dtype: dtype, on: device),
                    bias: try Tensor(b, shape: [oc], dtype: dtype, on: device), stride: g.stride, padding: g.padding)
                #expect(y.shape == [g.n, oc, g.oh, g.ow])
                let got = try y.doubles()
                // A dot of K = C·kh·kw products (in any order, FMA or not) plus the bias:
                // |Δ| ≤ (K + 1)·u·(Σ|w·x| + |b|) to first order; ×2 for the higher-order terms.
                expectClose(got, want, bound: { 2 * (k + 1) * dtype.unitRoundoff * mag[$0] }, "\(device.id) \(dtype) conv2d \(g.testDescription)")
                results[device.id] = got
            }
            // Parity: both within the bound of the truth, so within twice of each other.
            if let ref = results[cpu.id] {
                for (id, got) in results where id != cpu.id {
                    expectClose(got, ref, bound: { 4 * (k + 1) * dtype.unitRoundoff * mag[$0] }, "\(id) \(dtype) conv2d parity \(g.testDescription)")
                }
            }
        }
    }

    // MARK: pooling

    @Test("max and average pooling: truth, parity, ties and NaN", arguments: poolCases)
    func pooling(_ g: Case) throws {
        let random = Self.f32(randomValues(g.n * g.c * g.h * g.w, seed: 108))
        // Quarter steps in [-1, 1]: many ties inside a window.
        let ties = random.map { ($0 * 4).rounded() / 4 }
        var nan = random
        nan[g.h * g.w + 1] = .nan; nan[5] = .nan
        for (name, x) in [("random", random), ("ties", ties), ("NaN", nan)] {
            let (maxRef, argRef) = Self.refMaxPool(x, g), (avgRef, avgMag) = Self.refAvgPool(x, g)
            for device in Self.allDevices { for dtype in dtypes(device) {
                let u = dtype.unitRoundoff, what = "\(device.id) \(dtype) \(name) \(g.testDescription)"
                let xt = try Tensor(x, shape: g.shape, dtype: dtype, on: device)
                let (y, arg) = try xt.maxPool2d(kernel: g.kernel, stride: g.stride)
                #expect(y.shape == [g.n, g.c, g.oh, g.ow] && arg.shape == y.shape && arg.dtype == .int32, "\(what)")
                // A max selects an element, and argmax follows the same rule: exact.
                expectEqual(try y.doubles(), maxRef, "\(what) maxPool2d")
                #expect(try arg.int32s() == argRef, "\(what) maxPool2d argmax")
                let avg = try xt.avgPool2d(kernel: g.kernel, stride: g.stride).doubles()
                // kh·kw − 1 adds then a division (≤ 2.5 ulp ≤ 5u relative in OpenCL single
                // precision): |Δ| ≤ (kh·kw + 5)·u·Σ|x| / (kh·kw).
                let kk = Double(g.kh * g.kw)
                expectClose(avg, avgRef, bound: { (kk + 5) * u * avgMag[$0] / kk }, "\(what) avgPool2d")
                if device is OpenCLDevice {
                    let avgCPU = try Tensor(x, shape: g.shape, dtype: dtype, on: cpu).avgPool2d(kernel: g.kernel, stride: g.stride).doubles()
                    // Same sum, same order; only the division may differ (≤ 5u relative): 6u·|y|.
                    expectClose(avg, avgCPU, bound: { 6 * u * abs(avgCPU[$0]) }, "\(what) avgPool2d parity")
                }
            } }
        }
    }

    @Test("pooling backward: truth (scatter reference) and parity, overlapping windows", arguments: poolCases)
    func poolingBackward(_ g: Case) throws {
        let x = Self.f32(randomValues(g.n * g.c * g.h * g.w, seed: 109))
        let ties = x.map { ($0 * 4).rounded() / 4 }
        let dy = Self.f32(randomValues(g.n * g.c * g.oh * g.ow, seed: 110))
        for (name, input) in [("random", x), ("ties", ties)] {
            let argRef = Self.refMaxPool(input, g).argmax
            let (maxRef, maxMag) = Self.refPoolBackward(dy, argmax: argRef, g)
            let (avgRef, avgMag) = Self.refPoolBackward(dy, argmax: nil, g)
            var cpuResults: [DType: ([Double], [Double])] = [:]
            for device in Self.allDevices { for dtype in dtypes(device) {
                let u = dtype.unitRoundoff, kk = Double(g.kh * g.kw), what = "\(device.id) \(dtype) \(name) \(g.testDescription)"
                let arg = try Tensor(input, shape: g.shape, dtype: dtype, on: device).maxPool2d(kernel: g.kernel, stride: g.stride).argmax
                let up = try Tensor(dy, shape: [g.n, g.c, g.oh, g.ow], dtype: dtype, on: device)
                let dxMax = try up.maxPool2dBackward(argmax: arg, inputShape: g.shape, kernel: g.kernel, stride: g.stride).doubles()
                let dxAvg = try up.avgPool2dBackward(inputShape: g.shape, kernel: g.kernel, stride: g.stride).doubles()
                // ≤ kh·kw windows cover a pixel: a sum of ≤ kh·kw terms (then, for avg, a
                // division, ≤ 5u): |Δ| ≤ (kh·kw + 5)·u·Σ|terms|.
                expectClose(dxMax, maxRef, bound: { (kk + 5) * u * maxMag[$0] }, "\(what) maxPool2dBackward")
                expectClose(dxAvg, avgRef, bound: { (kk + 5) * u * avgMag[$0] / kk }, "\(what) avgPool2dBackward")
                if device === cpu {
                    cpuResults[dtype] = (dxMax, dxAvg)
                } else if let (refMax, refAvg) = cpuResults[dtype] {
                    // The same terms in the same order (oy, ox): max bitwise; avg up to the division.
                    expectEqual(dxMax, refMax, "\(what) maxPool2dBackward parity")
                    expectClose(dxAvg, refAvg, bound: { 6 * u * abs(refAvg[$0]) }, "\(what) avgPool2dBackward parity")
                }
            } }
        }
    }

    /// 2×2 max pooling with stride 2 on the CPU (CVecMath): 16 windows a step with AVX-512
    /// (narrow planes, w a power of two ≤ 32 and h even, by a fixed 64-float pattern; wide
    /// planes, w ≥ 16, a row pair at a time with masked ends), 8 with AVX2, and the scalar loop.
    /// The shapes reach each layout, its remainders (windows past the last full 16, odd last
    /// rows and columns) and the widths that fall back.
    static let maxPool2x2Cases: [Case] = [
        Case(3, 5, 8, 8, k: (2, 2), s: (2, 2)), Case(5, 7, 4, 4, k: (2, 2), s: (2, 2)), Case(3, 3, 2, 2, k: (2, 2), s: (2, 2)),
        Case(2, 3, 6, 16, k: (2, 2), s: (2, 2)), Case(1, 3, 4, 32, k: (2, 2), s: (2, 2)), Case(3, 1, 10, 2, k: (2, 2), s: (2, 2)),
        Case(2, 3, 7, 40, k: (2, 2), s: (2, 2)), Case(1, 2, 5, 71, k: (2, 2), s: (2, 2)), Case(1, 2, 3, 16, k: (2, 2), s: (2, 2)),
        Case(2, 2, 4, 33, k: (2, 2), s: (2, 2)), Case(2, 3, 6, 6, k: (2, 2), s: (2, 2)), Case(2, 2, 5, 14, k: (2, 2), s: (2, 2)),
        // Overlapping windows (maxpool_general.c: 16 outputs a step at column strides 1 and 2,
        // masked at a row's end; other strides scalar): a ResNet stem's 3×3 stride 2, and others.
        Case(2, 3, 13, 17, k: (3, 3), s: (2, 2)), Case(1, 2, 9, 70, k: (3, 3), s: (2, 2)), Case(2, 2, 7, 40, k: (3, 3), s: (1, 1)),
        Case(2, 2, 9, 11, k: (2, 3), s: (1, 2)), Case(1, 3, 8, 37, k: (3, 2), s: (2, 1)), Case(2, 2, 10, 20, k: (3, 3), s: (3, 3)),
        Case(1, 2, 6, 50, k: (2, 3), s: (2, 3)),
    ]

    /// Every width follows the same rule in the same order, so values, argmax and gradients must
    /// be the same bits at each cap (on a CPU without AVX-512 or AVX2 the wider caps run the
    /// narrower kernels and agree trivially), and the values and argmax equal the reference's.
    /// The backward also takes a corrupted argmax (indices outside their window, negative, past
    /// the plane), which every width must skip, writing zeros, as the reference scatter below does.
    @Test("max pooling: the 16-lane, 8-lane and scalar CPU kernels give the same bits, tiled and overlapping windows", arguments: maxPool2x2Cases)
    func maxPool2x2Widths(_ g: Case) throws {
        let random = Self.f32(randomValues(g.n * g.c * g.h * g.w, seed: 111))
        let ties = random.map { ($0 * 4).rounded() / 4 }
        var nan = random
        nan[min(g.h * g.w + 1, nan.count - 1)] = .nan; nan[3] = .nan
        let dy = Self.f32(randomValues(g.n * g.c * g.oh * g.ow, seed: 112)).enumerated().map { $0.offset % 5 == 0 ? -0.0 : $0.element }
        var rng = SplitMix64(seed: 113)
        let corrupt = rng.uniform(dy.count, -3, Double(g.h * g.w + 3)).map { Int32($0.rounded(.down)) }
        let up = try Tensor(dy, shape: [g.n, g.c, g.oh, g.ow], dtype: .float32, on: cpu)
        func bits(_ t: Tensor) throws -> [UInt32] { try t.doubles().map { Float($0).bitPattern } }
        for (name, x) in [("random", random), ("ties", ties), ("NaN", nan)] {
            let xt = try Tensor(x, shape: g.shape, dtype: .float32, on: cpu)
            var results: [(y: [UInt32], arg: [Int32], dx: [UInt32], dxCorrupt: [UInt32])] = []
            for lanes in [16, 8, 1] {
                CPUDevice.capMaxPoolLanes(lanes)
                defer { CPUDevice.capMaxPoolLanes(16) }
                let (y, arg) = try xt.maxPool2d(kernel: g.kernel, stride: g.stride)
                let dx = try up.maxPool2dBackward(argmax: arg, inputShape: g.shape, kernel: g.kernel, stride: g.stride)
                let bad = try Tensor(indices: corrupt, shape: arg.shape, on: cpu)
                let dxBad = try up.maxPool2dBackward(argmax: bad, inputShape: g.shape, kernel: g.kernel, stride: g.stride)
                results.append((try bits(y), try arg.int32s(), try bits(dx), try bits(dxBad)))
            }
            let what = "\(name) \(g.testDescription)"
            let (yRef, argRef) = Self.refMaxPool(x, g)
            #expect(results[0].y == yRef.map { Float($0).bitPattern } && results[0].arg == argRef, "\(what): 16 lanes vs the reference")
            // The scatter from 0 in (oy, ox) order, windows skipping indices not theirs (0 + dy
            // turns −0 into +0).
            var dxRef = [Float](repeating: 0, count: x.count)
            for plane in 0..<(g.n * g.c) { for oy in 0..<g.oh { for ox in 0..<g.ow {
                let o = (plane * g.oh + oy) * g.ow + ox, a = Int(corrupt[o])
                let (iy, ix) = a >= 0 ? (a / g.w, a % g.w) : (-1, -1)
                let inside = a >= 0 && a < g.h * g.w && (oy * g.sh..<(oy * g.sh + g.kh)).contains(iy) && (ox * g.sw..<(ox * g.sw + g.kw)).contains(ix)
                if inside { dxRef[plane * g.h * g.w + a] += Float(dy[o]) }
            } } }
            #expect(results[0].dxCorrupt == dxRef.map(\.bitPattern), "\(what): corrupted argmax, 16 lanes vs the reference")
            for (k, lanes) in [8, 1].enumerated() {
                let r = results[k + 1]
                #expect(r.y == results[0].y && r.arg == results[0].arg, "\(what): forward, \(lanes) lanes vs 16")
                #expect(r.dx == results[0].dx && r.dxCorrupt == results[0].dxCorrupt, "\(what): backward, \(lanes) lanes vs 16")
            }
        }
    }

    @Test("pooling backward vs central finite differences in Float64")
    func poolingFiniteDifferences() throws {
        for g in [Case(1, 2, 5, 7, k: (3, 3), s: (2, 2)), Case(1, 2, 5, 7, k: (2, 3), s: (1, 1)), Case(1, 1, 5, 7, k: (2, 2), s: (2, 2))] {
            let x = randomValues(g.n * g.c * g.h * g.w, seed: 111), dy = randomValues(g.n * g.c * g.oh * g.ow, seed: 112)
            for device in Self.allDevices where device.supports(.float64) { for isMax in [true, false] {
                func loss(_ v: [Double]) throws -> Double {
                    let t = try Tensor(v, shape: g.shape, dtype: .float64, on: device)
                    let y = try (isMax ? t.maxPool2d(kernel: g.kernel, stride: g.stride).output : t.avgPool2d(kernel: g.kernel, stride: g.stride)).doubles()
                    return zip(y, dy).reduce(0) { $0 + $1.0 * $1.1 }
                }
                let xt = try Tensor(x, shape: g.shape, dtype: .float64, on: device)
                let up = try Tensor(dy, shape: [g.n, g.c, g.oh, g.ow], dtype: .float64, on: device)
                let dx = try (isMax
                    ? up.maxPool2dBackward(argmax: xt.maxPool2d(kernel: g.kernel, stride: g.stride).argmax, inputShape: g.shape, kernel: g.kernel, stride: g.stride)
                    : up.avgPool2dBackward(inputShape: g.shape, kernel: g.kernel, stride: g.stride)).doubles()
                // L = Σ dy·pool(x) is piecewise linear: no truncation error while x ± h keeps each
                // window's argmax (random data: the gaps between values ≫ h). Rounding: L has
                // ≤ 50 terms of size ≤ 1, so |ΔL| ≤ 50·(kh·kw + 50)·2⁻⁵³, divided by 2h.
                let h = 1e-6, bound = 50 * Double(g.kh * g.kw + 50) * 0x1p-53 / (2 * h) * 2
                var fd = [Double](repeating: 0, count: x.count)
                for i in x.indices {
                    var xp = x, xm = x
                    xp[i] += h; xm[i] -= h
                    fd[i] = try (loss(xp) - loss(xm)) / (2 * h)
                }
                expectClose(dx, fd, bound: { _ in bound }, "\(device.id) \(isMax ? "max" : "avg")Pool2dBackward vs FD \(g.testDescription)")
            } }
        }
    }

    // MARK: layer norm

    /// The Float64 reference forward: y, mean, rstd per row.
    static func refLayerNorm(_ x: [Double], _ gamma: [Double], _ beta: [Double], rows: Int, cols: Int, eps: Double)
        -> (y: [Double], mean: [Double], rstd: [Double]) {
        var y = [Double](repeating: 0, count: x.count), mean: [Double] = [], rstd: [Double] = []
        for r in 0..<rows {
            let row = x[r * cols..<(r + 1) * cols]
            let mu = row.reduce(0, +) / Double(cols)
            let v = row.reduce(0) { $0 + ($1 - mu) * ($1 - mu) } / Double(cols)
            let rs = 1 / (v + eps).squareRoot()
            for c in 0..<cols { y[r * cols + c] = (x[r * cols + c] - mu) * rs * gamma[c] + beta[c] }
            mean.append(mu); rstd.append(rs)
        }
        return (y, mean, rstd)
    }

    static let layerNormShapes: [(Int, Int)] = [(5, 1), (5, 7), (3, 257), (2, 1031)]

    @Test("layerNorm forward: truth against Float64, parity", arguments: layerNormShapes)
    func layerNormForward(_ shape: (Int, Int)) throws {
        let (rows, cols) = shape, eps = 1e-5
        // Rows with a mean offset of 2 (the variance is taken about the mean: two-pass).
        let x = Self.f32(randomValues(rows * cols, seed: 113, 1, 3))
        let gamma = Self.f32(randomValues(cols, seed: 114, 0.5, 1.5)), beta = Self.f32(randomValues(cols, seed: 115))
        let ref = Self.refLayerNorm(x, gamma, beta, rows: rows, cols: cols, eps: eps)
        var absMean = [Double](repeating: 0, count: rows)
        for r in 0..<rows { for c in 0..<cols { absMean[r] += abs(x[r * cols + c]) / Double(cols) } }
        for dtype in [DType.float32, .float64] {
            let u = dtype.unitRoundoff, n = Double(cols)
            // μ: a sum of cols terms (any order) and a division: |Δμ| ≤ (cols + 1)·u·mean|x|.
            // var: (x − μ̂)², summed: relative (cols + 4)u (the μ̂ error enters squared);
            // rstd = 1/√(var + eps): half that, plus √ and ÷ (≤ 3 + 2.5 ulp in OpenCL single: 11u).
            // y = (x − μ̂)·rstd·γ + β: rstd·|γ|·|Δμ| + |x̂γ|·(rel. rstd + 3u) + 2u(|β| + |y|).
            // Doubled for the higher-order terms.
            let relR = ((n + 4) / 2 + 11) * u
            func yBound(_ i: Int) -> Double {
                let r = i / cols, c = i % cols, rs = ref.rstd[r], xh = (x[i] - ref.mean[r]) * rs
                return 2 * (rs * abs(gamma[c]) * (n + 1) * u * absMean[r] + abs(xh * gamma[c]) * (relR + 3 * u)
                            + 2 * u * (abs(beta[c]) + abs(ref.y[i])))
            }
            var cpuY: [Double] = []
            for device in Self.allDevices where device.supports(dtype) {
                let what = "\(device.id) \(dtype) \(rows)×\(cols)"
                let (y, mean, rstd) = try Tensor(x, shape: [rows, cols], dtype: dtype, on: device).layerNorm(
                    gamma: try Tensor(gamma, shape: [cols], dtype: dtype, on: device),
                    beta: try Tensor(beta, shape: [cols], dtype: dtype, on: device), eps: eps)
                #expect(mean.shape == [rows] && rstd.shape == [rows], "\(what)")
                let got = try y.doubles()
                expectClose(got, ref.y, bound: yBound, "\(what) layerNorm y")
                expectClose(try mean.doubles(), ref.mean, bound: { 2 * (n + 1) * u * absMean[$0] }, "\(what) layerNorm mean")
                expectClose(try rstd.doubles(), ref.rstd, bound: { 2 * relR * ref.rstd[$0] }, "\(what) layerNorm rstd")
                if device === cpu { cpuY = got } else {
                    // Parity: each within yBound of the truth.
                    expectClose(got, cpuY, bound: { 2 * yBound($0) }, "\(what) layerNorm parity")
                }
            }
        }
    }

    /// The Float64 reference backward given the exact mean and rstd.
    static func refLayerNormBackward(_ x: [Double], _ gamma: [Double], _ mean: [Double], _ rstd: [Double], _ dy: [Double],
                                     rows: Int, cols: Int) -> (dx: [Double], dgamma: [Double], dbeta: [Double]) {
        var dx = [Double](repeating: 0, count: x.count), dg = [Double](repeating: 0, count: cols), db = dg
        for r in 0..<rows {
            var m1 = 0.0, m2 = 0.0
            for c in 0..<cols {
                let i = r * cols + c, g = dy[i] * gamma[c], xh = (x[i] - mean[r]) * rstd[r]
                m1 += g / Double(cols); m2 += g * xh / Double(cols)
                dg[c] += dy[i] * xh; db[c] += dy[i]
            }
            for c in 0..<cols {
                let i = r * cols + c, g = dy[i] * gamma[c], xh = (x[i] - mean[r]) * rstd[r]
                dx[i] = rstd[r] * (g - m1 - xh * m2)
            }
        }
        return (dx, dg, db)
    }

    @Test("layerNorm backward: truth against Float64 and parity", arguments: layerNormShapes)
    func layerNormBackward(_ shape: (Int, Int)) throws {
        let (rows, cols) = shape, eps = 1e-5
        let x = Self.f32(randomValues(rows * cols, seed: 116, 1, 3))
        let gamma = Self.f32(randomValues(cols, seed: 117, 0.5, 1.5)), dy = Self.f32(randomValues(rows * cols, seed: 118))
        let fwd = Self.refLayerNorm(x, gamma, [Double](repeating: 0, count: cols), rows: rows, cols: cols, eps: eps)
        let ref = Self.refLayerNormBackward(x, gamma, fwd.mean, fwd.rstd, dy, rows: rows, cols: cols)
        for dtype in [DType.float32, .float64] {
            let u = dtype.unitRoundoff, n = Double(cols)
            // Every device gets the same mean and rstd: the reference's, rounded to dtype (u each).
            // x̂ = (x − μ)·rstd then carries e_x̂ ≤ u·(rstd·|μ| + 3|x̂|).
            func exh(_ i: Int) -> Double {
                let r = i / cols
                return u * (fwd.rstd[r] * abs(fwd.mean[r]) + 3 * abs((x[i] - fwd.mean[r]) * fwd.rstd[r]))
            }
            // Per row: mean|g|, mean|g·x̂|, mean(|g|·e_x̂), and m2 = mean(g·x̂), m1 = mean(g).
            var mg = [Double](repeating: 0, count: rows), mgx = mg, mge = mg, m1 = mg, m2 = mg
            for i in x.indices {
                let r = i / cols, g = dy[i] * gamma[i % cols], xh = (x[i] - fwd.mean[r]) * fwd.rstd[r]
                mg[r] += abs(g) / n; mgx[r] += abs(g * xh) / n; mge[r] += abs(g) * exh(i) / n
                m1[r] += g / n; m2[r] += g * xh / n
            }
            // dx = rstd·(g − m1 − x̂·m2): g (u), m1 ((cols + 1)u·mean|g|), m2 ((cols + 2)u·mean|g x̂|
            // plus the x̂ errors), x̂·m2 (e_x̂·|m2|), three roundings of the combination, rstd (u).
            // Doubled for the higher-order terms.
            func dxBound(_ i: Int) -> Double {
                let r = i / cols, g = dy[i] * gamma[i % cols], xh = (x[i] - fwd.mean[r]) * fwd.rstd[r]
                let inner = 2 * u * abs(g) + (n + 1) * u * mg[r] + abs(xh) * ((n + 2) * u * mgx[r] + mge[r])
                    + abs(m2[r]) * exh(i) + 3 * u * (abs(g) + abs(m1[r]) + abs(xh * m2[r]))
                return 2 * (fwd.rstd[r] * inner + 2 * u * abs(ref.dx[i]))
            }
            // dgamma[c] = Σ_r dy·x̂: (rows + 2)u·Σ|dy·x̂| + Σ|dy|·e_x̂; dbeta: rows·u·Σ|dy|. Doubled.
            var dgB = [Double](repeating: 0, count: cols), dbB = dgB
            for i in x.indices {
                let r = i / cols, c = i % cols, xh = (x[i] - fwd.mean[r]) * fwd.rstd[r]
                dgB[c] += 2 * (Double(rows + 2) * u * abs(dy[i] * xh) + abs(dy[i]) * exh(i))
                dbB[c] += 2 * Double(rows) * u * abs(dy[i])
            }
            var cpuResult: ([Double], [Double], [Double])?
            for device in Self.allDevices where device.supports(dtype) {
                let what = "\(device.id) \(dtype) \(rows)×\(cols)"
                let (dx, dgamma, dbeta) = try Tensor(x, shape: [rows, cols], dtype: dtype, on: device).layerNormBackward(
                    upstream: try Tensor(dy, shape: [rows, cols], dtype: dtype, on: device),
                    gamma: try Tensor(gamma, shape: [cols], dtype: dtype, on: device),
                    mean: try Tensor(fwd.mean, shape: [rows], dtype: dtype, on: device),
                    rstd: try Tensor(fwd.rstd, shape: [rows], dtype: dtype, on: device))
                let got = (try dx.doubles(), try dgamma.doubles(), try dbeta.doubles())
                // dx alone (an attribution's backward: no parameter sums): the same kernel, the same bits.
                let dxOnly = try Tensor(x, shape: [rows, cols], dtype: dtype, on: device).layerNormInputGradient(
                    upstream: try Tensor(dy, shape: [rows, cols], dtype: dtype, on: device),
                    gamma: try Tensor(gamma, shape: [cols], dtype: dtype, on: device),
                    mean: try Tensor(fwd.mean, shape: [rows], dtype: dtype, on: device),
                    rstd: try Tensor(fwd.rstd, shape: [rows], dtype: dtype, on: device))
                expectEqual(try dxOnly.doubles(), got.0, "\(what) layerNormInputGradient vs layerNormBackward's dx")
                expectClose(got.0, ref.dx, bound: dxBound, "\(what) layerNorm dx")
                expectClose(got.1, ref.dgamma, bound: { dgB[$0] }, "\(what) layerNorm dgamma")
                expectClose(got.2, ref.dbeta, bound: { dbB[$0] }, "\(what) layerNorm dbeta")
                if let c = cpuResult {
                    // Parity: each within its bound of the truth.
                    expectClose(got.0, c.0, bound: { 2 * dxBound($0) }, "\(what) layerNorm dx parity")
                    expectClose(got.1, c.1, bound: { 2 * dgB[$0] }, "\(what) layerNorm dgamma parity")
                    expectClose(got.2, c.2, bound: { 2 * dbB[$0] }, "\(what) layerNorm dbeta parity")
                } else { cpuResult = got }
            }
        }
    }

    @Test("layerNorm backward vs central finite differences in Float64 (x, gamma, beta)", arguments: [(3, 1), (3, 7), (2, 33)])
    func layerNormFiniteDifferences(_ shape: (Int, Int)) throws {
        let (rows, cols) = shape, eps = 1e-5
        let x = randomValues(rows * cols, seed: 119, -2, 2), gamma = randomValues(cols, seed: 120, 0.5, 1.5)
        let beta = randomValues(cols, seed: 121), dy = randomValues(rows * cols, seed: 122)
        for device in Self.allDevices where device.supports(.float64) {
            func loss(_ x: [Double], _ gamma: [Double], _ beta: [Double]) throws -> Double {
                let y = try Tensor(x, shape: [rows, cols], dtype: .float64, on: device).layerNorm(
                    gamma: try Tensor(gamma, shape: [cols], dtype: .float64, on: device),
                    beta: try Tensor(beta, shape: [cols], dtype: .float64, on: device), eps: eps).output.doubles()
                return zip(y, dy).reduce(0) { $0 + $1.0 * $1.1 }
            }
            let xt = try Tensor(x, shape: [rows, cols], dtype: .float64, on: device)
            let gt = try Tensor(gamma, shape: [cols], dtype: .float64, on: device)
            let fwd = try xt.layerNorm(gamma: gt, beta: try Tensor(beta, shape: [cols], dtype: .float64, on: device), eps: eps)
            let (dx, dgamma, dbeta) = try xt.layerNormBackward(upstream: try Tensor(dy, shape: [rows, cols], dtype: .float64, on: device),
                                                              gamma: gt, mean: fwd.mean, rstd: fwd.rstd)
            // h = 1e-5. Truncation: h²/6·|∂³L|, with |∂³L| ≲ 6·rstd³·Σ|dy·γ| ≲ 6·2³·1.5·cols (rstd ≲ 2
            // for x uniform in [−2, 2], cols ≥ 7; cols = 1 makes L constant): ≤ 1e-10·2·cols.
            // Rounding: L sums rows·cols terms ≲ 4 each, |ΔL| ≲ rows·cols·40·2⁻⁵³, divided by 2h.
            let h = 1e-5, n = Double(rows * cols)
            let bound = 1e-10 * 2 * Double(cols) + n * 40 * 0x1p-53 / (2 * h) * 2
            func fd(_ which: Int, _ count: Int) throws -> [Double] {
                try (0..<count).map { i in
                    var p = [x, gamma, beta], m = p
                    p[which][i] += h; m[which][i] -= h
                    return try (loss(p[0], p[1], p[2]) - loss(m[0], m[1], m[2])) / (2 * h)
                }
            }
            expectClose(try dx.doubles(), try fd(0, x.count), bound: { _ in bound }, "\(device.id) layerNorm dx vs FD \(rows)×\(cols)")
            expectClose(try dgamma.doubles(), try fd(1, cols), bound: { _ in bound }, "\(device.id) layerNorm dgamma vs FD \(rows)×\(cols)")
            expectClose(try dbeta.doubles(), try fd(2, cols), bound: { _ in bound }, "\(device.id) layerNorm dbeta vs FD \(rows)×\(cols)")
        }
    }

    // MARK: bad input

    @Test("bad input: shapes, kernels larger than the padded image, bad sizes, short views")
    func badInput() throws {
        for d in Self.allDevices {
            let x = try Tensor.zeros([2, 3, 4, 5], on: d), flat = try Tensor.zeros([3, 4, 5], on: d)
            expectAttribError(["im2col", "[3, 4, 5]", "4-D"]) { _ = try flat.im2col(kernel: 3) }
            expectAttribError(["im2col", "larger than the padded image", "[6, 7]"]) { _ = try x.im2col(kernel: 7, padding: 1) }
            expectAttribError(["im2col", "stride"]) { _ = try x.im2col(kernel: 3, stride: 0) }
            expectAttribError(["im2col", "padding", "negative"]) { _ = try x.im2col(kernel: 3, padding: [-1, 0]) }
            expectAttribError(["im2col", "kernel must be one integer or two"]) { _ = try x.im2col(kernel: [1, 2, 3]) }
            expectAttribError(["col2im", "columns have shape", "[27, 12]"]) {
                _ = try Tensor.zeros([27, 13], on: d).col2im(imageShape: [2, 3, 4, 5], kernel: 3)
            }
            expectAttribError(["col2im", "not 4-D"]) { _ = try Tensor.zeros([27, 12], on: d).col2im(imageShape: [3, 4, 5], kernel: 3) }
            expectAttribError(["transpose01", "rank"]) { _ = try Tensor.zeros([5], on: d).transposed01() }
            expectAttribError(["rowBiasAdd", "bias has shape [3]", "[2]"]) { try x.addRowBias(try Tensor.zeros([3], on: d)) }
            expectAttribError(["conv2d", "weight has shape [4, 2, 3, 3]"]) { _ = try x.conv2d(weight: try Tensor.zeros([4, 2, 3, 3], on: d)) }
            expectAttribError(["conv2d", "larger than the padded image"]) { _ = try x.conv2d(weight: try Tensor.zeros([4, 3, 5, 5], on: d)) }
            expectAttribError(["maxPool2d", "larger than the padded image", "[4, 5]"]) { _ = try x.maxPool2d(kernel: [5, 2]) }
            expectAttribError(["avgPool2d", "4-D"]) { _ = try flat.avgPool2d(kernel: 2) }
            let (y, arg) = try x.maxPool2d(kernel: 2)                      // [2, 3, 2, 2]
            expectAttribError(["maxPool2dBackward", "upstream gradient has shape [2, 3, 2, 3]", "[2, 3, 2, 2]"]) {
                _ = try Tensor.zeros([2, 3, 2, 3], on: d).maxPool2dBackward(argmax: arg, inputShape: x.shape, kernel: 2)
            }
            expectAttribError(["maxPool2dBackward", "int32"]) { _ = try y.maxPool2dBackward(argmax: y, inputShape: x.shape, kernel: 2) }
            expectAttribError(["avgPool2dBackward", "upstream gradient has shape"]) {
                _ = try y.avgPool2dBackward(inputShape: x.shape, kernel: 2, stride: 1)
            }
            let m = try Tensor.zeros([4, 6], on: d)
            expectAttribError(["layerNorm", "gamma has shape [5]", "[6]"]) {
                _ = try m.layerNorm(gamma: try Tensor.zeros([5], on: d), beta: try Tensor.zeros([6], on: d))
            }
            expectAttribError(["layerNorm", "eps"]) {
                _ = try m.layerNorm(gamma: try Tensor.zeros([6], on: d), beta: try Tensor.zeros([6], on: d), eps: -1)
            }
            let v4 = try Tensor.zeros([4], on: d), v6 = try Tensor.zeros([6], on: d)
            expectAttribError(["layerNormBackward", "mean has shape [6]", "[4]"]) {
                _ = try m.layerNormBackward(upstream: m, gamma: v6, mean: v6, rstd: v4)
            }
            expectAttribError(["layerNormBackward", "upstream gradient"]) {
                _ = try m.layerNormBackward(upstream: try Tensor.zeros([6, 4], on: d), gamma: v6, mean: v4, rstd: v4)
            }
            // Raw ops: a view too short for the sizes, and a geometry the image cannot hold.
            expectAttribError(["im2col", "needs elements"]) {
                try d.im2col(n: 2, c: 3, h: 4, w: 5, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 0, padW: 0,
                             x: x.storage, cols: v6.storage)
            }
            expectAttribError(["maxPool2d", "larger than the padded image"]) {
                try d.maxPool2d(n: 2, c: 3, h: 4, w: 5, kh: 5, kw: 1, strideH: 1, strideW: 1, x: x.storage, y: x.storage, argmax: arg.storage)
            }
            expectAttribError(["maxPool2d", "int32"]) {
                try d.maxPool2d(n: 2, c: 3, h: 4, w: 5, kh: 2, kw: 2, strideH: 2, strideW: 2, x: x.storage, y: y.storage, argmax: y.storage)
            }
            expectAttribError(["layerNorm", "rows = 0"]) {
                try d.layerNorm(rows: 0, cols: 6, eps: 1e-5, x: m.storage, gamma: v6.storage, beta: v6.storage,
                                y: m.storage, mean: v4.storage, rstd: v4.storage)
            }
        }
    }
}
