import ArgumentParser
import Attrib

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks.", subcommands: [BenchGEMM.self, BenchModel.self, BenchConv.self, BenchLM.self])
}

struct BenchGEMM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GFLOP/s of square GEMM per size and device, its share of FP32 peak, and its error against the CPU backend.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Comma-separated sizes (m = n = k).") var sizes = "256,1024,2048,4096"
    @Flag(help: "Benchmark every device, not just the selected one.") var all = false
    @Flag(help: "Use Float64.") var fp64 = false
    @Option(help: "Seconds of timed calls per measurement (at least).") var seconds = 0.5
    @Option(help: "Instead of --sizes: products MxNxK, comma-separated, each C = A·Bᵀ with A [M, K] and B [N, K] (a layer's activations times its stored weight, as a sweep's forward runs them), e.g. 64x4096x4096,8192x3072x768.") var shapes: String?
    @Option(help: "Compare with the CPU backend only up to this size (the reference costs the host seconds at 8192).") var checkUpTo = 4096
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let sizeList = try parseList(sizes, "--sizes")
        var devices = all ? Devices.all : [try global.selectedDevice()]
        if all && global.precision != .fp32 {
            // --precision on every device that has it; the others are named and left out.
            devices = devices.filter { d in
                do { try d.setMatmulPrecision(global.precision); return true } catch {
                    if !json { print("\(d.info.id): left out: \(error)") }
                    return false
                }
            }
        }
        let dtype: DType = fp64 ? .float64 : .float32
        var results: [GEMMMeasurement] = []
        if !json {
            print("\(pad("device", 10)) \(pad("prec", 5)) \(pad("size", 6)) \(pad("GFLOP/s", 9)) \(pad("of peak", 8)) \(pad("max rel err", 11)) \(pad("bound", 9))  name / kernel")
        }
        // (m, n, k, B transposed): the square sizes, or the --shapes products.
        let products: [(Int, Int, Int, Bool)] = try shapes.map { list in
            try list.split(separator: ",").map { item in
                let d = item.lowercased().split(separator: "x").compactMap { Int($0) }
                guard d.count == 3, d.allSatisfy({ $0 >= 1 }) else { throw ValidationError("bad product '\(item)' in --shapes; use MxNxK") }
                return (d[0], d[1], d[2], true)
            }
        } ?? sizeList.map { ($0, $0, $0, false) }
        for d in devices where d.supports(dtype) {
            for (m, n, k, tB) in products {
                let s = m
                let r = try GEMMBenchmark.measure(on: d, m: m, n: n, k: k, dtype: dtype, transB: tB, minSeconds: seconds,
                                                  checkAgainstCPU: max(m, n, k) <= checkUpTo)
                results.append(r)
                if !json {
                    let share = r.peakShare.map { fixed($0 * 100, 1) + "%" } ?? "unknown"
                    let err = r.maxRelativeError.map(sci) ?? (d is CPUDevice ? "reference" : "unchecked")
                    print("\(pad(r.device, 10)) \(pad(r.precision.rawValue, 5)) \(pad(tB ? "\(m)x\(n)x\(k)" : String(s), 6)) \(pad(fixed(r.gflops, 1), 9)) \(pad(share, 8)) \(pad(err, 11)) \(pad(sci(r.errorBound), 9))  \(r.deviceName)\(r.parameters.map { " [\($0)]" } ?? "")")
                }
            }
        }
        if json { try printJSON(results) }
    }
}

extension Substring {
    func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}

struct BenchModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Forward + backward throughput (samples/s) of a model: outputs and input gradients per batch, as the gradient sweeps run them.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Model: a directory (Sequential config, or one with model.onnx) or a .onnx file.") var model: String?
    @Option(help: "Instead of --model: a random-weight MLP with these layer sizes, e.g. 784,4096,4096,10.") var mlp: String?
    @Option(help: "Comma-separated batch sizes.") var batches = "1,64,1024"
    @Option(help: "Seconds of timed calls per measurement (at least).") var seconds = 0.5
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let device = try global.selectedDevice()
        let net: any AttributionModel
        switch (model, mlp) {
        case let (m?, nil): net = try loadAttributionModel(m, on: device)
        case let (nil, sizes?):
            net = try Sequential.randomMLP(try parseList(sizes, "--mlp"), on: device)
        default: throw ValidationError("give exactly one of --model DIR or --mlp SIZES")
        }
        var results: [ModelMeasurement] = []
        for b in try parseList(batches, "--batches") {
            let r = try ModelBenchmark.measure(net, batch: b, minSeconds: seconds)
            results.append(r)
            if !json { print("\(pad(r.device, 10)) batch \(pad(String(b), 6)) \(pad(fixed(r.samplesPerSecond, 1), 12)) samples/s  (\(fixed(r.secondsPerBatch * 1000, 3)) ms per batch)") }
        }
        if json { try printJSON(results) }
    }
}

/// Parses "1,64,1024" into integers of at least `minimum` (positive by default), naming the option on error.
func parseList(_ s: String, _ option: String, minimum: Int = 1) throws -> [Int] {
    try s.split(separator: ",").map { part -> Int in
        guard let v = Int(part.trimmingCharacters(in: " ")), v >= minimum else { throw ValidationError("bad value '\(part)' in \(option)") }
        return v
    }
}
