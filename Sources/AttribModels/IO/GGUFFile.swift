import AttribCore

/// A GGUF file (llama.cpp's model format, versions 2 and 3), mapped read-only. The header,
/// every metadata value and every tensor info are read and validated on open: each count,
/// length and offset against the file's size before anything is allocated for it, so a
/// malformed or truncated file is an error naming the key or tensor, never a trap or a huge
/// allocation. Tensor data is dequantised on demand (`floats`).
///
/// Layout (all little-endian): "GGUF", u32 version, u64 tensor count, u64 metadata count;
/// the metadata (string key, u32 value type, value); the tensor infos (string name, u32
/// dimension count, u64 dims fastest-first, u32 ggml type, u64 offset); padding to
/// `general.alignment` (32 by default); the data section, each tensor at its offset.
/// A string is a u64 byte length and UTF-8 bytes; an array a u32 element type, u64 count
/// and the elements.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    /// 2 or 3 (they differ only in version 3 allowing big-endian files, which are refused).
    public let version: Int
    /// Every metadata value by key.
    public let metadata: [String: GGUFValue]
    /// The metadata keys in file order.
    public let metadataKeys: [String]
    /// The tensor infos in file order.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32: tensor offsets and the data section start are multiples of it.
    public let alignment: Int
    /// Offset of the data section in the file.
    public let dataStart: Int

    /// Deepest nesting of arrays accepted: the format allows arrays of arrays, but nothing
    /// writes them deeper than two, and a cap keeps a crafted file from recursing the stack away.
    public static let maxArrayDepth = 8
    /// ggml tensors have at most 4 dimensions (GGML_MAX_DIMS); llama.cpp refuses more.
    public static let maxDims = 4

    private let file: MappedFile
    private let index: [String: Int]

    public init(path: String) throws {
        self.path = path
        file = try MappedFile(path: path)
        var r = GGUFReader(bytes: file.bytes, path: path)
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }

        // Header.
        let size = file.bytes.count
        guard size >= 4 else { throw bad("not a GGUF file: \(size) bytes, shorter than the 4-byte magic \"GGUF\"") }
        let magic = Array(file.bytes[0..<4])
        guard magic == Array("GGUF".utf8) else {
            throw bad("not a GGUF file: it starts with bytes \(magic.map { hex($0) }.joined(separator: " ")), not the magic \"GGUF\" (47 47 55 46)")
        }
        r.pos = 4
        let v = try r.u32("the header's version")
        guard v == 2 || v == 3 else {
            if v == 1 { throw bad("GGUF version 1 is not supported (only 2 and 3; version 1 used 32-bit counts): re-convert the model with a current llama.cpp") }
            if (1...3).contains(v.byteSwapped) {
                throw bad("a big-endian GGUF file (version \(v.byteSwapped) byte-swapped): only little-endian files are read")
            }
            throw bad("unknown GGUF version \(v) (supported: 2, 3)")
        }
        version = Int(v)
        let tensorCount = try r.u64("the header's tensor count")
        let kvCount = try r.u64("the header's metadata count")
        // Fail fast on absurd counts: each entry takes at least a fixed number of bytes, so a
        // count the rest of the file cannot hold is refused before any loop or allocation.
        let kvMin = 8 + 4 + 1, tensorMin = 8 + 4 + 4 + 8
        guard kvCount <= UInt64(r.remaining / kvMin) else {
            throw bad("the header declares \(kvCount) metadata entries, but the \(r.remaining) bytes after the header hold at most \(r.remaining / kvMin) (truncated file, or not GGUF?)")
        }
        guard tensorCount <= UInt64(r.remaining / tensorMin) else {
            throw bad("the header declares \(tensorCount) tensors, but the \(r.remaining) bytes after the header hold at most \(r.remaining / tensorMin) tensor infos (truncated file, or not GGUF?)")
        }

        // Metadata.
        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        metadata.reserveCapacity(Int(kvCount))
        keys.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let key = try r.string("the key of metadata entry \(i) (of \(kvCount))")
            guard metadata[key] == nil else { throw bad("metadata key '\(key)' appears twice") }
            let type = try r.valueType("metadata key '\(key)'")
            metadata[key] = try r.value(type, "metadata key '\(key)'", depth: 0)
            keys.append(key)
        }
        self.metadata = metadata
        metadataKeys = keys

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard case let .uint32(n) = a else { throw bad("metadata key 'general.alignment' must be a uint32, found \(a.type) \(a)") }
            guard n > 0, n & (n - 1) == 0 else { throw bad("metadata key 'general.alignment' is \(n), not a power of two") }
            alignment = Int(n)
        }
        self.alignment = alignment

        // Tensor infos.
        struct RawInfo { let name: String, dims: [Int], type: GGMLType, offset: UInt64 }
        var raws: [RawInfo] = []
        var index: [String: Int] = [:]
        raws.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let name = try r.string("the name of tensor info \(i) (of \(tensorCount))")
            guard index[name] == nil else { throw bad("tensor name '\(name)' appears twice") }
            let nDims = try r.u32("tensor '\(name)': its dimension count")
            guard nDims <= UInt32(Self.maxDims) else { throw bad("tensor '\(name)' has \(nDims) dimensions; ggml allows at most \(Self.maxDims)") }
            var dims: [Int] = []
            for d in 0..<Int(nDims) {
                let n = try r.u64("tensor '\(name)': dimension \(d)")
                guard n <= UInt64(Int64.max) else { throw bad("tensor '\(name)' has dimension \(d) = \(n), more than ggml's int64 allows") }
                dims.append(Int(n))
            }
            let typeID = try r.u32("tensor '\(name)': its type")
            guard let type = GGMLType(rawValue: typeID) else {
                throw bad("tensor '\(name)' has unknown ggml type id \(typeID) (known ids: 0–\(GGMLType.allCases.last!.rawValue); a newer llama.cpp's type?)")
            }
            guard type.layout != nil else {
                throw bad("tensor '\(name)' has type \(type) (id \(typeID)), which ggml removed; re-convert the model with a current llama.cpp")
            }
            let offset = try r.u64("tensor '\(name)': its data offset")
            index[name] = raws.count
            raws.append(RawInfo(name: name, dims: dims, type: type, offset: offset))
        }

        // The data section starts at the next multiple of the alignment.
        guard case let (padded, false) = r.pos.addingReportingOverflow(alignment - 1) else { throw bad("alignment \(alignment) overflows the data section's start") }
        dataStart = padded / alignment * alignment

        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(raws.count)
        for t in raws {
            func badT(_ detail: String) -> AttribError { bad("tensor '\(t.name)' (\(t.type), dims \(t.dims)): \(detail)") }
            let (blockSize, typeSize) = t.type.layout!
            let rowLength = t.dims.first ?? 1
            guard rowLength % blockSize == 0 else {
                throw badT("row length \(rowLength) (dims[0]) is not a multiple of \(t.type)'s block of \(blockSize) elements")
            }
            guard let rowCount = elementCount(Array(t.dims.dropFirst())),
                  case let (count, false) = rowCount.multipliedReportingOverflow(by: rowLength),
                  case let (rowBytes, false) = (rowLength / blockSize).multipliedReportingOverflow(by: typeSize),
                  case let (bytes, false) = rowBytes.multipliedReportingOverflow(by: rowCount) else {
                throw badT("the element count or byte size overflows")
            }
            guard t.offset % UInt64(alignment) == 0 else {
                throw badT("data offset \(t.offset) is not a multiple of the alignment \(alignment)")
            }
            // start and end in the file, overflow-safe: an offset past Int's range is past the end.
            let inFile = UInt64(size - min(size, dataStart))
            guard t.offset <= inFile, UInt64(bytes) <= inFile - t.offset else {
                throw badT("its \(bytes) bytes at data offset \(t.offset) (file offset \(UInt64(dataStart).addingReportingOverflow(t.offset).partialValue)) run past the end of the file (\(size) bytes; the data section holds \(inFile)): truncated file?")
            }
            infos.append(GGUFTensorInfo(name: t.name, dims: t.dims, type: t.type, offset: Int(t.offset),
                                        elementCount: count, byteCount: bytes, rowCount: rowCount, rowBytes: rowBytes))
        }

        // No two tensors share a byte (ggml lays them out one after another, padded).
        let byStart = infos.filter { $0.byteCount > 0 }.sorted { ($0.offset, $0.name) < ($1.offset, $1.name) }
        for (a, b) in zip(byStart, byStart.dropFirst()) where b.offset < a.offset + a.byteCount {
            throw bad("tensors '\(a.name)' (data bytes \(a.offset)..<\(a.offset + a.byteCount)) and '\(b.name)' (from \(b.offset)) overlap")
        }
        tensors = infos
        self.index = index
    }

    // MARK: Lookup

    public func contains(_ name: String) -> Bool { index[name] != nil }

    public func tensorInfo(_ name: String) throws -> GGUFTensorInfo {
        guard let i = index[name] else {
            throw AttribError.io(path: path, detail: "no tensor named '\(name)' (the file holds \(tensors.count): \(nameList(tensors.map(\.name))))")
        }
        return tensors[i]
    }

    /// The tensor's raw bytes, straight from the mapping (valid only inside `body`).
    public func withUnsafeBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try body(raw(try tensorInfo(name)))
    }

    private func raw(_ t: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        // The data section may start past the end of a file whose tensors are all empty (no
        // padding written after the infos): slicing there would trap, and there is nothing to read.
        guard t.byteCount > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let start = dataStart + t.offset
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<(start + t.byteCount)])
    }

    // MARK: Values

    /// The tensor's values as Float, dequantised, in row-major order of `shape` (PyTorch's
    /// order: the last shape dimension, GGUF's dims[0], varies fastest).
    public func floats(_ name: String) throws -> [Float] {
        let t = try tensorInfo(name)
        return try floats(t, rows: 0..<t.rowCount)
    }

    /// Rows `rows` of the tensor (a row is dims[0] = shape.last elements; rows count over the
    /// other dimensions in row-major order), dequantised: e.g. a few token embeddings without
    /// the whole table. Cheap: rows start on block boundaries, so only their blocks are read.
    public func floats(_ name: String, rows: Range<Int>) throws -> [Float] {
        let t = try tensorInfo(name)
        guard rows.lowerBound >= 0, rows.upperBound <= t.rowCount else {
            throw AttribError.io(path: path, detail: "tensor \(t): rows \(rows.lowerBound)..<\(rows.upperBound) are out of range (it has \(t.rowCount) rows of \(t.rowLength))")
        }
        return try floats(t, rows: rows)
    }

    private func floats(_ t: GGUFTensorInfo, rows: Range<Int>) throws -> [Float] {
        guard t.type.isDequantisable else {
            throw AttribError.io(path: path, detail: "tensor '\(t.name)' has type \(t.type), which Attrib does not dequantise; supported: \(GGMLType.dequantisable.map(\.name).joined(separator: ", "))")
        }
        let n = rows.count * t.rowLength
        try HostMemory.require(n * MemoryLayout<Float>.stride, for: path, "tensor '\(t.name)' (shape \(t.shape))")
        let src = raw(t)
        let blockSize = t.type.layout!.blockSize
        return [Float](unsafeUninitializedCapacity: n) { buf, done in
            if n > 0, let base = src.baseAddress, let out = buf.baseAddress {
                GGUFDequant.run(t.type, base + rows.lowerBound * t.rowBytes, out, blocks: n / blockSize)
            }
            done = n
        }
    }
}

extension GGUFFile: CustomStringConvertible {
    public var description: String { "GGUFFile(\(path), v\(version), \(metadata.count) metadata keys, \(tensors.count) tensors)" }
}

private func hex(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}

/// A position in the mapped bytes, with reads that check the bounds first and name what they
/// were reading when the file ends early.
private struct GGUFReader {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var pos = 0

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.bytes = bytes
        self.path = path
    }

    var remaining: Int { bytes.count - pos }

    func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }

    /// Throws unless `n` more bytes follow.
    func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n <= remaining else {
            throw bad("truncated file: \(what()) needs \(n) bytes at offset \(pos), but the file ends at \(bytes.count)")
        }
    }

    mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 {
        try need(1, what())
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func u16(_ what: @autoclosure () -> String) throws -> UInt16 {
        try need(2, what())
        defer { pos += 2 }
        return bytes.le16(pos)
    }

    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 {
        try need(4, what())
        defer { pos += 4 }
        return bytes.le32(pos)
    }

    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 {
        try need(8, what())
        defer { pos += 8 }
        return bytes.le64(pos)
    }

    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let n = try u64(what() + " (its length)")
        guard n <= UInt64(remaining) else {
            throw bad("\(what()): string length \(n) runs past the end of the file (\(remaining) bytes left at offset \(pos)): truncated file?")
        }
        let len = Int(n)
        let body = UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + len)])
        guard let s = String(validating: body.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw bad("\(what()): the \(len)-byte string at offset \(pos) is not valid UTF-8")
        }
        pos += len
        return s
    }

    mutating func valueType(_ what: @autoclosure () -> String) throws -> GGUFValueType {
        let t = try u32(what() + " (its value type)")
        guard let type = GGUFValueType(rawValue: t) else {
            throw bad("\(what()): unknown value type \(t) (known: 0–12, \(GGUFValueType.allCases.map { "\($0)" }.joined(separator: ", ")))")
        }
        return type
    }

    mutating func bool(_ what: @autoclosure () -> String) throws -> Bool {
        let b = try u8(what())
        guard b <= 1 else { throw bad("\(what()): bool byte \(b) at offset \(pos - 1) is neither 0 nor 1") }
        return b == 1
    }

    mutating func value(_ type: GGUFValueType, _ what: @autoclosure () -> String, depth: Int) throws -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try u8(what()))
        case .int8: return .int8(Int8(bitPattern: try u8(what())))
        case .uint16: return .uint16(try u16(what()))
        case .int16: return .int16(Int16(bitPattern: try u16(what())))
        case .uint32: return .uint32(try u32(what()))
        case .int32: return .int32(Int32(bitPattern: try u32(what())))
        case .uint64: return .uint64(try u64(what()))
        case .int64: return .int64(Int64(bitPattern: try u64(what())))
        case .float32: return .float32(Float(bitPattern: try u32(what())))
        case .float64: return .float64(Double(bitPattern: try u64(what())))
        case .bool: return .bool(try bool(what()))
        case .string: return .string(try string(what()))
        case .array: return .array(try array(what(), depth: depth))
        }
    }

    /// `count` fixed-size values starting at `pos` (already bounds-checked by the caller).
    private mutating func fixed<T: FixedWidthInteger>(_ count: Int, _: T.Type) -> [T] {
        let start = pos, size = MemoryLayout<T>.size, b = bytes
        pos += count * size
        return [T](unsafeUninitializedCapacity: count) { buf, done in
            for i in 0..<count { buf[i] = T(littleEndian: b.loadUnaligned(fromByteOffset: start + i * size, as: T.self)) }
            done = count
        }
    }

    mutating func array(_ what: @autoclosure () -> String, depth: Int) throws -> GGUFArray {
        guard depth < GGUFFile.maxArrayDepth else {
            throw bad("\(what()): arrays nested deeper than \(GGUFFile.maxArrayDepth) levels")
        }
        let type = try valueType(what() + " (array element type)")
        let n = try u64(what() + " (array count)")
        // Every element takes at least minimumSize bytes: a count the file cannot hold is
        // refused here, before an array is reserved for it.
        guard n <= UInt64(remaining / type.minimumSize) else {
            throw bad("\(what()): array of \(n) \(type) values needs at least \(n.multipliedReportingOverflow(by: UInt64(type.minimumSize)).overflow ? "more than \(UInt64.max)" : "\(n * UInt64(type.minimumSize))") bytes, but \(remaining) remain at offset \(pos): truncated file?")
        }
        let count = Int(n)
        switch type {
        case .uint8: return .uint8(fixed(count, UInt8.self))
        case .int8: return .int8(fixed(count, Int8.self))
        case .uint16: return .uint16(fixed(count, UInt16.self))
        case .int16: return .int16(fixed(count, Int16.self))
        case .uint32: return .uint32(fixed(count, UInt32.self))
        case .int32: return .int32(fixed(count, Int32.self))
        case .uint64: return .uint64(fixed(count, UInt64.self))
        case .int64: return .int64(fixed(count, Int64.self))
        case .float32: return .float32(fixed(count, UInt32.self).map { Float(bitPattern: $0) })
        case .float64: return .float64(fixed(count, UInt64.self).map { Double(bitPattern: $0) })
        case .bool:
            var out: [Bool] = []
            out.reserveCapacity(count)
            for i in 0..<count { out.append(try bool(what() + "[\(i)]")) }
            return .bool(out)
        case .string:
            var out: [String] = []
            out.reserveCapacity(count)
            for i in 0..<count { out.append(try string(what() + "[\(i)]")) }
            return .string(out)
        case .array:
            var out: [GGUFArray] = []
            out.reserveCapacity(count)
            for i in 0..<count { out.append(try array(what() + "[\(i)]", depth: depth + 1)) }
            return .array(out)
        }
    }
}
