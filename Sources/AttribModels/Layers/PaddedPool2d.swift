import AttribCore
import Synchronization

/// Max or average pooling with padding (PyTorch's `padding`; `count_include_pad` for the
/// average; `ceil_mode`): the input is placed in a larger image filled with −∞ (max) or 0
/// (average) and the unpadded pooling runs on it; the backward crops. ceil_mode rounds the
/// output size up (SqueezeNet's and GoogLeNet's max pooling): the last window may hang past
/// the padded image, which is extended at its end by that much (−∞ or 0 there too). An
/// average is over the window's counted part (real values, or real values and padding with
/// count_include_pad; never the ceil_mode overhang, as PyTorch): the zero-padded average times
/// kh·kw / (counted elements in the window), a per-position constant. PyTorch requires padding
/// ≤ half the kernel, and under ceil_mode drops a last window that would start past the input
/// and its first padding, so every window holds a real value.
public final class PaddedPool2d: Layer, @unchecked Sendable {
    public let pool: Pool2d
    public let padding: [Int]
    public let countIncludePad: Bool
    public let ceilMode: Bool

    public init(max: Bool, kernel: [Int], stride: [Int], padding: [Int], countIncludePad: Bool = true, ceilMode: Bool = false) throws {
        pool = try Pool2d(max: max, kernel: kernel, stride: stride)
        guard padding.count == 2, padding[0] >= 0, padding[1] >= 0, 2 * padding[0] <= kernel[0], 2 * padding[1] <= kernel[1] else {
            throw AttribError.invalidArgument(op: pool.description, detail: "padding \(padding) must be a pair from 0 to half the kernel \(kernel) (PyTorch's rule)")
        }
        self.padding = padding; self.countIncludePad = countIncludePad; self.ceilMode = ceilMode
    }

    public var description: String {
        "\(pool.isMax ? "MaxPool2d" : "AvgPool2d")(\(pool.kernel[0])×\(pool.kernel[1]), stride \(pool.stride), padding \(padding)"
            + (pool.isMax || countIncludePad ? "" : ", count_include_pad false") + (ceilMode ? ", ceil_mode)" : ")")
    }

    /// Output positions along one axis of input size n (PyTorch's pooling_output_shape).
    func outputLength(_ n: Int, axis d: Int) -> Int {
        let (k, s, p) = (pool.kernel[d], pool.stride[d], padding[d])
        let span = n + 2 * p - k
        guard span >= 0 else { return 0 }
        var out = (ceilMode ? (span + s - 1) / s : span / s) + 1
        if ceilMode && (out - 1) * s >= n + p { out -= 1 }      // no window may start past the input and its first padding
        return out
    }

    /// How far the last window hangs past the padded image along an axis (ceil_mode only).
    func overhang(_ n: Int, axis d: Int) -> Int {
        let out = outputLength(n, axis: d)
        return out < 1 ? 0 : max(0, (out - 1) * pool.stride[d] + pool.kernel[d] - (n + 2 * padding[d]))
    }

    func padded(_ s: [Int]) -> [Int] {
        [s[0], s[1] + 2 * padding[0] + overhang(s[1], axis: 0), s[2] + 2 * padding[1] + overhang(s[2], axis: 1)]
    }

    /// Whether an average needs the per-position factor: windows that count fewer than kh·kw.
    func averagesPartially(_ s: [Int]) -> Bool {
        !pool.isMax && (!countIncludePad || overhang(s[1], axis: 0) > 0 || overhang(s[2], axis: 1) > 0)
    }

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

    /// kh·kw / (counted elements in each window) for one sample, [C·OH·OW], made once per
    /// input shape: the factor that turns the zero-padded average into the average over the
    /// window's counted part.
    private let factors = Mutex<[[Int]: Tensor]>([:])

    /// Counted elements over kh·kw, per output position of one plane, [OH·OW]: the rows and
    /// columns a window covers within [lo, hi) of the padded image, hi excluding the overhang.
    func countedShare(_ s: [Int]) -> [Double] {
        func along(_ d: Int) -> [Double] {
            let n = s[d + 1], p = padding[d], (k, st) = (pool.kernel[d], pool.stride[d])
            let (lo, hi) = countIncludePad ? (0, n + 2 * p) : (p, n + p)
            return (0..<outputLength(n, axis: d)).map { o in Double(max(0, min(o * st + k, hi) - max(o * st, lo))) / Double(k) }
        }
        let (rows, cols) = (along(0), along(1))
        return rows.flatMap { r in cols.map { r * $0 } }
    }

    /// That factor repeated over the batch, [N] + the output shape.
    func scale(_ x: Tensor) throws -> Tensor {
        let out = try outputShape(x.sampleShape)
        let f: Tensor
        if let cached = factors.withLock({ $0[x.sampleShape] }), cached.device === x.device, cached.dtype == x.dtype {
            f = cached
        } else {
            let share = countedShare(x.sampleShape)                                   // each > 0
            let plane = share.map { 1 / $0 }
            f = try Tensor((0..<x.shape[1]).flatMap { _ in plane }, shape: [x.shape[1] * plane.count], dtype: x.dtype, on: x.device)
            factors.withLock { $0[x.sampleShape] = f }
        }
        let y = try Tensor(shape: [x.batchSize] + out, dtype: x.dtype, on: x.device)
        try x.device.broadcastRows(rows: x.batchSize, cols: f.count, x: f.storage, y: y.storage)
        return y
    }

    public func forward(_ x: Tensor) throws -> (y: Tensor, saved: Saved) {
        _ = try outputShape(x.sampleShape)
        let (y, s) = try pool.forward(try pad(x, fill: pool.isMax ? -.infinity : 0))
        if !averagesPartially(x.sampleShape) { return (y, Saved(input: x, output: y, extra: [s.input] + s.extra)) }
        let f = try scale(x)
        let out = try y.multiplying(f)
        return (out, Saved(input: x, output: out, extra: [s.input, f]))
    }

    public func backward(_ dy: Tensor, _ saved: Saved) throws -> Tensor {
        let paddedInput = saved.extra[0]
        var g = dy
        var extra = Array(saved.extra.dropFirst())
        if averagesPartially(saved.input.sampleShape) { g = try dy.multiplying(extra.removeFirst()) }
        let dp = try pool.backward(g, Saved(input: paddedInput, output: dy, extra: extra))
        return try crop(dp, like: saved.input.shape)
    }
}
