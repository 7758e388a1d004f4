import ArgumentParser
import Attrib

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "experiment", abstract: "Measured experiments.",
                                                    subcommands: [PSIGExperimentCommand.self, GradDropExperimentCommand.self])
}

struct PSIGExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "psig",
        abstract: "PS-IG: error against a high-m reference as m grows, deterministic sum vs stochastic estimate, and the variance ratio under gradient noise.")

    @OptionGroup var global: GlobalOptions
    @Option(help: "A smooth model (default: the GELU digits MLP).") var model = "Models/digits-mlp"
    @Option(help: "Inputs .npy.") var inputs = "Models/digits-data/test_inputs.npy"
    @Option(help: "How many inputs.") var limit = 8
    @Option(help: "Deterministic rule: riemann_left (the paper's), riemann_right, riemann_middle, …") var rule = "riemann_left"
    @Option(help: "Comma-separated m values.") var steps = "4,8,16,32,64,128,256,512"
    @Option(help: "Repeats of the stochastic estimate per m.") var repeats = 8
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        guard let r = IntegrationRule(name: rule) else { throw ValidationError("unknown --rule '\(rule)'") }
        let device = try global.selectedDevice()
        let net = try Sequential.load(model, on: device, dtype: device.supports(.float64) ? .float64 : .float32)
        let arr = try NPY.read(inputs)
        let n = min(limit, arr.shape[0]), x = Array(arr.doubles().prefix(n * net.inputSize))
        let out = try net.forward(Tensor(x, shape: [n] + net.inputShape, dtype: net.dtype, on: device)).doubles()
        let c = net.outputShape.reduce(1, *)
        let targets = (0..<n).map { i in [(0..<c).max { out[i * c + $0] < out[i * c + $1] }!] }
        let report = try PathSampledIGExperiment.run(net, inputs: x, count: n, targets: targets,
                                                     stepCounts: try parseList(steps, "--steps"), rule: r, repeats: repeats)
        if json { try printJSON(report); return }
        print("PS-IG (uniform β) on \(model), \(n) inputs, \(net.dtype), reference: Gauss–Legendre m = \(report.referenceSteps)")
        print("\(pad("m", 6)) \(pad("deterministic (\(report.rule))", 30)) stochastic (RMS over \(repeats) seeds)")
        for row in report.rows { print("\(pad(String(row.m), 6)) \(pad(sci(row.deterministicError), 30)) \(sci(row.stochasticError))") }
        print("fitted slope: deterministic \(fixed(report.deterministicSlope, 3)) (paper: −1), stochastic \(fixed(report.stochasticSlope, 3)) (paper: −0.5)")
        print("variance ratio PS-IG / IG under gradient noise: \(fixed(report.varianceRatio, 4)) over \(report.noiseDraws) draws (quadrature's exact value \(fixed(report.varianceRatioExpected, 4)); paper: 1/3)")
    }
}

struct GradDropExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graddrop",
        abstract: "AtP*'s GradDrop rules (none, floor, paper, max) against exact activation patching on the same pairs.")

    @OptionGroup var options: PatchingOptions

    func run() throws {
        let g = try options.granularity()
        let jobs = try options.jobs(options.tokenizer())
        let (model, _) = try options.load()
        let r = try GradDropExperiment.run(model, pairs: jobs.map { ($0.pair, $0.metric) }, granularity: g, batchSize: options.batch)
        if options.json {
            try printJSON(JSONValue.object(["model": .string(options.model), "layers": .int(r.layers), "nodes": .int(r.nodes), "k": .int(r.k), "pairs": .int(r.pairs),
                           "rules": .array(r.rows.map { .object(["rule": .string($0.rule), "meanSpearman": .double($0.meanSpearman),
                                                                 "meanRecall": .double($0.meanRecall), "worstRank": .int($0.worstRank),
                                                                 "meanTopRank": .double($0.meanTopRank), "bottomHalf": .int($0.bottomHalf)]) })]))
            return
        }
        print("GradDrop rules against exact patching: \(options.model), \(r.layers) layers, \(r.nodes) \(g.rawValue) nodes, \(r.pairs) pair(s), K = \(r.k)")
        print("\(pad("rule", 6)) \(pad("Spearman ρ", 11)) \(pad("recall@\(r.k)", 10)) \(pad("rank of true #1", 16)) \(pad("worst rank of a true top-\(r.k)", 30)) true top-\(r.k) in the bottom half")
        for row in r.rows {
            print("\(pad(row.rule, 6)) \(pad(fixed(row.meanSpearman, 3), 11)) \(pad(fixed(row.meanRecall, 3), 10)) \(pad(fixed(row.meanTopRank, 2), 16)) \(pad(String(row.worstRank) + " of \(r.nodes)", 30)) \(row.bottomHalf)")
        }
    }
}
