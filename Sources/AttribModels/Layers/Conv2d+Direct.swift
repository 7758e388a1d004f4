import AttribCore

/// The direct form of a 3×3, stride-1, padding-1 convolution on small images held
/// rows-outer (Device.conv3x3RowsOuter; on the CPU backend, CVecMath/conv3x3.c).
///
/// Why: it replaces the banded products where both apply. A band multiplies the zeros of
/// the dense map inside it (on the digits CNN's 16×4×4 → 32×4×4, 82k multiply-adds an
/// image against the convolution's 51k) and OpenBLAS repacks its operands on every call;
/// the direct kernel does the 51k and packs nothing. The backward is the same kernel on
/// dy with the weight flipped and its channel axes swapped (`directBackwardWeight`).
extension Conv2d {
    /// Whether an input of this per-sample shape [C, H, W] runs through the direct kernel
    /// on this layer's device: it runs by bands, the layer is 3×3 with stride 1 and padding
    /// 1, `directSmallImages` is on and the device offers the kernel for the dtype.
    public func convolvesDirectly(inputShape: [Int]) -> Bool {
        directKernelApplies && ((try? bands(inputShape: inputShape)) ?? nil) != nil
    }

    /// The shape-free half of `convolvesDirectly`, for callers that have just found the
    /// input's bands: the band map's lookup takes a lock, once is enough per batch.
    var directKernelApplies: Bool {
        directSmallImages && directBackwardWeight != nil && weight.device.offersConv3x3RowsOuter(dtype: weight.dtype)
    }

    /// [C, OC, 3, 3] with wb[c, o, kh, kw] = w[o, c, 2 − kh, 2 − kw], for a 3×3, stride-1,
    /// padding-1 weight [OC, C, 3, 3] on the CPU backend; nil for any other layer.
    /// dx[c, iy, ix] = Σ w[o, c, kh, kw]·dy[o, iy − kh + 1, ix − kw + 1] is then the
    /// padding-1 convolution of dy with wb.
    static func directBackwardWeight(_ weight: Tensor, stride: [Int], padding: [Int]) throws -> Tensor? {
        guard Array(weight.shape[2...]) == [3, 3], stride == [1, 1], padding == [1, 1], weight.device is CPUDevice else { return nil }
        let (oc, c) = (weight.shape[0], weight.shape[1]), w = try weight.doubles()
        var flipped = [Double](repeating: 0, count: w.count)
        for o in 0..<oc { for ci in 0..<c { for kh in 0..<3 { for kw in 0..<3 {
            flipped[((ci * oc + o) * 3 + kh) * 3 + kw] = w[((o * c + ci) * 3 + 2 - kh) * 3 + 2 - kw]
        } } } }
        return try Tensor(flipped, shape: [c, oc, 3, 3], dtype: weight.dtype, on: weight.device)
    }

    /// y [N, H, OC, W] from x [N, H, C, W] through the direct kernel, or nil where this
    /// input shape does not run through it (`runsByBands`: the caller has found its bands).
    func forwardDirect(_ x: Tensor, inputShape: [Int], runsByBands: Bool = false) throws -> Tensor? {
        guard runsByBands ? directKernelApplies : convolvesDirectly(inputShape: inputShape) else { return nil }
        let (n, h, c, w) = (x.batchSize, inputShape[1], inputShape[0], inputShape[2])
        let y = try Tensor(shape: [n, h, outChannels, w], dtype: x.dtype, on: x.device)   // every element written
        guard try x.device.conv3x3RowsOuter(n: n, c: c, h: h, w: w, oc: outChannels, x: x.storage, weight: weight.storage,
                                            bias: bias?.storage, y: y.storage) else { return nil }
        return y
    }

    /// dx [N, H, C, W] from dy [N, H, OC, W] through the direct kernel, or nil where this
    /// input shape does not run through it (`runsByBands`: the caller has found its bands).
    func backwardDirect(_ dy: Tensor, inputShape: [Int], runsByBands: Bool = false) throws -> Tensor? {
        guard runsByBands ? directKernelApplies : convolvesDirectly(inputShape: inputShape), let wb = directBackwardWeight else { return nil }
        let (n, h, c, w) = (dy.batchSize, inputShape[1], inputShape[0], inputShape[2])
        let dx = try Tensor(shape: [n, h, c, w], dtype: dy.dtype, on: dy.device)          // every element written
        guard try dy.device.conv3x3RowsOuter(n: n, c: outChannels, h: h, w: w, oc: c, x: dy.storage, weight: wb.storage,
                                             bias: nil, y: dx.storage) else { return nil }
        return dx
    }
}

/// The direct convolution with the GELU (erf) and 2×2 average pooling after it in one
/// pass each way (the digits CNN's conv → GELU → pool): the convolution's output, GELU's
/// output and the pooling's backward never reach memory, and one op replaces three, with
/// one wait for the worker threads instead of three. Bitwise the layers apart.
extension Conv2d {
    /// pooled [N, H/2, OC, W/2] and GELU′ of the convolution's output [N, H, OC, W] from
    /// x [N, H, C, W], or nil where this input shape does not run directly or the device
    /// does not fuse (H or W odd).
    func forwardDirectGELUAvgPool(_ x: Tensor, inputShape: [Int]) throws -> (pooled: Tensor, derivative: Tensor)? {
        guard convolvesDirectly(inputShape: inputShape) else { return nil }
        let (n, h, c, w) = (x.batchSize, inputShape[1], inputShape[0], inputShape[2])
        let pooled = try Tensor(shape: [n, h / 2, outChannels, w / 2], dtype: x.dtype, on: x.device)   // every element written
        let d = try Tensor(shape: [n, h, outChannels, w], dtype: x.dtype, on: x.device)
        guard try x.device.conv3x3GELUAvgPool2RowsOuter(n: n, c: c, h: h, w: w, oc: outChannels, x: x.storage, weight: weight.storage,
                                                       bias: bias?.storage, pooled: pooled.storage, derivative: d.storage) else { return nil }
        return (pooled, d)
    }

    /// dx [N, H, C, W] from the pooled gradient g [N, H/2, OC, W/2] and GELU′ [N, H, OC, W]
    /// (`forwardDirectGELUAvgPool`'s), or nil where the device does not fuse them.
    func backwardDirectGELUAvgPool(_ g: Tensor, derivative d: Tensor, inputShape: [Int]) throws -> Tensor? {
        guard convolvesDirectly(inputShape: inputShape), let wb = directBackwardWeight else { return nil }
        let (n, h, c, w) = (g.batchSize, inputShape[1], inputShape[0], inputShape[2])
        let dx = try Tensor(shape: [n, h, c, w], dtype: g.dtype, on: g.device)                          // every element written
        guard try g.device.avgPool2TimesConv3x3BackwardRowsOuter(n: n, c: c, h: h, w: w, oc: outChannels, g: g.storage,
                                                                multiplier: d.storage, flipped: wb.storage, dx: dx.storage) else { return nil }
        return dx
    }
}
