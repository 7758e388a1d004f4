/// Element types a tensor can hold. Float32 is the compute type; Float64 is
/// for reference runs (CPU backend, fp64-capable OpenCL devices); Int32 holds
/// indices (token ids, gather/scatter rows).
///
/// BFloat16 and Float16 are storage types only: a large model's weight matrices and
/// embedding tables kept at half the bytes (`--dtype`). No arithmetic op takes them;
/// `widened()` and a gather from a half table turn them into Float32 where they are read,
/// so every sum is still Float32 (Linear+HalfWeight.swift).
public enum DType: String, Sendable, Codable, CaseIterable {
    case float32, float64, int32, bfloat16, float16

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .float32, .int32: return 4
        case .float64: return 8
        case .bfloat16, .float16: return 2
        }
    }

    /// A type arithmetic ops compute in (Float32, Float64).
    public var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    /// BFloat16 and Float16: held, widened where read, never computed in.
    public var isStorageOnly: Bool { self == .bfloat16 || self == .float16 }

    /// Unit round-off (half an ulp at 1): the ε in the error bounds the tests derive. For the
    /// storage types it is the rounding of a Float32 value to them (8 and 11 significant bits).
    public var unitRoundoff: Double {
        switch self {
        case .float32: return 0x1p-24
        case .float64: return 0x1p-53
        case .int32: return 0
        case .bfloat16: return 0x1p-8
        case .float16: return 0x1p-11
        }
    }

    /// The dtype named on a command line: float32/f32/fp32, bfloat16/bf16, float16/f16/fp16.
    public init?(name: String) {
        switch name.lowercased() {
        case "float32", "f32", "fp32": self = .float32
        case "float64", "f64", "fp64": self = .float64
        case "bfloat16", "bf16": self = .bfloat16
        case "float16", "f16", "fp16", "half": self = .float16
        default: return nil
        }
    }
}
