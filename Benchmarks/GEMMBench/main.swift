// GEMM on the shapes attribution sweeps produce, on every device, as GFLOP/s,
// share of the device's FP32 peak, and ratio to OpenBLAS (the CPU backend)
// measured in the same process.
//
//   swift run -c release GEMMBench [--quick] [--json]
//
// Shapes: a wide MLP layer over an IG chunk (batch 1024·… × 784 → 4096),
// the square sizes of `attrib bench gemm`, skinny products (batch 1), and the 64-row
// products of one input's IG at m = 64. Shapes of at most CPUDevice.smallRowsLimit rows
// also get a "cpu-packed" row: the CPU backend's product on an operand packed once.
import Attrib
import FoundationEssentials

// OpenBLAS's kernels for this CPU, as the attrib CLI runs them (Debian 12's OpenBLAS picks SSE3
// ones on recent Xeons; this restarts the process with OPENBLAS_CORETYPE set where it did).
OpenBLASCore.reexecWithFittingCore()
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
       ("wide-mlp IG N=1 m=64 64×4096→4096", 64, 4096, 4096),
       // One image of ViT-B/16 (197 tokens) through its MLP, and one BERT-base sequence (T = 128)
       // through a projection: the per-row products of those sweeps.
       ("vit-b16 197×768→3072", 197, 3072, 768), ("vit-b16 197×3072→768", 197, 768, 3072),
       ("bert-base 128×768→768", 128, 768, 768)]

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
        printRow(s.name, row)
    }
    // The CPU backend's own product for few rows on an operand packed once (what a wide
    // Linear layer runs for one input's IG path), against OpenBLAS on the same operands.
    if s.m <= CPUDevice.smallRowsLimit, let r = try packedSmallRows(m: s.m, n: s.n, k: s.k, minSeconds: quick ? 0.2 : 0.5) {
        let row = Row(shape: s.name, device: "cpu-packed", gflops: r.gflops, peakShare: nil, ratioToOpenBLAS: r.gflops / ref.gflops,
                      maxRelativeError: r.maxRelativeError)
        rows.append(row)
        printRow(s.name, row)
    }
}

/// GFLOP/s of CPUDevice.gemmSmallRows on B packed once, and its largest error relative to
/// OpenBLAS's product on the same operands (normwise); nil where it does not run.
func packedSmallRows(m: Int, n: Int, k: Int, minSeconds: Double) throws -> (gflops: Double, maxRelativeError: Double)? {
    let cpu = CPUDevice.shared
    var rng = SplitMix64(seed: 1)
    let a = try Tensor(rng.uniform(m * k), shape: [m, k], dtype: .float32, on: cpu)
    let b = try Tensor(rng.uniform(k * n), shape: [k, n], dtype: .float32, on: cpu)
    guard let packed = try cpu.packForSmallRows(b.storage, k: k, n: n) else { return nil }
    let c = try Tensor(shape: [m, n], dtype: .float32, on: cpu)
    guard try cpu.gemmSmallRows(m: m, x: a.storage, packed, y: c.storage) else { return nil }
    let clock = ContinuousClock()
    var reps = 1, elapsed = 0.0
    while true {
        let t0 = clock.now
        for _ in 0..<reps { _ = try cpu.gemmSmallRows(m: m, x: a.storage, packed, y: c.storage) }
        elapsed = (clock.now - t0).seconds
        if elapsed >= minSeconds || reps >= 1 << 12 { break }
        reps = elapsed > 0 ? max(reps * 2, Int(Double(reps) * minSeconds / elapsed * 1.1)) : reps * 2
    }
    let want = try a.matmul(b).doubles(), got = try c.doubles()
    let scale = want.map(abs).max() ?? 1
    let err = zip(got, want).map { abs($0 - $1) }.max() ?? 0
    return (2 * Double(m) * Double(n) * Double(k) / (elapsed / Double(reps)) / 1e9, err / max(scale, .leastNormalMagnitude))
}

func printRow(_ name: String, _ row: Row) {
    guard !json else { return }
    func p(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
    func f(_ x: Double, _ d: Int = 2) -> String {
        var m = 1.0; for _ in 0..<d { m *= 10 }
        return String(Double((x * m).rounded()) / m)
    }
    print("\(p(name, 30)) \(p(row.device, 10)) \(p(f(row.gflops, 1), 9)) \(p(row.peakShare.map { f($0 * 100, 1) + "%" } ?? "unknown", 9)) \(p(f(row.ratioToOpenBLAS, 3), 11)) \(row.maxRelativeError.map { "\($0)" } ?? "reference")")
}

if json {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try e.encode(rows), as: UTF8.self))
}

// The copy of the weight a wide Linear layer makes at construction: a plain Wᵀ, or (CPU
// backend, AVX2 and FMA) Wᵀ packed for few-row products. Each into a new buffer, as at
// construction, so the page faults of the copy count; rounds interleaved, medians.
if !json, let (plain, packed) = try constructionCopies(n: quick ? 1024 : 4096, rounds: quick ? 3 : 7) {
    let n = quick ? 1024 : 4096
    print("\nLinear's copy of a \(n) × \(n) weight at construction (median of fresh copies): plain Wᵀ \(format1(plain * 1e3)) ms, "
          + "Wᵀ packed \(format1(packed * 1e3)) ms (\(format1(plain / packed)) × faster)")
}

func format1(_ x: Double) -> String { String(Double((x * 10).rounded()) / 10) }

/// Median seconds of `transposed01` and of `packTransposedForSmallRows` on an n × n Float32
/// weight; nil where the packed form does not run.
func constructionCopies(n: Int, rounds: Int) throws -> (Double, Double)? {
    let cpu = CPUDevice.shared
    var rng = SplitMix64(seed: 2)
    let w = try Tensor(rng.uniform(n * n), shape: [n, n], dtype: .float32, on: cpu)
    guard try cpu.packTransposedForSmallRows(w.storage, k: n, n: n) != nil else { return nil }
    let clock = ContinuousClock()
    var plain: [Double] = [], packed: [Double] = []
    for _ in 0..<rounds {
        var t0 = clock.now
        let t = try w.transposed01()
        plain.append((clock.now - t0).seconds)
        t0 = clock.now
        let p = try cpu.packTransposedForSmallRows(w.storage, k: n, n: n)
        packed.append((clock.now - t0).seconds)
        withExtendedLifetime((t, p)) {}
    }
    return (plain.sorted()[rounds / 2], packed.sorted()[rounds / 2])
}
