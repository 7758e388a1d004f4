import AttribCore
import FoundationEssentials

/// GPT-2's byte-level BPE tokenizer, read from a model directory's `vocab.json`
/// (token → id, tokens spelled with ``GPT2ByteLevel``'s byte-to-unicode table)
/// and `merges.txt` (one merge `left right` a line, ranked by line; a first line
/// starting with `#version` is skipped). It gives the ids of Hugging Face's
/// `GPT2Tokenizer` with its defaults (no prefix space, no BOS added).
///
/// Encoding: the special token `<|endoftext|>` (where the vocabulary has it) is
/// cut out of the text first and becomes its own id; the text between is split
/// by ``GPT2PreTokenizer``, each piece's UTF-8 bytes become table characters,
/// and the merges are applied lowest rank first until none applies.
///
/// A directory with neither file is a model that takes token ids only:
/// loading succeeds (``hasVocabulary`` is false) and ``encode(_:)``/``decode(_:)``
/// throw an error that says so.
public struct GPT2Tokenizer: Sendable {
    /// The model directory this was read from.
    public let directory: String
    /// The number of ids (the largest id in vocab.json + 1); 0 without a vocabulary.
    public let vocabSize: Int
    /// False for a directory without vocab.json and merges.txt (token ids only).
    public var hasVocabulary: Bool { vocabSize > 0 }
    /// The id of `<|endoftext|>`, if the vocabulary has it.
    public let endOfTextID: Int32?

    public static let endOfText = "<|endoftext|>"

    private struct Merge: Sendable { let rank: Int32; let result: Int32 }

    private let tokens: [String?]            // id → token (nil: no token has this id)
    private let tokenBytes: [[UInt8]]        // id → the bytes it decodes to
    private let ids: [String: Int32]         // token → id
    private let symbolID: [Int32]            // BPE symbol → vocabulary id, −1 where the vocabulary lacks it
    private let symbolText: [String]         // BPE symbol → its byte-level text
    private let byteSymbol: [Int32]          // byte → its one-character symbol
    private let merges: [UInt64: Merge]      // (left << 32 | right) → rank and merged symbol

    /// Reads `directory/vocab.json` and `directory/merges.txt`, or sets up a
    /// token-id-only tokenizer where neither exists. Errors name the file at fault.
    public init(directory: String) throws {
        self.directory = directory
        var isDir: Bool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) else {
            throw AttribError.io(path: directory, detail: "no such model directory")
        }
        guard isDir else { throw AttribError.io(path: directory, detail: "not a directory (expected a model directory)") }
        let vocabPath = Self.join(directory, "vocab.json"), mergesPath = Self.join(directory, "merges.txt")
        let hasVocab = FileManager.default.fileExists(atPath: vocabPath)
        let hasMerges = FileManager.default.fileExists(atPath: mergesPath)
        if !hasVocab && !hasMerges {
            vocabSize = 0; endOfTextID = nil
            tokens = []; tokenBytes = []; ids = [:]; symbolID = []; symbolText = []
            byteSymbol = []; merges = [:]
            return
        }
        guard hasVocab else {
            throw AttribError.io(path: vocabPath, detail: "missing: \(mergesPath) exists, but a GPT-2 tokenizer needs vocab.json beside it (remove both for a model that takes token ids only)")
        }
        guard hasMerges else {
            throw AttribError.io(path: mergesPath, detail: "missing: \(vocabPath) exists, but a GPT-2 tokenizer needs merges.txt beside it (remove both for a model that takes token ids only)")
        }

        // vocab.json
        let vocabEntries = try Self.readVocab(vocabPath)
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(vocabEntries.count)
        var maxID: Int32 = -1
        for (token, id) in vocabEntries {
            ids[token] = id
            maxID = max(maxID, id)
        }
        // Ids index arrays made here: they must be 0..<count (GPT-2's are), so an id of 2^31
        // in a broken file is an error, not a 2^31-entry allocation.
        guard Int(maxID) < vocabEntries.count else {
            throw AttribError.io(path: vocabPath, detail: "id \(maxID) for \(vocabEntries.count) tokens: the ids must be 0 to \(vocabEntries.count - 1)")
        }
        var tokens = [String?](repeating: nil, count: Int(maxID) + 1)
        var tokenBytes = [[UInt8]](repeating: [], count: Int(maxID) + 1)
        for (token, id) in vocabEntries {
            if let other = tokens[Int(id)] {
                throw AttribError.io(path: vocabPath, detail: "tokens \(jsonQuoted(other)) and \(jsonQuoted(token)) have the same id \(id)")
            }
            tokens[Int(id)] = token
            tokenBytes[Int(id)] = GPT2ByteLevel.decode(token)
        }

        // BPE symbols: every vocabulary token, every byte, every merge's parts and result.
        var symbolIndex: [String: Int32] = [:]
        var symbolID: [Int32] = [], symbolText: [String] = []
        func intern(_ s: String) -> Int32 {
            if let k = symbolIndex[s] { return k }
            let k = Int32(symbolText.count)
            symbolIndex[s] = k
            symbolText.append(s)
            symbolID.append(ids[s] ?? -1)
            return k
        }
        let byteSymbol = (0..<256).map { intern(String(GPT2ByteLevel.byteToScalar[$0])) }

        // merges.txt
        var merges: [UInt64: Merge] = [:]
        for (lineNumber, left, right) in try Self.readMerges(mergesPath) {
            let a = intern(left), b = intern(right)
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if merges[key] != nil { continue }  // a repeated merge keeps its first rank
            merges[key] = Merge(rank: Int32(lineNumber), result: intern(left + right))
        }

        self.vocabSize = Int(maxID) + 1
        self.tokens = tokens
        self.tokenBytes = tokenBytes
        self.ids = ids
        self.symbolID = symbolID
        self.symbolText = symbolText
        self.byteSymbol = byteSymbol
        self.merges = merges
        self.endOfTextID = ids[Self.endOfText]
    }

    /// The token (as vocab.json spells it, e.g. `Ġthe`) of an id, or nil for an id outside the vocabulary.
    public func token(for id: Int32) -> String? {
        id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil
    }

    /// The id of a token as vocab.json spells it, or nil.
    public func id(for token: String) -> Int32? { ids[token] }

    // MARK: - Encoding

    /// The token ids of `text`.
    public func encode(_ text: String) throws -> [Int32] {
        guard hasVocabulary else { throw idsOnly("GPT2Tokenizer.encode") }
        var out: [Int32] = []
        var cache: [String: [Int32]] = [:]
        var scalarBase = 0, byteBase = 0
        for (segment, isSpecial) in splitSpecial(text) {
            if isSpecial, let eot = endOfTextID {
                out.append(eot)
            } else {
                for piece in GPT2PreTokenizer.pieces(segment, scalarBase: scalarBase, byteBase: byteBase) {
                    if let ids = cache[piece.text] { out.append(contentsOf: ids); continue }
                    let ids = try encodePiece(piece, in: text)
                    cache[piece.text] = ids
                    out.append(contentsOf: ids)
                }
            }
            scalarBase += segment.unicodeScalars.count
            byteBase += segment.utf8.count
        }
        return out
    }

    /// The text cut at each `<|endoftext|>` (where the vocabulary has it): (segment, is the special token).
    private func splitSpecial(_ text: String) -> [(String, Bool)] {
        guard endOfTextID != nil else { return [(text, false)] }
        let marker = Array(Self.endOfText.utf8)
        let bytes = Array(text.utf8)
        var out: [(String, Bool)] = []
        var start = 0, i = 0
        while i + marker.count <= bytes.count {
            if bytes[i] == marker[0] && bytes[i..<(i + marker.count)].elementsEqual(marker) {
                if i > start { out.append((String(decoding: bytes[start..<i], as: UTF8.self), false)) }
                out.append((Self.endOfText, true))
                i += marker.count
                start = i
            } else {
                i += 1
            }
        }
        if start < bytes.count { out.append((String(decoding: bytes[start...], as: UTF8.self), false)) }
        return out
    }

    /// BPE on one piece of the pre-tokenizer.
    private func encodePiece(_ piece: GPT2PreTokenizer.Piece, in text: String) throws -> [Int32] {
        let bytes = Array(piece.text.utf8)
        var word = bytes.map { byteSymbol[Int($0)] }
        var starts = Array(0..<bytes.count)  // byte offset (in the piece) where each symbol starts
        while word.count > 1 {
            var best: Merge? = nil
            var bestKey: UInt64 = 0
            for i in 0..<(word.count - 1) {
                let key = UInt64(UInt32(word[i])) << 32 | UInt64(UInt32(word[i + 1]))
                if let m = merges[key], m.rank < (best?.rank ?? .max) { best = m; bestKey = key }
            }
            guard let merge = best else { break }
            var merged: [Int32] = [], mergedStarts: [Int] = []
            merged.reserveCapacity(word.count); mergedStarts.reserveCapacity(word.count)
            var i = 0
            while i < word.count {
                if i + 1 < word.count, UInt64(UInt32(word[i])) << 32 | UInt64(UInt32(word[i + 1])) == bestKey {
                    merged.append(merge.result); mergedStarts.append(starts[i]); i += 2
                } else {
                    merged.append(word[i]); mergedStarts.append(starts[i]); i += 1
                }
            }
            word = merged; starts = mergedStarts
        }
        var out: [Int32] = []
        out.reserveCapacity(word.count)
        for (k, symbol) in word.enumerated() {
            let id = symbolID[Int(symbol)]
            guard id >= 0 else { throw unencodable(piece, symbol: symbol, byteInPiece: starts[k]) }
            out.append(id)
        }
        return out
    }

    private func unencodable(_ piece: GPT2PreTokenizer.Piece, symbol: Int32, byteInPiece: Int) -> AttribError {
        // The character holding that byte, and its position in the text (in Unicode scalars).
        var scalarIndex = piece.scalarOffset, byteIndex = 0
        var character: Unicode.Scalar = " "
        for u in piece.text.unicodeScalars {
            let len = String(u).utf8.count
            character = u
            if byteIndex + len > byteInPiece { break }
            byteIndex += len
            scalarIndex += 1
        }
        let code = "U+" + String(repeating: "0", count: max(0, 4 - String(character.value, radix: 16).count))
            + String(character.value, radix: 16, uppercase: true)
        let symbolText = symbolText[Int(symbol)]
        let detail: String
        if symbolText.unicodeScalars.count == 1 {
            detail = "cannot encode \(jsonQuoted(String(character))) (\(code)) at character \(scalarIndex) of the text, in the piece \(jsonQuoted(piece.text)): the vocabulary has no token for its byte \(jsonQuoted(symbolText)) (it can only encode text made of its own tokens)"
        } else {
            let merged = String(decoding: GPT2ByteLevel.decode(symbolText), as: UTF8.self)
            detail = "cannot encode \(jsonQuoted(merged)) at character \(scalarIndex) of the text, in the piece \(jsonQuoted(piece.text)): the merge result \(jsonQuoted(symbolText)) from merges.txt is not in vocab.json"
        }
        return AttribError.invalidArgument(op: "GPT2Tokenizer.encode", detail: detail + "; tokenizer from \(directory)")
    }

    // MARK: - Decoding

    /// The text of some token ids (bytes that are not valid UTF-8 become U+FFFD).
    public func decode(_ ids: [Int32]) throws -> String {
        guard hasVocabulary else { throw idsOnly("GPT2Tokenizer.decode") }
        var bytes: [UInt8] = []
        for (k, id) in ids.enumerated() {
            guard id >= 0, Int(id) < tokens.count, tokens[Int(id)] != nil else {
                let why = id >= 0 && Int(id) < tokens.count ? "no token in vocab.json has this id" : "the vocabulary has ids 0..<\(vocabSize)"
                throw AttribError.indexOutOfRange(op: "GPT2Tokenizer.decode", detail:
                    "token id \(id) at position \(k): \(why) (tokenizer from \(directory))")
            }
            bytes.append(contentsOf: tokenBytes[Int(id)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Files

    private func idsOnly(_ op: String) -> AttribError {
        AttribError.invalidArgument(op: op, detail:
            "the model in \(directory) takes token ids only: it has no vocab.json and merges.txt to turn text into tokens and back; give token ids instead of text")
    }

    static func join(_ dir: String, _ file: String) -> String { dir.hasSuffix("/") ? dir + file : dir + "/" + file }

    private static func readVocab(_ path: String) throws -> [(String, Int32)] {
        let file = try MappedFile(path: path)
        guard String(validating: file.bytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil else {
            throw AttribError.io(path: path, detail: "not valid UTF-8 (expected a JSON object of token → id)")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(file.bytes) } catch {
            throw AttribError.io(path: path, detail: "not valid JSON: \(error.message)")
        }
        guard case let .object(members) = json else {
            throw AttribError.io(path: path, detail: "expected a JSON object of token → id, found \(json.summary)")
        }
        guard !members.isEmpty else { throw AttribError.io(path: path, detail: "the vocabulary is empty") }
        var seen = Set<String>()
        var out: [(String, Int32)] = []
        out.reserveCapacity(members.count)
        for (token, value) in members {
            guard case let .int(id) = value, id >= 0, id < 1 << 24 else {
                throw AttribError.io(path: path, detail: "token \(jsonQuoted(token)) has id \(value.summary); ids are integers in 0..<\(1 << 24)")
            }
            guard seen.insert(token).inserted else {
                throw AttribError.io(path: path, detail: "token \(jsonQuoted(token)) appears twice")
            }
            out.append((token, Int32(id)))
        }
        return out
    }

    /// (rank, left, right) of each merge line.
    private static func readMerges(_ path: String) throws -> [(Int, String, String)] {
        let file = try MappedFile(path: path)
        guard let text = String(validating: file.bytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw AttribError.io(path: path, detail: "not valid UTF-8")
        }
        var out: [(Int, String, String)] = []
        for (k, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.isEmpty || (k == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw AttribError.io(path: path, detail: "line \(k + 1): expected two tokens separated by one space, found \(jsonQuoted(String(line.prefix(60))))")
            }
            out.append((out.count, String(parts[0]), String(parts[1])))
        }
        return out
    }
}
