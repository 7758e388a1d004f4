import ArgumentParser
import Attrib
import FoundationEssentials

struct SobolCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sobol",
        abstract: "Sobol attribution (Fel et al.): total-order indices of grid masks, forward passes only.")

    @OptionGroup var options: AttributionOptions
    @Option(help: "Grid size s (s×s masks).") var grid = 8
    @Option(help: "nb_design N, a power of two.") var designs = 32
    @Option(help: "sobol, sobol-scrambled, halton, lhs or mc.") var sampler = "sobol"
    @Option(help: "inpainting[:V], blur[:K] (box of K pixels), amplitude[:σ].") var perturbation = "inpainting"
    @Option(help: "Total-order estimator: jansen, homma, janon, glen, saltelli.") var estimator = "jansen"
    @Flag(help: "One mask per channel.") var perChannel = false
    @Flag(help: "Bilinear mask upsampling (default nearest).") var bilinearMasks = false
    @Option(help: "Index map resized to the input: bicubic or nearest.") var resize = "bicubic"

    func run() throws {
        guard let kind = SamplerKind(name: sampler) else { throw ValidationError("unknown --sampler '\(sampler)'") }
        guard let est = TotalOrderEstimator(rawValue: estimator) else { throw ValidationError("unknown --estimator '\(estimator)'") }
        guard let mapResize = ImageResampling.MapResize(rawValue: resize) else { throw ValidationError("--resize must be bicubic or nearest") }
        let (p, arg) = perturbation.split(separator: ":", maxSplits: 1).map(String.init).splitFirst
        let pert: SobolAttribution.Perturbation
        switch p {
        case "inpainting": pert = .inpainting(baseline: arg.flatMap(Double.init) ?? 0)
        case "blur": pert = .blur(kernelSize: arg.flatMap(Int.init) ?? 10)
        case "amplitude": pert = .amplitude(sigma: arg.flatMap(Double.init) ?? 1)
        default: throw ValidationError("unknown --perturbation '\(perturbation)'; use inpainting[:V], blur[:K] or amplitude[:σ]")
        }
        let (l, contexts) = try options.loadSweep()
        guard l.predictTargets || l.targets[0].count == 1 else { throw ValidationError("sobol takes one target per input") }
        let method = SobolAttribution(gridSize: grid, designs: designs, sampler: kind, seed: options.seed, perturbation: pert, estimator: est,
                                      perChannel: perChannel, maskUpsampling: bilinearMasks ? .bilinear : .nearest,
                                      mapResize: mapResize, batchCap: options.batch)
        installInterruptHandler()
        let passes = method.passesPerInput(channels: perChannel ? l.model.inputShape[0] : 1)
        guard let swept = try options.runSweep(l, contexts, method: "sobol", rowsPerInput: passes, compute: { c, range, x, t, control in
            let r = try method.explain(model: c.model, inputs: x, targets: t.map { $0[0] }, control: control)
            // The resized maps are the attributions: written, drawn and summarised like every other method's.
            let asAttribution = AttributionResult(attributions: r.maps, shape: r.mapShape, deltas: nil, completedInputs: r.completedInputs,
                                                  interrupted: r.interrupted, plan: r.plan, seconds: r.totalSeconds,
                                                  rowsEvaluated: r.rowsEvaluated, fused: false)
            return (asAttribution, ["indices": .float32(r.indices.map { Float($0) }, shape: r.indexShape)],
                    ["forwardSeconds": .double(r.forwardSeconds), "totalSeconds": .double(r.totalSeconds)])
        }) else { return }
        let r = swept.result
        let dir = options.out ?? "out/sobol"
        if r.completedInputs > 0, let ix = LoadedUnit.concatenated(swept.units, "indices") {
            try NPY.write(ix.values.map { Float($0) }, shape: ix.shape, to: dir + "/indices.npy")
        }
        let forward = LoadedUnit.sum(swept.units, "forwardSeconds"), total = LoadedUnit.sum(swept.units, "totalSeconds")
        let outside = total > 0 ? (total - forward) / total : 0
        let passesPerSecond = forward > 0 ? Double(r.rowsEvaluated) / forward : 0
        var opts = options
        opts.out = dir
        var extra: [String: JSONValue] = [
            "grid": .int(grid), "designs": .int(designs), "sampler": .string(kind.name), "estimator": .string(est.rawValue),
            "forwardPassesPerInput": .int(passes),
            "forwardSeconds": .double(forward), "outsideForwardShare": .double(outside),
            "forwardPassesPerSecond": .double(passesPerSecond),
            "secondsPerInput": .double(r.seconds / Double(max(r.completedInputs, 1))),
            "indices": .string(dir + "/indices.npy"),
        ]
        extra.merge(AttributionOptions.sweepSummary(swept.sweep)) { a, _ in a }
        try opts.write(r, method: "sobol", loaded: swept.loaded, extra: extra, workPerRow: "passes", sweep: swept.sweep)
        if !options.json {
            print("  \(fixed(r.seconds / Double(max(r.completedInputs, 1)), 3)) s per input, \(fixed(passesPerSecond, 0)) forward passes/s, \(fixed(outside * 100, 1))% of the time outside the forward passes")
        }
    }
}

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Deletion or insertion curves and their areas for attribution maps on a model, batched on the device.")

    @Argument(help: "deletion or insertion") var kind: String
    @OptionGroup var options: AttributionOptions
    @Option(parsing: .upToNextOption, help: "Attribution maps (.npy, [N] + input shape, or [N, H, W] for [C, H, W] inputs), or 'random' (a seeded uniform map, the chance baseline); several compare methods.")
    var maps: [String]
    @Option(help: "Steps of the curve.") var steps = 32
    @Option(help: "What removed (deletion) or not yet inserted (insertion) pixels become: zero, constant:V, blur:K.") var substrate: String?

    func run() throws {
        guard let k = DeletionInsertion.Kind(rawValue: kind) else { throw ValidationError("give deletion or insertion") }
        guard steps >= 1 else { throw ValidationError("--steps \(steps): a curve needs at least 1 step") }
        let (l, contexts) = try options.loadSweep()
        guard l.predictTargets || l.targets[0].count == 1 else { throw ValidationError("evaluate takes one target per input") }
        let sub: DeletionInsertion.Substrate
        switch substrate?.split(separator: ":").map(String.init) {
        case nil, ["zero"]?: sub = .constant(0)
        case let s? where s.count == 2 && s[0] == "constant" && Double(s[1]) != nil: sub = .constant(Double(s[1])!)
        case let s? where s.count == 2 && s[0] == "blur" && Int(s[1]) != nil: sub = .blur(kernelSize: Int(s[1])!)
        default: throw ValidationError("--substrate must be zero, constant:V or blur:K")
        }
        let eval = DeletionInsertion(kind: k, steps: steps, substrate: sub, batchCap: options.batch)
        let d = l.model.inputSize, n = l.n, seed = options.seed
        // Each maps file's values for every input ('random': drawn per unit from the whole sweep's stream).
        let mapValues: [[Double]?] = try maps.map { path in path == "random" ? nil : try Self.fullSize(try NPY.read(path), model: l.model, n: n, path: path) }
        var files = options.sweepFiles(l)
        for (i, path) in maps.enumerated() where path != "random" { files["maps \(i)"] = path }
        let name = "evaluate-\(kind)"
        let sweep = try ShardedSweep(command: name, out: options.out ?? "out/\(name)", explicitOut: options.out != nil, options: options.sweep,
                                     items: n, unitSize: WorkUnits.defaultSize(rowsPerItem: (steps + 1) * maps.count, valuesPerItem: d),
                                     files: files, contentChecked: ["--model", "--inputs", "--targets", "--maps"])
        installInterruptHandler()
        let maps = self.maps
        let workers = contexts.map { c in
            SweepWorker(device: c.device.info.summary) { range, control in
                let x = Array(l.x[(range.lowerBound * d)..<(range.upperBound * d)])
                let t = l.predictTargets ? try AttributionOptions.predicted(c.model, x, n: range.count, device: c.device) : Array(l.targets[range])
                var out = UnitOutput(items: range.count)
                for (k, path) in maps.enumerated() {
                    let values: [Double]
                    if let v = mapValues[k] { values = Array(v[(range.lowerBound * d)..<(range.upperBound * d)]) }
                    else { var rng = SplitMix64(seed: seed &+ 12345, skipping: range.lowerBound * d); values = rng.uniform(range.count * d, 0, 1) }
                    let r: CurveResult
                    do { r = try eval.evaluate(model: c.model, inputs: x, maps: values, targets: t.map { $0[0] }, control: control) } catch let e as AttribError {
                        throw AttribError.invalidArgument(op: path, detail: "\(e)")   // which maps file
                    }
                    out.items = min(out.items, r.curves.count)
                    out.interrupted = out.interrupted || r.interrupted
                    out.rowsEvaluated += r.curves.count * r.fractions.count
                    out.arrays["curves_\(k)"] = .float64(r.curves.flatMap { $0 }, shape: [r.curves.count, r.fractions.count])
                    out.arrays["aucs_\(k)"] = .float64(r.aucs, shape: [r.aucs.count])
                    if r.interrupted { break }
                }
                out.arrays["targets"] = .int32(t.map { Int32($0[0]) }, shape: [range.count, 1])
                return out
            }
        }
        let outcome = try sweep.execute(workers: workers)
        guard let units = outcome.units else { sweep.reportUnassembled(outcome, json: options.json); return }
        let fractions = (0...steps).map { Double($0) / Double(steps) }
        var rows: [(String, Double)] = []
        var results: [(String, CurveResult)] = []
        for (k, path) in maps.enumerated() {
            // An interrupted unit may lack the later maps files' curves: each file keeps what it has.
            let parts = units.compactMap { $0.arrays["curves_\(k)"] }
            let curves = parts.flatMap { a in
                let v = a.doubles()
                return (0..<(a.shape.first ?? 0)).map { i in Array(v[i * (steps + 1)..<(i + 1) * (steps + 1)]) }
            }
            let aucs = units.compactMap { $0.arrays["aucs_\(k)"] }.flatMap { $0.doubles() }
            let r = CurveResult(kind: eval.kind, fractions: fractions, curves: curves, aucs: aucs, interrupted: outcome.interrupted)
            rows.append((path, aucs.reduce(0, +) / Double(max(1, aucs.count))))
            results.append((path, r))
        }
        let dir = options.out ?? "out/evaluate-\(kind)"
        let written = try writeCurves(results, to: dir, kind: k, inputs: l.n, sweep: sweep)
        defer { if outcome.interrupted { AttributionOptions.exitInterrupted() } }
        if !outcome.interrupted { try sweep.finish() }
        if options.json { try printJSON(rows.map { ["maps": $0.0, "auc": String($0.1)] }); return }
        print("\(kind) area (mean over \(l.n) inputs, \(steps) steps; \(k == .deletion ? "lower" : "higher") is better)")
        for (path, auc) in rows { print("  \(pad(fixed(auc, 4), 8)) \(path)") }
        for f in written { print("  wrote \(f)") }
    }

    /// curves.json (per maps file: the fractions, each input's curve and AUC, the mean curve and
    /// AUC) and curves.png (the mean curves, one line per maps file).
    func writeCurves(_ results: [(String, CurveResult)], to dir: String, kind k: DeletionInsertion.Kind, inputs n: Int, sweep: ShardedSweep? = nil) throws -> [String] {
        try OutputDirectory.prepare(dir, explicit: false, force: true)     // an explicit --out was checked at load
        var entries: [JSONValue] = [], series: [LinePlot.Series] = []
        for (path, r) in results {
            let count = Double(max(1, r.curves.count))
            let mean = r.fractions.indices.map { j in r.curves.reduce(0.0) { $0 + $1[j] } / count }
            let auc = r.aucs.reduce(0, +) / count
            entries.append(.object(["maps": .string(path), "fractions": .array(r.fractions.map { .double($0) }),
                                    "meanCurve": .array(mean.map { .double($0) }), "meanAUC": .double(auc),
                                    "curves": .array(r.curves.map { .array($0.map { .double($0) }) }), "aucs": .array(r.aucs.map { .double($0) }),
                                    "interrupted": .bool(r.interrupted)]))
            series.append(LinePlot.Series(name: "\(path)  (AUC \(fixed(auc, 4)))", x: r.fractions, y: mean))
        }
        var fields: [String: JSONValue] = ["kind": .string(k.rawValue), "inputs": .int(n), "steps": .int(steps),
                                           "score": .string("softmax probability of the target class"),
                                           "better": .string(k == .deletion ? "lower AUC" : "higher AUC"), "maps": .array(entries)]
        if let sweep { fields.merge(AttributionOptions.sweepSummary(sweep)) { a, _ in a } }
        let summary: JSONValue = .object(fields)
        try OutputDirectory.write(try prettyJSON(summary), to: dir + "/curves.json")
        let what = k == .deletion ? "fraction of pixels deleted (most attributed first)" : "fraction of pixels inserted (most attributed first)"
        let plot = LinePlot.render(series, title: "\(k.rawValue) curves, mean over \(n) inputs (\(k == .deletion ? "lower" : "higher") is better)",
                                   xLabel: what, yLabel: "p(target)")
        try plot.image.write(to: dir + "/curves.png")
        return [dir + "/curves.json", dir + "/curves.png"]
    }

    /// Maps as full-size per-input values: [N] + input shape as is, or [N, H, W] broadcast over C channels.
    static func fullSize(_ a: NPYArray, model: any AttributionModel, n: Int, path: String) throws -> [Double] {
        let d = model.inputSize, v = a.doubles()
        guard let rows = a.shape.first, rows >= n else {
            throw AttribError.shapeMismatch(op: path, detail: "maps have shape \(a.shape); need at least \(n) rows")
        }
        let per = v.count / rows
        if per == d { return Array(v.prefix(n * d)) }
        let s = model.inputShape
        if s.count == 3, per == s[1] * s[2] {
            return (0..<n).flatMap { i in (0..<s[0]).flatMap { _ in v[i * per..<(i + 1) * per] } }
        }
        throw AttribError.shapeMismatch(op: path, detail: "maps have shape \(a.shape); expected [N] + \(s) or [N, \(s.dropFirst().map(String.init).joined(separator: ", "))]")
    }
}
