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
    @Option(help: "Transpose combinations to tune, comma-separated among NN, NT, TN, TT (A then B).") var variants = "NN,NT,TN,TT"
    @Option(help: "Seconds of search in all, shared evenly by the variants; candidates past a variant's share are reported untried (each is an OpenCL build, seconds on some drivers). Default: no limit.") var budget: Double?

    func validate() throws {
        guard global.precision == .fp32 else {
            throw ValidationError("tune gemm times the FP32 kernels' tiles; --precision \(global.precision.rawValue) does not apply (Benchmarks/mma_tiles.sh times the tensor-core tiles)")
        }
    }

    func run() throws {
        guard let device = try global.selectedDevice() as? OpenCLDevice else {
            throw ValidationError("tune gemm needs an OpenCL device (the CPU backend uses OpenBLAS); pass --device opencl or opencl:N")
        }
        let dtype: DType = fp64 ? .float64 : .float32
        let n = size ?? (device.info.kind == .gpu ? 2048 : 1024)
        let chosen = try variants.split(separator: ",").map { s -> GEMMVariant in
            guard s.count == 2, s.allSatisfy({ $0 == "N" || $0 == "T" }) else { throw ValidationError("bad variant '\(s)'; use NN, NT, TN or TT") }
            return GEMMVariant(dtype: dtype, transA: s.first == "T", transB: s.last == "T")
        }
        print("Tuning GEMM (\(dtype), \(n)×\(n)×\(n)) on \(device.info.summary)\(budget.map { ", \(fixed($0, 0)) s budget" } ?? "")")
        let clock = ContinuousClock(), started = clock.now
        for v in chosen {
            let before = try GEMMBenchmark.measure(on: device, m: n, n: n, k: n, dtype: dtype, transA: v.transA, transB: v.transB, minSeconds: 0.3)
            print("\(v.key) before: \(fixed(before.gflops, 1)) GFLOP/s [\(before.parameters ?? "")]")
            let (best, _) = try GEMMTuner.tune(device, size: n, variant: v, budgetSeconds: budget.map { $0 / Double(chosen.count) }) { t in
                print("  \(pad(t.gflops.map { fixed($0, 1) + " GFLOP/s" } ?? "rejected", 16)) \(t.parameters)  [\(fixed(t.seconds, 1)) s]\(t.problem.map { "  (\($0))" } ?? "")")
            }
            guard let best else { throw ValidationError("no candidate ran correctly for \(v.key) on \(device.info.summary); the defaults stay in use") }
            print("\(v.key) after:  \(fixed(best.gflops!, 1)) GFLOP/s [\(best.parameters)]  (\(fixed(best.gflops! / before.gflops, 2))× before)")
        }
        print("search took \(fixed((clock.now - started).seconds, 1)) s; stored in \(GEMMTuningCache.path)")
    }
}
