/// Host memory for the CPU backend: 64-byte aligned, owned by the buffer,
/// drawn from and returned to CPUBufferPool.
public final class CPUBuffer: DeviceBuffer, @unchecked Sendable {
    public let count: Int
    public let dtype: DType
    let pointer: UnsafeMutableRawPointer

    init(count: Int, dtype: DType) {
        self.count = count
        self.dtype = dtype
        pointer = CPUBufferPool.shared.take(max(count * dtype.size, 1))
    }

    deinit { CPUBufferPool.shared.give(pointer, max(count * dtype.size, 1)) }

    /// Typed pointer to element `offset`.
    func typed<T>(_: T.Type, _ offset: Int) -> UnsafeMutablePointer<T> {
        pointer.assumingMemoryBound(to: T.self) + offset
    }
}
