import AttribCore
import FoundationEssentials

/// The tokenizer of a BERT-style model directory that has BERT's vocab.txt and no
/// tokenizer.json: what transformers' BertTokenizerFast builds from it. WordPiece ("##", [UNK],
/// 100 characters a word), BertNormalizer (lowercase and accents stripped with do_lower_case),
/// BertPreTokenizer, [CLS] text [SEP], the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] matched
/// whole in the text.
extension HFTokenizer {
    /// - Parameters:
    ///   - path: vocab.txt, one token per line, ids by line number.
    ///   - lowercase: do_lower_case (tokenizer_config.json; BertTokenizer's default is true).
    public init(bertVocab path: String, lowercase: Bool = true) throws {
        guard let bytes = readFileBytes(path) else { throw AttribError.io(path: path, detail: "cannot read the vocabulary (BERT's vocab.txt)") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw AttribError.io(path: path, detail: "not valid UTF-8") }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        if lines.last == "" { lines.removeLast() }
        var vocab: [String: Int32] = [:]
        for (id, t) in lines.enumerated() {
            guard !t.isEmpty else { throw AttribError.io(path: path, detail: "line \(id + 1) is empty; every line is a token") }
            if let other = vocab[t] { throw AttribError.io(path: path, detail: "token \(jsonQuoted(t)) on lines \(other + 1) and \(id + 1)") }
            vocab[t] = Int32(id)
        }
        func id(_ t: String) throws -> Int32 {
            guard let i = vocab[t] else { throw AttribError.io(path: path, detail: "the special token \(t) is not in the vocabulary") }
            return i
        }
        let model: WordPieceModel
        do throws(WordPieceModel.Failure) {
            model = try WordPieceModel(vocab: vocab, unkToken: "[UNK]", prefix: "##", maxInputCharsPerWord: 100)
        } catch {
            throw AttribError.io(path: path, detail: error.message.replacing("model.vocab", with: "the vocabulary"))
        }
        let added = try ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"].map { AddedToken(id: try id($0), content: $0, special: true) }
        self.init(source: path,
                  normalizer: .bert(BertText.NormalizerOptions(cleanText: true, handleChineseChars: true, stripAccents: lowercase, lowercase: lowercase)),
                  preTokenizer: .bert, model: .wordPiece(model), decoder: .wordPiece(prefix: "##", cleanup: true), added: added,
                  prefixIDs: [try id("[CLS]")], suffixIDs: [try id("[SEP]")])
    }

    /// The tokenizer of a text model's directory: tokenizer.json, else vocab.txt read as BERT's
    /// (do_lower_case from tokenizer_config.json when it says); nil where it has neither.
    public static func forTextModel(directory: String) throws -> HFTokenizer? {
        if FileManager.default.fileExists(atPath: directory + "/tokenizer.json") { return try HFTokenizer(path: directory + "/tokenizer.json") }
        let vocab = directory + "/vocab.txt"
        guard FileManager.default.fileExists(atPath: vocab) else { return nil }
        var lowercase = true
        let config = directory + "/tokenizer_config.json"
        if FileManager.default.fileExists(atPath: config) {
            let top = try DecoderConfig.jsonObject(config)
            switch top["do_lower_case"] {
            case nil, .null?: break
            case .bool(let b)?: lowercase = b
            case let v?: throw AttribError.io(path: config, detail: "do_lower_case = \(v.summary); expected true or false")
            }
        }
        return try HFTokenizer(bertVocab: vocab, lowercase: lowercase)
    }
}
