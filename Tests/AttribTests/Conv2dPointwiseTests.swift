import Attrib
import Testing

/// 1×1, stride-1, unpadded convolutions on the CPU backend run as one batched product per
/// batch (Conv2d+Pointwise.swift) rather than im2col + GEMM + transpose: forward and backward
/// against the naive convolution, on images large enough that the small-image paths stay out.
@Suite struct Conv2dPointwiseTests {
    @Test("pointwise Conv2d on the CPU: forward and backward equal the naive sums, with and without bias; Float64 too")
    func pointwise() throws {
        let (n, c, h, w, oc) = (3, 5, 14, 13, 7)
        let g = ConvPoolNormTests.Case(n, c, h, w, k: (1, 1), s: (1, 1))
        for dtype in [DType.float32, .float64] {
            let x = ConvPoolNormTests.f32(randomValues(n * c * h * w, seed: 901, -2, 2))
            let wt = ConvPoolNormTests.f32(randomValues(oc * c, seed: 902)), b = ConvPoolNormTests.f32(randomValues(oc, seed: 903))
            let dy = ConvPoolNormTests.f32(randomValues(n * oc * h * w, seed: 904))
            for withBias in [true, false] {
                let layer = try Conv2d(weight: Tensor(wt, shape: [oc, c, 1, 1], dtype: dtype, on: cpu),
                                       bias: withBias ? Tensor(b, shape: [oc], dtype: dtype, on: cpu) : nil)
                #expect(!layer.unrolls(inputShape: [c, h, w]), "the case must not take the small-image path")
                let xt = try Tensor(x, shape: g.shape, dtype: dtype, on: cpu)
                let (y, saved) = try layer.forward(xt)
                let (yRef, mag) = ConvPoolNormTests.refConv(x, wt, withBias ? b : [Double](repeating: 0, count: oc), oc: oc, g)
                let u = dtype.unitRoundoff, what = "\(dtype) bias \(withBias)"
                // C products summed, then the bias: (C + 1) roundings of partial sums ≤ Σ|terms|; ×2.
                #expect(y.shape == [n, oc, h, w], "\(what)")
                expectClose(try y.doubles(), yRef, bound: { 2 * Double(c + 1) * u * mag[$0] }, "\(what) forward")
                let dx = try layer.backward(try Tensor(dy, shape: [n, oc, h, w], dtype: dtype, on: cpu), saved)
                var dxRef = [Double](repeating: 0, count: x.count), dxMag = dxRef
                for ni in 0..<n { for ci in 0..<c { for p in 0..<(h * w) { for o in 0..<oc {
                    let t = wt[o * c + ci] * dy[(ni * oc + o) * h * w + p]
                    dxRef[(ni * c + ci) * h * w + p] += t; dxMag[(ni * c + ci) * h * w + p] += abs(t)
                } } } }
                #expect(dx.shape == g.shape, "\(what)")
                expectClose(try dx.doubles(), dxRef, bound: { 2 * Double(oc + 1) * u * dxMag[$0] }, "\(what) backward")
            }
        }
    }
}
