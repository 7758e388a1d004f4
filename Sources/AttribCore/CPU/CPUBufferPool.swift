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
/// Bound: at most `capacity` bytes wait here: an eighth of the memory available at start, at
/// most 4 GiB, at least 256 MiB. A transformer's batch holds gigabytes of activations (BERT-base,
/// 32 rows of 128 tokens); with 256 MiB each batch faulted its memory in afresh, and the kernel
/// zeroing pages took a third of the time (layer IG on BERT-base, 4 inputs, m = 32: 54.2 s
/// with 256 MiB, 47.7 s with 4 GiB). A buffer that does not fit is
/// freed at once, and a miss that would push the cache past the capacity
/// first frees everything cached (the sweep has moved on to other sizes), so
/// memory in use never exceeds live buffers + capacity.
final class CPUBufferPool: Sendable {
    static let shared = CPUBufferPool(capacity: min(4 << 30, max(256 << 20, (HostMemory.availableBytes() ?? 0) / 8)))

    let capacity: Int
    /// Blocks are held as addresses: a raw pointer is not Sendable, so it cannot
    /// cross into the mutex's state.
    private struct State {
        var free: [Int: [UInt]] = [:]
        var cachedBytes = 0
    }
    private let state = Mutex(State())
    static let alignment = 64

    init(capacity: Int) { self.capacity = capacity }

    /// A block of `bytes` bytes (64-byte aligned), reused when one of that size is cached.
    func take(_ bytes: Int) -> UnsafeMutableRawPointer {
        let reused: UInt? = state.withLock { s in
            if var list = s.free[bytes], let p = list.popLast() {
                s.free[bytes] = list.isEmpty ? nil : list
                s.cachedBytes -= bytes
                return p
            }
            if s.cachedBytes + bytes > capacity { Self.drain(&s) }
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

    /// Returns a block from `take` for reuse, or frees it when the cache is full.
    func give(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        let address = UInt(bitPattern: p)
        let kept: Bool = state.withLock { s in
            guard s.cachedBytes + bytes <= capacity else { return false }
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
}
