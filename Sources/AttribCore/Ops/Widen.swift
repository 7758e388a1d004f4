// Widening a 16-bit storage tensor (BFloat16, Float16) to Float32.

extension Tensor {
    /// This BFloat16 or Float16 tensor as Float32, same shape: exact.
    public func widened() throws -> Tensor {
        guard dtype.isStorageOnly else {
            throw AttribError.unsupportedDType(op: "widened", dtype: dtype, device: device.info.summary)
        }
        let out = try Tensor(shape: shape, dtype: .float32, on: device)      // every element written
        try device.widen(n: count, x: storage, y: out.storage)
        return out
    }
}
