import AttribCore

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
