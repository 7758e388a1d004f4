import AttribCore
import FoundationEssentials

/// A BPE tokenizer read from a Hugging Face `tokenizer.json`, giving the ids of the
/// `tokenizers` library's `encode(text, add_special_tokens:)` and the text of its
/// `decode(ids, skip_special_tokens: false)`.
///
/// Supported (everything else is an error naming the file and the component, so a
/// tokenizer this cannot run is never run with different ids):
/// - byte-level BPE (GPT-2, Llama 3, Qwen2, SmolLM2): pre-tokenizers ByteLevel, Split with
///   the patterns of ``SplitPattern``, Digits, Sequence; decoder ByteLevel;
/// - sentencepiece-style BPE (Llama 2, Mistral, Gemma): normalizers Prepend, Replace (of a
///   string), NFC, Sequence, or the Metaspace pre-tokenizer; BPE with byte_fallback, unk_token
///   and fuse_unk; decoders Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence;
/// - WordPiece (BERT, DistilBERT): BertNormalizer, BertPreTokenizer, the WordPiece model and
///   decoder, post-processor BertProcessing;
/// - added tokens (special or not, with single_word/lstrip/rstrip/normalized);
/// - post-processors TemplateProcessing (BOS/EOS around the text), ByteLevel (no effect on
///   ids) and Sequence of those.
///
/// ``init(ggufTokens:merges:tokenTypes:preTokenizer:model:bos:eos:addBOS:addEOS:source:)``
/// builds the byte-level tokenizer a GGUF file describes from its arrays.
public struct HFTokenizer: Sendable {
    /// Where this came from: the tokenizer.json path, or what the GGUF caller named.
    public let source: String
    /// The number of ids: the largest id of the vocabulary or the added tokens, plus one.
    public let vocabSize: Int
    /// The ids the post-processor puts before and after the text (BOS, EOS), empty when none.
    public let prefixIDs: [Int32]
    public let suffixIDs: [Int32]

    let normalizer: HFNormalizer?
    let preTokenizer: HFPreTokenizer?
    let model: HFModel
    let decoder: HFDecoder?
    let rawAdded: AddedTokenMatcher
    let normalizedAdded: AddedTokenMatcher
    /// id → added token content
    let addedByID: [Int32: AddedToken]
    let addedByContent: [String: Int32]

    // MARK: - Encoding

    /// The ids of `text`, as `tokenizer.encode(text, add_special_tokens=addSpecialTokens).ids`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        var out: [Int32] = []
        if addSpecialTokens { out.append(contentsOf: prefixIDs) }
        var cache: [[Unicode.Scalar]: [Int32]] = [:]
        for split in rawAdded.split(text, atStart: true) {
            let raw: String, atStart: Bool
            switch split {
            case let .token(id): out.append(id); continue
            case let .text(s, start): raw = s; atStart = start
            }
            // Each stretch between added tokens is normalized on its own (so Prepend("▁")
            // prefixes every stretch, as the library does).
            let normalized = normalizer?.apply(raw) ?? raw
            for inner in normalizedAdded.split(normalized, atStart: atStart) {
                switch inner {
                case let .token(id): out.append(id)
                case let .text(s, innerAtStart):
                    var pieces = [HFPiece(scalars: Array(s.unicodeScalars), atStart: innerAtStart)]
                    if let pre = preTokenizer { pieces = pre.apply(pieces) }
                    for p in pieces {
                        if let ids = cache[p.scalars] { out.append(contentsOf: ids); continue }
                        var ids: [Int32] = []
                        model.tokenize(p.scalars, into: &ids)
                        cache[p.scalars] = ids
                        out.append(contentsOf: ids)
                    }
                }
            }
        }
        if addSpecialTokens { out.append(contentsOf: suffixIDs) }
        return out
    }

    // MARK: - Decoding

    /// The text of `ids`, as `tokenizer.decode(ids, skip_special_tokens=False)`. An id no
    /// token has is an error (the library skips it silently).
    public func decode(_ ids: [Int32]) throws -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for (k, id) in ids.enumerated() {
            guard let t = token(for: id) else {
                throw AttribError.indexOutOfRange(op: "HFTokenizer.decode", detail:
                    "token id \(id) at position \(k): no token has this id (ids are 0..<\(vocabSize); tokenizer from \(source))")
            }
            tokens.append(t)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    /// The token of an id as the file spells it (`Ġthe`, `▁the`, `<s>`), or nil.
    public func token(for id: Int32) -> String? {
        if let a = addedByID[id] { return a.content }
        return id >= 0 && Int(id) < model.tokens.count ? model.tokens[Int(id)] : nil
    }

    /// The id of a token as the file spells it, or nil.
    public func id(for token: String) -> Int32? { addedByContent[token] ?? model.vocab[token] }

    /// Whether an id is a special added token (BOS, EOS, control tokens).
    public func isSpecial(_ id: Int32) -> Bool { addedByID[id]?.special ?? false }

    // MARK: - Assembly

    init(source: String, normalizer: HFNormalizer?, preTokenizer: HFPreTokenizer?, model: HFModel,
         decoder: HFDecoder?, added: [AddedToken], prefixIDs: [Int32], suffixIDs: [Int32]) {
        self.source = source
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.decoder = decoder
        self.prefixIDs = prefixIDs
        self.suffixIDs = suffixIDs
        var byID: [Int32: AddedToken] = [:], byContent: [String: Int32] = [:]
        for a in added { byID[a.id] = a; byContent[a.content] = a.id }
        addedByID = byID
        addedByContent = byContent
        rawAdded = AddedTokenMatcher(added.filter { !$0.normalized }, spelled: \.content)
        normalizedAdded = AddedTokenMatcher(added.filter(\.normalized)) { normalizer?.apply($0.content) ?? $0.content }
        vocabSize = max(model.tokens.count, Int(added.map(\.id).max() ?? -1) + 1)
    }
}
