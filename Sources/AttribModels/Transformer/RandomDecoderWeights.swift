import AttribCore
import Synchronization

/// Random weights for any decoder config, for speed measurements of models that cannot be
/// downloaded (a 1B-class Llama on a GPU host): each tensor the builder asks for is made on
/// demand with the shape it expects, uniform in ±1/√fan_in (PyTorch's Linear init range),
/// norms 1 (Gemma's stored w: 0), from a seed and the tensor's name, so a rerun is identical.
final class RandomDecoderWeights: DecoderWeightSource, @unchecked Sendable {
    let path: String
    let seed: UInt64
    private let shapes = Mutex<[String: [Int]]>([:])
    private let family: DecoderFamily

    init(config: DecoderConfig, seed: UInt64, label: String) {
        self.seed = seed; family = config.family; path = label
    }

    /// The builder states the shape it expects before asking (DecoderModel.build).
    func declare(_ name: String, _ shape: [Int]) { shapes.withLock { $0[name] = shape } }
    var names: [String] { shapes.withLock { Array($0.keys) } }
    func contains(_ name: String) -> Bool {
        // The untied head of a tied model is never asked for.
        shapes.withLock { $0[name] != nil }
    }
    func shape(_ name: String) throws -> [Int] {
        guard let s = shapes.withLock({ $0[name] }) else { throw AttribError.io(path: path, detail: "tensor '\(name)' was not declared") }
        return s
    }
    func values(_ name: String) throws -> [Double] {
        let s = try shape(name), n = s.reduce(1, *)
        if name.hasSuffix("norm.weight") || name.hasSuffix("layernorm.weight") {
            return [Double](repeating: family == .gemma ? 0 : 1, count: n)
        }
        var h: UInt64 = 0xcbf29ce484222325                                  // FNV-1a of the name
        for b in name.utf8 { h = (h ^ UInt64(b)) &* 0x100000001b3 }
        var rng = SplitMix64(seed: seed ^ h)
        let r = 1 / Double(s.count == 2 ? s[1] : max(1, s[0])).squareRoot()
        return rng.uniform(n, -r, r)
    }
    func tensor(_ name: String, dtype: DType, on device: any Device) throws -> Tensor {
        try Tensor(values(name), shape: shape(name), dtype: dtype, on: device)
    }
}

extension DecoderModel {
    /// A model of `config` with random weights (RandomDecoderWeights): for throughput and memory
    /// measurements only.
    public static func random(_ config: DecoderConfig, seed: UInt64 = 0, on device: any Device, dtype: DType = .float32,
                              weights: DType? = nil) throws -> DecoderModel {
        let w = try weightStorage(weights, dtype: dtype, device: device, op: "DecoderModel.random")
        guard config.family != .gpt2 else {
            throw AttribError.invalidArgument(op: "DecoderModel.random", detail: "GPT-2 configs are not supported here; use a llama, qwen2, mistral, gemma or gpt_neox config")
        }
        return try build(config, from: RandomDecoderWeights(config: config, seed: seed, label: "random weights (seed \(seed))"),
                         configPath: "the config", on: device, dtype: dtype, weights: w)
    }
}
