/// Host memory for the CPU backend: 64-byte aligned, owned by the buffer.
public final class CPUBuffer: DeviceBuffer, @unchecked Sendable {
    public let count: Int
    public let dtype: DType
    let pointer: UnsafeMutableRawPointer

    init(count: Int, dtype: DType) {
        self.count = count
        self.dtype = dtype
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count * dtype.size, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }

    /// Typed pointer to element `offset`.
    func typed<T>(_: T.Type, _ offset: Int) -> UnsafeMutablePointer<T> {
        pointer.assumingMemoryBound(to: T.self) + offset
    }
}
