// GEMM on the shapes attribution sweeps produce, on every device, as GFLOP/s,
// share of the device's FP32 peak, and ratio to OpenBLAS (the CPU backend)
// measured in the same process.
//
//   swift run -c release GEMMBench [--quick] [--json]
//
// Shapes: a wide MLP layer over an IG chunk (batch 1024·… × 784 → 4096),
// the square sizes of `attrib bench gemm`, skinny products (batch 1), and the 64-row
// products of one input's IG at m = 64.
import Attrib
import FoundationEssentials

let args = CommandLine.arguments
let quick = args.contains("--quick")
let json = args.contains("--json")

let shapes: [(name: String, m: Int, n: Int, k: Int)] = quick
    ? [("square 512", 512, 512, 512), ("mlp 256×784→1024", 256, 1024, 784), ("batch-1 784→4096", 1, 4096, 784)]
    : [("square 1024", 1024, 1024, 1024), ("square 2048", 2048, 2048, 2048),
       ("wide-mlp fwd 1024×784→4096", 1024, 4096, 784), ("wide-mlp fwd 1024×4096→4096", 1024, 4096, 4096),
       ("batch-1 784→4096", 1, 4096, 784), ("batch-64 4096→10", 64, 10, 4096),
       // IG of one input at m = 64 on the wide MLP: its products have 64 rows, and OpenBLAS
       // packs the whole 4096×4096 weight for them, so their rate is that sweep's ceiling.
       ("wide-mlp IG N=1 m=64 64×4096→4096", 64, 4096, 4096)]

struct Row: Codable {
    var shape: String, device: String, gflops: Double, peakShare: Double?, ratioToOpenBLAS: Double, maxRelativeError: Double?
}

var rows: [Row] = []
if !json { print("shape                          device     GFLOP/s   of peak   × OpenBLAS  max rel err") }
for s in shapes {
    let ref = try GEMMBenchmark.measure(on: CPUDevice.shared, m: s.m, n: s.n, k: s.k, minSeconds: quick ? 0.2 : 0.5)
    for d in Devices.all {
        let r = d is CPUDevice ? ref : try GEMMBenchmark.measure(on: d, m: s.m, n: s.n, k: s.k, minSeconds: quick ? 0.2 : 0.5)
        let row = Row(shape: s.name, device: d.info.id, gflops: r.gflops, peakShare: r.peakShare,
                      ratioToOpenBLAS: r.gflops / ref.gflops, maxRelativeError: r.maxRelativeError)
        rows.append(row)
        if !json {
            func p(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
            func f(_ x: Double, _ d: Int = 2) -> String {
                var m = 1.0; for _ in 0..<d { m *= 10 }
                return String(Double((x * m).rounded()) / m)
            }
            print("\(p(s.name, 30)) \(p(row.device, 10)) \(p(f(row.gflops, 1), 9)) \(p(row.peakShare.map { f($0 * 100, 1) + "%" } ?? "unknown", 9)) \(p(f(row.ratioToOpenBLAS, 3), 11)) \(row.maxRelativeError.map { "\($0)" } ?? "reference")")
        }
    }
}
if json {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try e.encode(rows), as: UTF8.self))
}
