import AttribCore
import FoundationEssentials

/// Hugging Face config.json readers for the Llama-style families (llama, qwen2, mistral, gemma)
/// and gpt_neox. Every field is read, ignored on purpose (with why), or accepted only at the
/// value the engine computes; anything else is an error naming the file, the field and its
/// value, because an ignored field that changes the maths gives wrong numbers silently.
/// Both spellings of RoPE settings are read: transformers ≥ 5's "rope_parameters" and the
/// older "rope_theta" + "rope_scaling" (+ GPT-NeoX's "rotary_pct", "rotary_emb_base").
extension DecoderConfig {
    /// Reads any supported config.json, by its model_type.
    public static func read(_ path: String) throws -> DecoderConfig {
        let top = try jsonObject(path)
        guard case let .string(type)? = top["model_type"] else {
            throw AttribError.io(path: path, detail: "no \"model_type\"; expected one of \(DecoderFamily.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let family = DecoderFamily(rawValue: type) else {
            throw AttribError.io(path: path, detail: "model_type \"\(type)\" is not an architecture Attrib runs; supported: \(DecoderFamily.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if family == .gpt2 { return try readGPT2(path) }
        return try readHF(top, family: family, path: path)
    }

    static func jsonObject(_ path: String) throws -> [String: JSONValue] {
        guard let data = readFileData(path) else {
            throw AttribError.io(path: path, detail: "cannot read the model config (missing or unreadable)")
        }
        let json: JSONValue
        do { json = try data.withUnsafeBytes { try JSONParser.parse($0) } } catch {
            throw AttribError.io(path: path, detail: "not valid JSON: \((error as? JSONParser.Failure)?.message ?? "\(error)")")
        }
        guard case let .object(members) = json else { throw AttribError.io(path: path, detail: "the config is not a JSON object") }
        return Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    }

    /// Fields of no effect on the numbers, in every family.
    static let bookkeeping = ["architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path", "bos_token_id",
                              "eos_token_id", "pad_token_id", "initializer_range", "use_cache", "id2label", "label2id",
                              "problem_type", "output_attentions", "output_hidden_states", "return_dict", "chunk_size_feed_forward",
                              "is_encoder_decoder", "is_decoder", "tokenizer_class", "task_specific_params", "prefix",
                              "gradient_checkpointing", "quantization_config", "model_name", "pretraining_tp_notes"]

    static func rules(_ family: DecoderFamily) -> [String: SequentialFields.Rule] {
        var f: [String: SequentialFields.Rule] = [:]
        for k in bookkeeping { f[k] = .ignored(why: "bookkeeping, generation or training settings") }
        for k in ["attention_dropout", "hidden_dropout", "classifier_dropout", "resid_pdrop", "embd_pdrop"] {
            f[k] = .ignored(why: "dropout is the identity at inference")
        }
        for k in ["model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                  "max_position_embeddings", "hidden_act", "tie_word_embeddings", "rope_theta", "rope_scaling", "rope_parameters",
                  "partial_rotary_factor", "attention_bias", "head_dim", "num_key_value_heads"] { f[k] = .read }
        switch family {
        case .gptNeoX:
            for k in ["rotary_pct", "rotary_emb_base", "layer_norm_eps", "use_parallel_residual"] { f[k] = .read }
            f["rope_scaling"] = .only([.null], because: "scaled RoPE is not implemented for gpt_neox")
        default:
            f["rms_norm_eps"] = .read
            f["mlp_bias"] = .read
            f["hidden_activation"] = .read
            f["pretraining_tp"] = .ignored(why: "a tensor-parallel training setting; at inference the product is the same")
            for k in ["sliding_window", "use_sliding_window", "max_window_layers", "layer_types"] { f[k] = .read }
            f["use_bidirectional_attention"] = .only([.null, .bool(false)], because: "the engine's decoders are causal")
        }
        return f
    }

    /// A number field (null or absent: nil), or an error naming the file and the key.
    static func jsonNumber(_ v: JSONValue?, _ key: String, path: String) throws -> Double? {
        switch v {
        case nil, .null?: return nil
        case let .int(i)?: return Double(i)
        case let .double(d)?: return d
        case let v?: throw AttribError.io(path: path, detail: "\"\(key)\" = \(v.summary); expected a number")
        }
    }

    static func readHF(_ top: [String: JSONValue], family: DecoderFamily, path: String) throws -> DecoderConfig {
        let rules = rules(family)
        for key in top.keys.sorted() { try SequentialFields.apply(rules[key], key, top[key]!, path: path, place: "field") }
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }
        func int(_ key: String) throws -> Int? {
            switch top[key] {
            case nil, .null?: return nil
            case let .int(v)?: return v
            case let v?: throw bad("\"\(key)\" = \(v.summary); expected an integer")
            }
        }
        func need(_ key: String) throws -> Int {
            guard let v = try int(key) else { throw bad("missing \"\(key)\"") }
            return v
        }
        func number(_ v: JSONValue?, _ key: String) throws -> Double? { try jsonNumber(v, key, path: path) }
        func bool(_ key: String, _ fallback: Bool) throws -> Bool {
            switch top[key] {
            case nil, .null?: return fallback
            case let .bool(b)?: return b
            case let v?: throw bad("\"\(key)\" = \(v.summary); expected true or false")
            }
        }
        // Every size is checked before anything is made from it: a hidden_size of 10^10 made the
        // RoPE table (head_dim/2 frequencies) allocate until the process died (FuzzGPT2Model).
        for key in ["hidden_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads", "head_dim",
                    "intermediate_size", "vocab_size", "max_position_embeddings"] {
            if let v = try int(key), v < 1 || v > SizeLimits.maxSampleElements {
                throw bad("\"\(key)\" = \(v); must be 1 to \(SizeLimits.maxSampleElements)")
            }
        }
        let d = try need("hidden_size"), h = try need("num_attention_heads"), layers = try need("num_hidden_layers")
        let hkv = try int("num_key_value_heads") ?? h
        let headDim = try int("head_dim")
        // Per-layer and per-head tables are made from these two: a real model has at most a few
        // hundred layers and heads of at most a few thousand.
        guard layers <= DecoderConfig.maxLayers else { throw bad("\"num_hidden_layers\" = \(layers); at most \(DecoderConfig.maxLayers)") }
        if let headDim, headDim > DecoderConfig.maxHeadDim { throw bad("\"head_dim\" = \(headDim); at most \(DecoderConfig.maxHeadDim)") }
        let dh = headDim ?? (h > 0 && d % h == 0 ? d / h : 0)
        guard dh >= 1 else { throw bad("hidden_size = \(d) is not divisible by num_attention_heads = \(h) and there is no head_dim") }
        guard dh <= DecoderConfig.maxHeadDim else {
            throw bad("a head of \(dh) dimensions (hidden_size \(d) / num_attention_heads \(h)); at most \(DecoderConfig.maxHeadDim)")
        }

        // The activation: gemma's hidden_activation wins over hidden_act, as in transformers.
        let actKey = top["hidden_activation"].map { $0 == .null ? "hidden_act" : "hidden_activation" } ?? "hidden_act"
        let actName: String
        switch top[actKey] {
        case let .string(s)?: actName = s
        case nil, .null?: actName = family == .gptNeoX ? "gelu" : family == .gemma ? "gelu_pytorch_tanh" : "silu"
        case let v?: throw bad("\"\(actKey)\" = \(v.summary); expected a string")
        }
        let activation: Activation
        switch actName {
        case "silu", "swish": activation = .silu
        case "gelu": activation = .geluErf
        case "gelu_pytorch_tanh", "gelu_new", "gelu_fast": activation = .geluTanh
        case "relu": activation = .relu
        default: throw bad("\"\(actKey)\" = \"\(actName)\" is not supported (silu, gelu, gelu_pytorch_tanh, gelu_new, relu)")
        }

        let rotary = try rotaryEmbedding(top, family: family, headDim: dh, path: path)

        // Sliding windows, per layer.
        var windows: [Int?] = []
        if family != .gptNeoX {
            let window = try int("sliding_window")
            if case let .array(types)? = top["layer_types"] {
                guard types.count == layers else { throw bad("\"layer_types\" has \(types.count) entries for \(layers) layers") }
                windows = try types.enumerated().map { i, t in
                    switch t {
                    case .string("full_attention"): return nil
                    case .string("sliding_attention"):
                        guard let window else { throw bad("layer \(i) is \"sliding_attention\" but \"sliding_window\" is null") }
                        return window
                    default: throw bad("\"layer_types\"[\(i)] = \(t.summary) is not supported (full_attention, sliding_attention)")
                    }
                }
            } else if family == .qwen2 {
                // Qwen2 before layer_types: layers from max_window_layers on slide when use_sliding_window.
                if try bool("use_sliding_window", false), let window {
                    let from = try int("max_window_layers") ?? layers
                    windows = (0..<layers).map { $0 >= from ? window : nil }
                }
            } else if family == .mistral, let window {
                windows = Array(repeating: window, count: layers)
            } else if window != nil, family != .mistral {
                throw bad("\"sliding_window\" = \(window!) without \"layer_types\": which layers slide is not defined for \(family.rawValue)")
            }
        }

        let defaultBias: Bool
        switch family { case .gptNeoX: defaultBias = true; default: defaultBias = false }
        let attentionBias = try bool("attention_bias", defaultBias)
        let eps = try number(top[family == .gptNeoX ? "layer_norm_eps" : "rms_norm_eps"], "eps") ?? (family == .gptNeoX ? 1e-5 : 1e-6)
        do {
            return try DecoderConfig(
                family: family, nLayer: layers, nHead: h, nKVHead: family == .gptNeoX ? h : hkv, headDim: headDim, nEmbd: d,
                nPositions: need("max_position_embeddings"), vocabSize: need("vocab_size"), nInner: need("intermediate_size"),
                layerNormEpsilon: eps, norm: family == .gptNeoX ? .layerNorm : .rmsNorm, positions: .rotary(rotary),
                gatedMLP: family != .gptNeoX, activation: activation,
                parallelResidual: family == .gptNeoX ? try bool("use_parallel_residual", true) : false,
                tiedEmbeddings: try bool("tie_word_embeddings", family == .gemma),
                qkvBias: family == .qwen2 ? true : attentionBias,
                outputBias: family == .qwen2 ? false : attentionBias,
                mlpBias: family == .gptNeoX ? true : try bool("mlp_bias", false),
                slidingWindows: windows,
                embeddingScale: family == .gemma ? Double(d).squareRoot() : nil)
        } catch let e as AttribError {
            if case .invalidArgument(_, let detail) = e { throw bad(detail) }
            throw e
        }
    }

    /// RoPE from rope_parameters, or rope_theta + rope_scaling, or GPT-NeoX's rotary_* fields:
    /// transformers' inverse frequencies 1/θ^(2i/r), in Float32 as it computes them, then
    /// rope_type "linear" (÷ factor) or "llama3" (Llama 3.1's per-wavelength scaling).
    static func rotaryEmbedding(_ top: [String: JSONValue], family: DecoderFamily, headDim: Int, path: String) throws -> RotaryEmbedding {
        func bad(_ detail: String) -> AttribError { .io(path: path, detail: detail) }
        var params: [String: JSONValue] = [:]
        for key in ["rope_scaling", "rope_parameters"] {
            switch top[key] {
            case nil, .null?: continue
            case let .object(m)?: for (k, v) in m { params[k] = v }
            case let v?: throw bad("\"\(key)\" = \(v.summary); expected an object")
            }
        }
        func number(_ v: JSONValue?, _ key: String) throws -> Double? { try jsonNumber(v, key, path: path) }
        let known: Set = ["rope_type", "type", "rope_theta", "factor", "low_freq_factor", "high_freq_factor",
                          "original_max_position_embeddings", "partial_rotary_factor"]
        if let unknown = params.keys.sorted().first(where: { !known.contains($0) }) {
            throw bad("RoPE setting \"\(unknown)\" (= \(params[unknown]!.summary)) is not one the engine knows; it would be ignored and the model would compute something else")
        }
        let type: String
        switch params["rope_type"] ?? params["type"] {
        case nil, .null?: type = "default"
        case let .string(s)?: type = s
        case let v?: throw bad("rope_type = \(v.summary); expected a string")
        }
        let theta = try number(params["rope_theta"], "rope_theta") ?? number(top["rope_theta"], "rope_theta")
            ?? number(top["rotary_emb_base"], "rotary_emb_base") ?? 10000
        let fraction = try number(params["partial_rotary_factor"], "partial_rotary_factor")
            ?? number(top["partial_rotary_factor"], "partial_rotary_factor") ?? number(top["rotary_pct"], "rotary_pct") ?? 1
        guard theta > 0, theta.isFinite, fraction > 0, fraction <= 1 else {
            throw bad("RoPE base \(theta) and rotary fraction \(fraction): the base must be positive, the fraction in (0, 1]")
        }
        let r = Int(Double(headDim) * fraction)
        guard r >= 2 else { throw bad("RoPE over \(r) of \(headDim) head dimensions; needs at least 2") }
        let dims = r - r % 2
        var inv = RotaryEmbedding.inverseFrequencies(base: theta, rotated: r)
        switch type {
        case "default": break
        case "linear":
            guard let factor = try number(params["factor"], "factor"), factor > 0 else { throw bad("linear RoPE scaling needs a positive \"factor\"") }
            inv = inv.map { $0 / factor }
        case "llama3":
            guard let factor = try number(params["factor"], "factor"), let low = try number(params["low_freq_factor"], "low_freq_factor"),
                  let high = try number(params["high_freq_factor"], "high_freq_factor"),
                  let old = try number(params["original_max_position_embeddings"], "original_max_position_embeddings"),
                  factor > 0, low > 0, high > low, old > 0 else {
                throw bad("llama3 RoPE scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor and original_max_position_embeddings")
            }
            let lowWavelength = old / low, highWavelength = old / high
            inv = inv.map { f in
                let wavelength = 2 * Double.pi / f
                if wavelength < highWavelength { return f }                       // high frequencies: kept
                if wavelength > lowWavelength { return f / factor }               // low frequencies: ÷ factor
                let smooth = (old / wavelength - low) / (high - low)               // in between: blended
                return (1 - smooth) * f / factor + smooth * f
            }
        default:
            throw bad("rope_type \"\(type)\" is not supported (default, linear, llama3)")
        }
        return RotaryEmbedding(dimensions: dims, inverseFrequencies: inv)
    }
}
