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
    /// How the map is applied: whole, or (on the CPU backend, where that saves enough
    /// multiply-adds) by output row. Only the form in use is on the device.
    enum Products {
        /// U [C·H·W, OC·OH·OW] for the forward product, and Uᵀ [OC·OH·OW, C·H·W] for the
        /// backward one (kept so both products are untransposed).
        case whole(forward: Tensor, backward: Tensor)
        /// U by output row (see `Band`).
        case bands([Band])
    }
    let products: Products
    /// The bias per output element, or nil: [OC·OH·OW] (NCHW order) for the whole map,
    /// [OH·OC·OW] (rows outermost, the order the bands write) for bands.
    let bias: Tensor?

    /// The rows of U that output row oy reads. U is zero outside input rows
    /// [oy·s − p, oy·s − p + kh), so with the input's rows outermost ([N, H, C, W], one
    /// transpose away from NCHW) a band is one product over a contiguous column range of
    /// the input, and output row oy a contiguous range of an [N, OH, OC, OW] result. On the
    /// digits CNN's 4×4 images with a 3×3 kernel the bands hold 10 of U's 16 row blocks:
    /// 62.5% of the dense product's multiply-adds, for four transposes of a few KB a row.
    struct Band {
        let oy: Int
        /// Input rows [y0, y1).
        let y0: Int, y1: Int
        /// [(y1 − y0)·C·W, OC·OW]: rows (y, c, x) from y0, columns (oc, ox) at row oy.
        let forward: Tensor
        /// Its transpose, so the backward product is untransposed too.
        let backward: Tensor
    }

    /// Bands are used only where they cut the multiply-adds to this share of U's or less.
    static let maxBandShare = 0.75

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
        // Bands on the CPU backend alone: on a GPU the four products and two transposes
        // are more launches for less arithmetic, which is the wrong trade there.
        let spans = (0..<oh).map { oy in (max(0, oy * sh - ph), min(h, oy * sh - ph + kh)) }
        let bandMACs = spans.reduce(0) { $0 + max(0, $1.1 - $1.0) } * c * w * oc * ow
        if conv.bandSmallImages, device is CPUDevice, oh >= 2, spans.allSatisfy({ $0.1 > $0.0 }),
           Double(bandMACs) <= Self.maxBandShare * Double(inDim * outDim) {
            products = .bands(try spans.enumerated().map { oy, span in
                let (y0, y1) = span, rows = (y1 - y0) * c * w, cols = oc * ow
                var band = [Double](repeating: 0, count: rows * cols)                  // [(y, c, x), (oc, ox)]
                for y in y0..<y1 { for ci in 0..<c { for x in 0..<w { for o in 0..<oc { for ox in 0..<ow {
                    band[(((y - y0) * c + ci) * w + x) * cols + o * ow + ox] = u[((ci * h + y) * w + x) * outDim + (o * oh + oy) * ow + ox]
                } } } } }
                let f = try Tensor(band, shape: [rows, cols], dtype: dtype, on: device)
                return Band(oy: oy, y0: y0, y1: y1, forward: f, backward: try f.transposed01())
            })
        } else {
            let f = try Tensor(u, shape: [inDim, outDim], dtype: dtype, on: device)
            products = .whole(forward: f, backward: try f.transposed01())
        }
        if let b = conv.bias {
            let bv = try b.doubles()
            let channel: (Int) -> Int
            if case .bands = products { channel = { ($0 / ow) % oc } } else { channel = { $0 / (oh * ow) } }
            bias = try Tensor((0..<outDim).map { bv[channel($0)] }, shape: [outDim], dtype: dtype, on: device)
        } else {
            bias = nil
        }
    }
}

extension Conv2dUnrolled {
    /// yp [N, OH, OC, OW] from xp [N, H, C, W] (images rows outermost): the bias, and one
    /// product per output row added onto it. No transposes: what Sequential's rows-outer span runs.
    func forwardRowsOuter(_ xp: Tensor, _ bands: [Band], output: [Int]) throws -> Tensor {
        let (n, h, c, w) = (xp.shape[0], xp.shape[1], xp.shape[2], xp.shape[3]), (oc, oh, ow) = (output[0], output[1], output[2])
        let yp = try Tensor(shape: [n, oh, oc, ow], dtype: xp.dtype, on: xp.device)   // every element written below
        // The bias first and the products added onto it (beta = 1): one write in place of
        // BLAS's clearing of C for beta = 0 and a bias pass after.
        if let bias { try xp.device.broadcastRows(rows: n, cols: oh * oc * ow, x: bias.storage, y: yp.storage) }
        try xp.device.gemmSequence(bands.map { b in
            GEMMArguments(m: n, n: oc * ow, k: (b.y1 - b.y0) * c * w,
                          a: BufferView(xp.storage.buffer, offset: xp.storage.offset + b.y0 * c * w), lda: h * c * w,
                          b: b.forward.storage, ldb: oc * ow, beta: bias == nil ? 0 : 1,
                          c: BufferView(yp.storage.buffer, offset: yp.storage.offset + b.oy * oc * ow), ldc: oh * oc * ow)
        })
        return yp
    }

    /// dxp [N, H, C, W] from dyp [N, OH, OC, OW]: each output row's gradient through its
    /// band, summed into the input rows it read (bands overlap where kernels do), in order of oy.
    func backwardRowsOuter(_ dyp: Tensor, _ bands: [Band], input: [Int]) throws -> Tensor {
        let (n, oh, oc, ow) = (dyp.shape[0], dyp.shape[1], dyp.shape[2], dyp.shape[3]), (c, h, w) = (input[0], input[1], input[2])
        let dxp = try Tensor.zeros([n, h, c, w], dtype: dyp.dtype, on: dyp.device)
        try dyp.device.gemmSequence(bands.map { b in
            GEMMArguments(m: n, n: (b.y1 - b.y0) * c * w, k: oc * ow,
                          a: BufferView(dyp.storage.buffer, offset: dyp.storage.offset + b.oy * oc * ow), lda: oh * oc * ow,
                          b: b.backward.storage, ldb: (b.y1 - b.y0) * c * w, beta: 1,
                          c: BufferView(dxp.storage.buffer, offset: dxp.storage.offset + b.y0 * c * w), ldc: h * c * w)
        })
        return dxp
    }
}

/// The unrolled maps of one Conv2d, built on first use per input shape from the
/// weight as it is then (weights are read-only once a model is loaded). Two
/// threads that miss at once both build it; either result is the same.
final class Conv2dUnrolledCache: Sendable {
    private let maps = Mutex<[[Int]: Conv2dUnrolled]>([:])

    func map(for conv: Conv2d, input: [Int], output: [Int]) throws -> Conv2dUnrolled {
        let key = input + [conv.bandSmallImages ? 1 : 0]
        if let m = maps.withLock({ $0[key] }) { return m }
        let m = try Conv2dUnrolled(conv, input: input, output: output)
        maps.withLock { $0[key] = m }
        return m
    }
}
