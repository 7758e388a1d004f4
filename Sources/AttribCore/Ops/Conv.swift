// Convolution building blocks on NCHW tensors: im2col / col2im (its adjoint),
// the [a, b, c] → [b, a, c] transpose, the per-row bias, and conv2d composed
// from them as ONE GEMM over the whole batch:
//   cols = x.im2col(...)                         [C·kh·kw, N·OH·OW]
//   y'   = W[OC, C·kh·kw] · cols (+ row bias)     [OC, N·OH·OW]
//   y    = y'.reshaped([OC, N, OH·OW]).transposed01() → [N, OC, OH·OW] = NCHW
// The backward is the same pieces: dy' = dy.transposed01() (as [OC, N, OH·OW]),
// dW = dy'·colsᵀ, db = dy'.reduceRows(.sum), dx = (Wᵀ·dy').col2im(...).
// Also here: Size2D and Window2D, the checked geometry every window op
// (convolution and pooling, both backends) uses.

/// A 2-D size, (height, width): a kernel, stride or padding. An integer
/// literal is square (`3` is [3, 3]); an array literal gives both (`[2, 3]`).
public struct Size2D: Equatable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    public let h: Int
    public let w: Int
    /// How many values the literal gave (2 when valid); checked by the ops.
    let arity: Int

    public init(_ h: Int, _ w: Int) { self.init(h, w, arity: 2) }
    public init(integerLiteral value: Int) { self.init(value, value) }
    public init(arrayLiteral values: Int...) {
        self.init(values.first ?? 0, values.last ?? 0, arity: values.count)
    }
    private init(_ h: Int, _ w: Int, arity: Int) { self.h = h; self.w = w; self.arity = arity }

    public var description: String { arity == 2 ? "[\(h), \(w)]" : "a list of \(arity) values" }

    func check(_ op: String, _ name: String) throws {
        guard arity == 2 else {
            throw AttribError.invalidArgument(op: op, detail: "\(name) must be one integer or two [h, w], got \(arity) values")
        }
    }
}

/// The geometry of a 2-D window op (im2col/col2im, pooling) over an NCHW
/// batch, checked on construction: sizes ≥ 1, padding ≥ 0, a kernel that fits
/// the padded image, and element counts that do not overflow.
/// OH = (H + 2·padH − kh)/strideH + 1 (floor), OW likewise.
public struct Window2D: Equatable, Sendable {
    public let n: Int, c: Int, h: Int, w: Int
    public let kh: Int, kw: Int, strideH: Int, strideW: Int, padH: Int, padW: Int
    public let outH: Int, outW: Int

    public init(op: String, n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                strideH: Int, strideW: Int, padH: Int = 0, padW: Int = 0) throws {
        for (name, v) in [("N", n), ("C", c), ("H", h), ("W", w)] where v < 1 {
            throw AttribError.invalidArgument(op: op, detail: "input size \(name) = \(v); every dimension of [N, C, H, W] must be at least 1")
        }
        guard kh >= 1, kw >= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "kernel [\(kh), \(kw)]: both sides must be at least 1")
        }
        guard strideH >= 1, strideW >= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "stride [\(strideH), \(strideW)]: both must be at least 1")
        }
        guard padH >= 0, padW >= 0 else {
            throw AttribError.invalidArgument(op: op, detail: "padding [\(padH), \(padW)] is negative")
        }
        let ph = h + 2 * padH, pw = w + 2 * padW
        guard kh <= ph, kw <= pw else {
            throw AttribError.invalidArgument(op: op, detail: "kernel [\(kh), \(kw)] is larger than the padded image [\(ph), \(pw)] (image [\(h), \(w)], padding [\(padH), \(padW)])")
        }
        self.n = n; self.c = c; self.h = h; self.w = w; self.kh = kh; self.kw = kw
        self.strideH = strideH; self.strideW = strideW; self.padH = padH; self.padW = padW
        outH = (ph - kh) / strideH + 1
        outW = (pw - kw) / strideW + 1
        for factors in [[n, c, h, w], [c, kh, kw, n, outH, outW]] {
            var total = 1
            for d in factors {
                let (p, overflow) = total.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw AttribError.tooLarge(op: op, detail: "input [\(n), \(c), \(h), \(w)] with kernel [\(kh), \(kw)] overflows the element count")
                }
                total = p
            }
        }
    }

    /// N·C·H·W.
    public var inputCount: Int { n * c * h * w }
    /// N·C·OH·OW (pooling outputs).
    public var outputCount: Int { n * c * outH * outW }
    /// Rows of the im2col matrix: C·kh·kw.
    public var colsRows: Int { c * kh * kw }
    /// Columns of the im2col matrix: N·OH·OW.
    public var colsColumns: Int { n * outH * outW }
    public var colsCount: Int { colsRows * colsColumns }
}

extension AttribError {
    /// Throws invalidArgument unless every named size is at least 1 (for the raw ops).
    public static func requirePositive(_ op: String, _ sizes: KeyValuePairs<String, Int>) throws {
        for (name, v) in sizes where v < 1 {
            throw AttribError.invalidArgument(op: op, detail: "\(name) = \(v); must be at least 1")
        }
    }
}

extension Tensor {
    /// The window geometry of this tensor as an NCHW batch.
    func window2D(_ op: String, kernel: Size2D, stride: Size2D, padding: Size2D, name: String = "input") throws -> Window2D {
        guard rank == 4 else {
            throw AttribError.shapeMismatch(op: op, detail: "\(name) has shape \(shape), expected 4-D [N, C, H, W]")
        }
        return try Window2D(imageShape: shape, op: op, kernel: kernel, stride: stride, padding: padding)
    }

    /// conv2d of this [N, C, H, W] batch as one implicit GEMM, where the device offers it
    /// (nil where not): [N, OC, OH, OW], no im2col matrix in memory.
    public func conv2dImplicit(weight: Tensor, bias: Tensor?, stride: Size2D, padding: Size2D) throws -> Tensor? {
        guard device.offersImplicitConvolution(dtype: dtype) else { return nil }
        let (g, y) = try implicitConvolution("conv2d", weight: weight, bias: bias, stride: stride, padding: padding)
        guard try device.conv2dImplicitGEMM(g, oc: weight.shape[0], x: storage, weight: weight.storage, bias: bias?.storage,
                                            y: y.storage) else { return nil }
        return y
    }

    /// (f(conv2d + bias), f′ there) of this [N, C, H, W] batch, both [N, OC, OH, OW], from one
    /// implicit GEMM with the activation in its store, where the device fuses it (nil where not).
    public func conv2dImplicitActivated(weight: Tensor, bias: Tensor?, stride: Size2D, padding: Size2D,
                                        activation: Activation) throws -> (y: Tensor, derivative: Tensor)? {
        guard device.offersImplicitConvolution(dtype: dtype), device.fusesGEMMEpilogues(dtype: dtype) else { return nil }
        let (g, y) = try implicitConvolution("conv2d + \(activation)", weight: weight, bias: bias, stride: stride, padding: padding)
        let d = try Tensor(shape: y.shape, dtype: dtype, on: device)                                   // every element written
        guard try device.conv2dImplicitGEMM(g, oc: weight.shape[0], x: storage, weight: weight.storage, bias: bias?.storage,
                                            activation: activation, y: y.storage, derivative: d.storage) else { return nil }
        return (y, d)
    }

    /// The checked geometry of an implicit-GEMM convolution of this batch and its output
    /// [N, OC, OH, OW] (allocated, every element written by the kernel).
    private func implicitConvolution(_ op: String, weight: Tensor, bias: Tensor?, stride: Size2D,
                                     padding: Size2D) throws -> (Window2D, Tensor) {
        try checkCompatible(op, [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []))
        guard weight.rank == 4, rank == 4, weight.shape[1] == shape[1], bias.map({ $0.shape == [weight.shape[0]] }) ?? true else {
            throw AttribError.shapeMismatch(op: op, detail: "input \(shape), weight \(weight.shape), bias \(bias?.shape ?? []): expected [N, C, H, W], [OC, C, kh, kw], [OC]")
        }
        let g = try window2D(op, kernel: Size2D(weight.shape[2], weight.shape[3]), stride: stride, padding: padding)
        return (g, try Tensor(shape: [g.n, weight.shape[0], g.outH, g.outW], dtype: dtype, on: device))
    }

    /// The input gradient [N, C, H, W] (imageShape) of conv2d for this dy [N, OC, OH, OW],
    /// as one implicit GEMM where the device offers it (nil where not); with `multiplier`
    /// (dy's shape), for dy ⊙ multiplier, never written.
    public func conv2dInputGradientImplicit(weight: Tensor, imageShape: [Int], stride: Size2D, padding: Size2D,
                                            multiplier: Tensor? = nil) throws -> Tensor? {
        guard device.offersImplicitConvolution(dtype: dtype) else { return nil }
        let op = "conv2d backward"
        try checkCompatible(op, [("weight", weight)])
        guard imageShape.count == 4, weight.rank == 4, weight.shape[1] == imageShape[1] else {
            throw AttribError.shapeMismatch(op: op, detail: "image \(imageShape), weight \(weight.shape): expected [N, C, H, W] and [OC, C, kh, kw]")
        }
        let g = try Window2D(imageShape: imageShape, op: op, kernel: Size2D(weight.shape[2], weight.shape[3]), stride: stride, padding: padding)
        guard shape == [g.n, weight.shape[0], g.outH, g.outW] else {
            throw AttribError.shapeMismatch(op: op, detail: "dy has shape \(shape), expected [\(g.n), \(weight.shape[0]), \(g.outH), \(g.outW)]")
        }
        let dx = try Tensor(shape: imageShape, dtype: dtype, on: device)   // [N, C, H, W]
        if let multiplier {
            try checkCompatible(op, [("multiplier", multiplier)])
            try checkSameShape(op, "multiplier", multiplier)
            guard try device.conv2dInputGradientImplicitGEMM(g, oc: weight.shape[0], dy: storage, multiplier: multiplier.storage,
                                                             weight: weight.storage, dx: dx.storage) else { return nil }
            return dx
        }
        guard try device.conv2dInputGradientImplicitGEMM(g, oc: weight.shape[0], dy: storage, weight: weight.storage,
                                                         dx: dx.storage) else { return nil }
        return dx
    }

    /// im2col of this [N, C, H, W] batch: [C·kh·kw, N·OH·OW], row ci·kh·kw + ki·kw + kj,
    /// column ni·OH·OW + oy·OW + ox; zero where the window hangs over the padding.
    public func im2col(kernel: Size2D, stride: Size2D = 1, padding: Size2D = 0) throws -> Tensor {
        let op = "im2col"
        try checkCompatible(op, [])
        let g = try window2D(op, kernel: kernel, stride: stride, padding: padding)
        let out = try like([g.colsRows, g.colsColumns])
        try device.im2col(n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw, strideH: g.strideH, strideW: g.strideW,
                          padH: g.padH, padW: g.padW, x: storage, cols: out.storage)
        return out
    }

    /// The adjoint of im2col, self being a [C·kh·kw, N·OH·OW] matrix: an image of
    /// `imageShape` [N, C, H, W] whose every pixel sums the entries im2col would have
    /// read from it (the input gradient of a convolution from the gradient of its columns).
    public func col2im(imageShape: [Int], kernel: Size2D, stride: Size2D = 1, padding: Size2D = 0) throws -> Tensor {
        let op = "col2im"
        try checkCompatible(op, [])
        guard imageShape.count == 4 else {
            throw AttribError.shapeMismatch(op: op, detail: "image shape \(imageShape) is not 4-D [N, C, H, W]")
        }
        let g = try Window2D(imageShape: imageShape, op: op, kernel: kernel, stride: stride, padding: padding)
        guard shape == [g.colsRows, g.colsColumns] else {
            throw AttribError.shapeMismatch(op: op, detail: "columns have shape \(shape), expected [\(g.colsRows), \(g.colsColumns)] for image \(imageShape), kernel \(kernel), stride \(stride), padding \(padding)")
        }
        let out = try like(imageShape)
        try device.col2im(n: g.n, c: g.c, h: g.h, w: g.w, kh: g.kh, kw: g.kw, strideH: g.strideH, strideW: g.strideW,
                          padH: g.padH, padW: g.padW, cols: storage, x: out.storage)
        return out
    }

    /// Swaps the first two dimensions: [a, b, rest…] → [b, a, rest…] (rank ≥ 2; the
    /// trailing dimensions move together). [OC, N, OH·OW] ↔ [N, OC, OH·OW].
    public func transposed01() throws -> Tensor {
        let op = "transpose01"
        try checkCompatible(op, [])
        guard rank >= 2 else {
            throw AttribError.shapeMismatch(op: op, detail: "tensor has shape \(shape); swapping the first two dimensions needs rank ≥ 2")
        }
        let a = shape[0], b = shape[1], c = count / (a * b)
        let out = try like([b, a] + shape.dropFirst(2))
        try device.transpose01(a: a, b: b, c: c, x: storage, y: out.storage)
        return out
    }

    /// self[r, …] += bias[r]: one bias per row (first dimension), e.g. the conv bias
    /// of a [OC, N·OH·OW] product. Its gradient is `reduceRows(.sum)` of the upstream gradient.
    public func addRowBias(_ bias: Tensor) throws {
        let op = "rowBiasAdd"
        try checkCompatible(op, [("bias", bias)])
        guard bias.rank == 1, bias.count == shape[0] else {
            throw AttribError.shapeMismatch(op: op, detail: "bias has shape \(bias.shape), expected [\(shape[0])] (one per row of a tensor of shape \(shape))")
        }
        try device.rowBiasAdd(rows: shape[0], cols: count / shape[0], bias: bias.storage, y: storage)
    }

    /// A 2-D convolution (cross-correlation, as PyTorch's conv2d) of this [N, C, H, W]
    /// batch with weight [OC, C, kh, kw] and optional bias [OC]: [N, OC, OH, OW],
    /// computed as im2col, one GEMM, the row bias, and transpose01.
    public func conv2d(weight: Tensor, bias: Tensor? = nil, stride: Size2D = 1, padding: Size2D = 0) throws -> Tensor {
        let op = "conv2d"
        try checkCompatible(op, [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []))
        guard rank == 4 else { throw AttribError.shapeMismatch(op: op, detail: "input has shape \(shape), expected 4-D [N, C, H, W]") }
        guard weight.rank == 4, weight.shape[1] == shape[1] else {
            throw AttribError.shapeMismatch(op: op, detail: "weight has shape \(weight.shape), expected [OC, \(shape[1]), kh, kw] for input \(shape)")
        }
        let oc = weight.shape[0]
        if let bias, bias.shape != [oc] {
            throw AttribError.shapeMismatch(op: op, detail: "bias has shape \(bias.shape), expected [\(oc)]")
        }
        let kernel = Size2D(weight.shape[2], weight.shape[3])
        let g = try window2D(op, kernel: kernel, stride: stride, padding: padding)
        let cols = try im2col(kernel: kernel, stride: stride, padding: padding)
        let y = try weight.reshaped([oc, g.colsRows]).matmul(cols)
        if let bias { try y.addRowBias(bias) }
        return try y.reshaped([oc, g.n, g.outH * g.outW]).transposed01().reshaped([g.n, oc, g.outH, g.outW])
    }
}

extension Window2D {
    /// The geometry of an [N, C, H, W] image shape with Size2D arguments, checked.
    init(imageShape s: [Int], op: String, kernel: Size2D, stride: Size2D, padding: Size2D) throws {
        try kernel.check(op, "kernel"); try stride.check(op, "stride"); try padding.check(op, "padding")
        try self.init(op: op, n: s[0], c: s[1], h: s[2], w: s[3], kh: kernel.h, kw: kernel.w,
                      strideH: stride.h, strideW: stride.w, padH: padding.h, padW: padding.w)
    }
}
