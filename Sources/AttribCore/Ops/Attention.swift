// The pieces of causal multi-head attention on Tensors:
//   transposed12()   [B, T, H, dh] ↔ [B, H, T, dh]
//   causalSoftmax()  scores [n, T, T] (or [n, S, T]: the last S queries) → probabilities,
//                    entry (t, s) = 0 for s > t
//                    (−∞ added above the diagonal with biasAdd, then the row softmax);
//                    its backward is softmaxBackward (masked probabilities are 0, so
//                    their score gradients are 0 too)
//   copyBox(...)     strided box copy between two tensors (activation patching)
// The products Q·Kᵀ and P·V are batched GEMMs over B·H ([n, T, dh] tensors).

extension Tensor {
    /// Swaps the two middle dimensions of a rank-4 tensor: [a, b, c, d] → [a, c, b, d].
    public func transposed12() throws -> Tensor {
        let op = "transpose12"
        try checkCompatible(op, [])
        guard rank == 4 else {
            throw AttribError.shapeMismatch(op: op, detail: "tensor has shape \(shape); swapping dimensions 1 and 2 needs rank 4")
        }
        let out = try like([shape[0], shape[2], shape[1], shape[3]])
        try device.transpose12(a: shape[0], b: shape[1], c: shape[2], d: shape[3], x: storage, y: out.storage)
        return out
    }

    /// The causal mask of a T×T score matrix as a [T·T] vector: 0 at (t, s ≤ t), −∞ above
    /// the diagonal. Pass it to `causalSoftmax(mask:)` to build it once per sequence length.
    /// With a sliding `window` w, also −∞ where s ≤ t − w (a query sees its w latest keys,
    /// itself included: Mistral's and Qwen2's sliding-window attention).
    public static func causalMask(_ t: Int, window: Int? = nil, dtype: DType = .float32, on device: any Device) throws -> Tensor {
        try causalMask(queries: t, keys: t, window: window, dtype: dtype, on: device)
    }

    /// The causal mask of the scores of the last `queries` positions of `keys`, [S·T]: query i
    /// sits at position T − S + i and sees the keys up to it (within the `window`). A run that
    /// takes a shared prefix's keys and values from another run computes these rows only.
    public static func causalMask(queries s: Int, keys t: Int, window: Int? = nil, dtype: DType = .float32,
                                  on device: any Device) throws -> Tensor {
        guard t >= 1, s >= 1, s <= t else {
            throw AttribError.invalidArgument(op: "causalMask", detail: "\(s) queries of \(t) keys; needs 1 ≤ queries ≤ keys")
        }
        if let window, window < 1 { throw AttribError.invalidArgument(op: "causalMask", detail: "sliding window \(window); must be at least 1") }
        var m = [Double](repeating: 0, count: s * t)
        for i in 0..<s {
            let q = t - s + i                                                   // the query's position
            for j in 0..<t where j > q || (window.map { j <= q - $0 } ?? false) { m[i * t + j] = -.infinity }
        }
        return try Tensor(m, shape: [s * t], dtype: dtype, on: device)
    }

    /// Row softmax of scores [n, S, T] with the causal mask, the S queries being the last S of
    /// the T positions (S = T: the whole square): out[·, i, s] = exp(x_is)/Σ_{s' ≤ q} exp(x_is')
    /// for s ≤ q = T − S + i, exactly 0 above. `mask` is `causalMask(queries: S, keys: T)`
    /// (made here when nil). A row's masked entries are −∞ before the softmax, so a row of the
    /// rectangle is bitwise the same row of the square.
    public func causalSoftmax(mask: Tensor? = nil) throws -> Tensor {
        let op = "causalSoftmax"
        try checkCompatible(op, mask.map { [("mask", $0)] } ?? [])
        guard rank == 3, shape[1] <= shape[2], shape[1] >= 1 else {
            throw AttribError.shapeMismatch(op: op, detail: "scores have shape \(shape), expected [n, S, T] with 1 ≤ S ≤ T")
        }
        let s = shape[1], t = shape[2]
        let m = try mask ?? Tensor.causalMask(queries: s, keys: t, dtype: dtype, on: device)
        guard m.shape == [s * t] else {
            throw AttribError.shapeMismatch(op: op, detail: "mask has shape \(m.shape), expected [\(s * t)] for scores \(shape)")
        }
        let out = try like(shape)
        try device.copy(n: count, x: storage, y: out.storage)
        try device.biasAdd(rows: shape[0], cols: s * t, bias: m.storage, y: out.storage)
        try device.softmax(log: false, rows: shape[0] * s, cols: t, x: out.storage, y: out.storage)
        return out
    }

    /// Copies an n.0 × n.1 × n.2 box from `source` into self:
    /// self[offset + i·strides.0 + j·strides.1 + k] = source[sourceOffset + i·sourceStrides.0 + j·sourceStrides.1 + k]
    /// (flat element indices of the two row-major tensors), checked to lie inside both.
    public func copyBox(_ n: (Int, Int, Int), from source: Tensor, sourceOffset: Int, sourceStrides: (Int, Int),
                        offset: Int, strides: (Int, Int)) throws {
        let op = "copyBox"
        try checkCompatible(op, [("source", source)], floating: false)
        guard n.0 >= 1, n.1 >= 1, n.2 >= 1, offset >= 0, sourceOffset >= 0,
              strides.0 >= 0, strides.1 >= 0, sourceStrides.0 >= 0, sourceStrides.1 >= 0 else {
            throw AttribError.invalidArgument(op: op, detail: "box \(n), offsets \(sourceOffset) → \(offset), strides \(sourceStrides) → \(strides): sizes must be ≥ 1, offsets and strides ≥ 0")
        }
        let srcEnd = sourceOffset + (n.0 - 1) * sourceStrides.0 + (n.1 - 1) * sourceStrides.1 + n.2
        let dstEnd = offset + (n.0 - 1) * strides.0 + (n.1 - 1) * strides.1 + n.2
        guard srcEnd <= source.count, dstEnd <= count else {
            throw AttribError.indexOutOfRange(op: op, detail: "box \(n) reaches element \(srcEnd) of a source of \(source.count) (shape \(source.shape)) and \(dstEnd) of a destination of \(count) (shape \(shape))")
        }
        try device.copyBox(n0: n.0, n1: n.1, n2: n.2,
                           x: BufferView(source.storage.buffer, offset: source.storage.offset + sourceOffset),
                           xStride0: sourceStrides.0, xStride1: sourceStrides.1,
                           y: BufferView(storage.buffer, offset: storage.offset + offset), yStride0: strides.0, yStride1: strides.1)
    }
}
