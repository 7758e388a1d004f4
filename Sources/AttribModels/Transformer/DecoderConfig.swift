import AttribCore
import Glibc
import FoundationEssentials

/// The decoder families the engine runs, by Hugging Face `model_type`.
public enum DecoderFamily: String, Sendable, CaseIterable {
    case gpt2, llama, qwen2, mistral, gemma
    case gptNeoX = "gpt_neox"
}

/// Rotary position embedding (RoPE) of the first `dimensions` entries of each q and k head,
/// in the rotate-half layout transformers uses: entry i pairs with i + dimensions/2, both
/// rotated by θ_i·t. `inverseFrequencies` [dimensions/2] are exact (Double, after any
/// rope_scaling); `tables` rounds them as transformers does in a Float32 model.
public struct RotaryEmbedding: Sendable, Equatable {
    public var dimensions: Int
    public var inverseFrequencies: [Double]
    public init(dimensions: Int, inverseFrequencies: [Double]) {
        self.dimensions = dimensions; self.inverseFrequencies = inverseFrequencies
    }

    /// RoPE's unscaled inverse frequencies 1/base^(2i/r), i < r/2, exact (`tables` rounds them
    /// for a Float32 model): what transformers and llama.cpp compute for r rotated dimensions.
    public static func inverseFrequencies(base: Double, rotated r: Int) -> [Double] {
        (0..<(r / 2)).map { i in 1 / Glibc.pow(base, Double(2 * i) / Double(r)) }
    }

    /// cos and sin of the angles for positions 0..<t: [T, dimensions/2] each.
    /// - float32: transformers' arithmetic, which builds RoPE in float32 whatever the model's
    ///   dtype: θ_i rounded to Float32, the angle Float32(t)·θ_i rounded to Float32, cos and sin
    ///   rounded to Float32. Its angle error grows with t (≈ t·2⁻²⁴ rad), and matching it is
    ///   what makes a Float32 run agree with transformers at long prompts.
    /// - otherwise exact: angle t·θ_i in Double (a Float64 run is the mathematics, not a copy
    ///   of float32 rounding).
    public func tables(tokens t: Int, float32: Bool) -> (cos: [Double], sin: [Double]) {
        let half = dimensions / 2
        var c = [Double](repeating: 0, count: t * half), s = c
        for pos in 0..<t {
            for i in 0..<half {
                if float32 {
                    let angle = Double(Float(pos) * Float(inverseFrequencies[i]))
                    c[pos * half + i] = Double(Float(Glibc.cos(angle))); s[pos * half + i] = Double(Float(Glibc.sin(angle)))
                } else {
                    let angle = Double(pos) * inverseFrequencies[i]
                    c[pos * half + i] = Glibc.cos(angle); s[pos * half + i] = Glibc.sin(angle)
                }
            }
        }
        return (c, s)
    }
}

/// The hyper-parameters of a decoder-only language model: GPT-2, Llama (SmolLM, TinyLlama,
/// Llama 3), Qwen2, Mistral, Gemma, GPT-NeoX (Pythia). One description for all of them, so
/// one graph builder (DecoderModel+Graph.swift) runs every family; the differences are the
/// fields below. Read from a Hugging Face config.json (DecoderConfig+HF.swift, GPT-2 here) or
/// from GGUF metadata.
public struct DecoderConfig: Sendable, Equatable {
    public enum Norm: Sendable, Equatable {
        /// LayerNorm with weight and bias (GPT-2, GPT-NeoX).
        case layerNorm
        /// RMSNorm: x/√(mean(x²) + eps)·w (Llama, Qwen2, Mistral; Gemma's (1 + w) is folded into w at load).
        case rmsNorm
    }
    public enum Positions: Sendable, Equatable {
        /// Learned position embeddings added to the token embeddings (GPT-2's wpe).
        case learned
        /// RoPE applied to q and k in every layer.
        case rotary(RotaryEmbedding)
    }

    public var family: DecoderFamily
    public var nLayer: Int
    /// Query heads H.
    public var nHead: Int
    /// Key/value heads (H for multi-head attention, fewer for grouped-query, 1 for multi-query).
    public var nKVHead: Int
    /// d_h per head (D/H unless the config says otherwise, as Gemma's does).
    public var headDim: Int
    /// The residual width D.
    public var nEmbd: Int
    /// The longest sequence the model takes (GPT-2: rows of wpe; RoPE models: max_position_embeddings).
    public var nPositions: Int
    public var vocabSize: Int
    /// The MLP width F.
    public var nInner: Int
    /// The norm's epsilon (layer_norm_epsilon, rms_norm_eps, layer_norm_eps).
    public var layerNormEpsilon: Double
    public var norm: Norm
    public var positions: Positions
    /// The MLP: act(x·W_fc)·W_proj, or gated act(x·W_gate) ⊙ (x·W_up)·W_down.
    public var gatedMLP: Bool
    public var activation: Activation
    /// GPT-NeoX's parallel residual: x + attn(ln1(x)) + mlp(ln2(x)) (no resid_mid).
    public var parallelResidual: Bool
    /// Unembedding = token embedding matrix.
    public var tiedEmbeddings: Bool
    /// Biases on q, k, v; on the attention output; on the MLP projections.
    public var qkvBias: Bool, outputBias: Bool, mlpBias: Bool
    /// Per layer, the sliding attention window w (a query at t sees keys s with t − w < s ≤ t),
    /// or nil for full causal attention. Empty = no layer has one.
    public var slidingWindows: [Int?]
    /// Gemma multiplies the token embeddings by √D (rounded to the weights' dtype when the graph is made).
    public var embeddingScale: Double?

    /// Bounds on what per-layer and per-head tables are made from, checked by the readers before
    /// anything is allocated (real models: a few hundred layers, heads of 64 to 256).
    public static let maxLayers = 4096, maxHeadDim = 16384

    /// The attention scale 1/√d_h.
    public var attentionScale: Double { 1 / Double(headDim).squareRoot() }
    /// The sliding window of layer l, if it has one.
    public func slidingWindow(layer l: Int) -> Int? { l < slidingWindows.count ? slidingWindows[l] : nil }
    /// H/H_kv query heads share one key/value head.
    public var queriesPerKVHead: Int { nHead / nKVHead }
    /// The hook kinds this architecture has (no resid_mid with a parallel residual, no
    /// pre_linear without a gated MLP, no rot_q/rot_k without RoPE).
    public var hookKinds: [HookKind] {
        HookKind.allCases.filter { k in
            !(k == .residMid && parallelResidual) && !(k == .mlpPreLinear && !gatedMLP)
                && !((k == .attnRotQ || k == .attnRotK) && !isRotary)
        }
    }
    public var isRotary: Bool { if case .rotary = positions { return true } else { return false } }
    /// The hook kinds of the queries and keys the attention scores are made of: after RoPE
    /// where the model has it.
    public var scoreQueryKind: HookKind { isRotary ? .attnRotQ : .attnQ }
    public var scoreKeyKind: HookKind { isRotary ? .attnRotK : .attnK }

    /// A GPT-2 configuration (the original initialiser; every other family comes from its reader).
    public init(nLayer: Int, nHead: Int, nEmbd: Int, nPositions: Int, vocabSize: Int,
                nInner: Int? = nil, layerNormEpsilon: Double = 1e-5) throws {
        try self.init(family: .gpt2, nLayer: nLayer, nHead: nHead, nKVHead: nHead, headDim: nil, nEmbd: nEmbd,
                      nPositions: nPositions, vocabSize: vocabSize, nInner: nInner ?? 4 * max(0, min(nEmbd, SizeLimits.maxSampleElements)),
                      layerNormEpsilon: layerNormEpsilon, norm: .layerNorm, positions: .learned, gatedMLP: false,
                      activation: .geluTanh, parallelResidual: false, tiedEmbeddings: true, qkvBias: true, outputBias: true,
                      mlpBias: true, slidingWindows: [], embeddingScale: nil)
    }

    /// Every field; checks sizes before any arithmetic on them (4·n_embd of 2^62 overflowed).
    public init(family: DecoderFamily, nLayer: Int, nHead: Int, nKVHead: Int, headDim: Int?, nEmbd: Int,
                nPositions: Int, vocabSize: Int, nInner: Int, layerNormEpsilon: Double, norm: Norm, positions: Positions,
                gatedMLP: Bool, activation: Activation, parallelResidual: Bool, tiedEmbeddings: Bool,
                qkvBias: Bool, outputBias: Bool, mlpBias: Bool, slidingWindows: [Int?], embeddingScale: Double?) throws {
        let op = "DecoderConfig"
        let limit = SizeLimits.maxSampleElements
        for (name, v) in [("n_layer", nLayer), ("n_head", nHead), ("n_kv_head", nKVHead), ("n_embd", nEmbd), ("n_positions", nPositions),
                          ("vocab_size", vocabSize), ("n_inner", nInner), ("head_dim", headDim ?? 1)] where v < 1 || v > limit {
            throw AttribError.invalidArgument(op: op, detail: "\(name) = \(v); must be 1 to \(limit)")
        }
        if headDim == nil, nEmbd % nHead != 0 {
            throw AttribError.invalidArgument(op: op, detail: "n_embd = \(nEmbd) is not divisible by n_head = \(nHead)")
        }
        let dh = headDim ?? nEmbd / nHead
        guard nLayer <= Self.maxLayers, dh <= Self.maxHeadDim else {
            throw AttribError.invalidArgument(op: op, detail: "\(nLayer) layers of heads of \(dh); at most \(Self.maxLayers) layers and heads of \(Self.maxHeadDim)")
        }
        guard nHead % nKVHead == 0 else {
            throw AttribError.invalidArgument(op: op, detail: "n_head = \(nHead) is not a multiple of the key/value heads \(nKVHead)")
        }
        // Each weight matrix must fit the devices' 32-bit element indexing.
        for (name, dims) in [("the token embeddings (vocab_size × n_embd)", [vocabSize, nEmbd]),
                             ("the position embeddings (n_positions × n_embd)", [family == .gpt2 ? nPositions : 1, nEmbd]),
                             ("the MLP weight (n_inner × n_embd)", [nInner, nEmbd]), ("the fused q, k, v weight", [nEmbd, 3 * nHead, dh]),
                             ("the attention pattern of one prompt (n_head × n_positions²)", [nHead, min(nPositions, 1 << 16), min(nPositions, 1 << 16)])]
            where SizeLimits.product(dims) == nil {
            throw AttribError.invalidArgument(op: op, detail: "\(name) = \(dims) holds more than \(limit) values")
        }
        guard layerNormEpsilon >= 0, layerNormEpsilon <= 1, layerNormEpsilon.isFinite else {
            let field = family == .gpt2 ? "layer_norm_epsilon" : family == .gptNeoX ? "layer_norm_eps" : "rms_norm_eps"
            throw AttribError.invalidArgument(op: op, detail: "\(field) = \(layerNormEpsilon); must be finite, ≥ 0 and at most 1")
        }
        if case let .rotary(r) = positions {
            guard r.dimensions >= 2, r.dimensions % 2 == 0, r.dimensions <= dh, r.inverseFrequencies.count == r.dimensions / 2,
                  r.inverseFrequencies.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw AttribError.invalidArgument(op: op, detail: "rotary embedding of \(r.dimensions) dimensions with \(r.inverseFrequencies.count) frequencies: needs an even number ≤ head_dim = \(dh), half as many finite frequencies")
            }
        }
        guard slidingWindows.isEmpty || slidingWindows.count == nLayer else {
            throw AttribError.invalidArgument(op: op, detail: "\(slidingWindows.count) per-layer attention windows for \(nLayer) layers")
        }
        if let w = slidingWindows.compactMap({ $0 }).first(where: { $0 < 1 }) {
            throw AttribError.invalidArgument(op: op, detail: "sliding window \(w); must be at least 1")
        }
        self.family = family; self.nLayer = nLayer; self.nHead = nHead; self.nKVHead = nKVHead; self.headDim = dh
        self.nEmbd = nEmbd; self.nPositions = nPositions; self.vocabSize = vocabSize; self.nInner = nInner
        self.layerNormEpsilon = layerNormEpsilon; self.norm = norm; self.positions = positions; self.gatedMLP = gatedMLP
        self.activation = activation; self.parallelResidual = parallelResidual; self.tiedEmbeddings = tiedEmbeddings
        self.qkvBias = qkvBias; self.outputBias = outputBias; self.mlpBias = mlpBias
        self.slidingWindows = slidingWindows.allSatisfy({ $0 == nil }) ? [] : slidingWindows
        self.embeddingScale = embeddingScale
    }

    private struct File: Decodable {
        var n_layer: Int?, n_head: Int?, n_embd: Int?, n_positions: Int?, vocab_size: Int?, n_inner: Int?
        var layer_norm_epsilon: Double?
        var activation_function: String?
        var scale_attn_weights: Bool?
        var scale_attn_by_inverse_layer_idx: Bool?
        var model_type: String?
    }

    /// Every field of a Hugging Face GPT-2 config.json, in one place: read, ignored on purpose
    /// (bookkeeping, training-only settings, heads the engine does not run), or accepted only at
    /// the value the engine computes. Anything else is an error naming the file, the field and
    /// the value.
    static let fields: [String: SequentialFields.Rule] = {
        var f: [String: SequentialFields.Rule] = [:]
        for k in ["n_layer", "n_head", "n_embd", "n_positions", "vocab_size", "n_inner", "layer_norm_epsilon",
                  "activation_function", "scale_attn_weights", "scale_attn_by_inverse_layer_idx", "model_type"] { f[k] = .read }
        for k in ["architectures", "transformers_version", "torch_dtype", "dtype", "_name_or_path", "bos_token_id", "eos_token_id",
                  "pad_token_id", "initializer_range", "use_cache", "task_specific_params", "id2label", "label2id",
                  "problem_type", "gradient_checkpointing", "output_attentions", "output_hidden_states", "return_dict"] {
            f[k] = .ignored(why: "bookkeeping, generation or training settings")
        }
        for k in ["attn_pdrop", "embd_pdrop", "resid_pdrop", "summary_first_dropout"] { f[k] = .ignored(why: "dropout is the identity at inference") }
        for k in ["summary_type", "summary_use_proj", "summary_activation", "summary_proj_to_labels"] {
            f[k] = .ignored(why: "the sequence-summary head of GPT2DoubleHeadsModel, which the engine does not run")
        }
        f["reorder_and_upcast_attn"] = .ignored(why: "it only moves the scale and upcasts to float32, which the engine's attention already is")
        f["n_ctx"] = .ignored(why: "the legacy name of n_positions")
        f["tie_word_embeddings"] = .only([.bool(true)], because: "the unembedding is wte")
        f["add_cross_attention"] = .only([.bool(false)], because: "cross-attention (an encoder-decoder GPT-2) is not implemented")
        return f
    }()

    /// Reads a Hugging Face GPT-2 config.json. Variants this engine does not compute
    /// (another activation, unscaled or layer-scaled attention) are errors.
    static func readGPT2(_ path: String) throws -> DecoderConfig {
        guard let data = readFileData(path) else {
            throw AttribError.io(path: path, detail: "cannot read the model config (missing or unreadable)")
        }
        let f: File
        do { f = try JSONDecoder().decode(File.self, from: data) } catch {
            throw AttribError.io(path: path, detail: "not a valid GPT-2 config: \(error)")
        }
        if case let .object(top)? = try? data.withUnsafeBytes({ try JSONParser.parse($0) }) {
            for (key, value) in top { try SequentialFields.apply(fields[key], key, value, path: path, place: "field") }
        }
        func need(_ v: Int?, _ key: String) throws -> Int {
            guard let v else { throw AttribError.io(path: path, detail: "missing \"\(key)\"") }
            return v
        }
        if let t = f.model_type, t != "gpt2" {
            throw AttribError.io(path: path, detail: "model_type is \"\(t)\", expected \"gpt2\"")
        }
        let act = f.activation_function ?? "gelu_new"
        guard ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"].contains(act) else {
            throw AttribError.io(path: path, detail: "activation_function \"\(act)\" is not supported (GPT-2's tanh GELU: gelu_new)")
        }
        guard f.scale_attn_weights ?? true, !(f.scale_attn_by_inverse_layer_idx ?? false) else {
            throw AttribError.io(path: path, detail: "only attention scaled by 1/√d_h is supported (scale_attn_weights true, scale_attn_by_inverse_layer_idx false)")
        }
        do {
            return try DecoderConfig(nLayer: need(f.n_layer, "n_layer"), nHead: need(f.n_head, "n_head"), nEmbd: need(f.n_embd, "n_embd"),
                                  nPositions: need(f.n_positions, "n_positions"), vocabSize: need(f.vocab_size, "vocab_size"),
                                  nInner: f.n_inner, layerNormEpsilon: f.layer_norm_epsilon ?? 1e-5)
        } catch let e as AttribError {
            if case .invalidArgument(_, let detail) = e { throw AttribError.io(path: path, detail: detail) }
            throw e
        }
    }
}
