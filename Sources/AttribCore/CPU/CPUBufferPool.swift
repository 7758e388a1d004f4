#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Freed CPU buffers kept for reuse, keyed by their exact byte count.
///
/// Why: a sweep allocates the same activation sizes batch after batch. Blocks
/// past glibc's mmap threshold (32 MiB at most) come from fresh mmaps, so
/// every batch would page-fault and zero its memory again; measured, that was
/// about a tenth of an IG sweep on the digits CNN. Reusing the blocks makes a
/// steady-state sweep allocation-free.
///
/// Bound: at most `capacity` bytes wait here: half the memory available at start, at least
/// 256 MiB. A transformer's batch holds gigabytes of activations and frees them in its backward
/// while it allocates gradients of the same sizes. When the cache is full, the sizes used least
/// recently are freed, a block at a time, until the new block fits: the sizes a sweep is using
/// stay, those it has moved on from go. (The pool this replaced, capped at 4 GiB, dropped
/// everything at the first miss past its capacity; on BERT-base it then faulted each batch's
/// memory in afresh, and the kernel zeroing pages took half the time: layer IG, 4 inputs, m = 32,
/// batches of 32 rows: 45.5 s, 34 s of it in the kernel.) Memory in use never exceeds live buffers
/// + capacity, and in a steady sweep the cached blocks are the ones its next batch takes.
final class CPUBufferPool: Sendable {
    static let shared = CPUBufferPool(capacity: max(256 << 20, (HostMemory.availableBytes() ?? 0) / 2))

    let capacity: Int
    /// Blocks are held as addresses: a raw pointer is not Sendable, so it cannot
    /// cross into the mutex's state.
    private struct State {
        var free: [Int: [UInt]] = [:]
        /// When each size was last taken or given (a counter of those calls).
        var lastUse: [Int: UInt64] = [:]
        var clock: UInt64 = 0
        var cachedBytes = 0
    }
    private let state = Mutex(State())
    static let alignment = 64

    init(capacity: Int) { self.capacity = capacity }

    /// A block of `bytes` bytes (64-byte aligned), reused when one of that size is cached.
    func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        let reused: UInt? = state.withLock { s in
            s.clock += 1
            s.lastUse[bytes] = s.clock
            if var list = s.free[bytes], let p = list.popLast() {
                s.free[bytes] = list.isEmpty ? nil : list
                s.cachedBytes -= bytes
                return p
            }
            // A miss: the fresh block joins the cache when freed, so make room for it now
            // (unless it never will: a block larger than the capacity is freed when given back).
            if bytes <= capacity { Self.evict(&s, toFit: bytes, capacity: capacity) }
            return nil
        }
        if let reused, let p = UnsafeMutableRawPointer(bitPattern: reused) { return p }
        return Self.fresh(bytes)
    }

    /// Blocks of at least this many bytes are 2 MiB-aligned, and advised for transparent huge
    /// pages where ATTRIB_HUGE_PAGES=1. Off by default: which is faster depends on the host. On
    /// the KVM development VM (THP "madvise", no compaction stalls) the advice doubled layer IG on
    /// BERT-base with one batch of fresh activations (1 input, m = 16: 9.9–10.8 s against
    /// 5.3 s, sys time 11–13 s against 3 s), and left a steady sweep unchanged (ViT-B/16 IG,
    /// 1 row per batch: 4.5 s either way); an earlier build there had measured the opposite.
    static let hugeThreshold = 4 << 20
    static let hugePages = getenv("ATTRIB_HUGE_PAGES").map { String(cString: $0) == "1" } ?? false

    static func fresh(_ bytes: Int) -> UnsafeMutableRawPointer {
        guard bytes >= hugeThreshold else { return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: alignment) }
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 2 << 20)
        #if canImport(Glibc)
        if hugePages { _ = madvise(p, (bytes + 4095) & ~4095, MADV_HUGEPAGE) }       // advice only: ignored where THP is off
        #endif
        return p
    }

    /// Returns a block from `take` for reuse, freeing the least recently used sizes' blocks as
    /// needed to keep it; a block larger than the whole capacity is freed at once.
    func give(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        let address = UInt(bitPattern: p)
        let kept: Bool = state.withLock { s in
            guard bytes <= capacity else { return false }
            s.clock += 1
            s.lastUse[bytes] = s.clock
            Self.evict(&s, toFit: bytes, capacity: capacity)
            s.free[bytes, default: []].append(address)
            s.cachedBytes += bytes
            return true
        }
        if !kept { p.deallocate() }
    }

    /// Frees every cached block.
    func trim() { state.withLock { Self.drain(&$0) } }

    /// Bytes waiting for reuse.
    var cachedBytes: Int { state.withLock { $0.cachedBytes } }

    private static func drain(_ s: inout State) {
        for (_, list) in s.free { for a in list { UnsafeMutableRawPointer(bitPattern: a)?.deallocate() } }
        s.free = [:]
        s.cachedBytes = 0
    }

    /// Frees cached blocks, those of the least recently used size first, until `bytes` more fit.
    private static func evict(_ s: inout State, toFit bytes: Int, capacity: Int) {
        while s.cachedBytes + bytes > capacity, let size = s.free.keys.min(by: { s.lastUse[$0, default: 0] < s.lastUse[$1, default: 0] }) {
            var list = s.free[size]!
            UnsafeMutableRawPointer(bitPattern: list.removeLast())?.deallocate()
            s.free[size] = list.isEmpty ? nil : list
            s.cachedBytes -= size
        }
    }
}
