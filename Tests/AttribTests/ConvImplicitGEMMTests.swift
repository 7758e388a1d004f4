import Attrib
import Testing

/// Convolutions as implicit GEMMs (Kernels/conv_igemm.cl, the GPU path): the Conv2d layer's
/// forward and input gradient on every OpenCL device with the implicit path turned on,
/// against the CPU backend's im2col + GEMM (+ col2im).
///
/// Tolerance: every output is a sum of K products (K = C·kh·kw forward, OC·kh·kw for the
/// input gradient) plus the bias; each backend's rounding error is at most γ_{K+1}·Σ|w||x|
/// (+ u·|b|), so the two differ by at most twice that. Σ|w||x| is the same layer run in
/// Float64 on the CPU with |w| and |x| (|dy| for the gradient). An indexing error (a wrong
/// pixel, a missed padding zero, a stride term kept) gives O(1) differences.
@Suite struct ConvImplicitGEMMTests {
    struct Geometry: Sendable, CustomTestStringConvertible {
        var n: Int, c: Int, h: Int, w: Int, oc: Int, kh: Int, kw: Int
        var stride = [1, 1], padding = [0, 0], bias = true
        var testDescription: String {
            "x [\(n), \(c), \(h), \(w)], \(oc)×\(kh)×\(kw), stride \(stride), padding \(padding)\(bias ? ", bias" : "")"
        }
    }

    static let geometries: [Geometry] = [
        .init(n: 3, c: 5, h: 11, w: 9, oc: 7, kh: 3, kw: 3, padding: [1, 1]),
        .init(n: 2, c: 3, h: 17, w: 16, oc: 70, kh: 5, kw: 5, stride: [2, 2], padding: [2, 2], bias: false),
        .init(n: 1, c: 67, h: 7, w: 7, oc: 65, kh: 1, kw: 1),
        .init(n: 2, c: 4, h: 10, w: 13, oc: 3, kh: 3, kw: 2, stride: [2, 3], padding: [1, 0]),
        .init(n: 2, c: 3, h: 32, w: 30, oc: 16, kh: 7, kw: 7, stride: [2, 2], padding: [3, 3]),   // a ResNet stem, smaller
    ]

    /// The layer on `device` with every small-image path off (the generic path, which
    /// takes the implicit GEMM where the device offers it): output and input gradient.
    static func run(_ g: Geometry, on device: any Device, dtype: DType, abs: Bool = false) throws -> (y: [Double], dx: [Double]) {
        func vals(_ n: Int, _ seed: UInt64) -> [Double] { randomValues(n, seed: seed).map { abs ? Swift.abs($0) : $0 } }
        let weight = try Tensor(vals(g.oc * g.c * g.kh * g.kw, 21), shape: [g.oc, g.c, g.kh, g.kw], dtype: dtype, on: device)
        let bias = g.bias ? try Tensor(vals(g.oc, 22), shape: [g.oc], dtype: dtype, on: device) : nil
        let layer = try Conv2d(weight: weight, bias: bias, stride: g.stride, padding: g.padding)
        layer.unrollSmallImages = false; layer.bandSmallImages = false; layer.directSmallImages = false
        let x = try Tensor(vals(g.n * g.c * g.h * g.w, 23), shape: [g.n, g.c, g.h, g.w], dtype: dtype, on: device)
        let (y, saved) = try layer.forward(x)
        let dy = try Tensor(vals(y.count, 24), shape: y.shape, dtype: dtype, on: device)
        return (try y.doubles(), try layer.backward(dy, saved).doubles())
    }

    @Test("Conv2d forward and input gradient as implicit GEMMs on every OpenCL device, against the CPU's im2col path", arguments: geometries)
    func parity(_ g: Geometry) throws {
        let ref = try Self.run(g, on: cpu, dtype: .float64)
        let mag = try Self.run(g, on: cpu, dtype: .float64, abs: true)
        for device in openCLDevices.map({ $0.independentHandle() }) {
            device.setImplicitConvolution(true)
            #expect(device.offersImplicitConvolution(dtype: .float32))
            for dtype in dtypes(device) {
                let got = try Self.run(g, on: device, dtype: dtype)
                let u = dtype.unitRoundoff
                let kf = Double(g.c * g.kh * g.kw + 1), kb = Double(g.oc * g.kh * g.kw + 1)
                // Operands are rounded to dtype on both sides; the reference is their exact-ish Float64 product.
                expectClose(got.y, ref.y, bound: { 2 * (kf + 2) * u * mag.y[$0] }, "\(device.id) \(dtype) forward \(g.testDescription)")
                expectClose(got.dx, ref.dx, bound: { 2 * (kb + 2) * u * mag.dx[$0] }, "\(device.id) \(dtype) input gradient \(g.testDescription)")
            }
        }
    }

    @Test("Off by default on devices that are not GPUs; the CPU backend never offers it")
    func offeredWhere() {
        #expect(!cpu.offersImplicitConvolution(dtype: .float32))
        for device in openCLDevices where device.info.kind != .gpu {
            #expect(!device.independentHandle().offersImplicitConvolution(dtype: .float32))
        }
    }
}
