/// Element types a tensor can hold. Float32 is the compute type; Float64 is
/// for reference runs (CPU backend, fp64-capable OpenCL devices); Int32 holds
/// indices (token ids, gather/scatter rows).
public enum DType: String, Sendable, Codable, CaseIterable {
    case float32, float64, int32

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64: return 8
        }
    }

    public var isFloatingPoint: Bool { self != .int32 }

    /// Unit round-off (half an ulp at 1): the ε in the error bounds the tests derive.
    public var unitRoundoff: Double {
        switch self {
        case .float32: return 0x1p-24
        case .float64: return 0x1p-53
        case .int32: return 0
        }
    }
}
