import AttribCore

/// The byte-level BPE tokenizer of a GGUF file (`tokenizer.ggml.model` = "gpt2"), built from
/// the arrays the file carries instead of a tokenizer.json.
extension HFTokenizer {
    /// The pre-tokenizers of llama.cpp's `tokenizer.ggml.pre` names that this knows, by name.
    /// The splits are llama.cpp's: "smollm" and its kin cut digits one by one before GPT-2's
    /// regex (as SmolLM2's own tokenizer.json does; transformers' GGUF loader uses GPT-2's regex
    /// alone there, which differs on pieces with digits the vocabulary merges, e.g. "²³").
    /// "default" is GPT-2's, as transformers has it (llama.cpp's "default" is a set of
    /// regexes this does not implement).
    public static let ggufPreTokenizers: [String] = ggufPre.keys.sorted()

    private static let ggufPre: [String: HFPreTokenizer] = {
        let gpt2 = HFPreTokenizer.byteLevel(addPrefixSpace: false, useRegex: true)
        let digitsThenGPT2 = HFPreTokenizer.sequence([.digits(individual: true), gpt2])
        let llama3 = HFPreTokenizer.sequence([.split(.llama3(maxDigits: 3)), .byteLevel(addPrefixSpace: false, useRegex: false)])
        let qwen2 = HFPreTokenizer.sequence([.split(.llama3(maxDigits: 1)), .byteLevel(addPrefixSpace: false, useRegex: false)])
        var table: [String: HFPreTokenizer] = ["gpt2": gpt2, "default": gpt2]
        for name in ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"] { table[name] = digitsThenGPT2 }
        for name in ["llama-bpe", "llama3", "llama-v3", "falcon3", "dbrx", "smaug-bpe"] { table[name] = llama3 }
        for name in ["qwen2", "deepseek-r1-qwen"] { table[name] = qwen2 }
        return table
    }()

    /// Builds the tokenizer from a GGUF file's `tokenizer.ggml.*` arrays.
    /// - Parameters:
    ///   - ggufTokens: `tokenizer.ggml.tokens`, by id, spelled with GPT-2's byte table.
    ///   - merges: `tokenizer.ggml.merges`, "left right", by rank.
    ///   - tokenTypes: `tokenizer.ggml.token_type` (3: control, matched whole as a special
    ///     token; 4: user-defined, matched whole as a plain added token), empty for none.
    ///   - preTokenizer: `tokenizer.ggml.pre` (one of ``ggufPreTokenizers``).
    ///   - model: `tokenizer.ggml.model`; only "gpt2" (byte-level BPE) is built here ("llama",
    ///     SentencePiece scores, by init(ggufSentencePiece:…)).
    ///   - bos, eos, addBOS, addEOS: `tokenizer.ggml.bos_token_id`, `eos_token_id`,
    ///     `add_bos_token`, `add_eos_token`: what `encode(_:addSpecialTokens: true)` adds.
    ///   - source: the file, for messages.
    public init(ggufTokens tokens: [String], merges: [String], tokenTypes: [Int32], preTokenizer: String,
                model: String = "gpt2", bos: Int32? = nil, eos: Int32? = nil, addBOS: Bool = false, addEOS: Bool = false,
                source: String = "GGUF") throws {
        func fail(_ key: String, _ detail: String) -> AttribError { AttribError.io(path: source, detail: "\(key): \(detail)") }
        guard model == "gpt2" else {
            throw fail("tokenizer.ggml.model", "\(jsonQuoted(model)) is not supported here (supported: \"gpt2\", byte-level BPE; \"llama\" through init(ggufSentencePiece:…))")
        }
        guard let pre = Self.ggufPre[preTokenizer] else {
            throw fail("tokenizer.ggml.pre", "\(jsonQuoted(preTokenizer)) is not supported (supported: \(Self.ggufPreTokenizers.joined(separator: ", ")))")
        }
        try Self.checkGGUFArrays(tokens: tokens, tokenTypes: tokenTypes, ids: [("bos_token_id", bos), ("eos_token_id", eos)],
                                 bos: bos, eos: eos, addBOS: addBOS, addEOS: addEOS, source: source)

        // A token with a character outside the byte table is spelled by its UTF-8 bytes
        // (as transformers reads these files); control tokens such as <|endoftext|> are
        // printable ASCII and so spelled as themselves.
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(tokens.count)
        var spelled: [String] = []
        spelled.reserveCapacity(tokens.count)
        for (id, t) in tokens.enumerated() {
            let s = t.unicodeScalars.allSatisfy { GPT2ByteLevel.byte(for: $0) != nil } ? t : GPT2ByteLevel.encode(t.utf8)
            if let other = vocab[s] {
                throw fail("tokenizer.ggml.tokens", "token \(jsonQuoted(s)) appears twice (ids \(other) and \(id))")
            }
            vocab[s] = Int32(id)
            spelled.append(s)
        }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (k, m) in merges.enumerated() {
            let parts = m.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw fail("tokenizer.ggml.merges[\(k)]", "expected \"left right\", found \(jsonQuoted(m))") }
            pairs.append((String(parts[0]), String(parts[1])))
        }
        let bpe: BPEModel
        do throws(BPEModel.Failure) {
            bpe = try BPEModel(vocab: vocab, merges: pairs, unkToken: nil, fuseUnk: false, byteFallback: false,
                               ignoreMerges: false, prefix: nil, suffix: nil)
        } catch {
            // Messages say model.vocab/model.merges (tokenizer.json's names); here those are the arrays.
            throw fail("tokenizer.ggml", error.message.replacing("model.merges", with: "merges")
                .replacing("model.vocab", with: "tokens"))
        }
        var added: [AddedToken] = []
        for (id, type) in tokenTypes.enumerated() where type == 3 || type == 4 {
            // Control tokens are special and user-defined ones plain; both are matched whole in
            // the raw text. A control token spelled outside the byte table is a mislabel that
            // transformers skips; so does this.
            if type == 3 && spelled[id] != tokens[id] { continue }
            added.append(AddedToken(id: Int32(id), content: spelled[id], special: type == 3))
        }
        self.init(source: source, normalizer: nil, preTokenizer: pre, model: .bpe(bpe), decoder: .byteLevel, added: added,
                  prefixIDs: addBOS ? [bos!] : [], suffixIDs: addEOS ? [eos!] : [])
    }

    /// The checks every GGUF tokenizer's arrays get (byte-level and SentencePiece): 1 to 2²⁴ − 1
    /// tokens, a type per token if any, each of `ids` (key, id) a token's id, and a BOS/EOS id
    /// wherever add_bos_token/add_eos_token asks for one. Errors name the file and the key.
    static func checkGGUFArrays(tokens: [String], tokenTypes: [Int32], ids: [(String, Int32?)], bos: Int32?, eos: Int32?,
                                addBOS: Bool, addEOS: Bool, source: String) throws {
        func fail(_ key: String, _ detail: String) -> AttribError { AttribError.io(path: source, detail: "\(key): \(detail)") }
        guard !tokens.isEmpty, tokens.count < 1 << 24 else { throw fail("tokenizer.ggml.tokens", "\(tokens.count) tokens; expected 1 to \(1 << 24 - 1)") }
        guard tokenTypes.isEmpty || tokenTypes.count == tokens.count else {
            throw fail("tokenizer.ggml.token_type", "\(tokenTypes.count) types for \(tokens.count) tokens")
        }
        for (key, id) in ids {
            if let id, id < 0 || Int(id) >= tokens.count { throw fail("tokenizer.ggml.\(key)", "\(id) is not an id of the \(tokens.count) tokens") }
        }
        if addBOS && bos == nil { throw fail("tokenizer.ggml.add_bos_token", "true, but there is no tokenizer.ggml.bos_token_id") }
        if addEOS && eos == nil { throw fail("tokenizer.ggml.add_eos_token", "true, but there is no tokenizer.ggml.eos_token_id") }
    }
}
