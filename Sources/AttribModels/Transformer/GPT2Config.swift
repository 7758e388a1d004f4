import AttribCore
import FoundationEssentials

/// The hyper-parameters of a GPT-2 model, read from a Hugging Face config.json
/// (n_layer, n_head, n_embd, n_positions, vocab_size, layer_norm_epsilon, n_inner).
public struct GPT2Config: Sendable, Equatable {
    public var nLayer: Int
    public var nHead: Int
    /// The residual width D.
    public var nEmbd: Int
    /// The longest sequence (rows of wpe).
    public var nPositions: Int
    public var vocabSize: Int
    /// The MLP width (n_inner, 4·D when the config has null).
    public var nInner: Int
    public var layerNormEpsilon: Double

    /// d_h = D / H.
    public var headDim: Int { nEmbd / nHead }

    public init(nLayer: Int, nHead: Int, nEmbd: Int, nPositions: Int, vocabSize: Int,
                nInner: Int? = nil, layerNormEpsilon: Double = 1e-5) throws {
        // Every size is checked before any arithmetic on it (4·n_embd of 2^62 overflowed).
        let limit = SizeLimits.maxSampleElements
        for (name, v) in [("n_layer", nLayer), ("n_head", nHead), ("n_embd", nEmbd), ("n_positions", nPositions),
                          ("vocab_size", vocabSize), ("n_inner", nInner ?? 1)] where v < 1 || v > limit {
            throw AttribError.invalidArgument(op: "GPT2Config", detail: "\(name) = \(v); must be 1 to \(limit)")
        }
        let inner = nInner ?? 4 * nEmbd
        // Each weight matrix must fit the devices' 32-bit element indexing.
        for (name, dims) in [("wte (vocab_size × n_embd)", [vocabSize, nEmbd]), ("wpe (n_positions × n_embd)", [nPositions, nEmbd]),
                             ("the MLP weight (n_inner × n_embd)", [inner, nEmbd]), ("c_attn (n_embd × 3·n_embd)", [nEmbd, 3 * nEmbd])]
            where SizeLimits.product(dims) == nil {
            throw AttribError.invalidArgument(op: "GPT2Config", detail: "\(name) = \(dims) holds more than \(limit) values")
        }
        self.nLayer = nLayer; self.nHead = nHead; self.nEmbd = nEmbd; self.nPositions = nPositions
        self.vocabSize = vocabSize; self.nInner = inner; self.layerNormEpsilon = layerNormEpsilon
        guard nEmbd % nHead == 0 else {
            throw AttribError.invalidArgument(op: "GPT2Config", detail: "n_embd = \(nEmbd) is not divisible by n_head = \(nHead)")
        }
        guard layerNormEpsilon >= 0, layerNormEpsilon <= 1, layerNormEpsilon.isFinite else {
            throw AttribError.invalidArgument(op: "GPT2Config", detail: "layer_norm_epsilon = \(layerNormEpsilon); must be finite, ≥ 0 and at most 1 (GPT-2's is 1e-5)")
        }
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
    public static func read(_ path: String) throws -> GPT2Config {
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
            return try GPT2Config(nLayer: need(f.n_layer, "n_layer"), nHead: need(f.n_head, "n_head"), nEmbd: need(f.n_embd, "n_embd"),
                                  nPositions: need(f.n_positions, "n_positions"), vocabSize: need(f.vocab_size, "vocab_size"),
                                  nInner: f.n_inner, layerNormEpsilon: f.layer_norm_epsilon ?? 1e-5)
        } catch let e as AttribError {
            if case .invalidArgument(_, let detail) = e { throw AttribError.io(path: path, detail: detail) }
            throw e
        }
    }
}
