/// Convolutions of channels-last batches, where the device offers them (CPU Float32 on
/// oneDNN): the images [N, H, W, C], the weight as every convolution stores it [OC, C/groups, kh, kw]
/// (groups of C/groups input and OC/groups output channels; 1 for an ordinary convolution).
extension Tensor {
    /// conv2d of this [N, H, W, C] batch: [N, OH, OW, OC], or nil where the device does not
    /// offer this geometry (nothing computed; the caller runs the NCHW convolution).
    /// `prepared`: the layer's copies of the weight in the device's layouts (kept across calls).
    public func conv2dChannelsLast(weight: Tensor, bias: Tensor?, stride: Size2D, padding: Size2D, groups: Int = 1,
                                   prepared: PreparedWeights? = nil) throws -> Tensor? {
        let op = "conv2d (channels-last)"
        guard device.offersChannelsLastConvolution(dtype: dtype) else { return nil }
        try checkCompatible(op, [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []))
        guard rank == 4, weight.rank == 4, groups >= 1, weight.shape[1] * groups == shape[3], weight.shape[0] % groups == 0,
              bias.map({ $0.shape == [weight.shape[0]] }) ?? true else {
            throw AttribError.shapeMismatch(op: op, detail: "input \(shape), weight \(weight.shape), bias \(bias?.shape ?? []), \(groups) groups: expected [N, H, W, C], [OC, C/groups, kh, kw] with OC a multiple of groups, [OC]")
        }
        let g = try Window2D(imageShape: [shape[0], shape[3], shape[1], shape[2]], op: op,
                             kernel: Size2D(weight.shape[2], weight.shape[3]), stride: stride, padding: padding)
        let y = try Tensor(shape: [g.n, g.outH, g.outW, weight.shape[0]], dtype: dtype, on: device)   // every element written
        guard try device.conv2dChannelsLast(g, oc: weight.shape[0], groups: groups, x: storage, weight: weight.storage, bias: bias?.storage,
                                            y: y.storage, prepared: prepared) else { return nil }
        return y
    }

    /// The input gradient [N, H, W, C] (imageShape, channels-last) of conv2dChannelsLast for
    /// this dy [N, OH, OW, OC], or nil where the device does not offer it.
    public func conv2dInputGradientChannelsLast(weight: Tensor, imageShape: [Int], stride: Size2D, padding: Size2D, groups: Int = 1,
                                                prepared: PreparedWeights? = nil) throws -> Tensor? {
        let op = "conv2d backward (channels-last)"
        guard device.offersChannelsLastConvolution(dtype: dtype) else { return nil }
        try checkCompatible(op, [("weight", weight)])
        guard imageShape.count == 4, weight.rank == 4, groups >= 1, weight.shape[1] * groups == imageShape[3], weight.shape[0] % groups == 0 else {
            throw AttribError.shapeMismatch(op: op, detail: "image \(imageShape), weight \(weight.shape), \(groups) groups: expected [N, H, W, C] and [OC, C/groups, kh, kw] with OC a multiple of groups")
        }
        let g = try Window2D(imageShape: [imageShape[0], imageShape[3], imageShape[1], imageShape[2]], op: op,
                             kernel: Size2D(weight.shape[2], weight.shape[3]), stride: stride, padding: padding)
        guard shape == [g.n, g.outH, g.outW, weight.shape[0]] else {
            throw AttribError.shapeMismatch(op: op, detail: "dy has shape \(shape), expected [\(g.n), \(g.outH), \(g.outW), \(weight.shape[0])]")
        }
        let dx = try Tensor(shape: imageShape, dtype: dtype, on: device)      // every element written
        guard try device.conv2dInputGradientChannelsLast(g, oc: weight.shape[0], groups: groups, dy: storage, weight: weight.storage,
                                                         dx: dx.storage, prepared: prepared) else { return nil }
        return dx
    }
}
