import ArgumentParser
import Attrib

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks.", subcommands: [BenchGEMM.self, BenchModel.self, BenchLM.self])
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
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let sizeList = try parseList(sizes, "--sizes")
        let devices = all ? Devices.all : [try global.selectedDevice()]
        let dtype: DType = fp64 ? .float64 : .float32
        var results: [GEMMMeasurement] = []
        if !json {
            print("\(pad("device", 10)) \(pad("size", 6)) \(pad("GFLOP/s", 9)) \(pad("of peak", 8)) \(pad("max rel err", 11)) \(pad("bound k·u", 9))  name / parameters")
        }
        for d in devices where d.supports(dtype) {
            for s in sizeList {
                let r = try GEMMBenchmark.measure(on: d, m: s, n: s, k: s, dtype: dtype, minSeconds: seconds)
                results.append(r)
                if !json {
                    let share = r.peakShare.map { fixed($0 * 100, 1) + "%" } ?? "unknown"
                    let err = r.maxRelativeError.map(sci) ?? "reference"
                    print("\(pad(r.device, 10)) \(pad(String(s), 6)) \(pad(fixed(r.gflops, 1), 9)) \(pad(share, 8)) \(pad(err, 11)) \(pad(sci(r.errorBound), 9))  \(r.deviceName)\(r.parameters.map { " [\($0)]" } ?? "")")
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
        abstract: "Forward + backward throughput (samples/s) of a model: outputs and input gradients per batch.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Model directory.") var model: String?
    @Option(help: "Instead of --model: a random-weight MLP with these layer sizes, e.g. 784,4096,4096,10.") var mlp: String?
    @Option(help: "Comma-separated batch sizes.") var batches = "1,64,1024"
    @Option(help: "Seconds of timed calls per measurement (at least).") var seconds = 0.5
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let device = try global.selectedDevice()
        let net: Sequential
        switch (model, mlp) {
        case let (m?, nil): net = try Sequential.load(m, on: device)
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
