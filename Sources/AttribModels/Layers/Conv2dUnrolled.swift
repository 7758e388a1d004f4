import AttribCore
import Synchronization

/// A convolution on a small image as the dense linear map it is: the matrix
/// U[C·H·W, OC·OH·OW] with U[(ci, iy, ix), (oc, oy, ox)] = W[oc, ci, ki, kj]
/// where iy = oy·s − p + ki and ix = ox·s − p + kj (zero elsewhere), and the
/// bias spread over each channel's OH·OW outputs.
///
/// Why: on an image of a few pixels (the digits CNN's second convolution sees
/// 16×4×4) im2col, col2im and the transposes around a product with K = C·kh·kw
/// cost more than the product, while y = x·U is one large product straight
/// into NCHW order and dx = dy·Uᵀ one more. U has H·W/(kh·kw) times the
/// multiply-adds of the convolution (16/9 on the digits CNN), so it is used
/// only where that ratio is at most `maxWorkRatio` and U is small.
struct Conv2dUnrolled: @unchecked Sendable {
    /// U [C·H·W, OC·OH·OW], for the forward product.
    let forward: Tensor
    /// Uᵀ [OC·OH·OW, C·H·W], for the backward product (kept so both products are untransposed).
    let backward: Tensor
    /// The bias per output element [OC·OH·OW], or nil.
    let bias: Tensor?

    /// At most this many times the convolution's multiply-adds.
    static let maxWorkRatio = 4
    /// At most this many elements in U (16 MiB of Float32).
    static let maxElements = 1 << 22

    /// Whether a convolution of this input ([C, H, W]) and output ([OC, OH, OW]) is unrolled.
    static func worthwhile(input: [Int], output: [Int], kernel: [Int]) -> Bool {
        let dense = input.reduce(1, *) * output.reduce(1, *)
        let direct = output.reduce(1, *) * input[0] * kernel[0] * kernel[1]
        return dense <= maxElements && dense <= maxWorkRatio * direct
    }

    /// Builds U from the layer's weight for one input shape [C, H, W].
    init(_ conv: Conv2d, input: [Int], output: [Int]) throws {
        let (c, h, w) = (input[0], input[1], input[2]), (oc, oh, ow) = (output[0], output[1], output[2])
        let (kh, kw) = (conv.kernel[0], conv.kernel[1]), (sh, sw) = (conv.stride[0], conv.stride[1]), (ph, pw) = (conv.padding[0], conv.padding[1])
        let inDim = c * h * w, outDim = oc * oh * ow
        let wv = try conv.weight.doubles()                                     // [OC, C, kh, kw]
        var u = [Double](repeating: 0, count: inDim * outDim)                 // [inDim, outDim]
        for o in 0..<oc {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let col = (o * oh + oy) * ow + ox
                    for ci in 0..<c {
                        for ki in 0..<kh {
                            let iy = oy * sh - ph + ki
                            if iy < 0 || iy >= h { continue }
                            for kj in 0..<kw {
                                let ix = ox * sw - pw + kj
                                if ix < 0 || ix >= w { continue }
                                u[((ci * h + iy) * w + ix) * outDim + col] = wv[((o * c + ci) * kh + ki) * kw + kj]
                            }
                        }
                    }
                }
            }
        }
        let device = conv.weight.device, dtype = conv.weight.dtype
        forward = try Tensor(u, shape: [inDim, outDim], dtype: dtype, on: device)
        backward = try forward.transposed01()
        if let b = conv.bias {
            let bv = try b.doubles()
            bias = try Tensor((0..<outDim).map { bv[$0 / (oh * ow)] }, shape: [outDim], dtype: dtype, on: device)
        } else {
            bias = nil
        }
    }
}

/// The unrolled maps of one Conv2d, built on first use per input shape from the
/// weight as it is then (weights are read-only once a model is loaded). Two
/// threads that miss at once both build it; either result is the same.
final class Conv2dUnrolledCache: Sendable {
    private let maps = Mutex<[[Int]: Conv2dUnrolled]>([:])

    func map(for conv: Conv2d, input: [Int], output: [Int]) throws -> Conv2dUnrolled {
        if let m = maps.withLock({ $0[input] }) { return m }
        let m = try Conv2dUnrolled(conv, input: input, output: output)
        maps.withLock { $0[input] = m }
        return m
    }
}
