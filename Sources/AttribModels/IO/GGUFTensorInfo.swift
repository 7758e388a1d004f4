/// One tensor of a GGUF file, as its tensor info describes it (validated against the file).
public struct GGUFTensorInfo: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    /// The dimensions as GGUF lists them, fastest-varying first: dims[0] (ggml's ne[0]) is the
    /// length of a row. A Linear weight of PyTorch shape [out, in] has dims [in, out].
    public let dims: [Int]
    public let type: GGMLType
    /// Where the data starts, relative to the data section (a multiple of the file's alignment).
    public let offset: Int
    public let elementCount: Int
    /// Bytes of data (whole blocks: a row holds rowLength / blockSize of them).
    public let byteCount: Int

    /// How many rows: the product of every dimension but the first.
    public let rowCount: Int
    /// Bytes per row.
    public let rowBytes: Int

    /// The dimensions in PyTorch (row-major, slowest first) order: dims reversed.
    public var shape: [Int] { dims.reversed() }
    /// Elements per row (dims[0]; 1 for a scalar).
    public var rowLength: Int { dims.first ?? 1 }

    public var description: String { "'\(name)' (\(type), dims \(dims), shape \(shape))" }
}
