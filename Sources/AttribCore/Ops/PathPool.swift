// The IG path fused into the first and last passes of an activation + tiling average
// pooling (Device.pathActivationAvgPoolWithDerivative, avgPool2dBackwardTimesPathSum):
// neither the interpolated path nor its per-step gradient is formed. Bitwise the ops
// apart: pathInterpolated, activatedAndAvgPooled; avgPool2dBackward(times:), pathWeightedSum.

extension Tensor {
    /// Self = the path's ends x [n, C, H, W], with `baselines` [n or 1, C, H, W] and
    /// `alphas` [m]: for the rows (i, k), input-major, the pooled activation
    /// avgPool(f(z)) [n·m, C, H/kh, W/kw] and f′(z) [n·m, C, H, W] of
    /// z = baseline_i + alphas_k·(x_i − baseline_i), in one pass where the device fuses
    /// them (CPU Float32 GELU); nil where it does not.
    public func pathActivatedAndAvgPooled(baselines: Tensor, alphas: Tensor, _ kind: Activation,
                                          kernel: Size2D) throws -> (pooled: Tensor, derivative: Tensor)? {
        let op = "pathActivatedAndAvgPooled"
        let (n, m, _, baseStride) = try checkPath(op, baselines: baselines, alphas: alphas)
        let g = try window2D(op, kernel: kernel, stride: kernel, padding: 0)
        guard device.fusesActivationAvgPool(kind, dtype: dtype, planeSize: g.h * g.w) else { return nil }
        let pooled = try like([n * m, g.c, g.outH, g.outW]), dv = try like([n * m, g.c, g.h, g.w])
        guard try device.pathActivationAvgPoolWithDerivative(kind, n: n, m: m, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw,
                                                             x: storage, base: baselines.storage, baseStride: baseStride, alphas: alphas.storage,
                                                             pooled: pooled.storage, derivative: dv.storage) else { return nil }
        return (pooled, dv)
    }

    /// Self = the upstream gradient dy [n·m, C, H/kh, W/kw] of a tiling average pooling
    /// over input `inputShape` [n·m, C, H, W], times `m` (that shape) elementwise, summed
    /// over each input's m steps with `weights` [m]: [n, C, H, W], where the device fuses
    /// it (CPU Float32); nil where it does not.
    public func avgPool2dBackwardPathSum(inputShape: [Int], kernel: Size2D, times m: Tensor, weights: Tensor) throws -> Tensor? {
        let op = "avgPool2dBackwardPathSum"
        try checkCompatible(op, [("multiplier", m), ("weights", weights)])
        let g = try poolBackwardGeometry(op, inputShape: inputShape, kernel: kernel, stride: kernel)
        guard m.shape == inputShape else {
            throw AttribError.shapeMismatch(op: op, detail: "multiplier has shape \(m.shape), the pooling input \(inputShape)")
        }
        let steps = weights.count
        guard weights.rank == 1, g.n % steps == 0 else {
            throw AttribError.shapeMismatch(op: op, detail: "\(g.n) rows are not a whole number of \(steps)-step paths (weights \(weights.shape))")
        }
        let y = try like([g.n / steps, g.c, g.h, g.w])
        guard try device.avgPool2dBackwardTimesPathSum(n: g.n / steps, m: steps, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw,
                                                       dy: storage, multiplier: m.storage, weights: weights.storage, y: y.storage) else { return nil }
        return y
    }
}
