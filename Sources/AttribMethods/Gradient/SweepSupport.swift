#if canImport(Glibc)
import Glibc
#endif
import AttribCore
import AttribModels

/// Progress and interruption of a long sweep. `progress(done, total)` is called
/// after each device batch; when `shouldStop()` turns true the sweep finishes
/// the batch in hand and returns what is complete (whole inputs only).
public struct SweepControl: Sendable {
    public var progress: @Sendable (_ done: Int, _ total: Int) -> Void
    public var shouldStop: @Sendable () -> Bool
    public init(progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
                shouldStop: @escaping @Sendable () -> Bool = { false }) {
        self.progress = progress; self.shouldStop = shouldStop
    }
}

/// One device batch of a sweep: inputs `inputs`, and for each of them the
/// steps (or samples) `steps`; rows are input-major.
struct Chunk {
    var inputs: Range<Int>
    var steps: Range<Int>
    var rows: Int { inputs.count * steps.count }
    /// Whether this chunk ends the last of its inputs' steps.
    var completesInputs: Bool
}

/// The host rows of a chunk, input-major: element j of row (input i, sample s) is f(i, s, j).
func chunkRows(_ c: Chunk, d: Int, _ f: (Int, Int, Int) -> Double) -> [Double] {
    var out = [Double](); out.reserveCapacity(c.rows * d)
    for i in c.inputs { for s in c.steps { for j in 0..<d { out.append(f(i, s, j)) } } }
    return out
}

/// Whether gradient sweeps run their batches in thread tiles by default: yes, unless
/// ATTRIB_THREAD_TILES=0 (for A/B runs of any sweep command; `attrib ig --no-thread-tiles`
/// turns IG's off alone).
public let threadTilesByDefault: Bool = getenv("ATTRIB_THREAD_TILES").map { String(cString: $0) != "0" } ?? true

/// Whether gradient sweeps take a Linear head as its weight rows by default (Graph.linearHead):
/// yes, unless ATTRIB_HEAD_ROWS=0 (for A/B runs; `attrib ig --no-head-rows` turns IG's off alone).
public let headRowsByDefault: Bool = getenv("ATTRIB_HEAD_ROWS").map { String(cString: $0) != "0" } ?? true

/// The thread tiles a batch runs as (CPUDevice.eachTile): its inputs cut into one contiguous
/// share per thread, on the CPU backend with several threads, where the batch holds every step
/// of its inputs and at least one input per thread; else the batch whole.
func threadTiles(_ c: Chunk, steps m: Int, on device: any Device) -> [Chunk] {
    let threads = device.info.blas?.threads ?? 1
    guard device is CPUDevice, threads > 1, c.completesInputs, c.steps == 0..<m, c.inputs.count >= threads else { return [c] }
    let per = (c.inputs.count + threads - 1) / threads
    return stride(from: c.inputs.lowerBound, to: c.inputs.upperBound, by: per).map {
        Chunk(inputs: $0..<min(c.inputs.upperBound, $0 + per), steps: c.steps, completesInputs: true)
    }
}

/// Splits n inputs × m steps into chunks of at most `rows` rows: whole inputs
/// while m fits, else one input at a time with its steps split.
func chunks(n: Int, m: Int, rows: Int) -> [Chunk] {
    var out: [Chunk] = []
    // Chunks of equal size (the last at most one input or step smaller): every batch
    // then reuses the previous one's buffers, where a short last batch would allocate
    // (and page-fault) a fresh set.
    if m <= rows {
        let most = max(1, rows / m), count = (n + most - 1) / most
        let per = (n + count - 1) / count
        var i = 0
        while i < n { let j = min(n, i + per); out.append(Chunk(inputs: i..<j, steps: 0..<m, completesInputs: true)); i = j }
    } else {
        let count = (m + rows - 1) / rows, per = (m + count - 1) / count
        for i in 0..<n {
            var k = 0
            while k < m { let l = min(m, k + per); out.append(Chunk(inputs: i..<(i + 1), steps: k..<l, completesInputs: l == m)); k = l }
        }
    }
    return out
}

/// Elements first..<first+count of the stream `gaussianDraws` makes from `generator`: Box–Muller
/// takes two uniform draws per pair of values, so element e's pair starts at draw 2·⌊e/2⌋, reached
/// without drawing the ones before.
func gaussianDraws(_ count: Int, sigma: Double, after generator: SplitMix64, from first: Int) -> [Double] {
    let start = first - first % 2
    var rng = generator
    rng.advance(by: start)
    let v = gaussianDraws(count + (first - start), sigma: sigma, &rng)
    return Array(v[(first - start)...])
}

/// The same from a fresh SplitMix64(seed:).
func gaussianDraws(_ count: Int, sigma: Double, seed: UInt64, from first: Int) -> [Double] {
    gaussianDraws(count, sigma: sigma, after: SplitMix64(seed: seed), from: first)
}

/// Standard normal draws (Box–Muller) from a seeded generator.
func gaussianDraws(_ count: Int, sigma: Double, _ rng: inout SplitMix64) -> [Double] {
    var out = [Double](repeating: 0, count: count)
    var i = 0
    while i < count {
        let u1 = Double.random(in: Double.leastNonzeroMagnitude..<1, using: &rng), u2 = Double.random(in: 0..<1, using: &rng)
        let r = sigma * (-2 * log(u1)).squareRoot()
        out[i] = r * cos(2 * .pi * u2)
        if i + 1 < count { out[i + 1] = r * sin(2 * .pi * u2) }
        i += 2
    }
    return out
}

/// Checks a batch of host inputs: finite values, the model's element count.
func checkInputs(_ x: [Double], n: Int, model: any AttributionModel, what: String = "input") throws {
    guard n >= 1, x.count == n * model.inputSize else {
        throw AttribError.shapeMismatch(op: "attribution", detail: "\(x.count) values for \(n) \(what)s of \(model.inputSize) values (model input shape \(model.inputShape))")
    }
    if let bad = x.firstIndex(where: { !$0.isFinite }) {
        throw AttribError.invalidArgument(op: "attribution", detail: "\(what) \(bad / model.inputSize) has a non-finite value (\(x[bad])) at element \(bad % model.inputSize)")
    }
}

/// Checks targets: one list of the same length per input, each class inside the outputs.
func checkTargets(_ targets: [[Int]], n: Int, model: any AttributionModel) throws -> Int {
    let classes = model.outputShape.reduce(1, *)
    guard targets.count == n, let t = targets.first?.count, t >= 1, targets.allSatisfy({ $0.count == t }) else {
        throw AttribError.shapeMismatch(op: "attribution", detail: "\(targets.count) target lists for \(n) inputs; give one list of equally many targets per input")
    }
    for (i, list) in targets.enumerated() {
        if let bad = list.first(where: { $0 < 0 || $0 >= classes }) {
            throw AttribError.indexOutOfRange(op: "attribution", detail: "target \(bad) of input \(i) is outside the model's \(classes) outputs")
        }
    }
    return t
}

/// The upstream gradient [rows, classes] selecting class targets[i][t] on every row of input i.
func oneHotUpstream(_ targets: [[Int]], target t: Int, inputs: Range<Int>, perInput: Int, classes: Int,
                    firstStep: Int = 0, liveSteps: Int = .max, dtype: DType, device: any Device) throws -> Tensor {
    var w = [Double](repeating: 0, count: inputs.count * perInput * classes)
    for (k, i) in inputs.enumerated() {
        for s in 0..<perInput where firstStep + s < liveSteps { w[(k * perInput + s) * classes + targets[i][t]] = 1 }
    }
    return try Tensor(w, shape: [inputs.count * perInput, classes], dtype: dtype, on: device)
}

/// What an attribution sweep returns. Attributions are [inputs, targets] + input
/// shape (the targets axis dropped when there is one target per input).
public struct AttributionResult: Sendable {
    public var attributions: [Double]
    public var shape: [Int]
    /// Convergence delta per input and target (path methods), [inputs, targets].
    public var deltas: [Double]?
    /// Inputs finished (all of them unless interrupted).
    public var completedInputs: Int
    public var interrupted: Bool
    public var plan: ChunkPlan
    public var seconds: Double
    /// Model evaluations done (rows through forward + backward).
    public var rowsEvaluated: Int
    /// Whether the fused first affine layer was used.
    public var fused: Bool

    public init(attributions: [Double], shape: [Int], deltas: [Double]?, completedInputs: Int, interrupted: Bool,
                plan: ChunkPlan, seconds: Double, rowsEvaluated: Int, fused: Bool) {
        self.attributions = attributions; self.shape = shape; self.deltas = deltas; self.completedInputs = completedInputs
        self.interrupted = interrupted; self.plan = plan; self.seconds = seconds; self.rowsEvaluated = rowsEvaluated; self.fused = fused
    }
}

/// The text of a sweep's progress line. Sweeps report rows (input × step or sample), but a user
/// counts inputs: the line shows whole inputs finished of the total and inputs per second, the
/// row count (done·inputs/total rows per input) kept only for the fraction.
public enum SweepProgressLine {
    public static func text(label: String, rowsDone done: Int, rowsTotal total: Int, inputs: Int, elapsedSeconds elapsed: Double,
                            width: Int = 30) -> String {
        let frac = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let inputsDone = total > 0 ? min(inputs, done * inputs / total) : inputs
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let rate = Double(inputsDone) / max(elapsed, 1e-9)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        func one(_ v: Double) -> String { let r = (v * 10).rounded() / 10; return "\(r)" }
        return "\(label) \(bar) \(Int(frac * 100))%  \(inputsDone)/\(inputs) inputs  \(one(rate)) inputs/s  eta \(one(eta))s"
    }
}
