import ArgumentParser
import Attrib

struct SensitivityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sensitivity",
        abstract: "Sobol sensitivity analysis of the built-in test functions (Ishigami, Sobol G): indices with bootstrap confidence intervals beside the closed form.")

    @Option(help: "ishigami or sobol-g.") var function = "ishigami"
    @Option(help: "Base samples N (a power of two for Sobol samplers).") var samples = 16384
    @Option(help: "sobol, sobol-scrambled, halton, lhs or mc.") var sampler = "sobol"
    @Option(help: "Total-order estimator: jansen, homma, janon, glen, saltelli.") var estimator = "jansen"
    @Flag(help: "Also second-order indices.") var secondOrder = false
    @Option(help: "Seed (scrambling, bootstrap).") var seed: UInt64 = 0
    @Flag(help: "Print JSON.") var json = false

    struct Output: Encodable {
        var function: String, samples: Int, sampler: String, estimator: String
        var firstOrder: [Double], firstOrderConfidence: [Double]?, firstOrderExact: [Double]
        var totalOrder: [Double], totalOrderConfidence: [Double]?, totalOrderExact: [Double]
        var secondOrder: [Double]?
        var warnings: [String]
    }

    func run() throws {
        guard let kind = SamplerKind(name: sampler) else { throw ValidationError("unknown --sampler '\(sampler)'") }
        guard let est = TotalOrderEstimator(rawValue: estimator) else { throw ValidationError("unknown --estimator '\(estimator)'") }
        let f: ([Double], Int) throws -> [Double], d: Int, s1: [Double], st: [Double]
        switch function {
        case "ishigami":
            let g = Ishigami(); f = g.evaluate; d = Ishigami.dimensions; s1 = g.firstOrder; st = g.totalOrder
        case "sobol-g":
            let g = SobolG(); f = g.evaluate; d = g.dimensions; s1 = g.firstOrder; st = g.totalOrder
        default: throw ValidationError("unknown --function '\(function)'; use ishigami or sobol-g")
        }
        let r = try SobolAnalysis.analyze(function: f, dimensions: d, baseSamples: samples, sampler: kind,
                                          secondOrder: secondOrder, totalOrder: est, seed: seed)
        let out = Output(function: function, samples: samples, sampler: kind.name, estimator: est.rawValue,
                         firstOrder: r.firstOrder, firstOrderConfidence: r.firstOrderConfidence, firstOrderExact: s1,
                         totalOrder: r.totalOrder, totalOrderConfidence: r.totalOrderConfidence, totalOrderExact: st,
                         secondOrder: r.secondOrder, warnings: r.warnings)
        if json { try printJSON(out); return }
        print("\(function): N = \(samples), \(kind.name), total order by \(est.rawValue); \(samples * (d + 2 + (secondOrder ? d : 0))) evaluations")
        print("\(pad("x", 4)) \(pad("S1", 22)) \(pad("exact", 8)) \(pad("ST", 22)) exact")
        for i in 0..<d {
            let c1 = r.firstOrderConfidence.map { " ± " + fixed($0[i], 4) } ?? "", ct = r.totalOrderConfidence.map { " ± " + fixed($0[i], 4) } ?? ""
            print("\(pad("x\(i + 1)", 4)) \(pad(fixed(r.firstOrder[i], 4) + c1, 22)) \(pad(fixed(s1[i], 4), 8)) \(pad(fixed(r.totalOrder[i], 4) + ct, 22)) \(fixed(st[i], 4))")
        }
        for w in r.warnings { print("warning: \(w)") }
    }
}
