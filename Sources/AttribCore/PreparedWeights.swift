#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A device's copies of one layer's weight in the layouts its kernels read (oneDNN's blocked
/// layouts on the CPU), made on first use and kept for the layer's life. The layer owns it
/// beside its weight, which must not change after the first call that reads the weight
/// through it (a layer's weights are fixed once it is made).
///
/// Why: ResNet-50's convolutions reordered their weights in every call, 10% of a sweep.
public final class PreparedWeights: @unchecked Sendable {
    /// (layout key, copy): the key is the device's handle for a layout, compared by the device.
    /// Guarded by `lock` (a pthread mutex: the lookup runs the caller's closures, which
    /// Synchronization's Mutex would have to take as sending).
    private var copies: [(key: OpaquePointer, data: UnsafeMutableRawPointer)] = []
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    public init() { pthread_mutex_init(lock, nil) }

    deinit {
        for c in copies { free(c.data) }
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// The copy whose layout `same(key)` accepts, else one of `bytes` bytes (64-byte aligned)
    /// filled by `fill` and kept under `key`. Nil where it cannot be allocated or filled.
    public func copy(key: OpaquePointer, bytes: Int, same: (OpaquePointer) -> Bool,
                     fill: (UnsafeMutableRawPointer) -> Bool) -> UnsafeRawPointer? {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if let c = copies.first(where: { same($0.key) }) { return UnsafeRawPointer(c.data) }
        var p: UnsafeMutableRawPointer?
        guard bytes > 0, posix_memalign(&p, 64, bytes) == 0, let data = p else { return nil }
        guard fill(data) else { free(data); return nil }
        copies.append((key, data))
        return UnsafeRawPointer(data)
    }

    /// How many copies it holds (one per layout asked for).
    public var count: Int {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return copies.count
    }
}
