import AttribCore

/// 2-D convolution, NCHW, dilation 1, groups 1. Weight [OC, C, kh, kw], bias [OC].
/// Input [N, C, H, W] → output [N, OC, OH, OW], OH = (H + 2·padH − kh)/strideH + 1.
///
/// Forward: im2col of the whole batch [C·kh·kw, N·OH·OW], one GEMM with the
/// weight viewed as [OC, C·kh·kw], the bias per row, and a transpose to NCHW.
/// One large product instead of N small ones keeps a GPU busy.
/// Backward: transpose back, dcols = Wᵀ·dY, col2im (its adjoint). Nothing is kept
/// from the forward pass but the input's shape.
/// Small images instead run as one dense product each way (Conv2dUnrolled),
/// unless `unrollSmallImages` is turned off.
public final class Conv2d: Layer, @unchecked Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: [Int], padding: [Int]
    public let outChannels: Int, inChannels: Int, kernel: [Int]
    /// The weight as the [OC, C·kh·kw] matrix of the GEMM (a view), and its
    /// transpose [C·kh·kw, OC], stored once so the backward product is untransposed too.
    let weightMatrix: Tensor
    let weightMatrixTransposed: Tensor
    /// Run small images through their dense map (Conv2dUnrolled). Off: always im2col.
    public var unrollSmallImages = true
    /// On the CPU backend, run that map by output row where its zeros make that cheaper
    /// (Conv2dUnrolled.Band). Off: the whole dense product. Read when a map is built.
    public var bandSmallImages = true
    /// Where images run by bands and the device offers it (CPU Float32 with AVX2 and FMA),
    /// run a 3×3, stride-1, padding-1 convolution directly instead (Conv2d+Direct.swift):
    /// the convolution's multiply-adds alone, not the bands' zeros. Off: the bands.
    public var directSmallImages = true
    /// The weight flipped in both spatial axes with its channel axes swapped, [C, OC, 3, 3]:
    /// the backward of the direct convolution is the direct convolution of dy with it.
    /// Built for 3×3, stride-1, padding-1 layers on the CPU backend; else nil.
    let directBackwardWeight: Tensor?
    private let unrolled = Conv2dUnrolledCache()
    /// The weight in the layouts a device's channels-last kernels read (oneDNN's), made on
    /// first use (ChannelsLastConvGraphOp).
    let preparedWeights = PreparedWeights()

    public init(weight: Tensor, bias: Tensor?, stride: [Int] = [1, 1], padding: [Int] = [0, 0]) throws {
        guard weight.rank == 4 else {
            throw AttribError.shapeMismatch(op: "Conv2d", detail: "weight has shape \(weight.shape), expected [out, in, kh, kw]")
        }
        guard stride.count == 2, padding.count == 2, stride.allSatisfy({ $0 >= 1 }), padding.allSatisfy({ $0 >= 0 }) else {
            throw AttribError.invalidArgument(op: "Conv2d", detail: "stride \(stride) and padding \(padding) must be pairs, stride ≥ 1, padding ≥ 0")
        }
        if let b = bias, b.shape != [weight.shape[0]] {
            throw AttribError.shapeMismatch(op: "Conv2d", detail: "bias has shape \(b.shape), expected [\(weight.shape[0])]")
        }
        self.weight = weight; self.bias = bias; self.stride = stride; self.padding = padding
        outChannels = weight.shape[0]; inChannels = weight.shape[1]; kernel = Array(weight.shape[2...])
        weightMatrix = try weight.reshaped([outChannels, inChannels * kernel[0] * kernel[1]])
        weightMatrixTransposed = try weightMatrix.transposed01()
        directBackwardWeight = try Self.directBackwardWeight(weight, stride: stride, padding: padding)
    }

    public var description: String {
        "Conv2d(\(inChannels)→\(outChannels), \(kernel[0])×\(kernel[1]), stride \(stride), padding \(padding))"
    }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count == 3, input[0] == inChannels else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(input), expected [\(inChannels), H, W]")
        }
        // Sizes come from files: every step checked, so a padding of 2^63 − 1 is an error, not a trap.
        guard let ph = SizeLimits.times(2, padding[0]).flatMap({ SizeLimits.sum(input[1], $0) }),
              let pw = SizeLimits.times(2, padding[1]).flatMap({ SizeLimits.sum(input[2], $0) }) else {
            throw AttribError.tooLarge(op: description, detail: "input \(input) with padding \(padding) overflows the padded size")
        }
        guard ph >= kernel[0], pw >= kernel[1] else {
            throw AttribError.shapeMismatch(op: description, detail: "kernel \(kernel) is larger than the padded input \(input)")
        }
        let out = [outChannels, (ph - kernel[0]) / stride[0] + 1, (pw - kernel[1]) / stride[1] + 1]
        _ = try SizeLimits.checkedProduct(out, "output per sample", op: description)
        return out
    }

    var k2: Size2D { Size2D(kernel[0], kernel[1]) }
    var s2: Size2D { Size2D(stride[0], stride[1]) }
    var p2: Size2D { Size2D(padding[0], padding[1]) }

    /// Whether an input of this per-sample shape [C, H, W] runs through the dense map.
    public func unrolls(inputShape: [Int]) -> Bool {
        guard let out = try? outputShape(inputShape) else { return false }
        return unrolls(input: inputShape, output: out)
    }

    func unrolls(input: [Int], output: [Int]) -> Bool {
        unrollSmallImages && Conv2dUnrolled.worthwhile(input: input, output: output, kernel: kernel)
    }

    /// How many output-row bands the dense map of this input shape runs as (0: the whole
    /// map, or no map).
    public func bandCount(inputShape: [Int]) throws -> Int {
        try bands(inputShape: inputShape)?.bands.count ?? 0
    }

    /// The dense map for this input shape when it is used, else nil.
    func unrolledMap(input: [Int], output: [Int]) throws -> Conv2dUnrolled? {
        guard unrolls(input: input, output: output) else { return nil }
        return try unrolled.map(for: self, input: input, output: output)
    }

    /// The bands this input shape [C, H, W] runs through, when it runs by bands: then the
    /// layer also runs rows-outer (Sequential.rowsOuterSpan).
    func bands(inputShape: [Int]) throws -> (map: Conv2dUnrolled, bands: [Conv2dUnrolled.Band], output: [Int])? {
        guard let out = try? outputShape(inputShape), let u = try unrolledMap(input: inputShape, output: out),
              case .bands(let bands) = u.products else { return nil }
        return (u, bands, out)
    }

    /// y [N, OH, OC, OW] from x [N, H, C, W], for an input shape [C, H, W] that runs by
    /// bands: the forward pass with images rows outermost, no transposes.
    public func forwardRowsOuter(_ x: Tensor, inputShape: [Int]) throws -> Tensor {
        guard let (u, bands, out) = try bands(inputShape: inputShape), x.rank == 4,
              x.sampleShape == [inputShape[1], inputShape[0], inputShape[2]] else {
            throw AttribError.invalidArgument(op: description, detail: "rows-outer forward of \(x.shape) for input shape \(inputShape), which does not run by bands")
        }
        if let y = try forwardDirect(x, inputShape: inputShape, runsByBands: true) { return y }
        return try u.forwardRowsOuter(x, bands, output: out)
    }

    /// dx [N, H, C, W] from dy [N, OH, OC, OW]: the backward of `forwardRowsOuter`.
    public func backwardRowsOuter(_ dy: Tensor, inputShape: [Int]) throws -> Tensor {
        guard let (u, bands, _) = try bands(inputShape: inputShape) else {
            throw AttribError.invalidArgument(op: description, detail: "rows-outer backward for input shape \(inputShape), which does not run by bands")
        }
        if let dx = try backwardDirect(dy, inputShape: inputShape, runsByBands: true) { return dx }
        return try u.backwardRowsOuter(dy, bands, input: inputShape)
    }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        let out = try outputShape(x.sampleShape), n = x.batchSize
        if let u = try unrolledMap(input: x.sampleShape, output: out) {
            let y: Tensor
            switch u.products {
            case .bands:
                // The rows-outer forward between transposes: bitwise what a rows-outer span gets.
                y = try forwardRowsOuter(x.transposed12(), inputShape: x.sampleShape).transposed12()
            case .whole(let forward, _):
                let flat = try x.reshaped([n, x.count / n]).matmul(forward)          // [N, OC·OH·OW]
                if let b = u.bias { try flat.addBias(b) }
                y = try flat.reshaped([n] + out)
            }
            return (y, Saved(input: x, output: y))
        }
        if let y = try forwardPointwise(x) { return (y, Saved(input: x, output: y)) }            // [N, OC, H, W]
        // GPUs: one implicit GEMM, no im2col matrix (its memory and bandwidth).
        if let y = try x.conv2dImplicit(weight: weight, bias: bias, stride: s2, padding: p2) {   // [N, OC, OH, OW]
            return (y, Saved(input: x, output: y))
        }
        let cols = try x.im2col(kernel: k2, stride: s2, padding: p2)          // [C·kh·kw, N·OH·OW]
        let yt = try weightMatrix.matmul(cols)                                  // [OC, N·OH·OW]
        if let bias { try yt.addRowBias(bias) }
        let y = try yt.reshaped([outChannels, n, out[1] * out[2]]).transposed01() // [N, OC, OH·OW]
        let yShaped = try y.reshaped([n] + out)
        return (yShaped, Saved(input: x, output: yShaped))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        let n = dy.batchSize, ohw = dy.count / (n * outChannels)
        if let u = try unrolledMap(input: saved.input.sampleShape, output: dy.sampleShape) {
            switch u.products {
            case .bands:
                return try backwardRowsOuter(dy.transposed12(), inputShape: saved.input.sampleShape).transposed12()
            case .whole(_, let backward):
                return try dy.reshaped([n, dy.count / n]).matmul(backward).reshaped(saved.input.shape)  // [N, C·H·W]
            }
        }
        if let dx = try backwardPointwise(dy, inputShape: saved.input.shape) { return dx }        // [N, C, H, W]
        if dy.device.offersImplicitConvolution(dtype: dy.dtype),
           let dx = try dy.reshaped([n] + outputShape(saved.input.sampleShape))
               .conv2dInputGradientImplicit(weight: weight, imageShape: saved.input.shape, stride: s2, padding: p2) {
            return dx                                                           // [N, C, H, W]
        }
        let dyt = try dy.reshaped([n, outChannels, ohw]).transposed01()         // [OC, N, OH·OW]
        let dcols = try weightMatrixTransposed.matmul(dyt.reshaped([outChannels, n * ohw]))       // [C·kh·kw, N·OH·OW]
        return try dcols.col2im(imageShape: saved.input.shape, kernel: k2, stride: s2, padding: p2)
    }
}

/// Max or average pooling, padding 0 (PyTorch's defaults otherwise: stride =
/// kernel, floor). Max pooling keeps its argmax for the backward pass; ties go
/// to the first maximum, as in PyTorch.
public final class Pool2d: Layer, @unchecked Sendable {
    public let isMax: Bool
    public let kernel: [Int], stride: [Int]

    public init(max: Bool, kernel: [Int], stride: [Int]) throws {
        guard kernel.count == 2, stride.count == 2, kernel.allSatisfy({ $0 >= 1 }), stride.allSatisfy({ $0 >= 1 }) else {
            throw AttribError.invalidArgument(op: max ? "MaxPool2d" : "AvgPool2d", detail: "kernel \(kernel) and stride \(stride) must be pairs ≥ 1")
        }
        isMax = max; self.kernel = kernel; self.stride = stride
    }

    public var description: String { "\(isMax ? "MaxPool2d" : "AvgPool2d")(\(kernel[0])×\(kernel[1]), stride \(stride))" }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count == 3, input[1] >= kernel[0], input[2] >= kernel[1] else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(input), expected [C, H ≥ \(kernel[0]), W ≥ \(kernel[1])]")
        }
        return [input[0], (input[1] - kernel[0]) / stride[0] + 1, (input[2] - kernel[1]) / stride[1] + 1]
    }

    var k2: Size2D { Size2D(kernel[0], kernel[1]) }
    var s2: Size2D { Size2D(stride[0], stride[1]) }
    /// Average pooling whose windows tile (stride = kernel): the kind that fuses with the
    /// activation before it (Sequential.trace, backward).
    var isTilingAverage: Bool { !isMax && stride == kernel }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        _ = try outputShape(x.sampleShape)
        if isMax {
            let (y, argmax) = try x.maxPool2d(kernel: k2, stride: s2)
            return (y, Saved(input: x, output: y, extra: [argmax]))
        }
        let y = try x.avgPool2d(kernel: k2, stride: s2)
        return (y, Saved(input: x, output: y))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        isMax ? try dy.maxPool2dBackward(argmax: saved.extra[0], inputShape: saved.input.shape, kernel: k2, stride: s2)
              : try dy.avgPool2dBackward(inputShape: saved.input.shape, kernel: k2, stride: s2)
    }
}

/// Layer normalisation over the trailing `normalizedShape` dimensions
/// (PyTorch's semantics: biased variance, eps inside the square root).
/// Keeps the mean and 1/σ of each row for the backward pass.
public final class LayerNormLayer: Layer, @unchecked Sendable {
    public let normalizedShape: [Int]
    public let eps: Double
    public let gamma: Tensor, beta: Tensor

    /// Without weight and bias (elementwise_affine = false) γ = 1, β = 0.
    public init(normalizedShape: [Int], eps: Double, weight: Tensor?, bias: Tensor?, device: any Device, dtype: DType) throws {
        guard !normalizedShape.isEmpty else {
            throw AttribError.invalidArgument(op: "LayerNorm", detail: "normalized_shape is empty")
        }
        let n = try SizeLimits.checkedProduct(normalizedShape, "normalized_shape", op: "LayerNorm")
        guard eps.isFinite, eps >= 0, eps <= 1 else {
            throw AttribError.invalidArgument(op: "LayerNorm", detail: "eps = \(eps); must be finite, ≥ 0 and at most 1 (PyTorch's default is 1e-5)")
        }
        self.normalizedShape = normalizedShape; self.eps = eps
        gamma = try (weight ?? Tensor([Double](repeating: 1, count: n), shape: normalizedShape, dtype: dtype, on: device)).reshaped([n])
        beta = try (bias ?? Tensor.zeros([n], dtype: dtype, on: device)).reshaped([n])
    }

    public var description: String { "LayerNorm(\(normalizedShape))" }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count >= normalizedShape.count, Array(input.suffix(normalizedShape.count)) == normalizedShape else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(input); its trailing dimensions must be \(normalizedShape)")
        }
        return input
    }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        _ = try outputShape(x.sampleShape)
        let cols = gamma.count
        let (y, mean, rstd) = try x.reshaped([x.count / cols, cols]).layerNorm(gamma: gamma, beta: beta, eps: eps)
        let yShaped = try y.reshaped(x.shape)
        return (yShaped, Saved(input: x, output: yShaped, extra: [mean, rstd]))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        let cols = gamma.count, rows = dy.count / cols
        let x = try saved.input.reshaped([rows, cols])
        return try x.layerNormInputGradient(upstream: dy.reshaped([rows, cols]), gamma: gamma, mean: saved.extra[0], rstd: saved.extra[1]).reshaped(saved.input.shape)
    }
}
