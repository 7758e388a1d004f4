// swift-tools-version: 6.1
// Attrib: feature and component attribution on GPUs (OpenCL) with an
// OpenBLAS CPU fallback. SwiftPM only; see BUILDING.md for the system
// libraries and why.
import PackageDescription
#if canImport(Glibc)
import Glibc
#endif

let package = Package(
    name: "Attrib",
    products: [
        .executable(name: "attrib", targets: ["attrib"]),
        .library(name: "Attrib", targets: ["Attrib"]),
        .library(name: "AttribCore", targets: ["AttribCore"]),
        .library(name: "AttribOpenCL", targets: ["AttribOpenCL"]),
        .library(name: "AttribModels", targets: ["AttribModels"]),
        .library(name: "AttribMethods", targets: ["AttribMethods"]),
        .library(name: "AttribONNX", targets: ["AttribONNX"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // ONNX files are protobuf: the runtime library only. The generated types are committed
        // (scripts/generate_onnx_swift.sh), so the plugin is never built.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // System libraries: the Khronos ICD loader and OpenBLAS's CBLAS.
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL",
                       providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS",
                       providers: [.apt(["libopenblas-dev"])]),
        // libpng, for heatmap PNGs (its simplified API: no setjmp on our side).
        .systemLibrary(name: "CPNG", path: "Sources/CPNG",
                       providers: [.apt(["libpng-dev"])]),
        // libjpeg-turbo's TurboJPEG API, for JPEG inputs (errors returned, not longjmp'd).
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        // zlib's crc32, for the checksums of a sweep's manifest (resume, merge).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // The OpenCL C sources, embedded in the binary so a GPU host needs
        // nothing but the executable.
        .target(name: "AttribKernels", path: "Kernels",
                exclude: ["README.md"],
                resources: [
                    .embedInCode("activation_math.cl"), .embedInCode("operand_round.cl"), .embedInCode("gemm_epilogue.cl"),
                    .embedInCode("gemm.cl"), .embedInCode("gemm_db.cl"), .embedInCode("gemm_mma.cl"),
                    .embedInCode("elementwise.cl"),
                    .embedInCode("activation.cl"), .embedInCode("reduce.cl"),
                    .embedInCode("softmax.cl"), .embedInCode("gather.cl"),
                    .embedInCode("path.cl"),
                    .embedInCode("conv.cl"), .embedInCode("conv_igemm.cl"), .embedInCode("pool.cl"), .embedInCode("layernorm.cl"),
                    .embedInCode("attention.cl"),
                    .embedInCode("sobol.cl"),
                    .embedInCode("atp.cl"),
                ]),
        // GELU in AVX2 (one exp and two fits per 8 lanes; libm's erfc and exp where the CPU
        // lacks AVX2), the one elementwise function whose cost dominated small CNNs on the
        // CPU backend, and the tiled average pooling of those CNNs, in C for its code generation.
        .target(name: "CVecMath", path: "Sources/CVecMath",
                linkerSettings: [.linkedLibrary("m")]),
        // oneDNN (Debian's libdnnl-dev) for the CPU backend's Float32 convolutions: its JIT
        // kernels, called from C (conv_dnnl.c) for the descriptors and reorders around them.
        .target(name: "CConvDNNL", path: "Sources/CConvDNNL",
                linkerSettings: [.linkedLibrary("dnnl"), .linkedLibrary("gomp")]),
        .target(name: "AttribCore", dependencies: ["CBLAS", "CVecMath", "CConvDNNL"]),
        .target(name: "AttribOpenCL", dependencies: ["AttribCore", "COpenCL", "AttribKernels"]),
        .target(name: "AttribModels", dependencies: ["AttribCore"]),
        .target(name: "AttribMethods", dependencies: ["AttribCore", "AttribModels", "CPNG", "CTurboJPEG", "CZlib"],
                resources: [.embedInCode("Resources/joe-kuo-6.2048.txt")]),
        // ONNX models as graphs (Generated/onnx.pb.swift from scripts/generate_onnx_swift.sh).
        .target(name: "AttribONNX", dependencies: ["AttribCore", "AttribModels",
                                                   .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "Attrib", dependencies: ["AttribCore", "AttribOpenCL", "AttribModels", "AttribMethods", "AttribONNX"]),
        // The commit `attrib --version` prints (scripts/stamp_commit.sh writes it; "unknown" without).
        .target(name: "CBuildInfo", path: "Sources/CBuildInfo"),
        .executableTarget(name: "attrib", dependencies: [
            "Attrib", "CBuildInfo",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "GEMMBench", dependencies: ["Attrib"], path: "Benchmarks/GEMMBench"),
        .testTarget(name: "AttribTests", dependencies: ["Attrib", "AttribONNX",
                                                        .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
    ]
)

// libFuzzer targets, one per parser (scripts/fuzz.sh builds them with ATTRIB_FUZZ=1 and
// -sanitize=fuzzer,address). Only then: without the fuzzer runtime they have no main().
if getenv("ATTRIB_FUZZ") != nil {
    package.targets.append(.target(name: "CFuzzDriver", path: "Fuzz/Targets/CFuzzDriver"))
    package.targets.append(.target(name: "FuzzSupport", dependencies: ["AttribCore", "CFuzzDriver"], path: "Fuzz/Targets/FuzzSupport"))
    for name in ["FuzzNPY", "FuzzSafeTensors", "FuzzSequentialModel", "FuzzGPT2Model", "FuzzTokenizer", "FuzzPairs", "FuzzONNX", "FuzzGGUF", "FuzzHFTokenizer", "FuzzImage"] {
        package.targets.append(.executableTarget(name: name, dependencies: ["Attrib", "FuzzSupport"], path: "Fuzz/Targets/\(name)"))
        package.products.append(.executable(name: name, targets: [name]))
    }
}
