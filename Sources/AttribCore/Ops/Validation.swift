// Checks shared by the Tensor ops: one place that turns a bad call into an
// error naming the op, the tensors and their shapes.

extension Tensor {
    /// Throws unless every tensor is on `self`'s device and has `self`'s dtype (a floating type).
    func checkCompatible(_ op: String, _ others: [(String, Tensor)], floating: Bool = true) throws {
        // BFloat16 and Float16 are stored, never computed in: only `widened()` and a gather
        // from a half table read them.
        if (floating && !dtype.isFloatingPoint) || dtype.isStorageOnly {
            throw AttribError.unsupportedDType(op: op, dtype: dtype, device: device.info.summary)
        }
        for (name, t) in others {
            guard t.device === device else {
                throw AttribError.deviceMismatch(op: op, detail: "\(name) is on \(t.device.info.id), the first operand on \(device.info.id)")
            }
            guard t.dtype == dtype else {
                throw AttribError.shapeMismatch(op: op, detail: "\(name) is \(t.dtype), the first operand \(dtype)")
            }
        }
    }

    /// Throws unless `other` has exactly this tensor's shape.
    func checkSameShape(_ op: String, _ name: String, _ other: Tensor) throws {
        guard other.shape == shape else {
            throw AttribError.shapeMismatch(op: op, detail: "\(name) has shape \(other.shape), expected \(shape)")
        }
    }

    /// The tensor as rows × cols, cols being the last dimension.
    var rowsAndColumns: (rows: Int, cols: Int) {
        let cols = shape.last!
        return (count / cols, cols)
    }

    /// A new tensor of the same dtype on the same device.
    func like(_ shape: [Int]) throws -> Tensor {
        try Tensor(shape: shape, dtype: dtype, on: device)
    }
}
