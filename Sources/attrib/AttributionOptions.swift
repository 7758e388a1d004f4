import ArgumentParser
import Attrib
import FoundationEssentials

/// One device of a sweep and the model loaded on it.
struct SweepContext: @unchecked Sendable {
    var device: any Device
    var model: any AttributionModel
}

/// What every attribution command takes: the model, the inputs, the targets,
/// where outputs go.
struct AttributionOptions: ParsableArguments {
    @OptionGroup var global: GlobalOptions
    @Option(help: "Model: a directory with config.json + model.safetensors, a .onnx file, or a directory with model.onnx (and labels.json or labels.txt).") var model: String
    @Option(help: "Inputs: .npy of shape [N] + the model's input shape, or PNG images (a .png file or a directory of them), resized and normalised with the model's preprocessing.json.") var inputs: String
    @Option(help: "Target class for every input, or 'predicted' (the model's argmax per input). Default: predicted (without --targets). The target of each input is printed, written to targets.npy and summary.json, and titles its heatmap.") var target: String?
    @Option(help: "Targets as .npy: [N] (one class per input) or [N, T] (T classes per input, one sweep).") var targets: String?
    @OptionGroup var sweep: SweepOptions
    var limit: Int? { sweep.batching.limit }
    var batch: Int? { sweep.batching.batch }
    var seed: UInt64 { sweep.seed }
    var json: Bool { sweep.json }
    var quiet: Bool { sweep.quiet }
    @Option(help: "Output directory (default out/METHOD, replaced on every run; an --out that holds results needs --force).") var out: String? = nil
    @Flag(help: "Write no heatmap PNGs.") var noHeatmaps = false
    @Option(help: ArgumentHelp("Heatmap PNGs for the first N inputs, or 'all'. Each PNG costs about a millisecond, so a large sweep draws a sample by default.", valueName: "N|all")) var heatmaps = "64"
    @Option(help: ArgumentHelp("per-image: each heatmap's colours span its own 99th percentile of |attribution|; global: one scale over every heatmap drawn, so they compare.", valueName: "per-image|global")) var heatmapScale = "per-image"

    struct Loaded {
        var device: any Device
        var model: any AttributionModel
        var x: [Double]
        var n: Int
        var targets: [[Int]]
        /// How the targets were chosen, in words: "predicted (argmax)", "--target 3", or the file.
        var targetRule: String
        var labels: [String]?
        /// The PNG files the inputs were read from, in order (nil for a .npy): heatmaps are drawn over them.
        var imageFiles: [String]?
        /// Targets are each input's predicted class, found per unit of the sweep (targets is empty until then).
        var predictTargets = false
    }

    func validate() throws {
        _ = try heatmapSettings()
        if let t = target, t != "predicted", Int(t) == nil { throw ValidationError("--target must be a class index or 'predicted', got '\(t)'") }
        if target != nil && targets != nil { throw ValidationError("give --target or --targets, not both") }
    }

    /// The heatmap count limit (nil: all) and whether one scale serves every heatmap.
    func heatmapSettings() throws -> (limit: Int?, global: Bool) {
        let limit: Int?
        if heatmaps == "all" { limit = nil }
        else if let k = Int(heatmaps), k >= 0 { limit = k }
        else { throw ValidationError("--heatmaps must be a count ≥ 0 or 'all', got '\(heatmaps)'") }
        switch heatmapScale {
        case "per-image": return (limit, false)
        case "global": return (limit, true)
        default: throw ValidationError("--heatmap-scale must be per-image or global, got '\(heatmapScale)'")
        }
    }

    /// "3 (three)" where the model has labels, else "3".
    static func className(_ c: Int, _ labels: [String]?) -> String {
        guard let labels, c >= 0, c < labels.count, labels[c] != String(c) else { return String(c) }
        return "\(c) (\(labels[c]))"
    }

    /// Loads the model and inputs, checks them, and resolves the targets (predicted ones too).
    func load() throws -> Loaded {
        var l = try loadSweep().loaded
        if l.predictTargets { l.targets = try Self.predicted(l.model, l.x, n: l.n, device: l.device); l.predictTargets = false }
        return l
    }

    /// The argmax class of each of `n` inputs.
    static func predicted(_ net: any AttributionModel, _ x: [Double], n: Int, device: any Device) throws -> [[Int]] {
        let classes = net.outputShape.reduce(1, *)
        let out = try net.outputs(Tensor(x, shape: [n] + net.inputShape, dtype: net.dtype, on: device)).doubles()
        return (0..<n).map { i in [out[i * classes..<(i + 1) * classes].indices.max { out[$0] < out[$1] }! - i * classes] }
    }

    /// Loads the model on every device this process uses (--device: one, a list, or all-gpus; under
    /// a launcher, the GPU of this process's local rank) and the inputs; fixed targets are resolved,
    /// predicted ones left to each unit of the sweep (predictTargets).
    func loadSweep() throws -> (loaded: Loaded, contexts: [SweepContext]) {
        if let out, !sweep.resume, !mergeOnlyMode, !FileManager.default.fileExists(atPath: out + "/.attrib-sweep/run.json") {
            try OutputDirectory.prepare(out, explicit: true, force: sweep.force)   // before the sweep, not after
        }
        let launch = try LaunchEnvironment.detect(ProcessInfo.processInfo.environment, shard: sweep.shard)
        let devices = try global.selectedDevices(launch: launch)
        let contexts = try devices.map { SweepContext(device: $0, model: try loadAttributionModel(model, on: $0)) }
        let device = devices[0], net = contexts[0].model
        let (n, x, imageFiles) = try readInputs(inputs, model: model, net: net, limit: limit)
        let classes = net.outputShape.reduce(1, *)
        var t: [[Int]] = []
        var rule = "predicted (argmax)"
        switch (target, targets) {
        case (nil, let path?):
            let ta = try NPY.read(path)
            let ids = try ta.int32s().map(Int.init)
            guard let rows = ta.shape.first, rows >= n, ta.shape.count <= 2, ta.shape.count == 1 || ta.shape[1] >= 1 else {
                throw AttribError.shapeMismatch(op: path, detail: "targets have shape \(ta.shape), expected [\(n)] or [\(n), T] with T ≥ 1")
            }
            if let bad = ids.firstIndex(where: { $0 < 0 || $0 >= classes }) {
                throw AttribError.invalidArgument(op: path, detail: "target \(ids[bad]) of input \(bad / (ta.shape.count == 2 ? ta.shape[1] : 1)) is not one of the model's \(classes) classes")
            }
            let per = ta.shape.count == 2 ? ta.shape[1] : 1
            t = (0..<n).map { Array(ids[$0 * per..<($0 + 1) * per]) }
            rule = "from \(path)"
        case (let s?, nil) where s != "predicted":
            guard let c = Int(s) else { throw ValidationError("--target must be a class index or 'predicted', got '\(s)'") }
            guard c >= 0, c < classes else { throw ValidationError("--target \(c) is not one of the model's \(classes) classes (0 to \(classes - 1))") }
            t = Array(repeating: [c], count: n)
            rule = "--target \(c)"
        case (_, nil):
            break
        default:
            throw ValidationError("give --target or --targets, not both")
        }
        let l = Loaded(device: device, model: net, x: x, n: n, targets: t, targetRule: rule, labels: net.labels, imageFiles: imageFiles,
                       predictTargets: t.isEmpty)
        return (l, contexts)
    }

    /// Runs an attribution method over the inputs as a sweep of units (ShardedSweep): spread over
    /// this process's devices and the launch's processes, saved unit by unit for --resume. Returns
    /// the assembled result and `l` with every input's targets, or nil where another process
    /// assembles (or the sweep was already complete). `compute` gets one device's model, the
    /// unit's inputs, count and targets, and returns the method's result plus extra arrays (per
    /// input) and numbers for the summary.
    func runSweep(_ l: Loaded, _ contexts: [SweepContext], method: String, rowsPerInput: Int, files extra: [String: String] = [:],
                  compute: @escaping (SweepContext, Range<Int>, [Double], [[Int]], SweepControl) throws -> (AttributionResult, [String: UnitArray], [String: JSONValue]))
        throws -> (result: AttributionResult, loaded: Loaded, units: [LoadedUnit], sweep: ShardedSweep)? {
        let d = l.model.inputSize
        let files = sweepFiles(l).merging(extra) { a, _ in a }
        let s = try ShardedSweep(command: method, out: out ?? "out/\(method)", explicitOut: out != nil, options: sweep, items: l.n,
                                 unitSize: WorkUnits.defaultSize(rowsPerItem: rowsPerInput, valuesPerItem: d),
                                 files: files, contentChecked: ["--model", "--inputs", "--targets", "--baselines", "--maps", "--pairs"])
        let workers = contexts.map { c in
            SweepWorker(device: c.device.info.summary) { range, control in
                let x = Array(l.x[(range.lowerBound * d)..<(range.upperBound * d)])
                let t = l.predictTargets ? try Self.predicted(c.model, x, n: range.count, device: c.device) : Array(l.targets[range])
                let (r, arrays, meta) = try compute(c, range, x, t, control)
                var out = UnitOutput(items: r.completedInputs, interrupted: r.interrupted, rowsEvaluated: r.rowsEvaluated)
                out.arrays = arrays
                out.arrays["attributions"] = .float32(r.attributions.map { Float($0) }, shape: r.shape)
                if let dl = r.deltas { out.arrays["deltas"] = .float64(dl, shape: [r.completedInputs, t[0].count]) }
                out.arrays["targets"] = .int32(t.prefix(r.completedInputs).flatMap { $0.map { Int32($0) } }, shape: [r.completedInputs, t[0].count])
                out.meta = meta
                out.meta["plan"] = .array([.int(r.plan.rows), .int(r.plan.bytesPerRow), .int(r.plan.budgetBytes)])
                out.meta["fused"] = .bool(r.fused)
                return out
            }
        }
        let outcome = try s.execute(workers: workers)
        guard let units = outcome.units else { s.reportUnassembled(outcome, json: json); return nil }
        guard !units.isEmpty, let a = LoadedUnit.concatenated(units, "attributions"), let t = LoadedUnit.concatenated(units, "targets") else {
            throw AttribError.io(path: s.dir.root, detail: outcome.interrupted ? "interrupted before any input was finished; nothing to save" : "the sweep's units hold no attributions")
        }
        var loaded = l
        let per = t.shape.count > 1 ? t.shape[1] : 1
        let done = t.shape[0]
        loaded.targets = (0..<done).map { i in t.values[i * per..<(i + 1) * per].map { Int($0) } }
        loaded.targets += Array(repeating: loaded.targets.last ?? [0], count: l.n - done)   // never read past completedInputs
        loaded.predictTargets = false
        let plan = units[0].meta["plan"]?.array?.compactMap(\.int) ?? [0, 0, 0]
        let r = AttributionResult(attributions: a.values, shape: a.shape, deltas: LoadedUnit.concatenated(units, "deltas")?.values,
                                  completedInputs: done, interrupted: outcome.interrupted,
                                  plan: ChunkPlan(rows: plan[0], bytesPerRow: plan[1], budgetBytes: plan[2]),
                                  seconds: ShardedSweep.wallSeconds(outcome.stats), rowsEvaluated: Int(LoadedUnit.sum(units, "rowsEvaluated")),
                                  fused: units[0].meta["fused"]?.bool ?? false)
        return (r, loaded, units, s)
    }

    /// The files a sweep's results depend on, by role, for its fingerprint: the model, the inputs
    /// (each PNG, or the .npy), the targets file.
    func sweepFiles(_ l: Loaded) -> [String: String] {
        var files = ["model": model]
        if let f = l.imageFiles { for (i, p) in f.enumerated() { files["image \(i)"] = p } } else { files["inputs"] = inputs }
        if let targets { files["targets"] = targets }
        return files
    }

    /// What a sweep adds to summary.json: its units, each rank's throughput, and this process's
    /// peak resident memory (`peakResidentBytes`).
    static func sweepSummary(_ s: ShardedSweep) -> [String: JSONValue] {
        let stats = s.dir.stats()
        var fields: [String: JSONValue] = [
            "units": .int(s.units.count), "unitSize": .int(s.units.unitSize), "attempts": .int(s.run?.attempt ?? 1),
            "ranks": ShardedSweep.rankSummary(stats), "processes": .int(Set(stats.filter { $0.attempt == s.run?.attempt }.map(\.rank)).count)]
        // This process's peak resident memory (model, inputs, and on the CPU backend every batch).
        if let peak = HostMemory.peakResidentBytes() { fields["peakResidentBytes"] = .int(peak) }
        return fields
    }

    /// Writes attributions.npy, deltas.npy (when given), heatmaps and summary.json; prints the summary.
    func write(_ r: AttributionResult, method: String, loaded l: Loaded, extra: [String: JSONValue] = [:], workPerRow: String = "steps",
               sweep s: ShardedSweep? = nil) throws {
        let dir = out ?? "out/\(method)"
        if out == nil { try OutputDirectory.prepare(dir, explicit: false, force: true) }
        var files: [String] = []
        if r.completedInputs > 0 {
            try NPY.write(r.attributions.map { Float($0) }, shape: r.shape, to: dir + "/attributions.npy")
            files.append(dir + "/attributions.npy")
            if let d = r.deltas {
                try NPY.write(d, shape: [r.completedInputs, l.targets[0].count], to: dir + "/deltas.npy")
                files.append(dir + "/deltas.npy")
            }
            // The class each attribution is for: row i of attributions.npy explains targets.npy row i.
            try NPY.write(l.targets.prefix(r.completedInputs).flatMap { $0.map { Int32($0) } }, shape: [r.completedInputs, l.targets[0].count],
                          to: dir + "/targets.npy")
            files.append(dir + "/targets.npy")
            // One attribution's shape: the input's, or [1, H, W] for Sobol's maps of a [C, H, W]
            // input (a pixel's channels move together); drawn over the input either way.
            let per = l.targets[0].count
            let aShape = Array(r.shape.dropFirst(per == 1 ? 1 : 2)), aSize = aShape.reduce(1, *)
            if !noHeatmaps, let maps = heatmapShape(l.model.inputShape), heatmapShape(aShape) != nil, aShape.suffix(2) == maps.suffix(2) {
                let (limit, global) = try heatmapSettings()
                let d = l.model.inputSize
                let drawn = min(r.completedInputs, limit ?? r.completedInputs)
                // Saliency and Sobol indices are ≥ 0 (a sequential colour map): no "for/against".
                let signed = r.attributions.contains { $0 < 0 }
                let tFirst = (0..<drawn).flatMap { i in r.attributions[(i * per) * aSize..<(i * per + 1) * aSize] }
                let annotation = { (i: Int) -> Heatmap.Annotation in
                    let target = Self.className(l.targets[i][0], l.labels)
                    return Heatmap.Annotation(title: ["input \(i): \(method) for target \(target)",
                                                      per > 1 ? "(the first of \(per) targets; all are in attributions.npy)" : "targets: \(l.targetRule)"],
                                              colorBarLabel: signed ? "attribution to class \(target) (red: for, blue: against)"
                                                                    : "attribution to class \(target) (>= 0: importance, no sign)")
                }
                let written: [String]
                if let images = l.imageFiles {
                    // PNG inputs: drawn over the original images at their own resolution.
                    written = try Heatmap.writeOverImages(attributions: tFirst, shape: [drawn] + aShape,
                                                          images: Array(images.prefix(drawn)),
                                                          directory: dir + "/heatmaps", prefix: method, sharedScale: global, annotation: annotation)
                } else {
                    written = try Heatmap.writeBatch(attributions: tFirst, shape: [drawn] + aShape,
                                                     inputs: Array(l.x.prefix(drawn * d)), inputShape: [drawn] + maps,
                                                     directory: dir + "/heatmaps", prefix: method, sharedScale: global, annotation: annotation)
                }
                files.append("\(dir)/heatmaps/ (\(written.count) PNGs\(drawn < r.completedInputs ? " of the first \(drawn) inputs; --heatmaps all draws every one" : ""))")
            }
        }
        var summary: [String: JSONValue] = [
            "method": .string(method), "device": .string(l.device.info.summary), "model": .string(model),
            "inputs": .int(l.n), "completedInputs": .int(r.completedInputs), "targetsPerInput": .int(l.targets[0].count),
            "targetRule": .string(l.targetRule), "targets": .array(l.targets.prefix(r.completedInputs).map { .array($0.map { .int($0) }) }),
            "interrupted": .bool(r.interrupted), "seconds": .double(r.seconds),
            "rowsEvaluated": .int(r.rowsEvaluated),
            "rowsPerSecond": .double(Double(r.rowsEvaluated) / max(r.seconds, 1e-9)),
            "rowsPerBatch": .int(r.plan.rows), "bytesPerRow": .int(r.plan.bytesPerRow), "memoryBudgetBytes": .int(r.plan.budgetBytes),
            "fusedFirstLayer": .bool(r.fused), "outDir": .string(dir), "files": .array(files.map { .string($0) }),
        ]
        if workPerRow == "steps" { summary["inputStepsPerSecond"] = summary["rowsPerSecond"] }
        if let d = r.deltas, !d.isEmpty { summary["maxAbsDelta"] = .double(d.map(abs).max()!) }
        for (k, v) in extra { summary[k] = v }
        let data = try prettyJSON(summary)
        try OutputDirectory.write(data, to: dir + "/summary.json")
        // The sweep is complete once its final files are written (an interrupted one stays open for --resume).
        if !r.interrupted { try s?.finish() }
        // An interrupted sweep saved what it finished, and exits as Ctrl-C does (130) so scripts notice.
        defer { if r.interrupted { Self.exitInterrupted(saved: "units", in: dir) } }
        if json { print(String(decoding: data, as: UTF8.self)); return }
        print("\(method) on \(l.device.info.summary): \(r.completedInputs)/\(l.n) inputs in \(fixed(r.seconds, 2)) s (\(fixed(Double(r.rowsEvaluated) / max(r.seconds, 1e-9), 0)) \(workPerRow == "inputs" ? "inputs" : "input·\(workPerRow)")/s)\(r.interrupted ? "  [interrupted]" : "")")
        if let d = r.deltas, !d.isEmpty { print("max |delta| = \(sci(d.map(abs).max()!))") }
        printTargets(l, completed: r.completedInputs)
        for f in files { print("  wrote \(f)") }
        print("  wrote \(dir)/summary.json")
    }

    /// The target of each input, as a table (the first 10 inputs; every one is in targets.npy).
    func printTargets(_ l: Loaded, completed: Int) {
        guard completed > 0 else { return }
        print("targets: \(l.targetRule)")
        print("  \(pad("input", 6)) target")
        for i in 0..<min(completed, 10) { print("  \(pad(String(i), 6)) \(l.targets[i].map { Self.className($0, l.labels) }.joined(separator: ", "))") }
        if completed > 10 { print("  … \(completed - 10) more in targets.npy") }
    }

    static func exitInterrupted() -> Never { AttribCommand.exit(withError: ExitCode(130)) }

    /// Says where an interrupted sweep's finished `what` (units, pairs) are and how to go on,
    /// then exits as Ctrl-C does.
    static func exitInterrupted(saved what: String, in dir: String) -> Never {
        writeStandardError("the finished \(what) are saved in \(dir)/.attrib-sweep: the same command with --resume runs only what is missing\n")
        exitInterrupted()
    }

    /// [C, H, W] with C = 1 or 3, or [H, W]: shapes a heatmap can be drawn over.
    func heatmapShape(_ s: [Int]) -> [Int]? {
        if s.count == 3, s[0] == 1 || s[0] == 3, s[1] >= 2, s[2] >= 2 { return s }
        if s.count == 2, s[0] >= 2, s[1] >= 2 { return s }
        return nil
    }
}

/// A JSON value for summaries (and a sweep unit's meta.json, read back at the merge).
enum JSONValue: Codable, Sendable {
    case string(String), int(Int), double(Double), bool(Bool), array([JSONValue]), object([String: JSONValue])
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSONValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
    var double: Double? { switch self { case .double(let v): return v; case .int(let v): return Double(v); default: return nil } }
    var int: Int? { if case .int(let v) = self { return v }; return nil }
    var string: String? { if case .string(let v) = self { return v }; return nil }
    var array: [JSONValue]? { if case .array(let v) = self { return v }; return nil }
    var bool: Bool? { if case .bool(let v) = self { return v }; return nil }
    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v.isFinite ? v : 0)
        case .bool(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }
}

/// The model at `path`: an ONNX file or directory (ONNXModel.isONNX), else a Sequential
/// model directory.
func loadAttributionModel(_ path: String, on device: any Device, dtype: DType = .float32) throws -> any AttributionModel {
    if ONNXModel.isONNX(path) { return try ONNXModel.attributionModel(at: path, on: device, dtype: dtype) }
    return try Sequential.load(path, on: device, dtype: dtype)
}

/// Model inputs from `path`: PNG images (a file or a directory; ImageInputs, with the model's
/// preprocessing.json) or a .npy of samples; at most `limit` of them. The image files too, in order.
func readInputs(_ path: String, model: String, net: any AttributionModel, limit: Int?) throws -> (rows: Int, values: [Double], images: [String]?) {
    if ImageInputs.isImages(path) {
        let r = try ImageInputs.load(path, sampleShape: net.inputShape, preprocessing: try ImagePreprocessing.load(forModel: model), limit: limit)
        return (r.rows, r.values, r.files)
    }
    let r = try NPY.samples(path, sampleShape: net.inputShape, what: "inputs", limit: limit)
    return (r.rows, r.values, nil)
}
