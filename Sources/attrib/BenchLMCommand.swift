import ArgumentParser
import Attrib
import FoundationEssentials

/// `attrib bench lm`: a decoder LLM's forward throughput (tokens/s) and the seconds of one AtP
/// pair (a corrupt forward, a clean forward, one backward) at a prompt length, on one device.
/// The prompts are seeded random token ids: the cost of a forward does not depend on them.
struct BenchLM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lm",
        abstract: "Forward tokens/s and AtP seconds per pair of a decoder LLM (HF directory or .gguf).")

    @OptionGroup var global: GlobalOptions
    @Option(help: "Model: a Hugging Face directory or a .gguf file; or a config.json with --random.") var model: String
    @Flag(help: "--model is a config.json: random weights of that shape (a 1B-class model for speed, nothing to download).") var random = false
    @Option(help: "Storage of the weight matrices and embeddings: float32, bf16 or f16 (products in Float32).") var dtype: DType = .float32
    @Option(help: "Tokens per prompt.") var tokens = 128
    @Option(help: "Prompts per forward batch.") var batch = 8
    @Option(help: "Node granularity of the AtP timing (heads, neurons).") var nodes = "heads"
    @Option(help: "Seconds of timed calls per measurement (at least).") var seconds = 2.0
    @Flag(help: "Print JSON.") var json = false

    struct Result: Encodable {
        var device: String, model: String, weights: String, tokens: Int, batch: Int
        var forwardTokensPerSecond: Double, forwardSecondsPerBatch: Double
        /// The forward's products (DecoderConfig.forwardFLOPs) per second, and that as a share of
        /// the device's Float32 GEMM rate at the MLP's shape (B·T × F × D), measured in the same run.
        var forwardGFLOPS: Double, gemmGFLOPS: Double, shareOfGEMM: Double
        var atpNodes: String, atpSecondsPerPair: Double
        var loadSeconds: Double
    }

    func run() throws {
        let device = try global.selectedDevice()
        let loadStart = ContinuousClock.now
        let m = random ? try DecoderModel.random(DecoderConfig.read(model), on: device, weights: dtype)
            : try DecoderModel.load(model: model, on: device, weights: dtype)
        let loadSeconds = (ContinuousClock.now - loadStart).seconds
        guard tokens >= 2, tokens <= m.config.nPositions else {
            throw ValidationError("--tokens \(tokens): the model takes 2 to \(m.config.nPositions)")
        }
        var rng = SplitMix64(seed: 7)
        let v = UInt64(m.config.vocabSize)
        let prompts = (0..<batch).map { _ in (0..<tokens).map { _ in Int32(rng.next() % v) } }
        func timed(_ body: () throws -> Void) throws -> Double {
            try body()                                           // warm-up: graphs, kernels, buffers
            var n = 0
            let start = ContinuousClock.now
            repeat { try body(); n += 1 } while (ContinuousClock.now - start).seconds < seconds
            return (ContinuousClock.now - start).seconds / Double(n)
        }
        let forward = try timed { _ = try m.logits(prompts).doubles().count }
        let c = m.config
        let flops = Double(batch) * c.forwardFLOPs(tokens: tokens)
        // The limit a forward of products can approach: a plain GEMM of its commonest shape.
        let gemm = try GEMMBenchmark.measure(on: device, m: batch * tokens, n: c.nInner, k: c.nEmbd,
                                             minSeconds: min(1, max(seconds, 0.2)), checkAgainstCPU: false).gflops
        var corrupt = prompts[0]
        corrupt[tokens / 2] = Int32((UInt64(corrupt[tokens / 2]) + 1) % v)
        let pair = PromptPair(clean: prompts[0], corrupt: corrupt)
        let metric = TokenMetric.logitDifference(target: [1], contrast: [2])
        let granularity = try ComponentGranularity(name: nodes)
        let atp = try timed { _ = try AtP.estimate(m, pair: pair, metric: metric, granularity: granularity) }
        let r = Result(device: device.info.id, model: model, weights: m.weightDType.rawValue, tokens: tokens, batch: batch,
                       forwardTokensPerSecond: Double(batch * tokens) / forward, forwardSecondsPerBatch: forward,
                       forwardGFLOPS: flops / forward / 1e9, gemmGFLOPS: gemm, shareOfGEMM: flops / forward / 1e9 / gemm,
                       atpNodes: nodes, atpSecondsPerPair: atp, loadSeconds: loadSeconds)
        if json { try printJSON(r); return }
        print("\(device.info.id): \(m.config.family.rawValue), \(m.config.nLayer) layers, \(m.weightDType.rawValue) weights, loaded in \(fixed(loadSeconds, 2)) s")
        print("  forward  \(batch) × \(tokens) tokens: \(fixed(r.forwardTokensPerSecond, 1)) tokens/s (\(fixed(forward * 1000, 1)) ms per batch)")
        print("           \(fixed(r.forwardGFLOPS, 1)) GFLOP/s of products, \(fixed(100 * r.shareOfGEMM, 1))% of this device's GEMM rate at \(batch * tokens)×\(c.nInner)×\(c.nEmbd) (\(fixed(gemm, 1)) GFLOP/s)")
        print("  AtP \(nodes), one pair of \(tokens) tokens: \(fixed(atp * 1000, 1)) ms")
    }
}
