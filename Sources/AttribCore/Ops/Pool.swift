// 2-D max and average pooling over NCHW tensors (no padding; the stride
// defaults to the kernel, as in PyTorch), and their backward in gather form.
// OH = (H − kh)/strideH + 1 (floor): trailing rows/columns no window reaches
// are ignored and get a zero gradient.
//
// argmax convention: an Int32 tensor of the output's shape holding iy·W + ix,
// the position of the window's maximum in its own H×W input plane (PyTorch's
// max_pool2d(return_indices=True)). The first maximum in row order wins ties;
// a NaN in the window makes the output NaN (argmax: the last NaN).

extension Tensor {
    /// Max pooling of this [N, C, H, W] batch: (output [N, C, OH, OW], argmax Int32 [N, C, OH, OW]).
    public func maxPool2d(kernel: Size2D, stride: Size2D? = nil) throws -> (output: Tensor, argmax: Tensor) {
        let op = "maxPool2d"
        try checkCompatible(op, [])
        let g = try window2D(op, kernel: kernel, stride: stride ?? kernel, padding: 0)
        let out = try like([g.n, g.c, g.outH, g.outW])
        let argmax = try Tensor(shape: out.shape, dtype: .int32, on: device)
        try device.maxPool2d(n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw, strideH: g.strideH, strideW: g.strideW,
                             x: storage, y: out.storage, argmax: argmax.storage)
        return (out, argmax)
    }

    /// The input gradient of max pooling, self being the upstream gradient [N, C, OH, OW]
    /// and `argmax` the forward's: [N, C, H, W] = inputShape, each pixel summing the
    /// gradients of the windows whose maximum it was.
    public func maxPool2dBackward(argmax: Tensor, inputShape: [Int], kernel: Size2D, stride: Size2D? = nil) throws -> Tensor {
        let op = "maxPool2dBackward"
        try checkCompatible(op, [])
        let g = try poolBackwardGeometry(op, inputShape: inputShape, kernel: kernel, stride: stride)
        guard argmax.device === device else {
            throw AttribError.deviceMismatch(op: op, detail: "argmax is on \(argmax.device.info.id), the upstream gradient on \(device.info.id)")
        }
        guard argmax.dtype == .int32 else {
            throw AttribError.invalidArgument(op: op, detail: "argmax is \(argmax.dtype), expected int32 (the forward's argmax)")
        }
        guard argmax.shape == shape else {
            throw AttribError.shapeMismatch(op: op, detail: "argmax has shape \(argmax.shape), expected \(shape) (the upstream gradient's)")
        }
        let dx = try like(inputShape)
        try device.maxPool2dBackward(n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw, strideH: g.strideH, strideW: g.strideW,
                                     dy: storage, argmax: argmax.storage, dx: dx.storage)
        return dx
    }

    /// Average pooling of this [N, C, H, W] batch (divisor kh·kw): [N, C, OH, OW].
    public func avgPool2d(kernel: Size2D, stride: Size2D? = nil) throws -> Tensor {
        let op = "avgPool2d"
        try checkCompatible(op, [])
        let g = try window2D(op, kernel: kernel, stride: stride ?? kernel, padding: 0)
        let out = try like([g.n, g.c, g.outH, g.outW])
        try device.avgPool2d(n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw, strideH: g.strideH, strideW: g.strideW,
                             x: storage, y: out.storage)
        return out
    }

    /// The input gradient of average pooling, self being the upstream gradient
    /// [N, C, OH, OW]: [N, C, H, W] = inputShape.
    public func avgPool2dBackward(inputShape: [Int], kernel: Size2D, stride: Size2D? = nil) throws -> Tensor {
        let op = "avgPool2dBackward"
        try checkCompatible(op, [])
        let g = try poolBackwardGeometry(op, inputShape: inputShape, kernel: kernel, stride: stride)
        let dx = try like(inputShape)
        try device.avgPool2dBackward(n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw, strideH: g.strideH, strideW: g.strideW,
                                     dy: storage, dx: dx.storage)
        return dx
    }

    /// avgPool2d(f(self)) with stride = kernel, and f′(self), without f(self) ever being
    /// written, where the device fuses the two (CPU Float32 GELU); nil where it does not.
    /// Bitwise `activatedWithDerivative` then `avgPool2d`.
    public func activatedAndAvgPooled(_ kind: Activation, kernel: Size2D) throws -> (pooled: Tensor, derivative: Tensor)? {
        let op = "activatedAndAvgPooled"
        try checkCompatible(op, [])
        let g = try window2D(op, kernel: kernel, stride: kernel, padding: 0)
        guard device.fusesActivationAvgPool(kind, dtype: dtype, planeSize: g.h * g.w) else { return nil }
        let pooled = try like([g.n, g.c, g.outH, g.outW]), d = try like(shape)
        guard try device.activationAvgPoolWithDerivative(kind, n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw,
                                                         x: storage, pooled: pooled.storage, derivative: d.storage) else { return nil }
        return (pooled, d)
    }

    /// avgPool2dBackward(inputShape:kernel:) (stride = kernel) times `m` elementwise, in one
    /// pass where the device fuses them (CPU Float32); nil where it does not. Bitwise the two
    /// ops apart. `m` has the input's shape.
    public func avgPool2dBackward(inputShape: [Int], kernel: Size2D, times m: Tensor) throws -> Tensor? {
        let op = "avgPool2dBackward(times:)"
        try checkCompatible(op, [("multiplier", m)])
        let g = try poolBackwardGeometry(op, inputShape: inputShape, kernel: kernel, stride: kernel)
        guard m.shape == inputShape else {
            throw AttribError.shapeMismatch(op: op, detail: "multiplier has shape \(m.shape), the pooling input \(inputShape)")
        }
        let dx = try like(inputShape)
        guard try device.avgPool2dBackwardTimes(n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw,
                                                dy: storage, m: m.storage, dx: dx.storage) else { return nil }
        return dx
    }

    /// The geometry of a pooling backward, checking that self (the upstream gradient)
    /// has the output shape that `inputShape` pools to.
    func poolBackwardGeometry(_ op: String, inputShape: [Int], kernel: Size2D, stride: Size2D?) throws -> Window2D {
        guard inputShape.count == 4 else {
            throw AttribError.shapeMismatch(op: op, detail: "input shape \(inputShape) is not 4-D [N, C, H, W]")
        }
        let g = try Window2D(imageShape: inputShape, op: op, kernel: kernel, stride: stride ?? kernel, padding: 0)
        let expected = [g.n, g.c, g.outH, g.outW]
        guard shape == expected else {
            throw AttribError.shapeMismatch(op: op, detail: "upstream gradient has shape \(shape), expected \(expected) for input \(inputShape), kernel \(kernel), stride \(stride ?? kernel)")
        }
        return g
    }
}
