import AttribCore
import FoundationEssentials

extension DecoderModel {
    /// Loads a llama.cpp GGUF file: the config from its metadata, the weights dequantised at
    /// load (GGUFFile), read under their Hugging Face names (GGUFDecoderWeights), so the same
    /// builder and checks as a Hugging Face directory apply. Architectures: llama (Llama,
    /// SmolLM, TinyLlama, Mistral as llama.cpp converts it), qwen2, gemma (Gemma 1) and gptneox
    /// (Pythia).
    /// `weights` as in `load(_:on:dtype:weights:)`: quantised values are dequantised to Float32
    /// and rounded once to BFloat16 or Float16.
    public static func loadGGUF(_ path: String, on device: any Device, dtype: DType = .float32, weights: DType? = nil) throws -> DecoderModel {
        let w = try weightStorage(weights, dtype: dtype, device: device, op: "DecoderModel.loadGGUF")
        let file = try GGUFFile(path: path)
        let c = try DecoderConfig.read(gguf: file)
        return try build(c, from: GGUFDecoderWeights(file, config: c), configPath: path + " (metadata)", on: device, dtype: dtype, weights: w)
    }

    /// Loads a model directory (config.json + safetensors) or a .gguf file.
    public static func load(model path: String, on device: any Device, dtype: DType = .float32, weights: DType? = nil) throws -> DecoderModel {
        path.hasSuffix(".gguf") ? try loadGGUF(path, on: device, dtype: dtype, weights: weights)
            : try load(path, on: device, dtype: dtype, weights: weights)
    }
}

extension DecoderConfig {
    /// The config of a GGUF model from its metadata ("<arch>.block_count", ...). Keys that would
    /// change the maths and that the engine does not apply (RoPE scaling types other than none
    /// and linear, ALiBi, logit soft-capping) are errors naming the key.
    public static func read(gguf f: GGUFFile) throws -> DecoderConfig {
        func bad(_ detail: String) -> AttribError { .io(path: f.path, detail: detail) }
        guard let arch = f.metadata["general.architecture"]?.string else { throw bad("no general.architecture in the metadata") }
        let family: DecoderFamily
        switch arch {
        case "llama": family = .llama
        case "qwen2": family = .qwen2
        case "gemma": family = .gemma
        case "gptneox": family = .gptNeoX
        default: throw bad("general.architecture \"\(arch)\" is not one Attrib loads from GGUF (llama, qwen2, gemma, gptneox); load the Hugging Face directory instead")
        }
        func int(_ key: String) throws -> Int? {
            guard let v = f.metadata[arch + "." + key] else { return nil }
            guard let i = v.int else { throw bad("\(arch).\(key) = \(v) is not an integer") }
            return i
        }
        func need(_ key: String) throws -> Int {
            guard let v = try int(key) else { throw bad("missing \(arch).\(key)") }
            return v
        }
        func number(_ key: String) -> Double? { f.metadata[arch + "." + key]?.double }
        for key in ["attention.max_alibi_bias", "attn_logit_softcapping", "final_logit_softcapping", "attention.sliding_window"]
            where f.metadata[arch + "." + key] != nil {
            throw bad("\(arch).\(key) is set: the engine does not compute it, and ignoring it would give other numbers")
        }
        let d = try need("embedding_length"), h = try need("attention.head_count")
        let hkv = try int("attention.head_count_kv") ?? h
        let dh = try int("attention.key_length") ?? (h > 0 ? d / h : 0)
        guard dh >= 1 else { throw bad("\(arch).embedding_length = \(d) and attention.head_count = \(h) give no head size") }
        let vocab: Int
        if let v = try int("vocab_size") { vocab = v } else if let e = try? f.tensorInfo("token_embd.weight") { vocab = e.shape[0] } else {
            throw bad("no \(arch).vocab_size and no token_embd.weight")
        }
        guard dh <= DecoderConfig.maxHeadDim, try need("block_count") <= DecoderConfig.maxLayers else {
            throw bad("heads of \(dh) dimensions and \(try need("block_count")) blocks; at most \(DecoderConfig.maxHeadDim) and \(DecoderConfig.maxLayers)")
        }
        let rotaryDims = try int("rope.dimension_count") ?? dh
        guard rotaryDims >= 2, rotaryDims <= dh else { throw bad("\(arch).rope.dimension_count = \(rotaryDims); must be 2 to the head size \(dh)") }
        let theta = number("rope.freq_base") ?? 10000
        var inv = RotaryEmbedding.inverseFrequencies(base: theta, rotated: rotaryDims)
        switch f.metadata[arch + ".rope.scaling.type"]?.string ?? "none" {
        case "none": break
        case "linear":
            guard let factor = number("rope.scaling.factor"), factor > 0 else { throw bad("linear RoPE scaling without a positive \(arch).rope.scaling.factor") }
            inv = inv.map { $0 / factor }
        case let other: throw bad("\(arch).rope.scaling.type \"\(other)\" is not supported (none, linear)")
        }
        // Llama 3's scaling is stored as per-frequency divisors (rope_freqs.weight).
        if f.contains("rope_freqs.weight") {
            let factors = try f.floats("rope_freqs.weight")
            guard factors.count == inv.count else { throw bad("rope_freqs.weight has \(factors.count) factors for \(inv.count) frequencies") }
            inv = zip(inv, factors).map { $0 / Double($1) }
        }
        // Per architecture, what llama.cpp's graph for it computes and the metadata does not say:
        // Gemma's tanh-GELU gate and √D embedding scale; GPT-NeoX's LayerNorm, plain MLP with
        // Pythia's exact GELU (hidden_act "gelu"; llama.cpp approximates it by the tanh form,
        // transformers does not), fused qkv and parallel residual.
        let neox = family == .gptNeoX
        let eps = neox ? number("attention.layer_norm_epsilon") ?? 1e-5 : number("attention.layer_norm_rms_epsilon") ?? (family == .gemma ? 1e-6 : 1e-5)
        let parallel = neox ? f.metadata[arch + ".use_parallel_residual"]?.bool ?? true : false
        let activation: Activation = neox ? .geluErf : family == .gemma ? .geluTanh : .silu
        do {
            return try DecoderConfig(
                family: family, nLayer: need("block_count"), nHead: h, nKVHead: hkv, headDim: dh, nEmbd: d,
                nPositions: need("context_length"), vocabSize: vocab, nInner: need("feed_forward_length"),
                layerNormEpsilon: eps, norm: neox ? .layerNorm : .rmsNorm,
                positions: .rotary(RotaryEmbedding(dimensions: rotaryDims, inverseFrequencies: inv)),
                gatedMLP: !neox, activation: activation, parallelResidual: parallel,
                tiedEmbeddings: !f.contains("output.weight"),
                qkvBias: f.contains("blk.0.attn_q.bias") || f.contains("blk.0.attn_qkv.bias"),
                outputBias: f.contains("blk.0.attn_output.bias"), mlpBias: f.contains("blk.0.ffn_up.bias"),
                slidingWindows: [], embeddingScale: family == .gemma ? Double(d).squareRoot() : nil)
        } catch let e as AttribError {
            if case .invalidArgument(_, let detail) = e { throw bad(detail) }
            throw e
        }
    }
}

/// A GGUF file's tensors under Hugging Face names (Llama's, or GPT-NeoX's), dequantised to
/// Float32 on read, with what llama.cpp's converter changed undone:
/// - llama: the rows of each head of q and k reordered from the rotate-half layout to
///   interleaved pairs (row (h, j, i) of [H, 2, d_h/2] → (h, i, j)), so RoPE runs in
///   transformers' layout;
/// - gemma: the norm weights stored as 1 + w (transformers' GemmaRMSNorm scales by 1 + w);
/// - gptneox: the fused qkv rows regrouped from [H, 3, d_h] to [3, H, d_h] (q, then k, then v).
final class GGUFDecoderWeights: DecoderWeightSource {
    let file: GGUFFile
    let config: DecoderConfig
    var path: String { file.path }
    /// HF name → GGUF name.
    private let ggufName: [String: String]
    let names: [String]

    init(_ file: GGUFFile, config c: DecoderConfig) throws {
        self.file = file; self.config = c
        var map: [String: String]
        let per: [(String, String)], layer: String
        if c.family == .gptNeoX {
            map = ["gpt_neox.embed_in.weight": "token_embd.weight", "gpt_neox.final_layer_norm.weight": "output_norm.weight",
                   "gpt_neox.final_layer_norm.bias": "output_norm.bias", "embed_out.weight": "output.weight"]
            layer = "gpt_neox.layers"
            let parts: [(String, String)] = [("input_layernorm", "attn_norm"), ("post_attention_layernorm", "ffn_norm"),
                                             ("attention.query_key_value", "attn_qkv"), ("attention.dense", "attn_output"),
                                             ("mlp.dense_h_to_4h", "ffn_up"), ("mlp.dense_4h_to_h", "ffn_down")]
            var both: [(String, String)] = []
            for (hf, g) in parts { both += [(hf + ".weight", g + ".weight"), (hf + ".bias", g + ".bias")] }
            per = both
        } else {
            map = ["model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"]
            layer = "model.layers"
            per = [("input_layernorm.weight", "attn_norm.weight"), ("post_attention_layernorm.weight", "ffn_norm.weight"),
                   ("self_attn.o_proj.weight", "attn_output.weight"), ("mlp.gate_proj.weight", "ffn_gate.weight"),
                   ("mlp.up_proj.weight", "ffn_up.weight"), ("mlp.down_proj.weight", "ffn_down.weight")]
                + ["q", "k", "v"].flatMap { p in [("self_attn.\(p)_proj.weight", "attn_\(p).weight"), ("self_attn.\(p)_proj.bias", "attn_\(p).bias")] }
                + [("self_attn.o_proj.bias", "attn_output.bias")]
        }
        for l in 0..<c.nLayer {
            for (hf, g) in per { map["\(layer).\(l).\(hf)"] = "blk.\(l).\(g)" }
        }
        let present = map.filter { file.contains($0.value) }
        ggufName = present
        let known = Set(present.values).union(["rope_freqs.weight"])
        if let stray = file.tensors.first(where: { !known.contains($0.name) }) {
            throw AttribError.io(path: file.path, detail: "tensor '\(stray.name)' is not part of a \(c.family.rawValue) model with \(c.nLayer) layers (block_count): the metadata does not match the tensors")
        }
        names = Array(present.keys)
    }

    func contains(_ name: String) -> Bool { ggufName[name] != nil }
    private func source(_ name: String) throws -> String {
        guard let g = ggufName[name] else { throw AttribError.io(path: path, detail: "tensor '\(name)' (llama.cpp's name for it) is missing") }
        return g
    }
    func shape(_ name: String) throws -> [Int] { try file.tensorInfo(source(name)).shape }

    /// Dequantised values in HF layout, checked finite.
    private func floats(_ name: String) throws -> [Float] {
        let g = try source(name)
        var v = try file.floats(g)
        if let i = v.firstIndex(where: { !$0.isFinite }) {
            throw AttribError.io(path: path, detail: "tensor '\(g)': element \(i) is \(v[i]): weights must be finite")
        }
        // Undo the converter's q/k row permutation (llama architecture only; qwen2 is stored as is).
        let isQ = name.hasSuffix("q_proj.weight") || name.hasSuffix("q_proj.bias")
        let isK = name.hasSuffix("k_proj.weight") || name.hasSuffix("k_proj.bias")
        if config.family == .gptNeoX, name.hasSuffix("query_key_value.weight") || name.hasSuffix("query_key_value.bias") {
            // [3, H, d_h] rows (q, k, v) back to transformers' [H, 3, d_h].
            let (h, dh) = (config.nHead, config.headDim), cols = v.count / (3 * h * dh)
            let src = v
            for hd in 0..<h {
                for j in 0..<3 {
                    for i in 0..<dh {
                        let to = ((hd * 3 + j) * dh + i) * cols, from = ((j * h + hd) * dh + i) * cols
                        for k in 0..<cols { v[to + k] = src[from + k] }
                    }
                }
            }
            return v
        }
        if config.family == .llama, isQ || isK {
            let heads = isQ ? config.nHead : config.nKVHead, dh = config.headDim, half = dh / 2
            let cols = v.count / (heads * dh)
            let src = v
            for h in 0..<heads {
                for j in 0..<2 {
                    for i in 0..<half {
                        let to = (h * dh + j * half + i) * cols, from = (h * dh + i * 2 + j) * cols
                        for k in 0..<cols { v[to + k] = src[from + k] }
                    }
                }
            }
        }
        return v
    }
    func tensor(_ name: String, dtype: DType, on device: any Device) throws -> Tensor {
        let s = try shape(name)
        let v = try floats(name)
        switch dtype {
        case .float32, .bfloat16, .float16: return try Tensor(v, shape: s, storedAs: dtype, on: device)
        default: return try Tensor(v.map(Double.init), shape: s, dtype: dtype, on: device)
        }
    }
    func values(_ name: String) throws -> [Double] {
        let v = try floats(name).map(Double.init)
        // Gemma's norm weights are stored as 1 + w; the builder adds the 1 back. In Double both
        // steps are exact, so the Float32 stored value comes back unchanged.
        return config.family == .gemma && name.hasSuffix("norm.weight") ? v.map { $0 - 1 } : v
    }
}
