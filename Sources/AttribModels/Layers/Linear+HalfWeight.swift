import AttribCore

/// A Linear whose weight is stored as BFloat16 or Float16 (`--dtype bf16|f16`): the weight
/// takes a quarter of the memory a Float32 one does with its transposed or packed copy, and
/// every product still runs in Float32. The weight is widened (exactly) in blocks of whole
/// rows of W [out, in], each block's product issued as soon as it is widened, so the Float32
/// copy alive at any time is one block, at most `widenBlockElements`. The products are those
/// of the Float32 weight holding the same values: the forward's output columns are split
/// among blocks (each element still one dot product over `in`); the backward's sum over
/// `out` is split at block edges (the same terms, added in block order).
extension Linear {
    /// Elements of W widened at once: 4 Mi (16 MiB as Float32), enough that a block's product
    /// keeps BLAS and the GPU busy (≥ 4096 × 1024) and small beside any model that needs 16 bits.
    public static var widenBlockElements: Int { 1 << 22 }

    /// Blocks of rows of W, each at most widenBlockElements (at least one row).
    var widenBlocks: [Range<Int>] {
        let per = max(1, Self.widenBlockElements / inFeatures)
        return stride(from: 0, to: outFeatures, by: per).map { $0..<min($0 + per, outFeatures) }
    }

    /// y [rows, out] = x [rows, in] · Wᵀ, W widened block by block; x must be Float32.
    func forwardHalfWeight(_ x: Tensor) throws -> Tensor {
        try checkFloat32(x, "input")
        let rows = x.shape[0]
        let y = try Tensor(shape: [rows, outFeatures], dtype: .float32, on: x.device)   // every column block written
        for r in widenBlocks {
            let wb = try weight.rows(r).widened()                                       // [block, in] Float32
            // Columns r of y: C = x · wbᵀ, ldc = out.
            try x.device.gemm(GEMMArguments(
                transB: true, m: rows, n: r.count, k: inFeatures,
                a: x.storage, lda: inFeatures, b: wb.storage, ldb: inFeatures,
                c: BufferView(y.storage.buffer, offset: y.storage.offset + r.lowerBound), ldc: outFeatures))
        }
        return y
    }

    /// dx [rows, in] = dy [rows, out] · W, summed over blocks of W's rows in order.
    func backwardHalfWeight(_ dy: Tensor) throws -> Tensor {
        try checkFloat32(dy, "upstream gradient")
        let rows = dy.shape[0]
        let dx = try Tensor(shape: [rows, inFeatures], dtype: .float32, on: dy.device)  // the first block writes it all
        for (i, r) in widenBlocks.enumerated() {
            let wb = try weight.rows(r).widened()                                       // [block, in] Float32
            // dx (+)= dy[:, r] · wb: A is columns r of dy (lda = out).
            try dy.device.gemm(GEMMArguments(
                m: rows, n: inFeatures, k: r.count,
                a: BufferView(dy.storage.buffer, offset: dy.storage.offset + r.lowerBound), lda: outFeatures,
                b: wb.storage, ldb: inFeatures,
                beta: i == 0 ? 0 : 1, c: dx.storage, ldc: inFeatures))
        }
        return dx
    }

    private func checkFloat32(_ t: Tensor, _ what: String) throws {
        guard t.dtype == .float32 else {
            throw AttribError.unsupportedDType(op: "\(description): the \(what) is \(t.dtype); a \(weight.dtype) weight computes in float32", dtype: t.dtype, device: t.device.info.summary)
        }
        guard t.device === weight.device else {
            throw AttribError.deviceMismatch(op: description, detail: "the \(what) is on \(t.device.info.id), the weight on \(weight.device.info.id)")
        }
    }
}
