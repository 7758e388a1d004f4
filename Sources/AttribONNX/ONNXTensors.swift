import AttribCore
import FoundationEssentials
import SwiftProtobuf
import AttribModels

/// A constant of an ONNX file (an initializer or a Constant node's value) on the host.
struct ONNXConstant {
    /// Float32 weights are kept as they came, never widened: as the file's little-endian bytes
    /// (sharing the protobuf's buffer, no copy) or as a Float array made at load (a transposed
    /// weight). Widened to Double, BERT-base's 438 MB file peaked at 2.7 GB resident.
    enum Storage {
        case doubles([Double])          // int64 shapes and indices, double data, folded arithmetic
        case floats([Float])
        case float32LE(Data)            // 4·count bytes, checked at load
    }
    let dims: [Int]
    private let storage: Storage
    /// Per entry, the coefficient of the batch size N in its value (entry = batch·N + value):
    /// shape arithmetic folded at load around a dynamic batch dimension. nil: a plain constant.
    var batch: [Double]? = nil
    /// The first dimension (of size 1 here) stands for the batch: the same values for every
    /// sample (ConstantOfShape([N, T]), Expand to [N, …]). Shape reads it as N.
    var batchedFirst = false
    /// Of an integer or bool element type (int64 shapes and indices, masks): ONNX's Div of two
    /// such truncates (torch.chunk's split size, (C + 2) / 3, folded).
    var isInteger = false

    init(dims: [Int], values: [Double], batch: [Double]? = nil) {
        self.dims = dims
        storage = .doubles(values)
        self.batch = batch
    }

    init(dims: [Int], storage: Storage) {
        self.dims = dims
        self.storage = storage
    }

    /// The entries as Double (exact for Float32 data). A Float32 constant is widened on every
    /// read: read it once into a local, never per entry in a loop.
    var values: [Double] {
        switch storage {
        case .doubles(let v): return v
        case .floats(let v): return v.map(Double.init)
        case .float32LE(let d): return Self.decode(d).map(Double.init)
        }
    }

    /// The entries as Float32 (rounded where they were not Float32 data).
    var floatValues: [Float] {
        switch storage {
        case .doubles(let v): return v.map(Float.init)
        case .floats(let v): return v
        case .float32LE(let d): return Self.decode(d)
        }
    }

    var count: Int {
        switch storage {
        case .doubles(let v): return v.count
        case .floats(let v): return v.count
        case .float32LE(let d): return d.count / 4
        }
    }

    var isFloat32: Bool { if case .doubles = storage { return false } else { return true } }

    static func decode(_ d: Data) -> [Float] {
        let n = d.count / 4
        return [Float](unsafeUninitializedCapacity: n) { out, k in
            d.withUnsafeBytes { b in
                for i in 0..<n { out[i] = Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
            }
            k = n
        }
    }

    /// The same entries under other dims (row-major order kept; Reshape, Squeeze, a batch
    /// dimension dropped), in the same storage.
    func reshaped(_ newDims: [Int]) -> ONNXConstant {
        var c = ONNXConstant(dims: newDims, storage: storage)
        c.batch = batch
        c.isInteger = isInteger
        return c
    }

    /// A 2-D constant [r, c] as [c, r] (a MatMul or Gemm weight to Linear's [out, in]), scaled
    /// by `alpha`, in the same storage. In 32 × 32 tiles: a row of the output reads a column of
    /// the input, and untiled each read missed the cache (ViT-B/16's load spent 0.8 s here).
    func transposed2D(scale alpha: Double = 1) -> ONNXConstant {
        let (r, c) = (dims[0], dims[1])
        func t<T: BinaryFloatingPoint>(_ v: [T], _ a: T) -> [T] {
            [T](unsafeUninitializedCapacity: r * c) { out, n in
                v.withUnsafeBufferPointer { src in
                    for i0 in stride(from: 0, to: r, by: 32) {
                        for j0 in stride(from: 0, to: c, by: 32) {
                            for i in i0..<min(i0 + 32, r) { for j in j0..<min(j0 + 32, c) { out[j * r + i] = a * src[i * c + j] } }
                        }
                    }
                }
                n = r * c
            }
        }
        if isFloat32, Double(Float(alpha)) == alpha { return ONNXConstant(dims: [c, r], storage: .floats(t(floatValues, Float(alpha)))) }
        return ONNXConstant(dims: [c, r], values: t(values, alpha))
    }
}

extension ONNXConstant {

    /// Whether a value may stand in a floating tensor of `count` elements: a finite one, or ±∞
    /// as a lone scalar (an attention mask's fill value, GPT-2's −∞). NaN never, and no
    /// infinity in a weight: either would make every result NaN without a word.
    static func allowed(_ v: Double, count: Int) -> Bool { v.isFinite || (count == 1 && v.isInfinite) }

    /// Reads a TensorProto: float, double, int32 and int64 data, inline (typed fields or
    /// raw little-endian bytes) or external (raw bytes at `offset`, `length` of a file named by
    /// `location` beside the model, as onnx.save(save_as_external_data=True) writes models over
    /// 2 GB). Other element types are refused with the tensor's name. Every size is checked
    /// before anything is allocated.
    init(_ t: Onnx_TensorProto, file: String) throws {
        let name = t.name.isEmpty ? "(unnamed)" : t.name
        var count = 1
        for d in t.dims {
            guard d >= 0, d <= Int64(Int32.max) else {
                throw AttribError.io(path: file, detail: "tensor '\(name)' has dimension \(d) in \(t.dims)")
            }
            let (p, o) = count.multipliedReportingOverflow(by: Int(d))
            guard !o, p <= 1 << 31 else { throw AttribError.io(path: file, detail: "tensor '\(name)' of dims \(t.dims) is too large") }
            count = p
        }
        let type = Onnx_TensorProto.DataType(rawValue: Int(t.dataType))
        let raw = t.dataLocation == .external ? try Self.externalBytes(t, name: name, file: file) : t.rawData
        func checkRawSize<T>(_: T.Type) throws {
            guard raw.count == count * MemoryLayout<T>.size else {
                throw AttribError.io(path: file, detail: "tensor '\(name)' has \(raw.count) raw bytes for \(count) elements of \(T.self)")
            }
        }
        func fromRaw<T>(_: T.Type, _ convert: (T) -> Double) throws -> [Double] {
            try checkRawSize(T.self)
            return raw.withUnsafeBytes { b in (0..<count).map { convert(b.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) } }
        }
        if type == .float {
            // Float32 weights stay Float32 (see Storage): the raw bytes as they are, or the
            // typed field; every entry checked finite.
            let storage: Storage
            if raw.isEmpty {
                guard t.floatData.count == count else {
                    throw AttribError.io(path: file, detail: "tensor '\(name)' holds \(t.floatData.count) values for dims \(t.dims) (\(count) elements)")
                }
                storage = .floats(t.floatData)
            } else {
                try checkRawSize(Float.self)
                storage = .float32LE(raw)
            }
            let c = ONNXConstant(dims: t.dims.map(Int.init), storage: storage)
            let bad: Int?
            switch storage {
            case .floats(let f): bad = f.firstIndex { !Self.allowed(Double($0), count: count) }
            default: bad = raw.withUnsafeBytes { b in
                (0..<count).first { !Self.allowed(Double(Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))), count: count) }
            }
            }
            if let bad {
                throw AttribError.io(path: file, detail: "tensor '\(name)' has a non-finite value (\(c.floatValues[bad])) at element \(bad)")
            }
            self = c
            return
        }
        let v: [Double]
        switch type {
        case .double?: v = raw.isEmpty ? t.doubleData : try fromRaw(Double.self) { $0 }
        case .int64?: v = raw.isEmpty ? t.int64Data.map(Double.init) : try fromRaw(Int64.self) { Double($0) }
        case .int32?: v = raw.isEmpty ? t.int32Data.map(Double.init) : try fromRaw(Int32.self) { Double($0) }
        // A mask (the dynamo exporter's attention mask, folded at load): 1 and 0.
        case .bool?: v = raw.isEmpty ? t.int32Data.map { $0 != 0 ? 1 : 0 } : try fromRaw(UInt8.self) { $0 != 0 ? 1 : 0 }
        default:
            throw AttribError.io(path: file, detail: "tensor '\(name)' has element type \(type.map { "\($0)" } ?? String(t.dataType)); float, double, int32, int64 and bool are supported")
        }
        guard v.count == count else {
            throw AttribError.io(path: file, detail: "tensor '\(name)' holds \(v.count) values for dims \(t.dims) (\(count) elements)")
        }
        if type == .double, let bad = v.firstIndex(where: { !Self.allowed($0, count: count) }) {
            throw AttribError.io(path: file, detail: "tensor '\(name)' has a non-finite value (\(v[bad])) at element \(bad)")
        }
        self.init(dims: t.dims.map(Int.init), values: v)
        isInteger = type != .double
    }

    /// The bytes of an external tensor: `location` relative to the model's directory (an
    /// absolute path or one with ".." is refused: a model file must not read elsewhere),
    /// `offset` (default 0) and `length` (default: to the end) inside that file.
    static func externalBytes(_ t: Onnx_TensorProto, name: String, file: String) throws -> Data {
        func bad(_ detail: String) -> AttribError { .io(path: file, detail: "tensor '\(name)': external data \(detail)") }
        var info: [String: String] = [:]
        for e in t.externalData { info[e.key] = e.value }
        guard let location = info["location"], !location.isEmpty else { throw bad("has no \"location\"") }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw bad("location \"\(location)\" is outside the model's directory")
        }
        let dir = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) : "."
        let path = dir + "/" + location
        let mapped: MappedFile
        do { mapped = try MappedFile(path: path) } catch { throw bad("file \(path): \(error)") }
        func number(_ key: String) throws -> Int? {
            guard let s = info[key] else { return nil }
            guard let v = Int(s), v >= 0 else { throw bad("\(key) \"\(s)\" is not a byte count") }
            return v
        }
        let offset = try number("offset") ?? 0
        guard offset <= mapped.bytes.count else { throw bad("offset \(offset) is past the end of \(path) (\(mapped.bytes.count) bytes)") }
        let length = try number("length") ?? (mapped.bytes.count - offset)
        guard length <= mapped.bytes.count - offset else {
            throw bad("offset \(offset) + length \(length) is past the end of \(path) (\(mapped.bytes.count) bytes): truncated?")
        }
        return Data(mapped.bytes[offset..<(offset + length)])
    }

    /// As a device tensor of `dtype` with `shape` (default: its own dims).
    func tensor(_ shape: [Int]? = nil, dtype: DType, on device: any Device) throws -> Tensor {
        let shape = shape ?? (dims.isEmpty ? [1] : dims)
        switch storage {
        case .float32LE(let d) where dtype == .float32 && shape.reduce(1, *) == count:
            // The file's bytes straight to the device (Float32 little-endian, as every host here).
            let t = try Tensor(shape: shape, dtype: .float32, on: device)
            try d.withUnsafeBytes { try device.upload($0, to: t.storage) }
            return t
        case .floats, .float32LE: return try Tensor(floatValues, shape: shape, storedAs: dtype, on: device)   // (a count that does not fit the shape: Tensor's error)
        case .doubles(let v): return try Tensor(v, shape: shape, dtype: dtype, on: device)
        }
    }
}
