import Synchronization

/// Freed CPU buffers kept for reuse, keyed by their exact byte count.
///
/// Why: a sweep allocates the same activation sizes batch after batch. Blocks
/// past glibc's mmap threshold (32 MiB at most) come from fresh mmaps, so
/// every batch would page-fault and zero its memory again; measured, that was
/// about a tenth of an IG sweep on the digits CNN. Reusing the blocks makes a
/// steady-state sweep allocation-free.
///
/// Bound: at most `capacity` bytes wait here. A buffer that does not fit is
/// freed at once, and a miss that would push the cache past the capacity
/// first frees everything cached (the sweep has moved on to other sizes), so
/// memory in use never exceeds live buffers + capacity.
final class CPUBufferPool: Sendable {
    static let shared = CPUBufferPool(capacity: 256 << 20)

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
        return UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.alignment)
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
