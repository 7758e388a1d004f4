import AttribCore

/// A safetensors file (https://github.com/huggingface/safetensors), mapped
/// read-only. The header is validated in full on open (every entry's dtype,
/// shape and byte range, and that no two tensors overlap); values are read
/// from the mapping on demand and the mapping lives as long as this object.
///
/// Every error is an `AttribError.io` naming the file, and the tensor where one is involved.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest header accepted (the reference implementation's limit).
    public static let maxHeaderLength = 100_000_000

    public let path: String
    /// Tensor names, sorted.
    public let names: [String]
    /// The string map under "__metadata__" (empty when there is none).
    public let metadata: [String: String]
    /// Offset of the data section in the file (8 + header length).
    public let dataStart: Int

    private let file: MappedFile
    private let entries: [String: SafeTensorsEntry]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }

        guard bytes.count >= 8 else {
            throw bad("not a safetensors file: \(bytes.count) bytes, shorter than the 8-byte header length that starts one")
        }
        let declared = bytes.le64(0)
        guard declared <= UInt64(Self.maxHeaderLength) else {
            throw bad("header length \(declared) exceeds the limit of \(Self.maxHeaderLength) bytes (not a safetensors file?)")
        }
        let headerLength = Int(declared)
        guard headerLength <= bytes.count - 8 else {
            throw bad("header length \(headerLength) is larger than the \(bytes.count - 8) bytes that follow it (truncated file?)")
        }
        dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        guard String(validating: header.bindMemory(to: UInt8.self), as: UTF8.self) != nil else {
            throw bad("header is not valid UTF-8")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(header) } catch { throw bad("header is not valid JSON: \(error.message)") }
        guard case let .object(members) = json else { throw bad("header is not a JSON object (found \(json.summary))") }

        var metadata: [String: String] = [:]
        var entries: [String: SafeTensorsEntry] = [:]
        for (name, value) in members {
            if name == "__metadata__" {
                guard case let .object(pairs) = value else {
                    throw bad("\"__metadata__\" must be an object of strings, found \(value.summary)")
                }
                for (k, v) in pairs {
                    guard case let .string(s) = v else {
                        throw bad("\"__metadata__\" value of '\(k)' must be a string, found \(v.summary)")
                    }
                    metadata[k] = s
                }
                continue
            }
            entries[name] = try Self.parseEntry(name, value, dataLength: dataLength, bad: bad)
        }

        // The tensors tile the data section exactly, as the format's reference reader requires:
        // no two share a byte, none leaves a gap, nothing trails the last. A header length one
        // byte short (ending inside the header's space padding) shifts every tensor by a byte
        // and is caught here, not read as shifted floats.
        let byStart = entries.values.filter { !$0.dataOffsets.isEmpty }
            .sorted { ($0.dataOffsets.lowerBound, $0.name) < ($1.dataOffsets.lowerBound, $1.name) }
        var end = 0
        for e in byStart {
            let r = e.dataOffsets
            if r.lowerBound < end {
                let prev = byStart.last { $0.dataOffsets.upperBound > r.lowerBound && $0.name != e.name }
                throw bad("tensors '\(prev?.name ?? "?")' (bytes \(prev.map { "\($0.dataOffsets.lowerBound)..<\($0.dataOffsets.upperBound)" } ?? "?")) and '\(e.name)' "
                          + "(bytes \(r.lowerBound)..<\(r.upperBound)) overlap")
            }
            if r.lowerBound > end {
                throw bad("bytes \(end)..<\(r.lowerBound) of the data section belong to no tensor (before '\(e.name)'): the header's offsets do not tile the data (a wrong header length?)")
            }
            end = r.upperBound
        }
        if end != dataLength {
            throw bad("the data section holds \(dataLength) bytes but the tensors end at byte \(end): \(dataLength - end) trailing bytes (a wrong header length?)")
        }
        self.metadata = metadata
        self.entries = entries
        self.names = entries.keys.sorted()
    }

    private static func parseEntry(_ name: String, _ value: JSONValue, dataLength: Int,
                                   bad: (String) -> AttribError) throws -> SafeTensorsEntry {
        func badT(_ detail: String) -> AttribError { bad("tensor '\(name)': \(detail)") }
        guard case let .object(fields) = value else { throw badT("entry must be an object, found \(value.summary)") }
        func field(_ key: String) throws -> JSONValue {
            guard let v = fields.first(where: { $0.key == key })?.value else { throw badT("entry has no \"\(key)\"") }
            return v
        }
        guard case let .string(dtypeName) = try field("dtype") else {
            throw badT("\"dtype\" must be a string, found \(try field("dtype").summary)")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw badT("unknown dtype \"\(dtypeName)\" (known: \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let shapeValue = try field("shape")
        guard let shape = shapeValue.intArray else { throw badT("\"shape\" must be an array of integers, found \(shapeValue.summary)") }
        if let d = shape.first(where: { $0 < 0 }) { throw badT("negative dimension \(d) in shape \(shape)") }
        let offsetsValue = try field("data_offsets")
        guard let offsets = offsetsValue.intArray, offsets.count == 2, offsets[0] >= 0, offsets[0] <= offsets[1] else {
            throw badT("\"data_offsets\" must be two ascending non-negative integers [begin, end], found \(offsetsValue.summary)")
        }
        guard offsets[1] <= dataLength else {
            throw badT("data_offsets [\(offsets[0]), \(offsets[1])] lie outside the data section (\(dataLength) bytes): the file is truncated or its header is wrong")
        }
        guard let count = elementCount(shape), case let (bytes, false) = count.multipliedReportingOverflow(by: dtype.size) else {
            throw badT("shape \(shape) overflows the element count")
        }
        guard offsets[1] - offsets[0] == bytes else {
            throw badT("data_offsets [\(offsets[0]), \(offsets[1])] hold \(offsets[1] - offsets[0]) bytes, but shape \(shape) of \(dtype) needs \(bytes) (\(count) × \(dtype.size))")
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, dataOffsets: offsets[0]..<offsets[1])
    }

    // MARK: Lookup

    /// Every entry, in name order.
    public var entryList: [SafeTensorsEntry] { names.map { entries[$0]! } }

    public func contains(_ name: String) -> Bool { entries[name] != nil }

    public func entry(_ name: String) throws -> SafeTensorsEntry {
        guard let e = entries[name] else {
            throw AttribError.io(path: path, detail: "no tensor named '\(name)' (the file holds \(names.count): \(nameList(names)))")
        }
        return e
    }

    /// The tensor's raw little-endian bytes, straight from the mapping (valid only inside `body`).
    public func withUnsafeBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let e = try entry(name)
        return try body(raw(e))
    }

    private func raw(_ e: SafeTensorsEntry) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + e.dataOffsets.lowerBound)..<(dataStart + e.dataOffsets.upperBound)])
    }

    // MARK: Values

    /// The values as Double: floats of every width exactly, integers exactly up to 2^53 (larger ones rounded).
    public func doubles(_ name: String) throws -> [Double] {
        let e = try entry(name)
        try HostMemory.require(e.count * MemoryLayout<Double>.stride, for: path, "tensor '\(name)' (shape \(e.shape))")
        #if _endian(little)
        if e.dtype == .F64 { return copyRaw(e, as: Double.self) }
        #endif
        return convert(e, as: Double.self)
    }

    /// The values as Float: F32/F16/BF16/F8 exactly, F64 and wide integers rounded to nearest.
    public func floats(_ name: String) throws -> [Float] {
        let e = try entry(name)
        try HostMemory.require(e.count * MemoryLayout<Float>.stride, for: path, "tensor '\(name)' (shape \(e.shape))")
        #if _endian(little)
        if e.dtype == .F32 { return copyRaw(e, as: Float.self) }
        #endif
        return convert(e, as: Float.self)
    }

    /// The values of an integer (or BOOL) tensor as Int32; an error if one does not fit.
    public func int32s(_ name: String) throws -> [Int32] {
        let e = try entry(name)
        guard !e.dtype.isFloatingPoint else {
            throw AttribError.io(path: path, detail: "tensor '\(name)': \(e.dtype) holds floating-point values; int32 needs an integer dtype")
        }
        let r = raw(e)
        var out = [Int32](repeating: 0, count: e.count)
        for k in 0..<e.count {
            let v: Int32?
            switch e.dtype {
            case .BOOL, .U8: v = Int32(r[k])
            case .I8: v = Int32(Int8(bitPattern: r[k]))
            case .I16: v = Int32(Int16(bitPattern: r.le16(2 * k)))
            case .U16: v = Int32(r.le16(2 * k))
            case .I32: v = Int32(bitPattern: r.le32(4 * k))
            case .U32: v = Int32(exactly: r.le32(4 * k))
            case .I64: v = Int32(exactly: Int64(bitPattern: r.le64(8 * k)))
            case .U64: v = Int32(exactly: r.le64(8 * k))
            default: v = nil
            }
            guard let v else {
                let shown = e.dtype == .U64 ? String(r.le64(8 * k)) : e.dtype == .I64 ? String(Int64(bitPattern: r.le64(8 * k))) : String(r.le32(4 * k))
                throw AttribError.io(path: path, detail: "tensor '\(name)': element \(k) = \(shown) (\(e.dtype)) does not fit in int32")
            }
            out[k] = v
        }
        return out
    }

    private func copyRaw<T>(_ e: SafeTensorsEntry, as: T.Type) -> [T] {
        let r = raw(e)
        return [T](unsafeUninitializedCapacity: e.count) { buf, n in
            UnsafeMutableRawBufferPointer(buf).copyMemory(from: r)
            n = e.count
        }
    }

    private func convert<T: BinaryFloatingPoint>(_ e: SafeTensorsEntry, as: T.Type) -> [T] {
        let r = raw(e), n = e.count
        func map(_ f: (Int) -> T) -> [T] {
            [T](unsafeUninitializedCapacity: n) { buf, done in
                for k in 0..<n { buf[k] = f(k) }
                done = n
            }
        }
        switch e.dtype {
        case .BOOL: return map { r[$0] != 0 ? 1 : 0 }
        case .U8: return map { T(r[$0]) }
        case .I8: return map { T(Int8(bitPattern: r[$0])) }
        case .F8_E5M2: return map { T(HalfFloat.f8e5m2ToFloat(r[$0])) }
        case .F8_E4M3: return map { T(HalfFloat.f8e4m3ToFloat(r[$0])) }
        case .I16: return map { T(Int16(bitPattern: r.le16(2 * $0))) }
        case .U16: return map { T(r.le16(2 * $0)) }
        case .F16: return map { T(HalfFloat.f16ToFloat(r.le16(2 * $0))) }
        case .BF16: return map { T(HalfFloat.bf16ToFloat(r.le16(2 * $0))) }
        case .I32: return map { T(Int32(bitPattern: r.le32(4 * $0))) }
        case .U32: return map { T(r.le32(4 * $0)) }
        case .F32: return map { T(Float(bitPattern: r.le32(4 * $0))) }
        case .F64: return map { T(Double(bitPattern: r.le64(8 * $0))) }
        case .I64: return map { T(Int64(bitPattern: r.le64(8 * $0))) }
        case .U64: return map { T(r.le64(8 * $0)) }
        }
    }

    // MARK: Tensors

    /// Uploads a tensor to `device` as `dtype` (.float32, .float64, or .int32 for
    /// integer tensors), checking its shape against `shape` when one is given.
    /// A scalar (shape []) becomes a tensor of shape [1]; a tensor with no
    /// elements is an error, since a `Tensor` has every dimension ≥ 1. `weight: true` (the
    /// model loaders) refuses a NaN or infinite value, naming the element.
    public func tensor(_ name: String, shape expected: [Int]? = nil, dtype: DType = .float32,
                       on device: any Device, weight: Bool = false) throws -> Tensor {
        let e = try entry(name)
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: "tensor '\(name)': \(detail)") }
        if let expected, expected != e.shape { throw bad("shape \(e.shape) (\(e.dtype)), expected \(expected)") }
        guard e.count > 0 else { throw bad("shape \(e.shape) has no elements; a Tensor needs every dimension ≥ 1") }
        guard device.supports(dtype) else { throw bad("cannot load as \(dtype): not supported on \(device.info.summary)") }
        // The host copy (and the device one, on the CPU backend) must fit: a weight file larger
        // than memory is refused by name, not killed by the OOM killer.
        try HostMemory.require(e.count * max(dtype.size, 8), for: path, "tensor '\(name)' (shape \(e.shape))")
        // Weights are floating point: an integer tensor read as one would be reinterpreted,
        // a wrong number with no error.
        if dtype.isFloatingPoint || dtype.isStorageOnly, !e.dtype.isFloatingPoint {
            throw bad("dtype \(e.dtype) is an integer type; a floating-point tensor (F16, BF16, F32, F64) is needed")
        }
        let t = try Tensor(shape: e.shape.isEmpty ? [1] : e.shape, dtype: dtype, on: device)
        if weight, let (i, v) = try firstNonFinite(e) {
            throw bad("element \(i) is \(v): weights must be finite")
        }
        #if _endian(little)
        if SafeTensorsDType(dtype) == e.dtype {
            try device.upload(raw(e), to: t.storage)
            return t
        }
        #endif
        switch dtype {
        case .float32: try floats(name).withUnsafeBytes { try device.upload($0, to: t.storage) }
        case .float64: try doubles(name).withUnsafeBytes { try device.upload($0, to: t.storage) }
        case .int32: try int32s(name).withUnsafeBytes { try device.upload($0, to: t.storage) }
        // F32 (or F64) weights stored at 16 bits: rounded once, to nearest even.
        case .bfloat16, .float16: try HalfFloat.bits(doubles(name), dtype).withUnsafeBytes { try device.upload($0, to: t.storage) }
        }
        return t
    }

    /// The first NaN or infinite value of a floating-point tensor, read from the mapping
    /// (unaligned loads: the data section need not start on a 4-byte boundary).
    func firstNonFinite(_ e: SafeTensorsEntry) throws -> (Int, Double)? {
        #if _endian(little)
        if e.dtype == .F32 || e.dtype == .F64 {
            let r = raw(e), wide = e.dtype == .F64
            for i in 0..<e.count {
                let v = wide ? r.loadUnaligned(fromByteOffset: i * 8, as: Double.self) : Double(r.loadUnaligned(fromByteOffset: i * 4, as: Float.self))
                if !v.isFinite { return (i, v) }
            }
            return nil
        }
        #endif
        let v = try doubles(e.name)
        return v.firstIndex { !$0.isFinite }.map { ($0, v[$0]) }
    }

    /// A weight's values on the host (`doubles`), refused where one is NaN or infinite.
    public func weightDoubles(_ name: String) throws -> [Double] {
        let e = try entry(name)
        guard e.dtype.isFloatingPoint else {
            throw AttribError.io(path: path, detail: "tensor '\(name)': dtype \(e.dtype) is an integer type; a floating-point tensor (F16, BF16, F32, F64) is needed")
        }
        let v = try doubles(name)
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw AttribError.io(path: path, detail: "tensor '\(name)': element \(i) is \(v[i]): weights must be finite")
        }
        return v
    }

    /// Every tensor, uploaded as `dtype`.
    public func tensors(dtype: DType = .float32, on device: any Device) throws -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for n in names { out[n] = try tensor(n, dtype: dtype, on: device) }
        return out
    }
}

extension SafeTensorsFile: CustomStringConvertible {
    public var description: String { "SafeTensorsFile(\(path), \(names.count) tensors)" }
}
