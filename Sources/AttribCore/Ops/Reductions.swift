// Row reductions: the last dimension is reduced, the others kept as rows.

extension Tensor {
    /// Σ, max or mean over the last dimension: shape [..., c] → [...] (rank-1 input → [1]).
    public func reduceRows(_ op: RowReduction) throws -> Tensor {
        try checkCompatible("row\(op.rawValue.capitalized)", [])
        let (rows, cols) = rowsAndColumns
        let out = try like(rank > 1 ? Array(shape.dropLast()) : [1])
        try device.rowReduce(op, rows: rows, cols: cols, x: storage, y: out.storage)
        return out
    }
}
