/// The WordPiece model of Hugging Face's tokenizers (tokenizer.json `"model": {"type":
/// "WordPiece"}`): BERT's, DistilBERT's and their kin's. A word is cut greedily from its start,
/// longest vocabulary match first, every piece after the first looked up with the
/// continuation prefix ("##"); a word with a remainder no piece matches, or longer than
/// `maxInputCharsPerWord` characters, is the unknown token as a whole.
struct WordPieceModel: Sendable {
    let vocab: [String: Int32]
    /// The vocabulary by UTF-8 bytes: Swift's String equality is canonical equivalence ("e" +
    /// U+0301 equals "é"), the library's is by scalars, and the lookups must be the library's.
    let byUTF8: [[UInt8]: Int32]
    /// id → token (nil where no token has that id)
    let tokens: [String?]
    let unkID: Int32
    let prefix: String
    let maxInputCharsPerWord: Int

    typealias Failure = TokenModelFailure

    init(vocab: [String: Int32], unkToken: String, prefix: String, maxInputCharsPerWord: Int) throws(Failure) {
        let tokens = try tokensByID(vocab)
        guard let unk = vocab[unkToken] else { throw Failure(message: "model.unk_token \(jsonQuoted(unkToken)) is not in model.vocab") }
        guard maxInputCharsPerWord >= 1 else { throw Failure(message: "model.max_input_chars_per_word is \(maxInputCharsPerWord); it must be at least 1") }
        self.vocab = vocab; self.tokens = tokens; unkID = unk
        byUTF8 = Dictionary(vocab.map { (Array($0.key.utf8), $0.value) }, uniquingKeysWith: { a, _ in a })
        self.prefix = prefix; self.maxInputCharsPerWord = maxInputCharsPerWord
    }

    /// The ids of one pre-tokenized word, appended to `out`.
    func tokenize(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        guard !word.isEmpty else { return }
        // The library counts chars (Unicode scalars), as here.
        guard word.count <= maxInputCharsPerWord else { out.append(unkID); return }
        var pieces: [Int32] = []
        let prefixBytes = Array(prefix.utf8)
        let utf8 = word.map { Array(String($0).utf8) }           // each scalar encoded once, not per candidate
        var start = 0
        while start < word.count {
            var end = word.count, found: Int32? = nil
            while start < end {
                var key = start > 0 ? prefixBytes : []
                for k in start..<end { key.append(contentsOf: utf8[k]) }
                if let id = byUTF8[key] { found = id; break }
                end -= 1
            }
            guard let id = found else { out.append(unkID); return }
            pieces.append(id)
            start = end
        }
        out.append(contentsOf: pieces)
    }
}

/// The model of a tokenizer.json: BPE or WordPiece.
enum HFModel: Sendable {
    case bpe(BPEModel)
    case wordPiece(WordPieceModel)

    var vocab: [String: Int32] {
        switch self { case let .bpe(m): return m.vocab; case let .wordPiece(m): return m.vocab }
    }
    var tokens: [String?] {
        switch self { case let .bpe(m): return m.tokens; case let .wordPiece(m): return m.tokens }
    }
    func tokenize(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        switch self { case let .bpe(m): m.tokenize(word, into: &out); case let .wordPiece(m): m.tokenize(word, into: &out) }
    }
}
