import ArgumentParser
import Attrib

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune", abstract: "Tune kernels for the selected device.", subcommands: [TuneGEMM.self])
}

struct TuneGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Time every candidate GEMM tile set on the selected OpenCL device and store the fastest correct one.",
        discussion: "The result goes to $XDG_CACHE_HOME/attrib/gemm-tuning.json (else ~/.cache/attrib), keyed by device and driver; later runs use it.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Size of the square product timed (default: 2048 on GPUs, 1024 elsewhere).") var size: Int?
    @Flag(help: "Tune Float64 instead of Float32.") var fp64 = false

    func run() throws {
        guard let device = try global.selectedDevice() as? OpenCLDevice else {
            throw ValidationError("tune gemm needs an OpenCL device (the CPU backend uses OpenBLAS); pass --device opencl or opencl:N")
        }
        let dtype: DType = fp64 ? .float64 : .float32
        let n = size ?? (device.info.kind == .gpu ? 2048 : 1024)
        let before = try GEMMBenchmark.measure(on: device, m: n, n: n, k: n, dtype: dtype, minSeconds: 0.3)
        print("Tuning GEMM (\(dtype), \(n)×\(n)×\(n)) on \(device.info.summary)")
        print("current: \(fixed(before.gflops, 1)) GFLOP/s [\(before.parameters ?? "")]")
        let (best, _) = try GEMMTuner.tune(device, size: n, dtype: dtype) { t in
            print("  \(pad(t.gflops.map { fixed($0, 1) + " GFLOP/s" } ?? "rejected", 16)) \(t.parameters)\(t.problem.map { "  (\($0))" } ?? "")")
        }
        guard let best else { throw ValidationError("no candidate ran correctly on \(device.info.summary); the defaults stay in use") }
        print("best:    \(fixed(best.gflops!, 1)) GFLOP/s [\(best.parameters)]  (\(fixed(best.gflops! / before.gflops, 2))× the parameters before)")
        print("stored in \(GEMMTuningCache.path)")
    }
}
