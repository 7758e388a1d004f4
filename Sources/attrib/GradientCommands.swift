import ArgumentParser
import Attrib

/// Parses --baseline: zero | constant:V | blur:S | uniform[:LO,HI] | file:B.npy.
func parseBaseline(_ spec: String, seed: UInt64, model: any AttributionModel) throws -> Baseline {
    let (kind, arg) = spec.split(separator: ":", maxSplits: 1).map(String.init).splitFirst
    switch kind {
    case "zero": return .zero
    case "constant":
        guard let v = arg.flatMap(Double.init) else { throw ValidationError("--baseline constant:V needs a number, got '\(spec)'") }
        return .constant(v)
    case "blur":
        guard let s = arg.flatMap(Double.init), s > 0 else { throw ValidationError("--baseline blur:S needs σ > 0, got '\(spec)'") }
        return .blur(s)
    case "uniform":
        let parts = (arg ?? "0,1").split(separator: ",").compactMap { Double($0) }
        guard parts.count == 2, parts[0] < parts[1] else { throw ValidationError("--baseline uniform:LO,HI needs LO < HI, got '\(spec)'") }
        return .uniform(parts[0], parts[1], seed: seed)
    case "file":
        guard let path = arg else { throw ValidationError("--baseline file:B.npy needs a path") }
        let (rows, values) = try NPY.samples(path, sampleShape: model.inputShape, what: "baselines")
        return .values(values, count: rows)
    default:
        throw ValidationError("unknown --baseline '\(spec)'; use zero, constant:V, blur:S, uniform[:LO,HI] or file:B.npy")
    }
}

extension Array where Element == String {
    var splitFirst: (String, String?) { (self[0], count > 1 ? self[1] : nil) }
}

struct IGCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ig",
        abstract: "Integrated Gradients (and path-weighted PS-IG, and NoiseTunnel around it) over a batch of inputs.")

    @OptionGroup var options: AttributionOptions
    @Option(help: "Baseline: zero, constant:V, blur:S, uniform[:LO,HI], file:B.npy.") var baseline = "zero"
    @Option(help: "Integration steps m.") var steps = 64
    @Option(help: "Rule: riemann_left, riemann_right, riemann_middle, riemann_trapezoid, gauss_legendre. riemann_trapezoid's weights are 1/(m − 1), halved at the ends (they sum to 1); Captum's are 1/m halved (sum 1 − 1/m), so Captum's trapezoid IG is this one's × (m − 1)/m.") var method = "gauss_legendre"
    @Option(help: "Path-weighted IG (PS-IG) with baselines sampled along the path: uniform or beta:A,B.") var pathDensity: String?
    @Flag(help: "Do not fuse the first affine layer (for comparison; same numbers, slower).") var noFuse = false
    @Flag(help: "Run a small CNN's path in batches layer by layer, not each input's whole path in one op (for comparison; bitwise the same attributions, slower).") var noWholePath = false
    @Flag(help: "Build the path before the activation it meets first and apply f′ apart, instead of inside one pass each (for comparison; bitwise the same attributions, slower).") var noPathActivation = false
    @Flag(help: "Run the model's Linear head forward and back on every step instead of taking the targets' weight rows as the gradient at its input (for comparison; bitwise the same attributions).") var noHeadRows = false
    @Flag(help: "On the CPU, split every op of a batch over the threads instead of running each thread's share of the batch's inputs through the whole model (for comparison; the same attributions to rounding).") var noThreadTiles = false
    @Option(help: "NoiseTunnel: noisy copies per input (0: none).") var ntSamples = 0
    @Option(help: "NoiseTunnel: σ of the Gaussian noise (absolute).") var ntStdev = 0.1
    @Option(help: "NoiseTunnel: smoothgrad, smoothgrad_sq or vargrad.") var ntType = "smoothgrad"
    @Flag(help: "Before the sweep, run the same IG untimed and unreported on its first inputs, as many as one device batch holds, so that first-use costs (thread start-up, first page faults of batch-sized buffers) fall outside the timing, as in a benchmark's warm-up.") var warmup = false

    /// Checked while parsing, so a bad value prints this command's usage, not the root's.
    func validate() throws {
        guard let rule = IntegrationRule(name: method) else {
            throw ValidationError("unknown --method '\(method)'; use one of \(IntegrationRule.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard steps >= rule.minimumSteps else {
            throw ValidationError("--steps \(steps): \(rule.rawValue) needs at least \(rule.minimumSteps) step\(rule.minimumSteps == 1 ? "" : "s")")
        }
        if let s = pathDensity, PathDensity(name: s) == nil { throw ValidationError("--path-density must be uniform or beta:A,B with A, B > 0") }
        if ntSamples > 0, GradientMethods.NoiseReduction(rawValue: ntType) == nil { throw ValidationError("--nt-type must be smoothgrad, smoothgrad_sq or vargrad") }
    }

    func run() throws {
        let rule = IntegrationRule(name: method)!
        let density = try pathDensity.map { s -> PathDensity in
            guard let d = PathDensity(name: s) else { throw ValidationError("--path-density must be uniform or beta:A,B with A, B > 0") }
            return d
        }
        let (l, contexts) = try options.loadSweep()
        var ig = IntegratedGradients(rule: rule, steps: steps, density: density, fuseFirstLayer: !noFuse, batchCap: options.batch)
        ig.wholePath = !noWholePath
        ig.fusePathActivation = !noPathActivation
        if noThreadTiles { ig.threadTiles = false }
        if noHeadRows { ig.gatherHead = false }
        let base = try parseBaseline(baseline, seed: options.seed, model: l.model)
        let rowsPerInput = steps * max(1, ntSamples)
        if warmup && !mergeOnlyMode {
            // On each device, the inputs of a first batch (batches are of equal size, so its
            // buffers are the sweep's); a per-input baseline file contributes its first k rows.
            let d = l.model.inputSize
            for c in contexts {
                let k = ig.firstBatchInputs(for: c.model, count: l.n)
                let xs = Array(l.x.prefix(k * d))
                let t = l.predictTargets ? try AttributionOptions.predicted(c.model, xs, n: k, device: c.device) : Array(l.targets.prefix(k))
                _ = try ig.attribute(c.model, inputs: xs, count: k, baseline: base.forInputs(0..<k, of: l.n, d: d), targets: t)
            }
        }
        installInterruptHandler()
        var files: [String: String] = [:]
        if case .values = base, baseline.hasPrefix("file:") { files["baselines"] = String(baseline.dropFirst(5)) }
        let n = l.n, d = l.model.inputSize, seed = options.seed, samples = ntSamples, stdev = ntStdev, type = ntType
        guard let swept = try options.runSweep(l, contexts, method: "ig", rowsPerInput: rowsPerInput, files: files, compute: { c, range, x, t, control in
            let b = base.forInputs(range, of: n, d: d)
            if samples > 0 {
                guard let red = GradientMethods.NoiseReduction(rawValue: type) else { throw ValidationError("--nt-type must be smoothgrad, smoothgrad_sq or vargrad") }
                let noise = GradientMethods.Noise.gaussian(sigma: stdev, seed: seed).forInputs(range, samples: samples, d: d)
                return (try NoiseTunnel.integratedGradients(ig, c.model, inputs: x, count: range.count, baseline: b, targets: t,
                                                            samples: samples, noise: noise, reduction: red, control: control), [:], [:])
            }
            return (try ig.attribute(c.model, inputs: x, count: range.count, baseline: b, targets: t, control: control), [:], [:])
        }) else { return }
        let r = swept.result
        let name = density == nil ? (ntSamples > 0 ? "ig-noisetunnel" : "ig") : "psig"
        if steps < rule.meaningfulSteps, let d = r.deltas, !d.isEmpty {
            // Σ attribution per (input, target): the scale the delta is read against.
            let per = r.attributions.count / max(1, d.count)
            let sums = (0..<d.count).map { i in abs(r.attributions[i * per..<(i + 1) * per].reduce(0, +)) }
            writeStandardError("warning: --steps \(steps) is below \(rule.meaningfulSteps), the fewest at which \(rule.rawValue)'s completeness delta means much; this run's max |delta| = \(sci(d.map(abs).max()!)) against max |Σ attribution| = \(sci(sums.max() ?? 0)). Use --steps \(rule.meaningfulSteps) or more.\n")
        }
        var extra: [String: JSONValue] = [
            "steps": .int(steps), "rule": .string(rule.rawValue), "baseline": .string(base.description),
            "pathDensity": .string(density?.description ?? "none"), "wholePath": .bool(ig.runsWhole(l.model, count: min(l.n, swept.sweep.units.unitSize))),
            "threadTiles": .bool(ig.runsInThreadTiles(l.model, count: min(l.n, swept.sweep.units.unitSize))),
            "headRows": .bool(ig.head(l.model) != nil),
        ]
        extra.merge(AttributionOptions.sweepSummary(swept.sweep)) { a, _ in a }
        try options.write(r, method: name, loaded: swept.loaded, extra: extra, sweep: swept.sweep)
    }
}

struct SaliencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "saliency", abstract: "Saliency |∇F(x)|, the signed gradient, or Gradient × Input.")
    @OptionGroup var options: AttributionOptions
    @Flag(help: "The signed gradient instead of its absolute value.") var signed = false
    @Flag(help: "Gradient × Input.") var timesInput = false

    func run() throws {
        let (l, contexts) = try options.loadSweep()
        let kind: GradientMethods.Plain = timesInput ? .gradientTimesInput : signed ? .signedGradient : .saliency
        let name = kind == .saliency ? "saliency" : kind.rawValue
        installInterruptHandler()
        let cap = options.batch
        guard let swept = try options.runSweep(l, contexts, method: name, rowsPerInput: 1, compute: { c, range, x, t, control in
            (try GradientMethods.plain(kind, c.model, inputs: x, count: range.count, targets: t, batchCap: cap, control: control), [:], [:])
        }) else { return }
        try options.write(swept.result, method: name, loaded: swept.loaded, extra: AttributionOptions.sweepSummary(swept.sweep), workPerRow: "inputs", sweep: swept.sweep)
    }
}

struct SmoothGradCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "smoothgrad", abstract: "SmoothGrad, its squared form, or VarGrad.")
    @OptionGroup var options: AttributionOptions
    @Option(help: "Noisy samples per input.") var samples = 32
    @Option(help: "σ of the Gaussian noise (absolute, in input units).") var stdev = 0.15
    @Option(help: "smoothgrad, smoothgrad_sq or vargrad.") var type = "smoothgrad"

    func validate() throws {
        guard GradientMethods.NoiseReduction(rawValue: type) != nil else { throw ValidationError("--type must be smoothgrad, smoothgrad_sq or vargrad") }
    }

    func run() throws {
        let red = GradientMethods.NoiseReduction(rawValue: type)!
        let (l, contexts) = try options.loadSweep()
        installInterruptHandler()
        let cap = options.batch, d = l.model.inputSize, samples = samples
        let noise = GradientMethods.Noise.gaussian(sigma: stdev, seed: options.seed)
        guard let swept = try options.runSweep(l, contexts, method: type, rowsPerInput: samples, compute: { c, range, x, t, control in
            (try GradientMethods.smoothGrad(c.model, inputs: x, count: range.count, targets: t, samples: samples,
                                            noise: noise.forInputs(range, samples: samples, d: d), reduction: red, batchCap: cap, control: control), [:], [:])
        }) else { return }
        var extra: [String: JSONValue] = ["samples": .int(samples), "stdev": .double(stdev)]
        extra.merge(AttributionOptions.sweepSummary(swept.sweep)) { a, _ in a }
        try options.write(swept.result, method: type, loaded: swept.loaded, extra: extra, workPerRow: "samples", sweep: swept.sweep)
    }
}

struct ExpectedGradientsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "expected-gradients",
                                                    abstract: "Expected Gradients over a baseline set; with --stdev > 0, GradientSHAP.")
    @OptionGroup var options: AttributionOptions
    @Option(help: "Baseline set as .npy, [K] + the model's input shape.") var baselines: String
    @Option(help: "Samples (baseline, α) per input.") var samples = 64
    @Option(help: "GradientSHAP: σ of Gaussian noise on the input (0: Expected Gradients).") var stdev = 0.0

    func run() throws {
        let (l, contexts) = try options.loadSweep()
        let (k, set) = try NPY.samples(baselines, sampleShape: l.model.inputShape, what: "baselines")
        installInterruptHandler()
        let name = stdev > 0 ? "gradient-shap" : "expected-gradients"
        let samples = samples, cap = options.batch
        // Drawn once for the sweep; each unit takes its inputs' draws.
        let plan = GradientMethods.ExpectationDrawPlan(n: l.n, samples: samples, baselines: k, d: l.model.inputSize, sigma: stdev, seed: options.seed)
        guard let swept = try options.runSweep(l, contexts, method: name, rowsPerInput: samples, files: ["baselines": baselines], compute: { c, range, x, t, control in
            let draws = plan.draws(inputs: range)
            return (try GradientMethods.expectedGradients(c.model, inputs: x, count: range.count, targets: t, baselineSet: set,
                                                          baselineCount: k, samples: samples, draws: draws, batchCap: cap, control: control), [:], [:])
        }) else { return }
        var extra: [String: JSONValue] = ["samples": .int(samples), "stdev": .double(stdev), "baselineSet": .int(k)]
        extra.merge(AttributionOptions.sweepSummary(swept.sweep)) { a, _ in a }
        try options.write(swept.result, method: name, loaded: swept.loaded, extra: extra, workPerRow: "samples", sweep: swept.sweep)
    }
}
