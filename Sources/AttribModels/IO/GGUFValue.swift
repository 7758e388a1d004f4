/// The value types of GGUF metadata (the u32 before each value, and before an array's elements).
/// "\(type)" prints the case's name.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Bytes of one value of a fixed-size type; nil for string and array.
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one value can take (a string's length field, an array's type and count):
    /// what a declared count is checked against before anything is allocated for it.
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }
}

/// One metadata value of a GGUF file.
public enum GGUFValue: Sendable, Equatable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    case array(GGUFArray)

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    /// An integer of any width, when it fits in Int (a uint64 above Int.max does not).
    public var int: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// A float of either width, or an integer (exact up to 2^53). Writers store
    /// e.g. rope_freq_base as float32 or as an integer, so readers should not care.
    public var double: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        case let .uint64(v): return Double(v)
        default: return int.map(Double.init)
        }
    }

    public var float: Float? { double.map(Float.init) }

    public var string: String? { if case let .string(s) = self { return s }; return nil }

    public var bool: Bool? { if case let .bool(b) = self { return b }; return nil }

    public var array: GGUFArray? { if case let .array(a) = self { return a }; return nil }

    /// An array of strings (e.g. tokenizer.ggml.tokens).
    public var strings: [String]? { if case let .array(.string(s)) = self { return s }; return nil }

    /// An array of integers of any width, when every element fits in Int.
    public var ints: [Int]? { array?.ints }

    /// An array of floats or integers, as Double.
    public var doubles: [Double]? { array?.doubles }

    /// An array of floats or integers, as Float (e.g. tokenizer.ggml.scores).
    public var floats: [Float]? { array?.doubles?.map(Float.init) }

    public var description: String {
        switch self {
        case let .uint8(v): return "\(v)"
        case let .int8(v): return "\(v)"
        case let .uint16(v): return "\(v)"
        case let .int16(v): return "\(v)"
        case let .uint32(v): return "\(v)"
        case let .int32(v): return "\(v)"
        case let .uint64(v): return "\(v)"
        case let .int64(v): return "\(v)"
        case let .float32(v): return "\(v)"
        case let .float64(v): return "\(v)"
        case let .bool(v): return "\(v)"
        case let .string(s): return s.count > 60 ? "\"\(s.prefix(57))…\"" : "\"\(s)\""
        case let .array(a): return a.description
        }
    }
}

/// A metadata array: its elements share one type, so they are kept as one typed array each
/// (a million-token vocabulary or a u8 array stays compact, not a GGUFValue per element).
public indirect enum GGUFArray: Sendable, Equatable, CustomStringConvertible {
    case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32])
    case uint64([UInt64]), int64([Int64]), float32([Float]), float64([Double]), bool([Bool]), string([String])
    /// An array of arrays (each inner one typed on its own, as the format allows).
    case array([GGUFArray])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .uint64: return .uint64
        case .int64: return .int64
        case .float32: return .float32
        case .float64: return .float64
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        }
    }

    public var count: Int {
        switch self {
        case let .uint8(a): return a.count
        case let .int8(a): return a.count
        case let .uint16(a): return a.count
        case let .int16(a): return a.count
        case let .uint32(a): return a.count
        case let .int32(a): return a.count
        case let .uint64(a): return a.count
        case let .int64(a): return a.count
        case let .float32(a): return a.count
        case let .float64(a): return a.count
        case let .bool(a): return a.count
        case let .string(a): return a.count
        case let .array(a): return a.count
        }
    }

    /// Element `i` as a value (0 ≤ i < count).
    public subscript(i: Int) -> GGUFValue {
        switch self {
        case let .uint8(a): return .uint8(a[i])
        case let .int8(a): return .int8(a[i])
        case let .uint16(a): return .uint16(a[i])
        case let .int16(a): return .int16(a[i])
        case let .uint32(a): return .uint32(a[i])
        case let .int32(a): return .int32(a[i])
        case let .uint64(a): return .uint64(a[i])
        case let .int64(a): return .int64(a[i])
        case let .float32(a): return .float32(a[i])
        case let .float64(a): return .float64(a[i])
        case let .bool(a): return .bool(a[i])
        case let .string(a): return .string(a[i])
        case let .array(a): return .array(a[i])
        }
    }

    /// Every element as a value.
    public var values: [GGUFValue] { (0..<count).map { self[$0] } }

    /// The elements as Int, when they are integers that all fit.
    public var ints: [Int]? {
        switch self {
        case let .uint8(a): return a.map(Int.init)
        case let .int8(a): return a.map(Int.init)
        case let .uint16(a): return a.map(Int.init)
        case let .int16(a): return a.map(Int.init)
        case let .uint32(a): return a.map(Int.init)
        case let .int32(a): return a.map(Int.init)
        case let .int64(a): return a.map(Int.init)
        case let .uint64(a):
            var out: [Int] = []
            out.reserveCapacity(a.count)
            for v in a { guard let i = Int(exactly: v) else { return nil }; out.append(i) }
            return out
        default: return nil
        }
    }

    /// The elements as Double, when they are numbers (floats exactly, integers up to 2^53 exactly).
    public var doubles: [Double]? {
        switch self {
        case let .float32(a): return a.map(Double.init)
        case let .float64(a): return a
        case let .uint64(a): return a.map(Double.init)
        default: return ints?.map(Double.init)
        }
    }

    public var description: String {
        let shown = (0..<min(count, 4)).map { self[$0].description }.joined(separator: ", ")
        return "[\(elementType) × \(count)" + (count == 0 ? "]" : ": \(shown)\(count > 4 ? ", …" : "")]")
    }
}
