// Softmax and log-softmax over the last dimension, and their backward.

extension Tensor {
    public func softmax() throws -> Tensor { try softmaxForward(log: false) }
    public func logSoftmax() throws -> Tensor { try softmaxForward(log: true) }

    private func softmaxForward(log: Bool) throws -> Tensor {
        try checkCompatible(log ? "logSoftmax" : "softmax", [])
        let (rows, cols) = rowsAndColumns
        let out = try like(shape)
        try device.softmax(log: log, rows: rows, cols: cols, x: storage, y: out.storage)
        return out
    }

    /// The input gradient of softmax, self being its output.
    public func softmaxBackward(upstream dy: Tensor) throws -> Tensor { try softmaxBackward(log: false, dy) }
    /// The input gradient of log-softmax, self being its output.
    public func logSoftmaxBackward(upstream dy: Tensor) throws -> Tensor { try softmaxBackward(log: true, dy) }

    private func softmaxBackward(log: Bool, _ dy: Tensor) throws -> Tensor {
        let op = log ? "logSoftmaxBackward" : "softmaxBackward"
        try checkCompatible(op, [("upstream gradient", dy)])
        try checkSameShape(op, "upstream gradient", dy)
        let (rows, cols) = rowsAndColumns
        let dx = try like(shape)
        try device.softmaxBackward(log: log, rows: rows, cols: cols, y: storage, dy: dy.storage, dx: dx.storage)
        return dx
    }
}
