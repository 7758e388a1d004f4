import AttribCore

/// The element types of the safetensors format, spelled as in the header.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Codable {
    case BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3: return 1
        case .I16, .U16, .F16, .BF16: return 2
        case .I32, .U32, .F32: return 4
        case .F64, .I64, .U64: return 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .F8_E5M2, .F8_E4M3, .F16, .BF16, .F32, .F64: return true
        default: return false
        }
    }

    /// The dtypes `SafeTensorsWriter` can write.
    public static let writable: [SafeTensorsDType] = [.F32, .F64, .F16, .BF16, .I32, .I64]

    /// The safetensors dtype that holds a tensor dtype exactly.
    public init(_ dtype: DType) {
        switch dtype {
        case .float32: self = .F32
        case .float64: self = .F64
        case .int32: self = .I32
        case .bfloat16: self = .BF16
        case .float16: self = .F16
        }
    }
}

/// One tensor's header entry.
public struct SafeTensorsEntry: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Row-major; `[]` is a scalar (one element).
    public let shape: [Int]
    /// Byte range within the data section (which starts after the header).
    public let dataOffsets: Range<Int>

    public init(name: String, dtype: SafeTensorsDType, shape: [Int], dataOffsets: Range<Int>) {
        self.name = name; self.dtype = dtype; self.shape = shape; self.dataOffsets = dataOffsets
    }

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataOffsets.count }
}
