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
        let l = try options.load()
        guard l.targets[0].count == 1 else { throw ValidationError("sobol takes one target per input") }
        let method = SobolAttribution(gridSize: grid, designs: designs, sampler: kind, seed: options.seed, perturbation: pert, estimator: est,
                                      perChannel: perChannel, maskUpsampling: bilinearMasks ? .bilinear : .nearest,
                                      mapResize: mapResize, batchCap: options.batch)
        installInterruptHandler()
        let r = try method.explain(model: l.model, inputs: l.x, targets: l.targets.map { $0[0] },
                                   control: ProgressBar("sobol", inputs: l.n, quiet: options.quiet || options.json).control)
        let dir = options.out ?? "out/sobol"
        try OutputDirectory.prepare(dir, explicit: false, force: true)     // an explicit --out was checked at load
        if r.completedInputs > 0 {
            try NPY.write(r.indices.map { Float($0) }, shape: r.indexShape, to: dir + "/indices.npy")
        }
        // The resized maps are the attributions: written, drawn and summarised like every other method's.
        let asAttribution = AttributionResult(attributions: r.maps, shape: r.mapShape, deltas: nil, completedInputs: r.completedInputs,
                                              interrupted: r.interrupted, plan: r.plan, seconds: r.totalSeconds,
                                              rowsEvaluated: r.rowsEvaluated, fused: false)
        var opts = options
        opts.out = dir
        try opts.write(asAttribution, method: "sobol", loaded: l, extra: [
            "grid": .int(grid), "designs": .int(designs), "sampler": .string(kind.name), "estimator": .string(est.rawValue),
            "forwardPassesPerInput": .int(method.passesPerInput(channels: perChannel ? l.model.inputShape[0] : 1)),
            "forwardSeconds": .double(r.forwardSeconds), "outsideForwardShare": .double(r.outsideForwardShare),
            "forwardPassesPerSecond": .double(r.forwardPassesPerSecond),
            "secondsPerInput": .double(r.totalSeconds / Double(max(r.completedInputs, 1))),
            "indices": .string(dir + "/indices.npy"),
        ], workPerRow: "passes")
        if !options.json {
            print("  \(fixed(r.totalSeconds / Double(max(r.completedInputs, 1)), 3)) s per input, \(fixed(r.forwardPassesPerSecond, 0)) forward passes/s, \(fixed(r.outsideForwardShare * 100, 1))% of the time outside the forward passes")
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
        let l = try options.load()
        guard l.targets[0].count == 1 else { throw ValidationError("evaluate takes one target per input") }
        let sub: DeletionInsertion.Substrate
        switch substrate?.split(separator: ":").map(String.init) {
        case nil, ["zero"]?: sub = .constant(0)
        case let s? where s.count == 2 && s[0] == "constant" && Double(s[1]) != nil: sub = .constant(Double(s[1])!)
        case let s? where s.count == 2 && s[0] == "blur" && Int(s[1]) != nil: sub = .blur(kernelSize: Int(s[1])!)
        default: throw ValidationError("--substrate must be zero, constant:V or blur:K")
        }
        let eval = DeletionInsertion(kind: k, steps: steps, substrate: sub, batchCap: options.batch)
        var rows: [(String, Double)] = []
        var results: [(String, CurveResult)] = []
        for path in maps {
            var rng = SplitMix64(seed: options.seed &+ 12345)
            let values = path == "random" ? rng.uniform(l.n * l.model.inputSize, 0, 1)
                                          : try Self.fullSize(try NPY.read(path), model: l.model, n: l.n, path: path)
            let r: CurveResult
            do { r = try eval.evaluate(model: l.model, inputs: l.x, maps: values, targets: l.targets.map { $0[0] }) } catch let e as AttribError {
                throw AttribError.invalidArgument(op: path, detail: "\(e)")   // which maps file
            }
            rows.append((path, r.aucs.reduce(0, +) / Double(r.aucs.count)))
            results.append((path, r))
        }
        let dir = options.out ?? "out/evaluate-\(kind)"
        let files = try writeCurves(results, to: dir, kind: k, inputs: l.n)
        if options.json { try printJSON(rows.map { ["maps": $0.0, "auc": String($0.1)] }); return }
        print("\(kind) area (mean over \(l.n) inputs, \(steps) steps; \(k == .deletion ? "lower" : "higher") is better)")
        for (path, auc) in rows { print("  \(pad(fixed(auc, 4), 8)) \(path)") }
        for f in files { print("  wrote \(f)") }
    }

    /// curves.json (per maps file: the fractions, each input's curve and AUC, the mean curve and
    /// AUC) and curves.png (the mean curves, one line per maps file).
    func writeCurves(_ results: [(String, CurveResult)], to dir: String, kind k: DeletionInsertion.Kind, inputs n: Int) throws -> [String] {
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
        let summary: JSONValue = .object(["kind": .string(k.rawValue), "inputs": .int(n), "steps": .int(steps),
                                          "score": .string("softmax probability of the target class"),
                                          "better": .string(k == .deletion ? "lower AUC" : "higher AUC"), "maps": .array(entries)])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try OutputDirectory.write(try encoder.encode(summary), to: dir + "/curves.json")
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
