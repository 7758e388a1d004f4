import Attrib
import Testing

/// Depthwise convolutions (groups = channels, one output per channel) on the CPU backend run
/// CPUDevice.depthwiseConv2d directly; elsewhere, and with `directDepthwise` off, a convolution
/// per channel. Both ways give the same numbers to the rounding of a k-term sum.
@Suite struct DepthwiseConvTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let kernel: [Int], stride: [Int], padding: [Int], h: Int, w: Int
        var testDescription: String { "\(kernel[0])×\(kernel[1]), stride \(stride), padding \(padding), \(h)×\(w)" }
    }

    static let cases: [Case] = [
        Case(kernel: [3, 3], stride: [1, 1], padding: [1, 1], h: 7, w: 9),
        Case(kernel: [3, 3], stride: [2, 2], padding: [1, 1], h: 8, w: 7),
        Case(kernel: [5, 5], stride: [1, 1], padding: [2, 2], h: 6, w: 6),
        Case(kernel: [5, 5], stride: [2, 2], padding: [2, 2], h: 9, w: 11),
        Case(kernel: [3, 5], stride: [1, 2], padding: [0, 1], h: 5, w: 8),
        Case(kernel: [7, 7], stride: [1, 1], padding: [3, 3], h: 7, w: 7),   // a ConvNeXt's, the whole plane in reach
        Case(kernel: [3, 3], stride: [3, 3], padding: [0, 0], h: 3, w: 3),   // one output
    ]

    static func layer(_ c: Case, channels: Int = 4, dtype: DType, on device: any Device) throws -> GroupedConv2d {
        let w = try Tensor(randomValues(channels * c.kernel[0] * c.kernel[1], seed: 21), shape: [channels, 1] + c.kernel, dtype: dtype, on: device)
        let b = try Tensor(randomValues(channels, seed: 22), shape: [channels], dtype: dtype, on: device)
        return try GroupedConv2d(weight: w, bias: b, groups: channels, stride: c.stride, padding: c.padding)
    }

    @Test("direct against a convolution per channel (CPU; Float32 with AVX-512 rows and scalar, Float64): forward and input gradient", arguments: cases)
    func directMatchesPerChannel(_ c: Case) throws {
        defer { CPUDevice.allowDepthwiseAVX512(true) }
        for (dtype, avx512) in [(DType.float32, true), (.float32, false), (.float64, true)] {
            CPUDevice.allowDepthwiseAVX512(avx512)
            let direct = try Self.layer(c, dtype: dtype, on: cpu), perChannel = try Self.layer(c, dtype: dtype, on: cpu)
            perChannel.directDepthwise = false
            #expect(direct.isDepthwise)
            let n = 3, count = n * 4 * c.h * c.w
            let x = try Tensor(randomValues(count, seed: 23), shape: [n, 4, c.h, c.w], dtype: dtype, on: cpu)
            let (y0, s0) = try perChannel.forward(x), (y1, s1) = try direct.forward(x)
            #expect(y1.shape == y0.shape)
            let dy = try Tensor(randomValues(y0.count, seed: 24), shape: y0.shape, dtype: dtype, on: cpu)
            // Each output: the bias and k = kh·kw products of values in [−1, 1], summed in another
            // order: both within k·u of the exact sum, Σ ≤ k + 1, so 2·k·(k + 1)·u apart at most.
            // Each input gradient: at most k products of the same kind.
            let k = Double(c.kernel[0] * c.kernel[1]), u = dtype.unitRoundoff
            expectClose(try y1.doubles(), try y0.doubles(), bound: { _ in 2 * k * (k + 1) * u }, "forward, \(dtype), AVX-512 \(avx512)")
            expectClose(try direct.backward(dy, s1).doubles(), try perChannel.backward(dy, s0).doubles(),
                        bound: { _ in 2 * k * k * u }, "input gradient, \(dtype), AVX-512 \(avx512)")
        }
    }

    @Test("input gradient against central finite differences (Float64, CPU)", arguments: [cases[1], cases[4]])
    func finiteDifferences(_ c: Case) throws {
        let layer = try Self.layer(c, channels: 2, dtype: .float64, on: cpu)
        let count = 2 * c.h * c.w
        let x = randomValues(count, seed: 25)
        let (y, s) = try layer.forward(Tensor(x, shape: [1, 2, c.h, c.w], on: cpu))
        let dy = randomValues(y.count, seed: 26)
        let g = try layer.backward(Tensor(dy, shape: y.shape, on: cpu), s).doubles()
        // L = Σ dy ⊙ y is linear in x: central differences are exact up to rounding, u·|L|/h.
        let h = 1e-6
        func loss(_ v: [Double]) throws -> Double {
            zip(try layer.forward(Tensor(v, shape: [1, 2, c.h, c.w], on: cpu)).y.doubles(), dy).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var fd: [Double] = []
        for i in 0..<count {
            var p = x, m = x
            p[i] += h; m[i] -= h
            fd.append((try loss(p) - loss(m)) / (2 * h))
        }
        expectClose(g, fd, bound: { _ in 1e-7 }, "∂L/∂x")
    }

    @Test("the CPU's direct depthwise against every OpenCL device's convolution per channel (Float32)")
    func againstOpenCL() throws {
        for device in openCLDevices {
            for c in [Self.cases[0], Self.cases[3]] {
                let onCPU = try Self.layer(c, dtype: .float32, on: cpu), onCL = try Self.layer(c, dtype: .float32, on: device)
                let values = randomValues(2 * 4 * c.h * c.w, seed: 27)
                let (y0, s0) = try onCPU.forward(Tensor(values, shape: [2, 4, c.h, c.w], dtype: .float32, on: cpu))
                let (y1, s1) = try onCL.forward(Tensor(values, shape: [2, 4, c.h, c.w], dtype: .float32, on: device))
                let dy = randomValues(y0.count, seed: 28)
                // As above: k products and a bias in another order, Float32 on both.
                let k = Double(c.kernel[0] * c.kernel[1]), u = DType.float32.unitRoundoff
                expectClose(try y1.doubles(), try y0.doubles(), bound: { _ in 2 * k * (k + 1) * u }, "forward on \(device.info.id)")
                let g0 = try onCPU.backward(Tensor(dy, shape: y0.shape, dtype: .float32, on: cpu), s0)
                let g1 = try onCL.backward(Tensor(dy, shape: y1.shape, dtype: .float32, on: device), s1)
                expectClose(try g1.doubles(), try g0.doubles(), bound: { _ in 2 * k * k * u }, "input gradient on \(device.info.id)")
            }
        }
    }

    @Test("bad extents are errors naming the op")
    func badExtents() throws {
        let x = try Tensor.zeros([1, 2, 2, 2], dtype: .float32, on: cpu), w = try Tensor.zeros([2, 3, 3], dtype: .float32, on: cpu)
        let y = try Tensor.zeros([1, 2, 1, 1], dtype: .float32, on: cpu)
        expectAttribError(["depthwiseConv2d", "does not fit"]) {
            try cpu.depthwiseConv2d(n: 1, c: 2, h: 2, w: 2, kh: 3, kw: 3, strideH: 1, strideW: 1, padH: 0, padW: 0,
                                    x: x.storage, weight: w.storage, bias: nil, y: y.storage)
        }
        expectAttribError(["depthwiseConv2dBackward", "row stride"]) {
            try cpu.depthwiseConv2dBackward(n: 1, c: 2, h: 2, w: 2, kh: 1, kw: 1, strideH: 0, strideW: 1, padH: 0, padW: 0,
                                            dy: y.storage, weight: w.storage, dx: x.storage)
        }
    }
}
