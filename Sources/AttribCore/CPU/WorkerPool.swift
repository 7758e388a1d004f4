#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The CPU backend's worker threads: threadCount − 1 persistent threads plus
/// the caller, which share each parallel loop's chunks.
///
/// Why not Dispatch alone: an IG sweep on a small model is a few dozen short
/// ops per batch, and Dispatch's workers sleep between them, so each op paid a
/// thread wake-up (tens of µs) several times over its own cost. These workers
/// spin for a short while after each job (as OpenBLAS's and OpenMP's do), then
/// sleep on a condition variable.
///
/// Protocol: one 64-bit word holds (generation, chunk count, next chunk). A
/// worker claims a chunk by compare-and-swap on the word for the generation it
/// saw, so a worker that wakes late can never run a chunk of a job that has
/// moved on; the job's body is read only after a successful claim, while the
/// caller is still waiting for that chunk. One job runs at a time: a loop
/// started while the pool is busy (a nested loop, or a second thread's) runs
/// on Dispatch instead.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool(threads: CPUDevice.threadCount)

    let threads: Int
    private let word = Atomic<UInt64>(0)          // generation << 40 | chunks << 20 | next
    private let remaining = Atomic<Int>(0)         // chunks of the current job not yet finished
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private var body: ((Int) -> Void)?             // written only while no chunk can be claimed
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// Atomic loads before a worker sleeps (about 100–200 µs). Computed constants, not
    /// `static let`: a stored static is read through swift_once, which showed up at 4%
    /// of a sweep's samples from the spin loop alone.
    static var spinLimit: Int { 1 << 17 }
    static var maxChunks: Int { (1 << 20) - 1 }

    private init(threads: Int) {
        self.threads = threads
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
        for _ in 1..<max(1, threads) {
            var t = pthread_t()
            let context = Unmanaged.passUnretained(self).toOpaque()
            pthread_create(&t, nil, { ctx in
                Unmanaged<WorkerPool>.fromOpaque(ctx!).takeUnretainedValue().workerLoop()
                return nil
            }, context)
            pthread_detach(t)
        }
    }

    private static func fields(_ w: UInt64) -> (gen: UInt64, chunks: Int, next: Int) {
        (w >> 40, Int((w >> 20) & 0xFFFFF), Int(w & 0xFFFFF))
    }

    /// Runs body(c) for c in 0..<chunks over the pool; false (nothing run) when the
    /// pool is busy or the job does not fit, and the caller must run it another way.
    func run(chunks: Int, _ body: @escaping (Int) -> Void) -> Bool {
        guard threads > 1, chunks >= 1, chunks <= Self.maxChunks,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        let gen = (Self.fields(word.load(ordering: .relaxed)).gen + 1) & 0xFFFFFF
        self.body = body
        remaining.store(chunks, ordering: .relaxed)
        word.store(gen << 40 | UInt64(chunks) << 20, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
            pthread_mutex_lock(mutex); pthread_cond_broadcast(cond); pthread_mutex_unlock(mutex)
        }
        work(gen)
        while remaining.load(ordering: .acquiring) > 0 {}
        self.body = nil
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Claims and runs chunks of generation `gen` until none is left.
    private func work(_ gen: UInt64) {
        while true {
            let w = word.load(ordering: .acquiring)
            let f = Self.fields(w)
            if f.gen != gen || f.next >= f.chunks { return }
            guard word.compareExchange(expected: w, desired: w + 1, ordering: .acquiringAndReleasing).exchanged else { continue }
            body!(f.next)
            remaining.subtract(1, ordering: .releasing)
        }
    }

    private func workerLoop() {
        var seen = Self.fields(word.load(ordering: .acquiring)).gen
        while true {
            var spins = 0
            var gen = Self.fields(word.load(ordering: .acquiring)).gen
            while gen == seen {
                spins += 1
                if spins >= Self.spinLimit {
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    pthread_mutex_lock(mutex)
                    while Self.fields(word.load(ordering: .sequentiallyConsistent)).gen == seen { pthread_cond_wait(cond, mutex) }
                    pthread_mutex_unlock(mutex)
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    spins = 0
                }
                gen = Self.fields(word.load(ordering: .acquiring)).gen
            }
            seen = gen
            work(gen)
        }
    }
}
