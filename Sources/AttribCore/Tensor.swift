/// A dense, row-major tensor living on one device. Creating one allocates;
/// `floats()`/`doubles()` download. Nothing moves between host and device
/// unless one of those (or an explicit init from host values) is called.
public struct Tensor: @unchecked Sendable {
    public let device: any Device
    public let shape: [Int]
    public let dtype: DType
    /// The storage and the element offset of this tensor's first element.
    public let storage: BufferView

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }

    /// An uninitialised tensor. Every dimension must be ≥ 1.
    public init(shape: [Int], dtype: DType = .float32, on device: any Device) throws {
        try Tensor.checkShape(shape, op: "Tensor")
        guard device.supports(dtype) else {
            throw AttribError.unsupportedDType(op: "Tensor", dtype: dtype, device: device.info.summary)
        }
        self.device = device
        self.shape = shape
        self.dtype = dtype
        self.storage = BufferView(try device.allocate(count: shape.reduce(1, *), dtype: dtype))
    }

    init(device: any Device, shape: [Int], dtype: DType, storage: BufferView) {
        self.device = device; self.shape = shape; self.dtype = dtype; self.storage = storage
    }

    /// A tensor filled with zeros.
    public static func zeros(_ shape: [Int], dtype: DType = .float32, on device: any Device) throws -> Tensor {
        let t = try Tensor(shape: shape, dtype: dtype, on: device)
        try t.fill(0)
        return t
    }

    /// Uploads Float32 values.
    public init(_ values: [Float], shape: [Int], on device: any Device) throws {
        try self.init(values, shape: shape, storedAs: .float32, on: device)
    }

    /// Uploads Float32 values as `dtype`: rounded to nearest even for .bfloat16 and .float16
    /// (weights stored at 16 bits), widened for .float64.
    public init(_ values: [Float], shape: [Int], storedAs dtype: DType, on device: any Device) throws {
        try self.init(shape: shape, dtype: dtype, on: device)
        try Tensor.checkCount(values.count, shape: shape)
        switch dtype {
        case .float32: try values.withUnsafeBytes { try device.upload($0, to: storage) }
        case .bfloat16, .float16: try HalfFloat.bits(values, dtype).withUnsafeBytes { try device.upload($0, to: storage) }
        case .float64: try values.map(Double.init).withUnsafeBytes { try device.upload($0, to: storage) }
        case .int32: throw AttribError.invalidArgument(op: "Tensor", detail: "use Tensor(indices:) for Int32 tensors")
        }
    }

    /// Uploads bit patterns of a 16-bit storage type as they are (a BF16 or F16 weight file's
    /// bytes: no rounding on the way).
    public init(halfBits values: [UInt16], shape: [Int], dtype: DType, on device: any Device) throws {
        guard dtype.isStorageOnly else {
            throw AttribError.invalidArgument(op: "Tensor", detail: "16-bit patterns given for a \(dtype) tensor")
        }
        try self.init(shape: shape, dtype: dtype, on: device)
        try Tensor.checkCount(values.count, shape: shape)
        try values.withUnsafeBytes { try device.upload($0, to: storage) }
    }

    /// Uploads Float64 values as `dtype` (Float64 by default; Float32 rounds).
    public init(_ values: [Double], shape: [Int], dtype: DType = .float64, on device: any Device) throws {
        try self.init(shape: shape, dtype: dtype, on: device)
        try Tensor.checkCount(values.count, shape: shape)
        switch dtype {
        case .float64: try values.withUnsafeBytes { try device.upload($0, to: storage) }
        case .float32: try values.map { Float($0) }.withUnsafeBytes { try device.upload($0, to: storage) }
        case .bfloat16, .float16:
            try HalfFloat.bits(values, dtype).withUnsafeBytes { try device.upload($0, to: storage) }
        case .int32: throw AttribError.invalidArgument(op: "Tensor", detail: "use Tensor(indices:) for Int32 tensors")
        }
    }

    /// Uploads Int32 indices.
    public init(indices values: [Int32], shape: [Int], on device: any Device) throws {
        try self.init(shape: shape, dtype: .int32, on: device)
        try Tensor.checkCount(values.count, shape: shape)
        try values.withUnsafeBytes { try device.upload($0, to: storage) }
    }

    /// Downloads as Float32 (Float64 tensors are rounded).
    public func floats() throws -> [Float] {
        switch dtype {
        case .float32:
            return try [Float](unsafeUninitializedCapacity: count) { buf, n in
                try device.download(storage, into: UnsafeMutableRawBufferPointer(buf)); n = count
            }
        case .float64: return try doubles().map { Float($0) }
        case .int32: return try int32s().map { Float($0) }
        case .bfloat16, .float16: return HalfFloat.floats(try halfBits(), dtype)
        }
    }

    /// Downloads as Float64 (Float32 values are widened exactly).
    public func doubles() throws -> [Double] {
        switch dtype {
        case .float64:
            return try [Double](unsafeUninitializedCapacity: count) { buf, n in
                try device.download(storage, into: UnsafeMutableRawBufferPointer(buf)); n = count
            }
        case .float32, .bfloat16, .float16: return try floats().map { Double($0) }
        case .int32: return try int32s().map { Double($0) }
        }
    }

    /// The bit patterns of a BFloat16 or Float16 tensor.
    public func halfBits() throws -> [UInt16] {
        guard dtype.isStorageOnly else {
            throw AttribError.unsupportedDType(op: "halfBits()", dtype: dtype, device: device.info.summary)
        }
        return try [UInt16](unsafeUninitializedCapacity: count) { buf, n in
            try device.download(storage, into: UnsafeMutableRawBufferPointer(buf)); n = count
        }
    }

    public func int32s() throws -> [Int32] {
        guard dtype == .int32 else {
            throw AttribError.unsupportedDType(op: "int32s()", dtype: dtype, device: device.info.summary)
        }
        return try [Int32](unsafeUninitializedCapacity: count) { buf, n in
            try device.download(storage, into: UnsafeMutableRawBufferPointer(buf)); n = count
        }
    }

    /// The same storage seen with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        try Tensor.checkShape(newShape, op: "reshaped")
        guard newShape.reduce(1, *) == count else {
            throw AttribError.shapeMismatch(op: "reshaped", detail: "cannot view \(shape) (\(count) elements) as \(newShape)")
        }
        return Tensor(device: device, shape: newShape, dtype: dtype, storage: storage)
    }

    /// Rows `range` along the first dimension, without a copy.
    public func rows(_ range: Range<Int>) throws -> Tensor {
        guard range.lowerBound >= 0, range.upperBound <= shape[0], !range.isEmpty else {
            throw AttribError.invalidArgument(op: "rows", detail: "rows \(range) of a tensor of shape \(shape)")
        }
        let rowSize = count / shape[0]
        return Tensor(device: device, shape: [range.count] + shape.dropFirst(), dtype: dtype,
                      storage: BufferView(storage.buffer, offset: storage.offset + range.lowerBound * rowSize))
    }

    /// A copy on another device (through the host).
    public func to(_ other: any Device) throws -> Tensor {
        switch dtype {
        case .float32: return try Tensor(floats(), shape: shape, on: other)
        case .float64: return try Tensor(doubles(), shape: shape, dtype: .float64, on: other)
        case .int32: return try Tensor(indices: int32s(), shape: shape, on: other)
        case .bfloat16, .float16: return try Tensor(halfBits: halfBits(), shape: shape, dtype: dtype, on: other)
        }
    }

    static func checkShape(_ shape: [Int], op: String) throws {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 1 }) else { throw AttribError.emptyTensor(op: op, shape: shape) }
        var total = 1
        for d in shape {
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow else { throw AttribError.tooLarge(op: op, detail: "shape \(shape) overflows the element count") }
            total = p
        }
    }

    static func checkCount(_ given: Int, shape: [Int]) throws {
        guard given == shape.reduce(1, *) else {
            throw AttribError.shapeMismatch(op: "Tensor", detail: "\(given) values given for shape \(shape) (\(shape.reduce(1, *)) elements)")
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(\(shape), \(dtype), on \(device.info.id))" }
}
