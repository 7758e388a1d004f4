import AttribCore

/// Writes safetensors files: tensors in name order with ascending, contiguous
/// data offsets; the header padded with spaces to a multiple of 8 bytes (as the
/// reference implementation does), so the data section starts 8-aligned.
public enum SafeTensorsWriter {
    /// One tensor to write: row-major `values` of `shape` (`[]` for a scalar), stored as `dtype`.
    public typealias Item = (name: String, shape: [Int], values: [Double], dtype: SafeTensorsDType)

    /// Writes `tensors` to `path`. F32, F16 and BF16 round to nearest, ties to
    /// even; a finite value beyond the dtype's range is an error, as is a
    /// non-integral or out-of-range value for I32/I64.
    public static func write(_ tensors: [Item], metadata: [String: String] = [:], to path: String) throws {
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }
        var seen = Set<String>()
        for t in tensors {
            guard t.name != "__metadata__" else { throw bad("'__metadata__' is reserved and cannot name a tensor") }
            guard seen.insert(t.name).inserted else { throw bad("tensor '\(t.name)' is given twice") }
            guard SafeTensorsDType.writable.contains(t.dtype) else {
                throw bad("tensor '\(t.name)': cannot write dtype \(t.dtype); writable: \(SafeTensorsDType.writable.map(\.rawValue).joined(separator: ", "))")
            }
            if let d = t.shape.first(where: { $0 < 0 }) { throw bad("tensor '\(t.name)': negative dimension \(d) in shape \(t.shape)") }
            guard let n = elementCount(t.shape), n == t.values.count else {
                throw bad("tensor '\(t.name)': \(t.values.count) values given for shape \(t.shape) (\(elementCount(t.shape).map(String.init) ?? "too many") elements)")
            }
        }
        let sorted = tensors.sorted { $0.name < $1.name }

        var json = "{"
        if !metadata.isEmpty {
            json += "\"__metadata__\":{" + metadata.keys.sorted().map { jsonQuoted($0) + ":" + jsonQuoted(metadata[$0]!) }
                .joined(separator: ",") + "},"
        }
        var offset = 0
        for t in sorted {
            let bytes = t.values.count * t.dtype.size
            json += jsonQuoted(t.name) + ":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":["
                + t.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(offset + bytes)]},"
            offset += bytes
        }
        if json.hasSuffix(",") { json.removeLast() }
        json += "}"
        var header = Array(json.utf8)
        header += [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8)

        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        out.appendLE(UInt64(header.count))
        out += header
        for t in sorted { try encode(t, into: &out, bad: bad) }
        try writeFile(path, out)
    }

    /// Writes tensors (downloaded from their devices), each as `dtype`, or as its own type (F32, F64, I32) when nil.
    public static func write(_ tensors: [String: Tensor], dtype: SafeTensorsDType? = nil,
                             metadata: [String: String] = [:], to path: String) throws {
        let items: [Item] = try tensors.keys.sorted().map { name in
            let t = tensors[name]!
            return (name, t.shape, try t.doubles(), dtype ?? SafeTensorsDType(t.dtype))
        }
        try write(items, metadata: metadata, to: path)
    }

    private static func encode(_ t: Item, into out: inout [UInt8], bad: (String) -> AttribError) throws {
        func overflow(_ k: Int, _ limit: String) -> AttribError {
            bad("tensor '\(t.name)': element \(k) = \(t.values[k]) overflows \(t.dtype) (largest finite \(limit))")
        }
        for (k, v) in t.values.enumerated() {
            switch t.dtype {
            case .F64:
                out.appendLE(v.bitPattern)
            case .F32:
                let f = Float(v)
                if v.isFinite && !f.isFinite { throw overflow(k, "\(Float.greatestFiniteMagnitude)") }
                out.appendLE(f.bitPattern)
            case .F16:
                let h = HalfFloat.f16Bits(v)
                if v.isFinite && h & 0x7C00 == 0x7C00 { throw overflow(k, "65504") }
                out.appendLE(h)
            case .BF16:
                let h = HalfFloat.bf16Bits(v)
                if v.isFinite && h & 0x7F80 == 0x7F80 { throw overflow(k, "3.3895314e+38") }
                out.appendLE(h)
            case .I32:
                guard let i = Int32(exactly: v) else { throw bad("tensor '\(t.name)': element \(k) = \(v) is not an integer in the I32 range") }
                out.appendLE(i)
            case .I64:
                guard let i = Int64(exactly: v) else { throw bad("tensor '\(t.name)': element \(k) = \(v) is not an integer in the I64 range") }
                out.appendLE(i)
            default:
                throw bad("tensor '\(t.name)': cannot write dtype \(t.dtype)")
            }
        }
    }
}
