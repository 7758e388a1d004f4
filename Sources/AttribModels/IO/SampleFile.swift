import AttribCore

extension NPY {
    /// Reads a .npy of samples for a model (inputs, baselines, a baseline set): shape [N] +
    /// `sampleShape`, or [N, its element count] (the flat form), N ≥ 1, every value finite.
    /// Errors name the file, the shapes, and the sample and element at fault. Sizes are
    /// compared, never multiplied, so a (2^58, 0) array is an error, not an overflow.
    /// `limit`: only the first `limit` samples are read (and checked).
    public static func samples(_ path: String, sampleShape shape: [Int], what: String, limit: Int? = nil) throws -> (rows: Int, values: [Double]) {
        let a = try NPY.read(path, rows: limit)
        let size = shape.reduce(1, *)
        guard let rows = a.shape.first, rows >= 1, Array(a.shape.dropFirst()) == shape || a.shape.dropFirst() == [size] else {
            throw AttribError.shapeMismatch(op: path, detail: "\(what) have shape \(a.shape); the model takes [N] + \(shape) (or [N, \(size)]) with N ≥ 1")
        }
        try HostMemory.require(a.count * MemoryLayout<Double>.stride, for: path, "its \(a.count) values as Float64")
        let values = a.doubles()
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            let one = what.hasSuffix("s") ? String(what.dropLast()) : what
            throw AttribError.invalidArgument(op: path, detail: "\(one) \(bad / size) has a non-finite value (\(values[bad])) at element \(bad % size)")
        }
        return (rows, values)
    }
}
