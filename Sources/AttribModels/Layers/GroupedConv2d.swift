import AttribCore

extension Conv2d {
    /// A dilated kernel as the dense kernel it equals: [out, in, kh, kw] spread to
    /// [out, in, d_h·(kh − 1) + 1, d_w·(kw − 1) + 1] with zeros between the taps. The products
    /// with those zeros add exact zeros, so outputs and gradients are PyTorch's dilated
    /// convolution; the cost is that of the larger kernel (for dilation 2 of a 3×3, 25/9).
    public static func dilatedWeight(_ w: [Double], shape: [Int], dilation: [Int]) -> (values: [Double], shape: [Int]) {
        let (o, i, kh, kw) = (shape[0], shape[1], shape[2], shape[3])
        let (eh, ew) = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
        var out = [Double](repeating: 0, count: o * i * eh * ew)
        for p in 0..<(o * i) {
            for a in 0..<kh { for b in 0..<kw { out[(p * eh + a * dilation[0]) * ew + b * dilation[1]] = w[(p * kh + a) * kw + b] } }
        }
        return (out, [o, i, eh, ew])
    }
}

/// A convolution with `groups` > 1 (PyTorch's groups; depthwise when groups = in_channels):
/// input channels and outputs split into groups, group g's outputs computed from its own
/// input channels only, each group an ordinary Conv2d (so each runs on the fastest path that
/// fits it). Weight [out, in/groups, kh, kw].
public final class GroupedConv2d: Layer, @unchecked Sendable {
    public let convolutions: [Conv2d]
    public let inChannels: Int, outChannels: Int
    /// The whole weight [OC, C/groups, kh, kw] and bias [OC], for the depthwise path.
    let weight: Tensor, bias: Tensor?
    /// One input and one output channel per group (MobileNets', EfficientNets', ConvNeXts'):
    /// on the CPU backend such a layer runs CPUDevice.depthwiseConv2d, each plane convolved
    /// directly, instead of a convolution per channel. Off: per group everywhere (tests).
    public var directDepthwise = true
    public var isDepthwise: Bool { convolutions.count == inChannels && inChannels == outChannels }
    /// The weight in the layouts a device's channels-last kernels read, made on first use
    /// (ChannelsLastConvGraphOp).
    let preparedWeights = PreparedWeights()

    /// `weight` [out, in/groups, kh, kw], `bias` [out] or nil, on one device.
    public init(weight: Tensor, bias: Tensor?, groups: Int, stride: [Int], padding: [Int]) throws {
        guard weight.rank == 4, groups >= 1, weight.shape[0] % groups == 0 else {
            throw AttribError.shapeMismatch(op: "Conv2d", detail: "weight \(weight.shape) does not split into \(groups) groups of output channels")
        }
        let (o, per) = (weight.shape[0], weight.shape[0] / groups)
        let w = try weight.doubles(), b = try bias?.doubles()
        let size = weight.count / o
        convolutions = try (0..<groups).map { g in
            let wg = try Tensor(Array(w[(g * per * size)..<((g + 1) * per * size)]), shape: [per] + Array(weight.shape.dropFirst()),
                                dtype: weight.dtype, on: weight.device)
            let bg = try b.map { try Tensor(Array($0[(g * per)..<((g + 1) * per)]), shape: [per], dtype: weight.dtype, on: weight.device) }
            return try Conv2d(weight: wg, bias: bg, stride: stride, padding: padding)
        }
        inChannels = weight.shape[1] * groups; outChannels = o
        self.weight = weight; self.bias = bias
    }

    /// Whether x's convolution runs as CPUDevice.depthwiseConv2d.
    private func runsDepthwise(on device: any Device) -> Bool { directDepthwise && isDepthwise && device is CPUDevice }

    private var geometry: (kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int) {
        let c = convolutions[0]
        return (c.kernel[0], c.kernel[1], c.stride[0], c.stride[1], c.padding[0], c.padding[1])
    }

    public var description: String {
        let c = convolutions[0]
        return "Conv2d(\(inChannels)→\(outChannels), \(c.kernel[0])×\(c.kernel[1]), stride \(c.stride), padding \(c.padding), groups \(convolutions.count))"
    }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count == 3, input[0] == inChannels else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(input), expected [\(inChannels), H, W]")
        }
        let s = try convolutions[0].outputShape([inChannels / convolutions.count, input[1], input[2]])
        return [outChannels, s[1], s[2]]
    }

    /// Channels [lo, lo + count) of a batch [N, C, H, W] as a tensor of their own, or written
    /// back into one: the box copy between the two layouts.
    static func channels(_ x: Tensor, _ lo: Int, _ count: Int) throws -> Tensor {
        let (n, c, plane) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let y = try Tensor(shape: [n, count, x.shape[2], x.shape[3]], dtype: x.dtype, on: x.device)
        try y.copyBox((n, 1, count * plane), from: x, sourceOffset: lo * plane, sourceStrides: (c * plane, 0), offset: 0, strides: (count * plane, 0))
        return y
    }

    static func place(_ part: Tensor, into y: Tensor, at lo: Int) throws {
        let (n, c, plane) = (y.shape[0], y.shape[1], y.shape[2] * y.shape[3]), count = part.shape[1]
        try y.copyBox((n, 1, count * plane), from: part, sourceOffset: 0, sourceStrides: (count * plane, 0), offset: lo * plane, strides: (c * plane, 0))
    }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        let s = try outputShape(x.sampleShape)
        let y = try Tensor(shape: [x.batchSize] + s, dtype: x.dtype, on: x.device)         // [N, OC, OH, OW], every element written
        if runsDepthwise(on: x.device), let cpu = x.device as? CPUDevice {
            let g = geometry
            try cpu.depthwiseConv2d(n: x.batchSize, c: inChannels, h: x.shape[2], w: x.shape[3], kh: g.kh, kw: g.kw, strideH: g.sh, strideW: g.sw,
                                    padH: g.ph, padW: g.pw, x: x.storage, weight: weight.storage, bias: bias?.storage, y: y.storage)
            return (y, Saved(input: x, output: y))
        }
        let cin = inChannels / convolutions.count
        for (g, conv) in convolutions.enumerated() {
            try Self.place(try conv.forward(try Self.channels(x, g * cin, cin)).y, into: y, at: g * conv.outChannels)
        }
        return (y, Saved(input: x, output: y))
    }

    /// A convolution's input gradient reads only the shape of what its forward saw (dx is the
    /// transposed product of dy, whatever x held), so each group gets a view of that shape.
    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        let x = saved.input, groups = convolutions.count, n = x.batchSize
        let dx = try Tensor(shape: x.shape, dtype: x.dtype, on: x.device)                  // [N, C, H, W], every element written
        if runsDepthwise(on: dy.device), let cpu = dy.device as? CPUDevice {
            let g = geometry
            try cpu.depthwiseConv2dBackward(n: n, c: inChannels, h: x.shape[2], w: x.shape[3], kh: g.kh, kw: g.kw, strideH: g.sh, strideW: g.sw,
                                            padH: g.ph, padW: g.pw, dy: dy.storage, weight: weight.storage, dx: dx.storage)
            return dx
        }
        let cin = inChannels / groups
        let shapeOnly = try x.reshaped([groups * n, cin, x.shape[2], x.shape[3]]).rows(0..<n)
        for (g, conv) in convolutions.enumerated() {
            let dyg = try Self.channels(dy, g * conv.outChannels, conv.outChannels)
            let dg = try conv.backward(dyg, Saved(input: shapeOnly, output: dyg))
            try Self.place(dg, into: dx, at: g * cin)
        }
        return dx
    }
}
