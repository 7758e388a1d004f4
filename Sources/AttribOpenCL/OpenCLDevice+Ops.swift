import AttribCore
import AttribKernels

/// The Device ops on OpenCL: each checks that its views fit their buffers,
/// then enqueues the kernel named in docs/kernel-contract.md.
extension OpenCLDevice {
    /// The float dtype and buffers of the views; Int32 views are the index operands (gather, scatter).
    private func operands(_ op: String, _ views: [(BufferView, Int)]) throws -> (DType, [CLBuffer]) {
        try checkedOperands(op, views.map { Operand($0.0, $0.1, index: $0.0.buffer.dtype == .int32) })
    }

    public func gemm(_ g: GEMMArguments) throws {
        try g.validate()
        let (dtype, bufs) = try operands("gemm", [(g.c, 1), (g.a, 1), (g.b, 1)])
        let precision = dtype == .float32 ? matmulPrecision : .fp32
        if try gemmSplitK(g, dtype: dtype, precision: precision, c: bufs[0], a: bufs[1], b: bufs[2]) { return }
        try gemmOnePass(g, dtype: dtype, precision: precision, c: bufs[0], a: bufs[1], b: bufs[2])
    }

    /// One product as one launch: the tensor cores where the precision takes them, else
    /// the portable kernel with its tuned (or default) tiles; `fused` adds an epilogue.
    func gemmOnePass(_ g: GEMMArguments, dtype: DType, precision: MatmulPrecision, c: CLBuffer, a: CLBuffer, b: CLBuffer,
                     fused: FusedEpilogue? = nil) throws {
        if precision != .fp32, usesTensorCores(precision, transA: g.transA, transB: g.transB) {
            try launchMMA(g, precision: precision, c: c, a: a, b: b, fused: fused)
            return
        }
        var p = gemmParameters(GEMMVariant(dtype: dtype, transA: g.transA, transB: g.transB))
        // A grid with fewer work-groups than compute units leaves units idle: a smaller
        // tile of the same kernel gives them work (short products against wide weights).
        if info.kind == .gpu, let smaller = p.shrunk(),
           ((g.m + p.MWG - 1) / p.MWG) * ((g.n + p.NWG - 1) / p.NWG) * g.batch < info.computeUnits,
           smaller.problem(on: info, dtype: dtype) == nil {
            p = smaller
        }
        try launchGEMM(g, dtype: dtype, c: c, a: a, b: b, parameters: p, round: precision, fused: fused)
    }

    /// Split-K, the GPU rule for short, deep products (a few rows of activations against a
    /// wide weight, on any graph): where even 64×64 tiles leave compute units idle and K is
    /// deep, K is cut into chunks whose products run as one batched launch into a workspace,
    /// then summed (reduce.cl splitk_sum, with β). The chunks' sums run in a different order
    /// from one pass: the error bound is the same. False where the rule does not apply.
    func gemmSplitK(_ g: GEMMArguments, dtype: DType, precision: MatmulPrecision, c: CLBuffer, a: CLBuffer, b: CLBuffer) throws -> Bool {
        let forced = state.withLock { $0.forcedSplitK }
        guard g.batch == 1, g.m >= 1, g.n >= 1 else { return false }
        let groups = ((g.m + 63) / 64) * ((g.n + 63) / 64)
        var splits: Int
        if let forced { splits = forced } else {
            guard info.kind == .gpu, groups < info.computeUnits, g.k >= 1024 else { return false }
            // Enough groups for two per compute unit, chunks of at least 256.
            splits = min((2 * info.computeUnits + groups - 1) / groups, g.k / 256, 32)
        }
        guard splits >= 2, g.k >= splits else { return false }
        let chunk = ((g.k + splits - 1) / splits + 15) / 16 * 16
        let full = g.k / chunk, rest = g.k - full * chunk
        let parts = full + (rest > 0 ? 1 : 0)
        let plane = g.m * g.n
        guard parts >= 2, parts * plane * dtype.size <= 256 << 20 else { return false }
        let w = try splitKWorkspace(count: parts * plane, dtype: dtype)
        // op(A)'s chunk q starts q·chunk along k: a column offset of a stored M×K, a row offset of K×M.
        let stepA = g.transA ? chunk * g.lda : chunk, stepB = g.transB ? chunk : chunk * g.ldb
        let wv = BufferView(w, offset: 0)
        var head = g
        head.k = chunk; head.beta = 0; head.batch = full
        head.strideA = stepA; head.strideB = stepB
        head.c = wv; head.ldc = g.n; head.strideC = plane
        try gemmOnePass(head, dtype: dtype, precision: precision, c: w, a: a, b: b)
        if rest > 0 {
            var tail = head
            tail.k = rest; tail.batch = 1
            tail.a = BufferView(g.a.buffer, offset: g.a.offset + full * stepA)
            tail.b = BufferView(g.b.buffer, offset: g.b.offset + full * stepB)
            tail.c = BufferView(w, offset: full * plane)
            try gemmOnePass(tail, dtype: dtype, precision: precision, c: w, a: a, b: b)
        }
        try launch(.reduce, "splitk_sum", dtype: dtype,
                   [.int(g.m), .int(g.n), .int(parts), .buffer(w), .real(g.beta), .buffer(c), .int(g.c.offset), .int(g.ldc)],
                   global: [(g.n + 63) / 64 * 64, g.m], local: [64, 1])
        return true
    }

    /// The split-K workspace, kept and grown per dtype (products on one queue run in order,
    /// so one workspace serves them all).
    private func splitKWorkspace(count: Int, dtype: DType) throws -> CLBuffer {
        if let w = state.withLock({ s in s.splitKWorkspace[dtype].flatMap { $0.count >= count ? $0 : nil } }) { return w }
        guard let w = try allocate(count: count, dtype: dtype) as? CLBuffer else {
            throw AttribError.invalidArgument(op: "gemm", detail: "split-K workspace is not an OpenCL buffer")
        }
        state.withLock { $0.splitKWorkspace[dtype] = w }
        return w
    }

    /// Forces split-K into this many chunks on every later single product (nil: the GPU rule):
    /// for tests of the split path on any device, and for timing it.
    public func setSplitK(_ splits: Int?) { state.withLock { $0.forcedSplitK = splits } }

    /// Enqueues the GEMM kernel with explicit tile parameters (the tuner calls this);
    /// `round` other than .fp32 rounds the operands as they are staged.
    func launchGEMM(_ g: GEMMArguments, dtype: DType, c: CLBuffer, a: CLBuffer, b: CLBuffer, parameters p: GEMMParameters,
                    round: MatmulPrecision = .fp32, fused: FusedEpilogue? = nil) throws {
        var defines = p.defines + [("TRANS_A", g.transA ? 1 : 0), ("TRANS_B", g.transB ? 1 : 0)]
        if round != .fp32 { defines.append(("ROUND", round.roundCode)) }
        let global = [(g.n + p.NWG - 1) / p.NWG * p.NDIMC, (g.m + p.MWG - 1) / p.MWG * p.MDIMC, g.batch]
        try launch(p.kernel == 1 ? .gemmDB : .gemm, "gemm", dtype: dtype, defines: defines + (fused?.defines ?? []),
                   gemmKernelArguments(g, c: c, a: a, b: b, fused: fused), global: global, local: [p.NDIMC, p.MDIMC, 1])
    }

    /// The argument list every GEMM kernel takes (gemm.cl, gemm_db.cl, gemm_mma.cl), and
    /// a fused epilogue's six after it (gemm_epilogue.cl).
    func gemmKernelArguments(_ g: GEMMArguments, c: CLBuffer, a: CLBuffer, b: CLBuffer, fused: FusedEpilogue? = nil) -> [KernelArgument] {
        [.int(g.m), .int(g.n), .int(g.k), .real(g.alpha),
         .buffer(a), .int(g.a.offset), .int(g.lda), .int(g.strideA),
         .buffer(b), .int(g.b.offset), .int(g.ldb), .int(g.strideB),
         .real(g.beta), .buffer(c), .int(g.c.offset), .int(g.ldc), .int(g.strideC)] + (fused?.arguments ?? [])
    }

    public func binary(_ op: BinaryOp, n: Int, a: BufferView, b: BufferView, y: BufferView) throws {
        let (t, bf) = try operands(op.rawValue, [(a, n), (b, n), (y, n)])
        try launch1D(.elementwise, "ew_" + op.rawValue, dtype: t,
                     [.int(n), .buffer(bf[0]), .int(a.offset), .buffer(bf[1]), .int(b.offset), .buffer(bf[2]), .int(y.offset)], n: n)
    }

    public func scale(n: Int, alpha: Double, x: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("scale", [(x, n), (y, n)])
        try launch1D(.elementwise, "ew_scale", dtype: t, [.int(n), .real(alpha), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], n: n)
    }

    public func axpy(n: Int, alpha: Double, x: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("axpy", [(x, n), (y, n)])
        try launch1D(.elementwise, "ew_axpy", dtype: t, [.int(n), .real(alpha), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], n: n)
    }

    public func channelAffine(outer: Int, channels: Int, inner: Int, x: BufferView, scale: BufferView, shift: BufferView?, y: BufferView) throws {
        let op = "channelAffine"
        try AttribError.requirePositive(op, ["outer": outer, "channels": channels, "inner": inner])
        let n = outer * channels * inner
        // No shift: the scale stands in for it, unread (has_shift = 0).
        let (t, bf) = try operands(op, [(x, n), (scale, channels), (shift ?? scale, channels), (y, n)])
        try launch1D(.elementwise, "channel_affine", dtype: t,
                     [.int(n), .int(channels), .int(inner), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(scale.offset),
                      .buffer(bf[2]), .int((shift ?? scale).offset), .int(shift == nil ? 0 : 1), .buffer(bf[3]), .int(y.offset)], n: n)
    }

    public func fill(n: Int, value: Double, y: BufferView) throws {
        let (t, bf) = try operands("fill", [(y, n)])
        try launch1D(.elementwise, "ew_fill", dtype: t, [.int(n), .real(value), .buffer(bf[0]), .int(y.offset)], n: n)
    }

    public func copy(n: Int, x: BufferView, y: BufferView) throws {
        let xb = try clBuffer(x, "copy"), yb = try clBuffer(y, "copy")
        guard xb.dtype == yb.dtype else {
            throw AttribError.invalidArgument(op: "copy", detail: "source is \(xb.dtype), destination \(yb.dtype)")
        }
        try x.require(n, "copy", "source"); try y.require(n, "copy", "destination")
        // Int32 tensors are copied with the float kernel: same width, bits unchanged.
        let t: DType = xb.dtype == .int32 ? .float32 : xb.dtype
        try launch1D(.elementwise, "ew_copy", dtype: t, [.int(n), .buffer(xb), .int(x.offset), .buffer(yb), .int(y.offset)], n: n)
    }

    public func biasAdd(rows: Int, cols: Int, bias: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("biasAdd", [(bias, cols), (y, rows * cols)])
        try launch1D(.elementwise, "bias_add", dtype: t,
                     [.int(rows), .int(cols), .buffer(bf[0]), .int(bias.offset), .buffer(bf[1]), .int(y.offset)], n: rows * cols)
    }

    public func columnSum(rows: Int, cols: Int, x: BufferView, beta: Double, y: BufferView) throws {
        let (t, bf) = try operands("columnSum", [(x, rows * cols), (y, cols)])
        try launch1D(.reduce, "col_sum", dtype: t,
                     [.int(rows), .int(cols), .buffer(bf[0]), .int(x.offset), .real(beta), .buffer(bf[1]), .int(y.offset)], n: cols)
    }

    public func activation(_ kind: Activation, n: Int, x: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("activation", [(x, n), (y, n)])
        try launch1D(.activation, "act_forward", dtype: t,
                     [.int(n), .int(Int(kind.rawValue)), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], n: n)
    }

    public func activationBackward(_ kind: Activation, n: Int, x: BufferView, dy: BufferView, dx: BufferView) throws {
        let (t, bf) = try operands("activationBackward", [(x, n), (dy, n), (dx, n)])
        try launch1D(.activation, "act_backward", dtype: t,
                     [.int(n), .int(Int(kind.rawValue)), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(dy.offset),
                      .buffer(bf[2]), .int(dx.offset)], n: n)
    }

    public func rowReduce(_ op: RowReduction, rows: Int, cols: Int, x: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("rowReduce", [(x, rows * cols), (y, rows)])
        try launchRows(.reduce, "row_" + op.rawValue, dtype: t,
                       [.int(rows), .int(cols), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], rows: rows)
    }

    public func softmax(log: Bool, rows: Int, cols: Int, x: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("softmax", [(x, rows * cols), (y, rows * cols)])
        try launchRows(.softmax, log ? "log_softmax_rows" : "softmax_rows", dtype: t,
                       [.int(rows), .int(cols), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], rows: rows)
    }

    public func softmaxBackward(log: Bool, rows: Int, cols: Int, y: BufferView, dy: BufferView, dx: BufferView) throws {
        let n = rows * cols
        let (t, bf) = try operands("softmaxBackward", [(y, n), (dy, n), (dx, n)])
        try launchRows(.softmax, log ? "log_softmax_backward" : "softmax_backward", dtype: t,
                       [.int(rows), .int(cols), .buffer(bf[0]), .int(y.offset), .buffer(bf[1]), .int(dy.offset),
                        .buffer(bf[2]), .int(dx.offset)], rows: rows)
    }

    public func gatherRows(n: Int, cols: Int, indices: BufferView, table: BufferView, y: BufferView) throws {
        if let half = try halfSource(table, "gatherRows") {
            let (t, bf) = try checkedOperands("gatherRows", [Operand(y, n * cols), Operand(indices, n, index: true)])
            guard t == .float32 else { throw AttribError.unsupportedDType(op: "gatherRows", dtype: t, device: info.summary) }
            try table.require(cols, "gatherRows", "table")
            try launch1D(.gather, half.dtype == .bfloat16 ? "gather_rows_bf16" : "gather_rows_f16", dtype: .float32,
                         [.int(n), .int(cols), .buffer(bf[1]), .int(indices.offset), .buffer(half.buffer), .int(table.offset),
                          .buffer(bf[0]), .int(y.offset)], n: n * cols)
            return
        }
        let (t, bf) = try operands("gatherRows", [(table, cols), (y, n * cols), (indices, n)])
        try launch1D(.gather, "gather_rows", dtype: t,
                     [.int(n), .int(cols), .buffer(bf[2]), .int(indices.offset), .buffer(bf[0]), .int(table.offset),
                      .buffer(bf[1]), .int(y.offset)], n: n * cols)
    }

    public func widen(n: Int, x: BufferView, y: BufferView) throws {
        guard let half = try halfSource(x, "widen") else {
            throw AttribError.invalidArgument(op: "widen", detail: "a \(x.buffer.dtype) source; widen reads bfloat16 or float16")
        }
        try x.require(n, "widen", "source")
        let (t, bf) = try checkedOperands("widen", [Operand(y, n)])
        guard t == .float32 else { throw AttribError.unsupportedDType(op: "widen", dtype: t, device: info.summary) }
        try launch1D(.gather, half.dtype == .bfloat16 ? "widen_bf16" : "widen_f16", dtype: .float32,
                     [.int(n), .buffer(half.buffer), .int(x.offset), .buffer(bf[0]), .int(y.offset)], n: n)
    }

    /// A BFloat16 or Float16 view's buffer (nil for any other dtype), its offset checked for
    /// the kernels' 32-bit indexing.
    private func halfSource(_ view: BufferView, _ op: String) throws -> (buffer: CLBuffer, dtype: DType)? {
        let b = try clBuffer(view, op)
        guard b.dtype.isStorageOnly else { return nil }
        guard b.count <= Int(Int32.max) else {
            throw AttribError.tooLarge(op: op, detail: "a 16-bit table of \(b.count) elements, beyond the 32-bit indexing of the OpenCL kernels")
        }
        return (b, b.dtype)
    }

    public func scatterAddRows(n: Int, cols: Int, indices: BufferView, source: BufferView, table: BufferView) throws {
        let (t, bf) = try operands("scatterAddRows", [(table, cols), (source, n * cols), (indices, n)])
        try launch1D(.gather, "scatter_add_rows", dtype: t,
                     [.int(n), .int(cols), .buffer(bf[2]), .int(indices.offset), .buffer(bf[1]), .int(source.offset),
                      .buffer(bf[0]), .int(table.offset)], n: cols)
    }

    public func pathInterpolate(n: Int, m: Int, d: Int, x: BufferView, base: BufferView, baseStride: Int,
                                alphas: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("pathInterpolate", [(y, n * m * d), (x, n * d), (base, (n - 1) * baseStride + d), (alphas, m)])
        try launch1D(.path, "path_interpolate", dtype: t,
                     [.int(n), .int(m), .int(d), .buffer(bf[1]), .int(x.offset), .buffer(bf[2]), .int(base.offset), .int(baseStride),
                      .buffer(bf[3]), .int(alphas.offset), .buffer(bf[0]), .int(y.offset)], n: n * m * d)
    }

    public func pathActivationWithDerivative(_ kind: Activation, n: Int, m: Int, d: Int, x: BufferView, base: BufferView, baseStride: Int,
                                             alphas: BufferView, y: BufferView, derivative: BufferView) throws -> Bool {
        let (t, bf) = try operands("pathActivationWithDerivative",
                                   [(y, n * m * d), (x, n * d), (base, (n - 1) * baseStride + d), (alphas, m), (derivative, n * m * d)])
        try launch1D(.path, "path_activation", dtype: t,
                     [.int(n), .int(m), .int(d), .int(Int(kind.rawValue)), .buffer(bf[1]), .int(x.offset), .buffer(bf[2]), .int(base.offset),
                      .int(baseStride), .buffer(bf[3]), .int(alphas.offset), .buffer(bf[0]), .int(y.offset), .buffer(bf[4]), .int(derivative.offset)],
                     n: n * m * d)
        return true
    }

    public func pathWeightedSumTimes(n: Int, m: Int, d: Int, g: BufferView, multiplier: BufferView, weights: BufferView, y: BufferView) throws -> Bool {
        let (t, bf) = try operands("pathWeightedSumTimes", [(y, n * d), (g, n * m * d), (multiplier, n * m * d), (weights, m)])
        try launch1D(.path, "path_weighted_sum_times", dtype: t,
                     [.int(n), .int(m), .int(d), .buffer(bf[1]), .int(g.offset), .buffer(bf[2]), .int(multiplier.offset),
                      .buffer(bf[3]), .int(weights.offset), .buffer(bf[0]), .int(y.offset)], n: n * d)
        return true
    }

    public func pathWeightedSum(n: Int, m: Int, d: Int, g: BufferView, weights: BufferView, y: BufferView) throws {
        let (t, bf) = try operands("pathWeightedSum", [(y, n * d), (g, n * m * d), (weights, m)])
        try launch1D(.path, "path_weighted_sum", dtype: t,
                     [.int(n), .int(m), .int(d), .buffer(bf[1]), .int(g.offset), .buffer(bf[2]), .int(weights.offset),
                      .buffer(bf[0]), .int(y.offset)], n: n * d)
    }
}
