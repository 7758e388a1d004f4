// Products on the CPU backend: OpenBLAS runs single-threaded (see
// CPUDevice.threadCount) and each product is split here into one block per
// worker, so products and loops share one set of threads.

extension CPUKernels {
    /// Below this many multiply-adds a product runs in the caller: a dispatch
    /// costs about as much as a few hundred thousand flops.
    static var splitThreshold: Int { 1 << 17 }

    /// Every product of a (possibly batched) GEMMArguments, spread over the workers:
    /// a batch of at least as many products as workers goes one product per task,
    /// otherwise each product is split in blocks of C.
    static func gemm(_ g: GEMMArguments, _ a: P, _ b: P, _ c: P) {
        let workers = CPUDevice.threadCount
        if g.batch >= workers && workers > 1 && g.m * g.n * g.k * g.batch >= splitThreshold {
            parallelChunks(g.batch, grain: 1) { r in
                for i in r { block(g, a + i * g.strideA, b + i * g.strideB, c + i * g.strideC, rows: 0..<g.m, cols: 0..<g.n) }
            }
            return
        }
        for i in 0..<g.batch { split(g, a + i * g.strideA, b + i * g.strideB, c + i * g.strideC, workers: workers) }
    }

    /// One product C[m×n] = α·op(A)·op(B) + β·C in `workers` blocks. The split runs
    /// along n when m < n and along m otherwise: each block packs its own copy of
    /// the operand that is not split, so the smaller one is the one repeated.
    static func split(_ g: GEMMArguments, _ a: P, _ b: P, _ c: P, workers: Int) {
        let alongN = g.m < g.n
        if g.m * g.n * g.k >= splitThreshold, inBlocks(alongN ? g.n : g.m, workers: workers, { r in
            if alongN { block(g, a, b, c, rows: 0..<g.m, cols: r) } else { block(g, a, b, c, rows: r, cols: 0..<g.n) }
        }) { return }
        block(g, a, b, c, rows: 0..<g.m, cols: 0..<g.n)
    }

    /// Products sharing m, none transposing A, in blocks of rows of C: each worker runs
    /// every product, in order, for its block, so they meet the workers once. Only where
    /// `split` would cut each product into those same row blocks: OpenBLAS's results
    /// depend on the block shapes it is called with (its edge tiles round differently),
    /// so the same blocks (both cut by `inBlocks`) make the results bitwise those of the
    /// products one by one.
    static func gemmRows(_ gs: [GEMMArguments], _ ptrs: [(P, P, P)]) {
        let workers = CPUDevice.threadCount
        if gs.allSatisfy({ $0.m >= $0.n && $0.m * $0.n * $0.k >= splitThreshold }), inBlocks(gs[0].m, workers: workers, { r in
            for (g, p) in zip(gs, ptrs) { block(g, p.0, p.1, p.2, rows: r, cols: 0..<g.n) }
        }) { return }
        for (g, p) in zip(gs, ptrs) { split(g, p.0, p.1, p.2, workers: workers) }
    }

    /// Runs body over the blocks an extent of rows or columns is cut into for `workers`,
    /// in parallel, and returns true; false, with nothing run, where it stays one block.
    /// Block edges are multiples of 16, the widest OpenBLAS micro-tile here.
    static func inBlocks(_ extent: Int, workers: Int, _ body: (Range<Int>) -> Void) -> Bool {
        let parts = min(workers, extent / 16)
        guard parts > 1 else { return false }
        let size = ((extent + parts - 1) / parts + 15) / 16 * 16
        parallelChunks(parts, grain: 1) { r in
            for p in r {
                let lo = p * size, hi = min(extent, lo + size)
                if lo < hi { body(lo..<hi) }
            }
        }
        return true
    }

    /// Rows `rows` and columns `cols` of C, by one single-threaded OpenBLAS call.
    /// Row-major: row i of op(A) starts at a + i·lda (or column i of A, a + i, when
    /// transposed); column j of op(B) at b + j (or b + j·ldb when transposed).
    static func block(_ g: GEMMArguments, _ a: P, _ b: P, _ c: P, rows: Range<Int>, cols: Range<Int>) {
        let aBlock = a + (g.transA ? rows.lowerBound : rows.lowerBound * g.lda)
        let bBlock = b + (g.transB ? cols.lowerBound * g.ldb : cols.lowerBound)
        let cBlock = c + rows.lowerBound * g.ldc + cols.lowerBound
        T.gemm(g.transA, g.transB, rows.count, cols.count, g.k, T(g.alpha), aBlock, g.lda, bBlock, g.ldb, T(g.beta), cBlock, g.ldc)
    }
}
