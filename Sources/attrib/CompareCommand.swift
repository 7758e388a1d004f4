import ArgumentParser
import Attrib
import FoundationEssentials

/// `attrib compare METHOD --devices A,B`: one method on two devices, the same inputs, targets
/// and draws, and how far apart the attributions are per input against the bound the parity
/// tests hold every device to. Comparing a device against the CPU backend is one of the tool's
/// stated uses; this makes it one command.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Run one attribution method on two devices and report their agreement per input (max relative difference, the tolerance, pass/fail).")

    @Argument(help: "ig, saliency or smoothgrad.") var method: String
    @Option(help: "Two device specs, comma-separated (e.g. cpu,opencl).") var devices = "cpu,opencl"
    @Option(help: "Model: a directory with config.json + model.safetensors, a .onnx file, or a directory with model.onnx.") var model: String
    @Option(help: "Inputs as .npy, [N] + the model's input shape.") var inputs: String
    @Option(help: "Only the first N inputs.") var limit = 16
    @Option(help: "IG steps (Gauss–Legendre).") var steps = 32
    @Option(help: "SmoothGrad: noisy samples per input.") var samples = 16
    @Option(help: "SmoothGrad: σ of the noise.") var stdev = 0.15
    @Option(help: "Seed of the noise (the same draws on both devices).") var seed: UInt64 = 0
    @Flag(help: "Print JSON.") var json = false

    /// Float32 on both sides: the parity tests' bound for these methods (GradientMethodTests):
    /// sums of m gradients, each a chain of products of at most a few thousand terms, relative
    /// to the largest attribution of the input.
    static let tolerance = 1e-4

    func validate() throws {
        guard ["ig", "saliency", "smoothgrad"].contains(method) else { throw ValidationError("unknown method '\(method)'; use ig, saliency or smoothgrad") }
        guard devices.split(separator: ",").count == 2 else { throw ValidationError("--devices needs two specs, e.g. cpu,opencl; got '\(devices)'") }
        guard limit >= 1, steps >= 1, samples >= 1 else { throw ValidationError("--limit, --steps and --samples must be at least 1") }
    }

    func run() throws {
        let specs = devices.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        let ds = try specs.map { try Devices.select($0) }
        let models = try ds.map { try loadAttributionModel(model, on: $0) }
        var (n, x) = try NPY.samples(inputs, sampleShape: models[0].inputShape, what: "inputs")
        if limit < n { n = limit; x = Array(x.prefix(n * models[0].inputSize)) }
        // Targets: the first device's predicted class, used on both (an argmax tie must not
        // make the two runs attribute different classes).
        let out = try models[0].outputs(Tensor(x, shape: [n] + models[0].inputShape, dtype: models[0].dtype, on: ds[0])).doubles()
        let c = models[0].outputCount
        let targets = (0..<n).map { i in [(0..<c).max { out[i * c + $0] < out[i * c + $1] }!] }
        func attribute(_ m: any AttributionModel) throws -> [Double] {
            switch method {
            case "ig": return try IntegratedGradients(rule: .gaussLegendre, steps: steps).attribute(m, inputs: x, count: n, baseline: .zero, targets: targets).attributions
            case "saliency": return try GradientMethods.plain(.signedGradient, m, inputs: x, count: n, targets: targets).attributions
            default: return try GradientMethods.smoothGrad(m, inputs: x, count: n, targets: targets, samples: samples,
                                                           noise: .gaussian(sigma: stdev, seed: seed), reduction: .smoothgrad).attributions
            }
        }
        let (a, b) = (try attribute(models[0]), try attribute(models[1]))
        let d = models[0].inputSize
        var rows: [(Int, Double, Bool)] = []
        for i in 0..<n {
            var diff = 0.0, scale = 0.0
            for j in (i * d)..<((i + 1) * d) { diff = max(diff, abs(a[j] - b[j])); scale = max(scale, abs(a[j])) }
            let rel = diff / max(scale, .leastNormalMagnitude)
            rows.append((i, rel, rel <= Self.tolerance))
        }
        let failed = rows.filter { !$0.2 }.count
        if json {
            try printJSON(JSONValue.object([
                "method": .string(method), "devices": .array(ds.map { .string($0.info.summary) }), "tolerance": .double(Self.tolerance),
                "inputs": .array(rows.map { .object(["input": .int($0.0), "maxRelativeDifference": .double($0.1), "pass": .bool($0.2)]) }),
                "failed": .int(failed)]))
        } else {
            print("\(method) on \(ds[0].info.summary)  vs  \(ds[1].info.summary): \(n) inputs, Float32")
            print("tolerance: max |a − b| ≤ \(sci(Self.tolerance)) × max |a| per input (the parity tests' Float32 bound for this method)")
            print("  \(pad("input", 6)) \(pad("max rel. diff.", 15)) result")
            for (i, rel, ok) in rows { print("  \(pad(String(i), 6)) \(pad(sci(rel), 15)) \(ok ? "pass" : "FAIL")") }
            print(failed == 0 ? "all \(n) inputs agree within the tolerance" : "\(failed) of \(n) inputs exceed the tolerance")
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
