import AttribCore
import FoundationEssentials

/// What the patching commands need from a tokenizer, whichever format it came from: GPT-2's
/// vocab.json + merges.txt (GPT2Tokenizer), a Hugging Face tokenizer.json, or a GGUF file's
/// tokenizer arrays (HFTokenizer).
public protocol PromptTokenizer: Sendable {
    /// The file it was read from, for messages.
    var source: String { get }
    /// The number of ids (the largest + 1).
    var vocabSize: Int { get }
    /// The token a prompt starts with when BOS is prepended (TransformerLens's prepend_bos):
    /// GPT-2's <|endoftext|>, or the BOS the tokenizer's own template adds (Llama's <s>);
    /// nil when the model's tokenizer adds none (SmolLM2), and prompts are used as they are.
    var beginningOfSequenceID: Int32? { get }
    /// The ids of `text` with no special tokens added.
    func encodeText(_ text: String) throws -> [Int32]
    func decode(_ ids: [Int32]) throws -> String
}

extension GPT2Tokenizer: PromptTokenizer {
    public var source: String { directory + "/vocab.json" }
    public var beginningOfSequenceID: Int32? { endOfTextID }
    public func encodeText(_ text: String) throws -> [Int32] { try encode(text) }
}

extension HFTokenizer: PromptTokenizer {
    /// The BOS the tokenizer's own template puts first, if any.
    public var beginningOfSequenceID: Int32? { prefixIDs.first }
    public func encodeText(_ text: String) throws -> [Int32] { encode(text, addSpecialTokens: false) }
}

extension HFTokenizer {
    /// The tokenizer a GGUF file carries (tokenizer.ggml.*): byte-level BPE ("gpt2") with
    /// llama.cpp's pre-tokenizer names, or SentencePiece scores ("llama"). nil when the file has
    /// no tokenizer.ggml.tokens (a model that takes token ids only); another tokenizer model is
    /// an error naming it.
    public init?(gguf f: GGUFFile) throws {
        guard let tokens = f.metadata["tokenizer.ggml.tokens"]?.strings else { return nil }
        func bad(_ key: String, _ what: String) -> AttribError { .io(path: f.path, detail: "\(key): \(what)") }
        let model = f.metadata["tokenizer.ggml.model"]?.string ?? "gpt2"
        let types = (f.metadata["tokenizer.ggml.token_type"]?.ints ?? []).map { Int32(truncatingIfNeeded: $0) }
        func id(_ key: String) -> Int32? { f.metadata[key]?.int.map { Int32(truncatingIfNeeded: $0) } }
        if model == "llama" {
            guard let scores = f.metadata["tokenizer.ggml.scores"]?.floats else {
                throw bad("tokenizer.ggml.scores", "missing; a SentencePiece (\"llama\") tokenizer ranks its merges by the scores")
            }
            // llama.cpp's defaults for these files: BOS added, a space prefixed.
            try self.init(ggufSentencePiece: tokens, scores: scores, tokenTypes: types, unk: id("tokenizer.ggml.unknown_token_id"),
                          addSpacePrefix: f.metadata["tokenizer.ggml.add_space_prefix"]?.bool ?? true,
                          bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
                          addBOS: f.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? true,
                          addEOS: f.metadata["tokenizer.ggml.add_eos_token"]?.bool ?? false, source: f.path)
            return
        }
        guard let merges = f.metadata["tokenizer.ggml.merges"]?.strings else {
            throw bad("tokenizer.ggml.merges", "missing; the \(model) tokenizer needs its merges")
        }
        try self.init(ggufTokens: tokens, merges: merges, tokenTypes: types,
                      preTokenizer: f.metadata["tokenizer.ggml.pre"]?.string ?? "default", model: model,
                      bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
                      addBOS: f.metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false,
                      addEOS: f.metadata["tokenizer.ggml.add_eos_token"]?.bool ?? false, source: f.path)
    }
}

/// The tokenizer of a model path: a .gguf file's own; a directory's tokenizer.json, else its
/// vocab.json + merges.txt (GPT-2); nil for a model that takes token ids only.
public func promptTokenizer(forModel path: String) throws -> (any PromptTokenizer)? {
    if path.hasSuffix(".gguf") { return try HFTokenizer(gguf: GGUFFile(path: path)) }
    if FileManager.default.fileExists(atPath: path + "/tokenizer.json") { return try HFTokenizer(path: path + "/tokenizer.json") }
    let t = try GPT2Tokenizer(directory: path)
    return t.hasVocabulary ? t : nil
}
