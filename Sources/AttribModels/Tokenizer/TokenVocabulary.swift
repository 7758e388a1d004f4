import AttribCore
import FoundationEssentials

/// Token strings by id, for showing a text model's per-token scores beside its tokens: from a
/// model directory's tokenizer.json (model.vocab: a {token: id} map for WordPiece and BPE, a
/// [[token, score], …] list for Unigram) or vocab.txt (one token per line, BERT's). Encoding
/// text is the tokenizers' job; this only names ids.
public struct TokenVocabulary: Sendable {
    public let tokens: [Int: String]
    public let source: String

    /// The vocabulary in `directory`, nil where it has neither file.
    public static func load(directory: String) throws -> TokenVocabulary? {
        let json = directory + "/tokenizer.json", txt = directory + "/vocab.txt"
        if let bytes = readFileBytes(json) {
            let file: TokenizerFile
            do { file = try JSONDecoder().decode(TokenizerFile.self, from: Data(bytes)) } catch {
                throw AttribError.io(path: json, detail: "not a tokenizers JSON file with a model.vocab this reader knows ({token: id} or [[token, score]]): \(error)")
            }
            var out = file.model.vocab.tokens
            for a in file.added_tokens ?? [] { out[a.id] = a.content }
            return TokenVocabulary(tokens: out, source: json)
        }
        if let bytes = readFileBytes(txt) {
            let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            var out: [Int: String] = [:]
            for (i, l) in lines.enumerated() where !l.isEmpty { out[i] = String(l.hasSuffix("\r") ? l.dropLast() : l) }
            return TokenVocabulary(tokens: out, source: txt)
        }
        return nil
    }

    public subscript(_ id: Int) -> String? { tokens[id] }
}

/// The parts of tokenizer.json read here.
struct TokenizerFile: Decodable {
    struct Added: Decodable { var id: Int; var content: String }
    struct Vocab: Decodable {
        var tokens: [Int: String]
        init(from decoder: Decoder) throws {
            if let map = try? decoder.singleValueContainer().decode([String: Int].self) {
                tokens = Dictionary(map.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
                return
            }
            var list = try decoder.unkeyedContainer()
            var out: [Int: String] = [:]
            var i = 0
            while !list.isAtEnd {
                var entry = try list.nestedUnkeyedContainer()
                out[i] = try entry.decode(String.self)
                i += 1
            }
            tokens = out
        }
    }
    struct Model: Decodable { var vocab: Vocab }
    var model: Model
    var added_tokens: [Added]?
}
