// Row gather (embedding lookup) and scatter-add (its gradient).

/// Int32 indices on a device, with their range recorded at upload so ops can
/// check them against a table without reading the device back.
public struct IndexTensor: Sendable {
    public let tensor: Tensor
    public let minimum: Int32
    public let maximum: Int32

    /// Uploads `values` (shape [values.count]).
    public init(_ values: [Int32], on device: any Device) throws {
        guard let lo = values.min(), let hi = values.max() else {
            throw AttribError.emptyTensor(op: "IndexTensor", shape: [0])
        }
        tensor = try Tensor(indices: values, shape: [values.count], on: device)
        minimum = lo; maximum = hi
    }

    public var count: Int { tensor.count }

    func check(_ op: String, rows: Int) throws {
        guard minimum >= 0, Int(maximum) < rows else {
            throw AttribError.indexOutOfRange(op: op, detail: "indices span \(minimum)...\(maximum), the table has \(rows) rows")
        }
    }
}

extension Tensor {
    /// out[i, :] = self[indices[i], :] for a 2-D table: [n] → [n, cols]. A BFloat16 or Float16
    /// table gives Float32 rows.
    public func gatherRows(_ indices: IndexTensor) throws -> Tensor {
        let op = "gatherRows"
        if !dtype.isStorageOnly { try checkCompatible(op, []) }
        guard rank == 2 else { throw AttribError.shapeMismatch(op: op, detail: "table has shape \(shape), expected 2-D [rows, cols]") }
        guard indices.tensor.device === device else {
            throw AttribError.deviceMismatch(op: op, detail: "indices on \(indices.tensor.device.info.id), table on \(device.info.id)")
        }
        try indices.check(op, rows: shape[0])
        // A 16-bit table's rows arrive widened to Float32.
        let out = try Tensor(shape: [indices.count, shape[1]], dtype: dtype.isStorageOnly ? .float32 : dtype, on: device)
        try device.gatherRows(n: indices.count, cols: shape[1], indices: indices.tensor.storage, table: storage, y: out.storage)
        return out
    }

    /// self[indices[i], :] += source[i, :], summed in order of i.
    public func scatterAddRows(_ indices: IndexTensor, _ source: Tensor) throws {
        let op = "scatterAddRows"
        try checkCompatible(op, [("source", source)])
        guard rank == 2 else { throw AttribError.shapeMismatch(op: op, detail: "table has shape \(shape), expected 2-D [rows, cols]") }
        guard source.shape == [indices.count, shape[1]] else {
            throw AttribError.shapeMismatch(op: op, detail: "source has shape \(source.shape), expected [\(indices.count), \(shape[1])]")
        }
        guard indices.tensor.device === device else {
            throw AttribError.deviceMismatch(op: op, detail: "indices on \(indices.tensor.device.info.id), table on \(device.info.id)")
        }
        try indices.check(op, rows: shape[0])
        try device.scatterAddRows(n: indices.count, cols: shape[1], indices: indices.tensor.storage,
                                  source: source.storage, table: storage)
    }
}
