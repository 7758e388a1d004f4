import Dispatch

/// A closure handed to worker threads. The loops it runs write disjoint
/// ranges of their buffers, which is what makes sharing it sound.
private struct UncheckedBody: @unchecked Sendable {
    let run: (Range<Int>) -> Void
}

/// Runs body(range) over 0..<n in chunks spread over the cores; small n runs inline,
/// since a dispatch costs more than a few thousand flops.
func parallelChunks(_ n: Int, grain: Int = 1 << 15, _ body: (Range<Int>) -> Void) {
    // One thread (OPENBLAS_NUM_THREADS=1): inline. The pool has no workers then, and
    // Dispatch would have run the chunks on every core anyway.
    let chunks = CPUDevice.threadCount == 1 ? 1 : min((n + grain - 1) / grain, CPUDevice.threadCount * 4)
    if chunks <= 1 { body(0..<n); return }
    let size = (n + chunks - 1) / chunks
    withoutActuallyEscaping(body) { escaping in
        let box = UncheckedBody(run: escaping)
        let chunk: @Sendable (Int) -> Void = { c in
            let lo = c * size, hi = min(n, lo + size)
            if lo < hi { box.run(lo..<hi) }
        }
        // The spinning pool first (WorkerPool.swift); Dispatch when it is busy.
        // Either way every chunk has run when this returns, so the body does not escape.
        if !WorkerPool.shared.run(chunks: chunks, chunk) { DispatchQueue.concurrentPerform(iterations: chunks, execute: chunk) }
    }
}

/// Runs body(i) for each i in 0..<n, the workers claiming one index at a time: for loops
/// whose iterations are long (an input's whole IG path), where parallelChunks' few large
/// chunks could leave a thread idle for a chunk's length at the end.
func parallelEach(_ n: Int, _ body: (Int) -> Void) {
    if CPUDevice.threadCount == 1 || n <= 1 || n > WorkerPool.maxChunks { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { escaping in
        let box = UncheckedIndexBody(run: escaping)
        let each: @Sendable (Int) -> Void = { box.run($0) }
        if !WorkerPool.shared.run(chunks: n, each) { DispatchQueue.concurrentPerform(iterations: n, execute: each) }
    }
}

private struct UncheckedIndexBody: @unchecked Sendable {
    let run: (Int) -> Void
}
