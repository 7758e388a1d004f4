import Attrib
import Testing

/// The Conv2d layer on small images runs as a dense product each way
/// (Conv2dUnrolled); these tests hold it to the naive convolution and to the
/// im2col path, forward and backward, on every device.
@Suite struct Conv2dUnrolledTests {
    typealias Case = ConvPoolNormTests.Case

    /// Small images where the dense map is used: strides 1 and 2, padding 0–2, square
    /// and oblong kernels, and the digits CNN's second convolution (16×4×4, 3×3, p 1).
    static let cases: [Case] = [
        Case(3, 2, 4, 4, k: (3, 3), s: (1, 1), p: (1, 1)),
        Case(2, 3, 5, 4, k: (2, 3), s: (2, 1), p: (0, 1)),
        Case(2, 2, 6, 6, k: (3, 3), s: (2, 2), p: (2, 2)),
        Case(2, 16, 4, 4, k: (3, 3), s: (1, 1), p: (1, 1)),
    ]

    /// dx of the naive convolution for upstream dy, and Σ|terms| per element.
    static func refBackward(_ dy: [Double], _ wt: [Double], oc: Int, _ g: Case) -> (dx: [Double], mag: [Double]) {
        var dx = [Double](repeating: 0, count: g.n * g.c * g.h * g.w), mag = dx
        for ni in 0..<g.n { for o in 0..<oc { for oy in 0..<g.oh { for ox in 0..<g.ow {
            let d = dy[((ni * oc + o) * g.oh + oy) * g.ow + ox]
            for ci in 0..<g.c { for ki in 0..<g.kh { for kj in 0..<g.kw {
                let iy = oy * g.sh - g.ph + ki, ix = ox * g.sw - g.pw + kj
                guard iy >= 0, iy < g.h, ix >= 0, ix < g.w else { continue }
                let e = ((ni * g.c + ci) * g.h + iy) * g.w + ix, p = wt[((o * g.c + ci) * g.kh + ki) * g.kw + kj] * d
                dx[e] += p; mag[e] += abs(p)
            } } }
        } } } }
        return (dx, mag)
    }

    @Test("Conv2d on small images: the dense map equals the naive convolution and the im2col path, forward and backward", arguments: cases)
    func unrolledMatchesIm2col(_ g: Case) throws {
        let oc = 5
        let x = ConvPoolNormTests.f32(randomValues(g.n * g.c * g.h * g.w, seed: 301))
        let wt = ConvPoolNormTests.f32(randomValues(oc * g.c * g.kh * g.kw, seed: 302)), b = ConvPoolNormTests.f32(randomValues(oc, seed: 303))
        let dy = ConvPoolNormTests.f32(randomValues(g.n * oc * g.oh * g.ow, seed: 304))
        let (yRef, yMag) = ConvPoolNormTests.refConv(x, wt, b, oc: oc, g)
        let (dxRef, dxMag) = Self.refBackward(dy, wt, oc: oc, g)
        // The dense product sums C·H·W terms per output (the zeros add no error) and the
        // backward OC·OH·OW; first-order bound (terms + 1)·u·Σ|terms|, ×2 for higher order.
        // The bands sum fewer terms forward, and backward at most kh bands of OC·OW terms
        // each plus one addition per band: within the same counts for these cases.
        let kForward = Double(g.c * g.h * g.w + 1), kBackward = Double(oc * g.oh * g.ow + 1)
        for device in ConvPoolNormTests.allDevices {
            for dtype in [DType.float32, .float64] where device.supports(dtype) {
                let layer = try Conv2d(weight: Tensor(wt, shape: [oc, g.c, g.kh, g.kw], dtype: dtype, on: device),
                                       bias: Tensor(b, shape: [oc], dtype: dtype, on: device),
                                       stride: [g.sh, g.sw], padding: [g.ph, g.pw])
                #expect(layer.unrolls(inputShape: [g.c, g.h, g.w]), "\(g.testDescription) should take the dense path")
                let xt = try Tensor(x, shape: g.shape, dtype: dtype, on: device)
                let upstream = try Tensor(dy, shape: [g.n, oc, g.oh, g.ow], dtype: dtype, on: device)
                let (y, saved) = try layer.forward(xt)
                #expect(y.shape == [g.n, oc, g.oh, g.ow])
                let dx = try layer.backward(upstream, saved)
                #expect(dx.shape == g.shape)
                let u = dtype.unitRoundoff, what = "\(device.id) \(dtype) \(g.testDescription)"
                expectClose(try y.doubles(), yRef, bound: { 2 * kForward * u * yMag[$0] }, "\(what) dense forward vs naive")
                expectClose(try dx.doubles(), dxRef, bound: { 2 * kBackward * u * dxMag[$0] }, "\(what) dense backward vs naive")

                // On the CPU backend the map runs by output row where that saves a quarter or
                // more of its multiply-adds (the digits CNN's case: 10 of 16 row blocks), which
                // every case here does: input rows read Σ_oy |[oy·s − p, oy·s − p + kh) ∩ [0, H)|
                // against H·OH. Against the whole dense product, on a fresh layer.
                let rowsRead = (0..<g.oh).reduce(0) { $0 + min(g.h, $1 * g.sh - g.ph + g.kh) - max(0, $1 * g.sh - g.ph) }
                let banded = device is CPUDevice && g.oh >= 2 && Double(rowsRead) <= 0.75 * Double(g.h * g.oh)
                let bands = try layer.bandCount(inputShape: [g.c, g.h, g.w])
                #expect(banded && bands == g.oh || !banded && bands == 0, "\(what): \(bands) bands, \(rowsRead) of \(g.h * g.oh) row blocks")
                #expect(!(device is CPUDevice) || banded, "\(what): every case here should take the bands on the CPU")
                if bands > 0 {
                    let whole = try Conv2d(weight: layer.weight, bias: layer.bias, stride: layer.stride, padding: layer.padding)
                    whole.bandSmallImages = false
                    #expect(try whole.bandCount(inputShape: [g.c, g.h, g.w]) == 0)
                    let (y3, saved3) = try whole.forward(xt)
                    let dx3 = try whole.backward(upstream, saved3)
                    expectClose(try y3.doubles(), yRef, bound: { 2 * kForward * u * yMag[$0] }, "\(what) whole map forward vs naive")
                    expectClose(try dx3.doubles(), dxRef, bound: { 2 * kBackward * u * dxMag[$0] }, "\(what) whole map backward vs naive")
                    expectClose(try y.doubles(), try y3.doubles(), bound: { 4 * kForward * u * yMag[$0] }, "\(what) bands vs whole map forward")
                    expectClose(try dx.doubles(), try dx3.doubles(), bound: { 4 * kBackward * u * dxMag[$0] }, "\(what) bands vs whole map backward")
                }

                layer.unrollSmallImages = false
                #expect(!layer.unrolls(inputShape: [g.c, g.h, g.w]))
                let (y2, saved2) = try layer.forward(xt)
                let dx2 = try layer.backward(upstream, saved2)
                // Both within their bounds of the truth (im2col's are smaller), so within the sum.
                expectClose(try y.doubles(), try y2.doubles(), bound: { 4 * kForward * u * yMag[$0] }, "\(what) dense vs im2col forward")
                expectClose(try dx.doubles(), try dx2.doubles(), bound: { 4 * kBackward * u * dxMag[$0] }, "\(what) dense vs im2col backward")
            }
        }
    }

    @Test("Conv2d keeps im2col where the dense map would cost too much: large images, or H·W > 4·kh·kw")
    func denseOnlyWhereWorthIt() throws {
        let w = try Tensor(randomValues(4 * 3 * 3 * 3, seed: 305), shape: [4, 3, 3, 3], dtype: .float32, on: cpu)
        let layer = try Conv2d(weight: w, bias: nil, padding: [1, 1])
        #expect(layer.unrolls(inputShape: [3, 4, 4]))        // 16 pixels ≤ 4·9
        #expect(layer.unrolls(inputShape: [3, 6, 6]))        // 36 ≤ 36
        #expect(!layer.unrolls(inputShape: [3, 7, 7]))       // 49 > 36: im2col
        #expect(!layer.unrolls(inputShape: [3, 224, 224]))
    }
}
