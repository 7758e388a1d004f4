import ArgumentParser
import Attrib

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks.", subcommands: [BenchGEMM.self])
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
        let sizeList = try sizes.split(separator: ",").map { s -> Int in
            guard let v = Int(s.trimmingCharacters(in: " ")), v >= 1 else { throw ValidationError("bad size '\(s)' in --sizes") }
            return v
        }
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
