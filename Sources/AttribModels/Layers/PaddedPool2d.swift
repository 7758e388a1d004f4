import AttribCore
import Synchronization

/// Max or average pooling with padding (PyTorch's `padding`; `count_include_pad` for the
/// average): the input is placed in a larger image filled with −∞ (max) or 0 (average) and the
/// unpadded pooling runs on it; the backward crops. Without count_include_pad each average is
/// over the window's real values only: the zero-padded average times kh·kw / (real values in
/// the window), a per-position constant. PyTorch requires padding ≤ half the kernel, so every
/// window holds a real value.
public final class PaddedPool2d: Layer, @unchecked Sendable {
    public let pool: Pool2d
    public let padding: [Int]
    public let countIncludePad: Bool

    public init(max: Bool, kernel: [Int], stride: [Int], padding: [Int], countIncludePad: Bool = true) throws {
        pool = try Pool2d(max: max, kernel: kernel, stride: stride)
        guard padding.count == 2, padding[0] >= 0, padding[1] >= 0, 2 * padding[0] <= kernel[0], 2 * padding[1] <= kernel[1] else {
            throw AttribError.invalidArgument(op: pool.description, detail: "padding \(padding) must be a pair from 0 to half the kernel \(kernel) (PyTorch's rule)")
        }
        self.padding = padding; self.countIncludePad = countIncludePad
    }

    public var description: String {
        "\(pool.isMax ? "MaxPool2d" : "AvgPool2d")(\(pool.kernel[0])×\(pool.kernel[1]), stride \(pool.stride), padding \(padding)"
            + (pool.isMax || countIncludePad ? ")" : ", count_include_pad false)")
    }

    func padded(_ s: [Int]) -> [Int] { [s[0], s[1] + 2 * padding[0], s[2] + 2 * padding[1]] }

    public func outputShape(_ input: [Int]) throws -> [Int] {
        guard input.count == 3 else {
            throw AttribError.shapeMismatch(op: description, detail: "input per sample has shape \(input), expected [C, H, W]")
        }
        return try pool.outputShape(padded(input))
    }

    /// [N, C, H, W] → [N, C, H + 2ph, W + 2pw] filled with `fill` around the image.
    func pad(_ x: Tensor, fill: Double) throws -> Tensor {
        let s = padded(x.sampleShape)
        let y = try Tensor(shape: [x.batchSize] + s, dtype: x.dtype, on: x.device)
        try y.fill(fill)
        let (h, w) = (x.shape[2], x.shape[3])
        try y.copyBox((x.batchSize * x.shape[1], h, w), from: x, sourceOffset: 0, sourceStrides: (h * w, w),
                      offset: padding[0] * s[2] + padding[1], strides: (s[1] * s[2], s[2]))
        return y
    }

    /// The image part of a padded [N, C, H + 2ph, W + 2pw].
    func crop(_ p: Tensor, like x: [Int]) throws -> Tensor {
        let (h, w, ph, pw) = (x[2], x[3], p.shape[2], p.shape[3])
        let y = try Tensor(shape: x, dtype: p.dtype, on: p.device)
        try y.copyBox((x[0] * x[1], h, w), from: p, sourceOffset: padding[0] * pw + padding[1], sourceStrides: (ph * pw, pw),
                      offset: 0, strides: (h * w, w))
        return y
    }

    /// kh·kw / (real values in each window) for one sample, [C·OH·OW], made once per input
    /// shape: the factor that turns the zero-padded average into the average of real values.
    private let factors = Mutex<[[Int]: Tensor]>([:])

    /// That factor repeated over the batch, [N] + the output shape.
    func scale(_ x: Tensor) throws -> Tensor {
        let out = try outputShape(x.sampleShape)
        let f: Tensor
        if let cached = factors.withLock({ $0[x.sampleShape] }), cached.device === x.device, cached.dtype == x.dtype {
            f = cached
        } else {
            let ones = try Tensor.zeros([1] + x.sampleShape, dtype: x.dtype, on: x.device)
            try ones.fill(1)
            let share = try pool.forward(try pad(ones, fill: 0)).y.doubles()   // real values / (kh·kw), each > 0
            f = try Tensor(share.map { 1 / $0 }, shape: [share.count], dtype: x.dtype, on: x.device)
            factors.withLock { $0[x.sampleShape] = f }
        }
        let y = try Tensor(shape: [x.batchSize] + out, dtype: x.dtype, on: x.device)
        try x.device.broadcastRows(rows: x.batchSize, cols: f.count, x: f.storage, y: y.storage)
        return y
    }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        _ = try outputShape(x.sampleShape)
        let (y, s) = try pool.forward(try pad(x, fill: pool.isMax ? -.infinity : 0))
        if pool.isMax || countIncludePad { return (y, Saved(input: x, output: y, extra: [s.input] + s.extra)) }
        let f = try scale(x)
        let out = try y.multiplying(f)
        return (out, Saved(input: x, output: out, extra: [s.input, f]))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        let paddedInput = saved.extra[0]
        var g = dy
        var extra = Array(saved.extra.dropFirst())
        if !pool.isMax && !countIncludePad { g = try dy.multiplying(extra.removeFirst()) }
        let dp = try pool.backward(g, Saved(input: paddedInput, output: dy, extra: extra))
        return try crop(dp, like: saved.input.shape)
    }
}
