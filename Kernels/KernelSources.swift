// The kernel sources, embedded by SwiftPM from the .cl files beside this one.

/// OpenCL C source of each kernel family, as compiled at run time.
public enum KernelSource: String, CaseIterable, Sendable {
    case gemm, gemmDB = "gemm_db", gemmMMA = "gemm_mma", elementwise, convIGEMM = "conv_igemm", activation, reduce, softmax, gather, path, conv, pool, layernorm, sobol, attention, atp

    /// The source text, read from the bytes embedded at build time.
    public var text: String {
        let bytes: [UInt8]
        switch self {
        case .gemm: bytes = PackageResources.gemm_cl
        case .gemmDB: bytes = PackageResources.gemm_db_cl
        case .gemmMMA: bytes = PackageResources.gemm_mma_cl
        case .convIGEMM: bytes = PackageResources.conv_igemm_cl
        case .elementwise: bytes = PackageResources.elementwise_cl
        case .activation: bytes = PackageResources.activation_cl
        case .reduce: bytes = PackageResources.reduce_cl
        case .softmax: bytes = PackageResources.softmax_cl
        case .gather: bytes = PackageResources.gather_cl
        case .path: bytes = PackageResources.path_cl
        case .conv: bytes = PackageResources.conv_cl
        case .pool: bytes = PackageResources.pool_cl
        case .layernorm: bytes = PackageResources.layernorm_cl
        case .attention: bytes = PackageResources.attention_cl
        case .sobol: bytes = PackageResources.sobol_cl
        case .atp: bytes = PackageResources.atp_cl
        }
        return String(decoding: prelude + bytes, as: UTF8.self)
    }

    /// What is prepended to the file: `real` and the activations (activation_math.cl) where
    /// a kernel computes f or f′; the products' kernels also share the operand rounding of
    /// --precision (operand_round.cl), and the three GEMMs the fused epilogue
    /// (gemm_epilogue.cl). One definition each, so fused and separate kernels agree.
    private var prelude: [UInt8] {
        switch self {
        case .activation, .path: return PackageResources.activation_math_cl
        case .convIGEMM: return PackageResources.activation_math_cl + PackageResources.operand_round_cl
        case .gemm, .gemmDB, .gemmMMA:
            return PackageResources.activation_math_cl + PackageResources.operand_round_cl + PackageResources.gemm_epilogue_cl
        default: return []
        }
    }

    /// The file name in Kernels/, for error messages.
    public var fileName: String { rawValue + ".cl" }
}
