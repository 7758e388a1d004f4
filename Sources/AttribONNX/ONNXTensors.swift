import AttribCore
import FoundationEssentials
import SwiftProtobuf
import AttribModels

/// A constant of an ONNX file (an initializer or a Constant node's value) on the host.
struct ONNXConstant {
    let dims: [Int]
    let values: [Double]
    /// Per entry, the coefficient of the batch size N in its value (entry = batch·N + value):
    /// shape arithmetic folded at load around a dynamic batch dimension. nil: a plain constant.
    var batch: [Double]? = nil
    /// The first dimension (of size 1 here) stands for the batch: the same values for every
    /// sample (ConstantOfShape([N, T]), Expand to [N, …]). Shape reads it as N.
    var batchedFirst = false
    var count: Int { values.count }
}

extension ONNXConstant {

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
        dims = t.dims.map(Int.init)
        let type = Onnx_TensorProto.DataType(rawValue: Int(t.dataType))
        let raw = t.dataLocation == .external ? try Self.externalBytes(t, name: name, file: file) : t.rawData
        func fromRaw<T>(_: T.Type, _ convert: (T) -> Double) throws -> [Double] {
            guard raw.count == count * MemoryLayout<T>.size else {
                throw AttribError.io(path: file, detail: "tensor '\(name)' has \(raw.count) raw bytes for \(count) elements of \(T.self)")
            }
            return raw.withUnsafeBytes { b in (0..<count).map { convert(b.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) } }
        }
        let v: [Double]
        switch type {
        case .float?: v = raw.isEmpty ? t.floatData.map(Double.init) : try fromRaw(Float.self) { Double($0) }
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
        if type == .float || type == .double, let bad = v.firstIndex(where: { !$0.isFinite }) {
            throw AttribError.io(path: file, detail: "tensor '\(name)' has a non-finite value (\(v[bad])) at element \(bad)")
        }
        values = v
        batch = nil
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
        try Tensor(values, shape: shape ?? (dims.isEmpty ? [1] : dims), dtype: dtype, on: device)
    }
}
