/// The element types of ggml tensors, as GGUF stores them (the u32 type id of a tensor info).
/// Every id ggml has assigned is here, so a message can name a known type Attrib does not
/// dequantise instead of reporting a bare number; ids ggml never assigned are refused by number.
/// Ids 4, 5, 31–33 and 36–38 were removed from ggml (their layouts are gone): named, never read.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3
    case Q4_2 = 4, Q4_3 = 5
    case Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9
    case Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15
    case IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23
    case I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30
    case Q4_0_4_4 = 31, Q4_0_4_8 = 32, Q4_0_8_8 = 33
    case TQ1_0 = 34, TQ2_0 = 35
    case IQ4_NL_4_4 = 36, IQ4_NL_4_8 = 37, IQ4_NL_8_8 = 38
    case MXFP4 = 39, NVFP4 = 40, Q1_0 = 41

    /// The name ggml and gguf-py print (the case's own name, which is also what "\(type)" prints:
    /// no CustomStringConvertible, whose description would have to spell every case again).
    public var name: String { String(describing: self) }

    /// The types `GGUFFile.floats` dequantises.
    public static let dequantisable: [GGMLType] = [.F32, .F16, .BF16, .Q8_0, .Q4_0, .Q4_1, .Q4_K, .Q6_K]

    public var isDequantisable: Bool { Self.dequantisable.contains(self) }

    /// (elements per block, bytes per block), as ggml's type traits give them; nil for the
    /// removed types, whose files no current ggml reads either.
    public var layout: (blockSize: Int, typeSize: Int)? {
        switch self {
        case .F32, .I32: return (1, 4)
        case .F16, .BF16, .I16: return (1, 2)
        case .I8: return (1, 1)
        case .I64, .F64: return (1, 8)
        case .Q4_0, .IQ4_NL: return (32, 18)
        case .Q4_1: return (32, 20)
        case .Q5_0: return (32, 22)
        case .Q5_1: return (32, 24)
        case .Q8_0: return (32, 34)
        case .Q8_1: return (32, 40)
        case .Q2_K: return (256, 84)
        case .Q3_K, .IQ3_S: return (256, 110)
        case .Q4_K: return (256, 144)
        case .Q5_K: return (256, 176)
        case .Q6_K: return (256, 210)
        case .Q8_K: return (256, 292)
        case .IQ2_XXS, .TQ2_0: return (256, 66)
        case .IQ2_XS: return (256, 74)
        case .IQ3_XXS: return (256, 98)
        case .IQ1_S: return (256, 50)
        case .IQ2_S: return (256, 82)
        case .IQ4_XS: return (256, 136)
        case .IQ1_M: return (256, 56)
        case .TQ1_0: return (256, 54)
        case .MXFP4: return (32, 17)
        case .NVFP4: return (64, 36)
        case .Q1_0: return (128, 18)
        case .Q4_2, .Q4_3, .Q4_0_4_4, .Q4_0_4_8, .Q4_0_8_8, .IQ4_NL_4_4, .IQ4_NL_4_8, .IQ4_NL_8_8: return nil
        }
    }
}
