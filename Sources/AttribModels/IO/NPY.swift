import AttribCore

/// Element types of NumPy `.npy` files this reader understands (little-endian, as NumPy writes them on x86/ARM).
public enum NPYDType: String, Sendable, CaseIterable {
    case bool = "|b1", uint8 = "|u1", int8 = "|i1"
    case float16 = "<f2", float32 = "<f4", float64 = "<f8"
    case int32 = "<i4", int64 = "<i8"

    /// The `descr` string in the header.
    public var descr: String { rawValue }

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .uint8, .int8: return 1
        case .float16: return 2
        case .float32, .int32: return 4
        case .float64, .int64: return 8
        }
    }

    public var isFloatingPoint: Bool { self == .float16 || self == .float32 || self == .float64 }

    /// The dtypes `NPY.write` can write.
    public static let writable: [NPYDType] = [.float32, .float64, .int32]

    /// Parses a `descr`, accepting NumPy's spellings of the same type ("<u1" for "|u1", "=f4" or "f4" on this little-endian host).
    init?(descr: String) {
        if let d = NPYDType(rawValue: descr) { self = d; return }
        guard let first = descr.first else { return nil }
        let body = "<>=|".contains(first) ? String(descr.dropFirst()) : descr
        if first == ">" && !["b1", "u1", "i1"].contains(body) { return nil }   // big-endian multi-byte
        guard let d = NPYDType.allCases.first(where: { $0.rawValue.dropFirst() == body }) else { return nil }
        self = d
    }
}

/// An array read from a `.npy` file: its shape (C order; `[]` for a 0-d
/// scalar), dtype and raw little-endian bytes.
public struct NPYArray: Sendable, Equatable {
    public var shape: [Int]
    public var dtype: NPYDType
    /// `count · dtype.size` little-endian bytes, row-major.
    public var data: [UInt8]
    /// The file it came from, for messages ("" when built in memory).
    public var path: String

    public var count: Int { shape.reduce(1, *) }

    public init(shape: [Int], dtype: NPYDType, data: [UInt8], path: String = "") {
        self.shape = shape; self.dtype = dtype; self.data = data; self.path = path
    }

    /// The values as Double (exact, except int64 beyond 2^53, which rounds).
    public func doubles() -> [Double] { convert(Double.self) }

    /// The values as Float (float16/float32 and small integers exact; float64 and wide int64 round to nearest).
    public func floats() -> [Float] { convert(Float.self) }

    /// The values of an integer (or bool) array as Int32; an error for a float array or a value that does not fit.
    public func int32s() throws -> [Int32] {
        guard !dtype.isFloatingPoint else {
            throw AttribError.io(path: path, detail: "array of dtype '\(dtype.descr)' holds floating-point values; int32 needs an integer dtype")
        }
        return try data.withUnsafeBytes { r in
            var out = [Int32](repeating: 0, count: count)
            for k in 0..<count {
                switch dtype {
                case .bool, .uint8: out[k] = Int32(r[k])
                case .int8: out[k] = Int32(Int8(bitPattern: r[k]))
                case .int32: out[k] = Int32(bitPattern: r.le32(4 * k))
                case .int64:
                    let v = Int64(bitPattern: r.le64(8 * k))
                    guard let x = Int32(exactly: v) else {
                        throw AttribError.io(path: path, detail: "element \(k) = \(v) (int64) does not fit in int32")
                    }
                    out[k] = x
                case .float16, .float32, .float64: break
                }
            }
            return out
        }
    }

    private func convert<T: BinaryFloatingPoint>(_: T.Type) -> [T] {
        let n = count
        return data.withUnsafeBytes { r in
            [T](unsafeUninitializedCapacity: n) { buf, done in
                switch dtype {
                case .bool: for k in 0..<n { buf[k] = r[k] != 0 ? 1 : 0 }
                case .uint8: for k in 0..<n { buf[k] = T(r[k]) }
                case .int8: for k in 0..<n { buf[k] = T(Int8(bitPattern: r[k])) }
                case .float16: for k in 0..<n { buf[k] = T(HalfFloat.f16ToFloat(r.le16(2 * k))) }
                case .float32: for k in 0..<n { buf[k] = T(Float(bitPattern: r.le32(4 * k))) }
                case .float64: for k in 0..<n { buf[k] = T(Double(bitPattern: r.le64(8 * k))) }
                case .int32: for k in 0..<n { buf[k] = T(Int32(bitPattern: r.le32(4 * k))) }
                case .int64: for k in 0..<n { buf[k] = T(Int64(bitPattern: r.le64(8 * k))) }
                }
                done = n
            }
        }
    }
}

/// NumPy `.npy` files (format versions 1.0, 2.0 and 3.0; C order only).
/// Every error is an `AttribError.io` naming the file.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    // MARK: Reading

    /// `rows`: keep only the first `rows` entries of the leading dimension (the whole file is
    /// still checked; only those rows are copied), so `--limit` reads what it uses.
    public static func read(_ path: String, rows: Int? = nil) throws -> NPYArray {
        let file = try MappedFile(path: path)
        let b = file.bytes
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }

        guard b.count >= 10, b.prefix(6).elementsEqual(magic) else {
            throw bad(b.count < 10 ? "not a .npy file: \(b.count) bytes, shorter than the 10-byte preamble"
                                   : "not a .npy file: it does not start with the magic \\x93NUMPY")
        }
        let major = b[6], minor = b[7]
        let lengthBytes: Int
        switch (major, minor) {
        case (1, 0): lengthBytes = 2
        case (2, 0), (3, 0): lengthBytes = 4
        default: throw bad("unsupported .npy format version \(major).\(minor) (this reader handles 1.0, 2.0 and 3.0)")
        }
        guard b.count >= 8 + lengthBytes else { throw bad("truncated preamble: \(b.count) bytes") }
        let headerLength = lengthBytes == 2 ? Int(b.le16(8)) : Int(b.le32(8))
        let headerStart = 8 + lengthBytes, dataStart = headerStart + headerLength
        guard dataStart <= b.count else {
            throw bad("header length \(headerLength) is larger than the \(b.count - headerStart) bytes that follow it (truncated file?)")
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: b[headerStart..<dataStart])
        let header: String
        if major == 3 {
            guard let s = String(validating: headerBytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
                throw bad("header is not valid UTF-8")
            }
            header = s
        } else {
            header = String(String.UnicodeScalarView(headerBytes.map { Unicode.Scalar($0) }))   // latin-1
        }

        let dict: [String: PyValue]
        do { dict = try PyLiteralParser.parseDict(header) } catch {
            throw bad("header is not a Python dict literal (\(error.message)): \(quotedHeader(header))")
        }
        for key in ["descr", "fortran_order", "shape"] where dict[key] == nil {
            throw bad("header has no '\(key)': \(quotedHeader(header))")
        }
        if let extra = dict.keys.sorted().first(where: { !["descr", "fortran_order", "shape"].contains($0) }) {
            throw bad("header has an unexpected key '\(extra)': \(quotedHeader(header))")
        }
        guard case let .string(descr) = dict["descr"]! else {
            throw bad("'descr' is \(dict["descr"]!.summary): structured dtypes are not supported (only \(NPYDType.allCases.map(\.descr).joined(separator: ", ")))")
        }
        guard let dtype = NPYDType(descr: descr) else {
            throw bad("unsupported dtype '\(descr)' (supported: \(NPYDType.allCases.map(\.descr).joined(separator: ", ")); big-endian is not)")
        }
        guard case let .bool(fortran) = dict["fortran_order"]! else {
            throw bad("'fortran_order' must be True or False, found \(dict["fortran_order"]!.summary)")
        }
        guard !fortran else {
            throw bad("fortran_order is True (a column-major array); only C order is supported: save np.ascontiguousarray(a)")
        }
        guard case let .tuple(dims) = dict["shape"]!, let shape = dims.integers else {
            throw bad("'shape' must be a tuple of integers, found \(dict["shape"]!.summary)")
        }
        if let d = shape.first(where: { $0 < 0 }) { throw bad("negative dimension \(d) in shape \(shape)") }
        guard let count = elementCount(shape), case let (need, false) = count.multipliedReportingOverflow(by: dtype.size) else {
            throw bad("shape \(shape) overflows the element count")
        }
        let have = b.count - dataStart
        guard have >= need else {
            throw bad("truncated data: shape \(shape) of '\(dtype.descr)' needs \(need) bytes, the file holds \(have) after the header")
        }
        var kept = shape, keep = need
        if let rows, let first = shape.first, rows < first, rows >= 0 {
            kept[0] = rows
            keep = first == 0 ? 0 : need / first * rows
        }
        try HostMemory.require(keep, for: path, "its data (shape \(kept), \(dtype.descr))")
        let data = Array(UnsafeRawBufferPointer(rebasing: b[dataStart..<(dataStart + keep)]))
        return NPYArray(shape: kept, dtype: dtype, data: data, path: path)
    }

    /// Reads a `.npy` file and uploads it as `dtype`, checking the shape when `shape` is given.
    /// A 0-d array becomes a tensor of shape [1]; an array with no elements is an error.
    public static func tensor(_ path: String, shape expected: [Int]? = nil, dtype: DType = .float32,
                              on device: any Device) throws -> Tensor {
        let a = try read(path)
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }
        if let expected, expected != a.shape { throw bad("shape \(a.shape) ('\(a.dtype.descr)'), expected \(expected)") }
        guard a.count > 0 else { throw bad("shape \(a.shape) has no elements; a Tensor needs every dimension ≥ 1") }
        guard device.supports(dtype) else { throw bad("cannot load as \(dtype): not supported on \(device.info.summary)") }
        let shape = a.shape.isEmpty ? [1] : a.shape
        switch dtype {
        case .float32: return try Tensor(a.floats(), shape: shape, on: device)
        case .float64: return try Tensor(a.doubles(), shape: shape, dtype: .float64, on: device)
        case .int32: return try Tensor(indices: a.int32s(), shape: shape, on: device)
        case .bfloat16, .float16: return try Tensor(a.doubles(), shape: shape, dtype: dtype, on: device)
        }
    }

    /// The header on one line for a message, quoted with JSON's escapes (the header's own
    /// newline among them), at most 120 characters.
    static func quotedHeader(_ h: String) -> String {
        let t = h.trimmingTrailingSpace
        return jsonQuoted(t.count > 120 ? String(t.prefix(120)) + "…" : t)
    }

    // MARK: Writing

    /// Writes `values` (row-major, `shape`; `[]` for a scalar) as `dtype`: float64 by default, float32 rounds to nearest,
    /// int32 needs integral values in range.
    public static func write(_ values: [Double], shape: [Int], dtype: NPYDType = .float64, to path: String) throws {
        try write(count: values.count, shape: shape, dtype: dtype, to: path) { k in
            switch dtype {
            case .float64: return .f64(values[k])
            case .float32: return .f32(Float(values[k]))
            default: return .i32(Int32(exactly: values[k]), values[k])
            }
        }
    }

    /// Writes Float values as `dtype` (float32 by default; float64 widens exactly).
    public static func write(_ values: [Float], shape: [Int], dtype: NPYDType = .float32, to path: String) throws {
        try write(count: values.count, shape: shape, dtype: dtype, to: path) { k in
            switch dtype {
            case .float64: return .f64(Double(values[k]))
            case .float32: return .f32(values[k])
            default: return .i32(Int32(exactly: values[k]), Double(values[k]))
            }
        }
    }

    /// Writes Int32 values as `dtype` (int32 by default; float64 is exact, float32 rounds beyond 2^24).
    public static func write(_ values: [Int32], shape: [Int], dtype: NPYDType = .int32, to path: String) throws {
        try write(count: values.count, shape: shape, dtype: dtype, to: path) { k in
            switch dtype {
            case .float64: return .f64(Double(values[k]))
            case .float32: return .f32(Float(values[k]))
            default: return .i32(values[k], Double(values[k]))
            }
        }
    }

    /// Writes a tensor (downloaded) as `dtype`: the tensor's own type when nil.
    public static func write(_ tensor: Tensor, dtype: NPYDType? = nil, to path: String) throws {
        switch tensor.dtype {
        case .float32: try write(tensor.floats(), shape: tensor.shape, dtype: dtype ?? .float32, to: path)
        case .float64: try write(tensor.doubles(), shape: tensor.shape, dtype: dtype ?? .float64, to: path)
        case .int32: try write(tensor.int32s(), shape: tensor.shape, dtype: dtype ?? .int32, to: path)
        // Widened exactly; .npy has no bfloat16.
        case .bfloat16, .float16: try write(tensor.floats(), shape: tensor.shape, dtype: dtype ?? .float32, to: path)
        }
    }

    private enum Element { case f32(Float), f64(Double), i32(Int32?, Double) }

    private static func write(count: Int, shape: [Int], dtype: NPYDType, to path: String, _ element: (Int) -> Element) throws {
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }
        guard NPYDType.writable.contains(dtype) else {
            throw bad("cannot write dtype '\(dtype.descr)'; writable: \(NPYDType.writable.map(\.descr).joined(separator: ", "))")
        }
        if let d = shape.first(where: { $0 < 0 }) { throw bad("negative dimension \(d) in shape \(shape)") }
        guard let n = elementCount(shape), n == count else {
            throw bad("\(count) values given for shape \(shape) (\(elementCount(shape).map(String.init) ?? "too many") elements)")
        }
        var out = header(dtype: dtype, shape: shape)
        out.reserveCapacity(out.count + n * dtype.size)
        for k in 0..<n {
            switch element(k) {
            case let .f32(f): out.appendLE(f.bitPattern)
            case let .f64(d): out.appendLE(d.bitPattern)
            case let .i32(i, v):
                guard let i else { throw bad("element \(k) = \(v) is not an integer in the int32 range") }
                out.appendLE(UInt32(bitPattern: i))
            }
        }
        try writeFile(path, out)
    }

    /// The preamble and header NumPy writes: version 1.0 (2.0 when the header
    /// exceeds 65535 bytes), padded with spaces and a newline so the data starts at a multiple of 64.
    static func header(dtype: NPYDType, shape: [Int]) -> [UInt8] {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = Array("{'descr': '\(dtype.descr)', 'fortran_order': False, 'shape': \(dims), }".utf8)
        var version: UInt8 = 1, lengthBytes = 2
        var total = 8 + lengthBytes + dict.count + 1
        if total.roundedUp(to: 64) - 10 > Int(UInt16.max) { version = 2; lengthBytes = 4; total = 8 + lengthBytes + dict.count + 1 }
        dict += [UInt8](repeating: 0x20, count: total.roundedUp(to: 64) - total) + [0x0A]
        var out = magic + [version, 0]
        if lengthBytes == 2 { out.appendLE(UInt16(dict.count)) } else { out.appendLE(UInt32(dict.count)) }
        return out + dict
    }
}

extension Int {
    fileprivate func roundedUp(to m: Int) -> Int { (self + m - 1) / m * m }
}

extension String {
    fileprivate var trimmingTrailingSpace: String {
        var s = Substring(self)
        while let c = s.last, c == " " || c == "\n" || c == "\r" || c == "\t" || c == "\0" { s = s.dropLast() }
        return String(s)
    }
}
