import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

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
    // Inside a thread tile (CPUDevice.eachTile) every thread is busy with its own tile: inline.
    let chunks = CPUDevice.threadCount == 1 || ParallelNesting.inside ? 1 : min((n + grain - 1) / grain, CPUDevice.threadCount * 4)
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
    if CPUDevice.threadCount == 1 || n <= 1 || n > WorkerPool.maxChunks || ParallelNesting.inside { for i in 0..<n { body(i) }; return }
    withoutActuallyEscaping(body) { escaping in
        let box = UncheckedIndexBody(run: escaping)
        let each: @Sendable (Int) -> Void = { box.run($0) }
        if !WorkerPool.shared.run(chunks: n, each) { DispatchQueue.concurrentPerform(iterations: n, execute: each) }
    }
}

private struct UncheckedIndexBody: @unchecked Sendable {
    let run: (Int) -> Void
}

/// Whether the calling thread runs one tile of `CPUDevice.eachTile`: then every worker has a
/// tile of its own, and the loops and products inside run in the calling thread (a pthread
/// key: the tiles run on the pool's threads, not in Swift tasks).
enum ParallelNesting {
    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()
    static var inside: Bool { pthread_getspecific(key) != nil }
    static func inside<T>(_ body: () throws -> T) rethrows -> T {
        let was = pthread_getspecific(key)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: 1))
        defer { pthread_setspecific(key, was) }
        return try body()
    }
}

extension CPUDevice {
    /// Runs body(i) for i in 0..<n, one tile per worker thread at a time, each tile with every
    /// loop and product inside it on its own thread (single-threaded OpenBLAS calls): for work
    /// that splits into independent tiles, such as a batch's inputs through a whole graph.
    /// Why: a small model's ops last microseconds, and splitting each over the threads cost a
    /// hand-off and a wait per op; a tile per thread keeps its rows in that core's cache from
    /// op to op, and the threads meet once per batch. The results in order of i; the first
    /// error any tile threw is rethrown once all have finished.
    public static func eachTile<T: Sendable>(_ n: Int, _ body: (Int) throws -> T) throws -> [T] {
        let results = Mutex<[Int: Result<T, any Error>]>([:])
        parallelEach(n) { i in
            let r = Result { try ParallelNesting.inside { try body(i) } }
            results.withLock { $0[i] = r }
        }
        return try results.withLock { all in try (0..<n).map { try all[$0]!.get() } }
    }
}
