// Elementwise ops on Tensors of one shape: add, sub, mul, scale, axpy,
// fill, copy; and the bias add with its gradient.

extension Tensor {
    public func adding(_ other: Tensor) throws -> Tensor { try binary(.add, other) }
    public func subtracting(_ other: Tensor) throws -> Tensor { try binary(.sub, other) }
    public func multiplying(_ other: Tensor) throws -> Tensor { try binary(.mul, other) }

    /// A new tensor holding self `op` other.
    public func binary(_ op: BinaryOp, _ other: Tensor) throws -> Tensor {
        let out = try like(shape)
        try binary(op, other, into: out)
        return out
    }

    /// out = self `op` other; `out` may be self or other.
    public func binary(_ op: BinaryOp, _ other: Tensor, into out: Tensor) throws {
        try checkCompatible(op.rawValue, [("right operand", other), ("output", out)])
        try checkSameShape(op.rawValue, "right operand", other)
        try checkSameShape(op.rawValue, "output", out)
        try device.binary(op, n: count, a: storage, b: other.storage, y: out.storage)
    }

    /// A new tensor holding alpha·self.
    public func scaled(by alpha: Double) throws -> Tensor {
        let out = try like(shape)
        try scale(by: alpha, into: out)
        return out
    }

    /// out = alpha·self.
    public func scale(by alpha: Double, into out: Tensor) throws {
        try checkCompatible("scale", [("output", out)])
        try checkSameShape("scale", "output", out)
        try device.scale(n: count, alpha: alpha, x: storage, y: out.storage)
    }

    /// self += alpha·x.
    public func axpy(_ alpha: Double, _ x: Tensor) throws {
        try checkCompatible("axpy", [("x", x)])
        try checkSameShape("axpy", "x", x)
        try device.axpy(n: count, alpha: alpha, x: x.storage, y: storage)
    }

    /// Sets every element to `value`.
    public func fill(_ value: Double) throws {
        try checkCompatible("fill", [])
        try device.fill(n: count, value: value, y: storage)
    }

    /// out = self (same shape, same device).
    public func copy(into out: Tensor) throws {
        try checkCompatible("copy", [("output", out)], floating: false)
        try checkSameShape("copy", "output", out)
        try device.copy(n: count, x: storage, y: out.storage)
    }

    /// self[r, c] += bias[c] with self seen as rows × cols, cols = bias.count = the last dimension.
    public func addBias(_ bias: Tensor) throws {
        try checkCompatible("biasAdd", [("bias", bias)])
        let (rows, cols) = rowsAndColumns
        guard bias.count == cols, bias.rank == 1 else {
            throw AttribError.shapeMismatch(op: "biasAdd", detail: "bias has shape \(bias.shape), expected [\(cols)] for a tensor of shape \(shape)")
        }
        try device.biasAdd(rows: rows, cols: cols, bias: bias.storage, y: storage)
    }

    /// The bias gradient: Σ over rows, as a [cols] tensor.
    public func columnSums() throws -> Tensor {
        let out = try like([rowsAndColumns.cols])
        try columnSums(beta: 0, into: out)
        return out
    }

    /// out = beta·out + Σ over rows (accumulating bias gradients when beta = 1).
    public func columnSums(beta: Double, into out: Tensor) throws {
        try checkCompatible("columnSum", [("output", out)])
        let (rows, cols) = rowsAndColumns
        guard out.count == cols, out.rank == 1 else {
            throw AttribError.shapeMismatch(op: "columnSum", detail: "output has shape \(out.shape), expected [\(cols)]")
        }
        try device.columnSum(rows: rows, cols: cols, x: storage, beta: beta, y: out.storage)
    }
}
