import AttribCore
import FoundationEssentials

/// A prompt-pairs file (`--pairs`): a JSON list of {clean, corrupt, answers: [A, B]} (text or
/// id lists), or {"pairs": [...]} whose entries may use clean_ids/corrupt_ids and
/// clean_answer_id/corrupt_answer_id (Models/induction-2l/prompts.json). Decoding only; the CLI
/// tokenizes text and builds the metric from the answers.
public enum PromptPairFile {
    public struct Entry: Decodable, Sendable {
        public var clean: TextOrIDs?, corrupt: TextOrIDs?
        public var clean_ids: [Int32]?, corrupt_ids: [Int32]?
        public var clean_answer_id: Int?, corrupt_answer_id: Int?
        public var answers: [TokenSpec]?
    }
    /// A prompt as text or as token ids.
    public enum TextOrIDs: Decodable, Sendable {
        case text(String), ids([Int32])
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s) } else { self = .ids(try c.decode([Int32].self)) }
        }
    }
    /// An answer token: an id (a JSON number) or a single-token string.
    public struct TokenSpec: Decodable, Sendable {
        public var string: String
        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let i = try? c.decode(Int.self) { string = String(i) } else { string = try c.decode(String.self) }
        }
    }
    struct Wrapped: Decodable { var pairs: [Entry] }

    /// The entries of the file's bytes; an error naming `path` when it is neither form.
    public static func entries(_ data: Data, path: String) throws -> [Entry] {
        if let wrapped = try? JSONDecoder().decode(Wrapped.self, from: data) { return wrapped.pairs }
        do { return try JSONDecoder().decode([Entry].self, from: data) } catch {
            throw AttribError.io(path: path, detail: "not a pairs file (a list of {clean, corrupt, answers}, or {\"pairs\": [...]}): \(error)")
        }
    }
}
