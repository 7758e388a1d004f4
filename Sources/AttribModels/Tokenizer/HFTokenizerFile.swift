import AttribCore
import FoundationEssentials

/// Reading tokenizer.json into an ``HFTokenizer``. Every component is checked against what
/// ``HFPipeline`` and ``BPEModel`` implement; errors name the file and the component by its
/// place in the file (`pre_tokenizer.pretokenizers[0]`, `model.merges[12]`).
extension HFTokenizer {
    /// Reads `path`: a tokenizer.json, or a directory holding one.
    public init(path: String) throws {
        var isDir = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw AttribError.io(path: path, detail: "no such file (expected a Hugging Face tokenizer.json or a directory holding one)")
        }
        let file = isDir ? GPT2Tokenizer.join(path, "tokenizer.json") : path
        if isDir && !FileManager.default.fileExists(atPath: file) {
            throw AttribError.io(path: file, detail: "missing: the directory has no tokenizer.json")
        }
        let mapped = try MappedFile(path: file)
        func fail(_ detail: String) -> AttribError { AttribError.io(path: file, detail: detail) }
        guard String(validating: mapped.bytes.bindMemory(to: UInt8.self), as: UTF8.self) != nil else {
            throw fail("not valid UTF-8 (expected tokenizer.json)")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(mapped.bytes) } catch {
            throw fail("not valid JSON: \(error.message)")
        }
        switch Self.assembleResult(json, source: file) {
        case let .success(t): self = t
        case let .failure(e): throw fail(e.message)
        }
    }

    private static func assembleResult(_ json: JSONValue, source: String) -> Result<HFTokenizer, TokenizerJSONFailure> {
        do { return .success(try assemble(json, source: source)) } catch { return .failure(error) }
    }

    private static func assemble(_ json: JSONValue, source: String) throws(TokenizerJSONFailure) -> HFTokenizer {
        let root = try Obj(json, at: "the file")
        let normalizer = try root.optional("normalizer").map { v throws(TokenizerJSONFailure) in try readNormalizer(v, at: "normalizer") }
        let preTokenizer = try root.optional("pre_tokenizer").map { v throws(TokenizerJSONFailure) in try readPreTokenizer(v, at: "pre_tokenizer") }
        let decoder = try root.optional("decoder").map { v throws(TokenizerJSONFailure) in try readDecoder(v, at: "decoder") }
        let model = try readModel(try root.required("model"), at: "model")
        var added: [AddedToken] = []
        if let list = try root.optional("added_tokens") {
            guard case let .array(items) = list else { throw TokenizerJSONFailure("added_tokens: expected an array, found \(list.summary)") }
            for (k, item) in items.enumerated() {
                let at = "added_tokens[\(k)]"
                let o = try Obj(item, at: at)
                let id = try o.int("id")
                guard id >= 0, id < 1 << 24 else { throw TokenizerJSONFailure("\(at).id: \(id) is not an id in 0..<\(1 << 24)") }
                let content = try o.string("content")
                guard !content.isEmpty else { throw TokenizerJSONFailure("\(at).content is empty") }
                added.append(AddedToken(id: Int32(id), content: content, special: try o.bool("special", default: false),
                                        singleWord: try o.bool("single_word", default: false), lstrip: try o.bool("lstrip", default: false),
                                        rstrip: try o.bool("rstrip", default: false), normalized: try o.bool("normalized", default: false)))
            }
        }
        var prefix: [Int32] = [], suffix: [Int32] = []
        if let post = try root.optional("post_processor") {
            try readPostProcessor(post, at: "post_processor", prefix: &prefix, suffix: &suffix)
        }
        return HFTokenizer(source: source, normalizer: normalizer, preTokenizer: preTokenizer, model: model, decoder: decoder,
                           added: added, prefixIDs: prefix, suffixIDs: suffix)
    }

    // MARK: Components

    private static func readNormalizer(_ v: JSONValue, at: String) throws(TokenizerJSONFailure) -> HFNormalizer {
        let o = try Obj(v, at: at)
        switch try o.type() {
        case "NFC": return .nfc
        case "BertNormalizer":
            let lowercase = try o.bool("lowercase", default: true)
            return .bert(BertText.NormalizerOptions(cleanText: try o.bool("clean_text", default: true),
                                                    handleChineseChars: try o.bool("handle_chinese_chars", default: true),
                                                    stripAccents: try o.bool("strip_accents", default: lowercase), lowercase: lowercase))
        case "Prepend": return .prepend(try o.string("prepend"))
        case "Replace":
            return .replace(try stringPattern(try o.required("pattern"), at: at + ".pattern", component: "normalizer Replace"),
                            try o.string("content"))
        case "Sequence":
            return .sequence(try o.list("normalizers").enumerated().map { k, item throws(TokenizerJSONFailure) in
                try readNormalizer(item, at: "\(at).normalizers[\(k)]")
            })
        case let t: throw unsupported(at, "normalizer", t, "NFC, Prepend, Replace, BertNormalizer, Sequence")
        }
    }

    private static func readPreTokenizer(_ v: JSONValue, at: String) throws(TokenizerJSONFailure) -> HFPreTokenizer {
        let o = try Obj(v, at: at)
        switch try o.type() {
        case "ByteLevel":
            return .byteLevel(addPrefixSpace: try o.bool("add_prefix_space", default: true), useRegex: try o.bool("use_regex", default: true))
        case "Split":
            guard case let .object(pattern) = try o.required("pattern"), pattern.count == 1, pattern[0].key == "Regex",
                  case let .string(source) = pattern[0].value else {
                throw TokenizerJSONFailure("\(at): pre-tokenizer Split is supported with a {\"Regex\": …} pattern only")
            }
            guard let known = SplitPattern(source: source) else {
                throw TokenizerJSONFailure("\(at): pre-tokenizer Split with the pattern \(jsonQuoted(source)) is not supported (supported: the patterns of GPT-2, Llama 3 and Qwen2)")
            }
            let behavior = try o.string("behavior")
            guard behavior == "Isolated" else {
                throw TokenizerJSONFailure("\(at): pre-tokenizer Split with behavior \(jsonQuoted(behavior)) is not supported (supported: \"Isolated\")")
            }
            guard try !o.bool("invert", default: false) else { throw TokenizerJSONFailure("\(at): pre-tokenizer Split with invert: true is not supported") }
            return .split(known)
        case "Digits":
            return .digits(individual: try o.bool("individual_digits", default: false))
        case "BertPreTokenizer": return .bert
        case "Metaspace":
            return .metaspace(replacement: try replacement(o, at: at), prependScheme: try prependScheme(o, at: at),
                              split: try o.bool("split", default: true))
        case "Sequence":
            return .sequence(try o.list("pretokenizers").enumerated().map { k, item throws(TokenizerJSONFailure) in
                try readPreTokenizer(item, at: "\(at).pretokenizers[\(k)]")
            })
        case let t: throw unsupported(at, "pre-tokenizer", t, "ByteLevel, Split, Digits, Metaspace, BertPreTokenizer, Sequence")
        }
    }

    private static func readDecoder(_ v: JSONValue, at: String) throws(TokenizerJSONFailure) -> HFDecoder {
        let o = try Obj(v, at: at)
        switch try o.type() {
        case "ByteLevel": return .byteLevel
        case "Replace":
            return .replace(try stringPattern(try o.required("pattern"), at: at + ".pattern", component: "decoder Replace"),
                            try o.string("content"))
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "WordPiece": return .wordPiece(prefix: try o.optional("prefix") == nil ? "##" : try o.string("prefix"), cleanup: try o.bool("cleanup", default: true))
        case "Strip":
            let content = try o.string("content")
            guard content.unicodeScalars.count == 1 else { throw TokenizerJSONFailure("\(at).content: expected one character, found \(jsonQuoted(content))") }
            let start = try o.int("start"), stop = try o.int("stop")
            guard start >= 0, stop >= 0 else { throw TokenizerJSONFailure("\(at): start and stop must not be negative") }
            return .strip(content: content.unicodeScalars.first!, start: start, stop: stop)
        case "Metaspace":
            return .metaspace(replacement: try replacement(o, at: at), prependScheme: try prependScheme(o, at: at))
        case "Sequence":
            return .sequence(try o.list("decoders").enumerated().map { k, item throws(TokenizerJSONFailure) in
                try readDecoder(item, at: "\(at).decoders[\(k)]")
            })
        case let t: throw unsupported(at, "decoder", t, "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, WordPiece, Sequence")
        }
    }

    private static func readPostProcessor(_ v: JSONValue, at: String, prefix: inout [Int32], suffix: inout [Int32]) throws(TokenizerJSONFailure) {
        let o = try Obj(v, at: at)
        switch try o.type() {
        case "ByteLevel": return  // offsets only
        case "BertProcessing", "RobertaProcessing":
            // {"cls": [token, id], "sep": [token, id]}: cls $A sep.
            func pair(_ key: String) throws(TokenizerJSONFailure) -> Int32 {
                guard case let .array(p) = try o.required(key), p.count == 2, case let .int(id) = p[1], id >= 0, id < 1 << 24 else {
                    throw TokenizerJSONFailure("\(at).\(key): expected [token, id]")
                }
                return Int32(id)
            }
            prefix = [try pair("cls")] + prefix
            suffix += [try pair("sep")]
        case "Sequence":
            for (k, item) in try o.list("processors").enumerated() {
                try readPostProcessor(item, at: "\(at).processors[\(k)]", prefix: &prefix, suffix: &suffix)
            }
        case "TemplateProcessing":
            var ids: [String: [Int32]] = [:]
            let specials = try Obj(try o.required("special_tokens"), at: at + ".special_tokens")
            for (name, entry) in specials.members {
                let e = try Obj(entry, at: "\(at).special_tokens.\(name)")
                guard let list = try e.required("ids").intArray else { throw TokenizerJSONFailure("\(at).special_tokens.\(name).ids: expected integers") }
                ids[name] = list.map { Int32(truncatingIfNeeded: $0) }
            }
            var before: [Int32] = [], after: [Int32] = [], seenA = false
            for (k, item) in try o.list("single").enumerated() {
                let it = try Obj(item, at: "\(at).single[\(k)]")
                guard it.members.count == 1 else { throw TokenizerJSONFailure("\(at).single[\(k)]: expected {\"SpecialToken\": …} or {\"Sequence\": …}") }
                let (kind, body) = it.members[0]
                let b = try Obj(body, at: "\(at).single[\(k)].\(kind)")
                switch kind {
                case "SpecialToken":
                    let name = try b.string("id")
                    guard let list = ids[name] else { throw TokenizerJSONFailure("\(at).single[\(k)]: special token \(jsonQuoted(name)) is not in \(at).special_tokens") }
                    if seenA { after += list } else { before += list }
                case "Sequence":
                    guard try b.string("id") == "A", !seenA else { throw TokenizerJSONFailure("\(at).single: expected the sequence $A once") }
                    seenA = true
                default: throw TokenizerJSONFailure("\(at).single[\(k)]: unknown item \(jsonQuoted(kind))")
                }
            }
            guard seenA else { throw TokenizerJSONFailure("\(at).single has no $A") }
            // A Sequence of templates wraps the earlier one's result.
            prefix = before + prefix
            suffix += after
        case let t: throw unsupported(at, "post-processor", t, "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence")
        }
    }

    private static func readModel(_ v: JSONValue, at: String) throws(TokenizerJSONFailure) -> HFModel {
        let o = try Obj(v, at: at)
        let type = try o.optional("type").map { t throws(TokenizerJSONFailure) -> String in
            guard case let .string(s) = t else { throw TokenizerJSONFailure("\(at).type: expected a string") }
            return s
        } ?? "BPE"
        if type == "WordPiece" { return try readWordPiece(o, at: at) }
        guard type == "BPE" else { throw unsupported(at, "model", type, "BPE, WordPiece") }
        if let d = try o.optional("dropout") {
            switch d {
            case .int(0): break
            case let .double(x) where x == 0: break
            default: throw TokenizerJSONFailure("\(at).dropout \(d.summary): BPE dropout (random merges) is not supported")
            }
        }
        let vocab = try readVocab(o, at: at)
        var merges: [(String, String)] = []
        let list = try o.list("merges", default: [])
        merges.reserveCapacity(list.count)
        for (k, m) in list.enumerated() {
            switch m {
            case let .string(s):
                // "a b": tokens hold no spaces in this form (byte-level spells a space Ġ, sentencepiece ▁).
                guard let space = s.firstIndex(of: " ") else {
                    throw TokenizerJSONFailure("\(at).merges[\(k)]: expected \"left right\", found \(jsonQuoted(s))")
                }
                merges.append((String(s[..<space]), String(s[s.index(after: space)...])))
            case let .array(pair):
                guard pair.count == 2, case let .string(a) = pair[0], case let .string(b) = pair[1] else {
                    throw TokenizerJSONFailure("\(at).merges[\(k)]: expected [left, right], found \(m.summary)")
                }
                merges.append((a, b))
            default:
                throw TokenizerJSONFailure("\(at).merges[\(k)]: expected \"left right\" or [left, right], found \(m.summary)")
            }
        }
        func optString(_ key: String) throws(TokenizerJSONFailure) -> String? {
            guard let v = try o.optional(key) else { return nil }
            guard case let .string(s) = v else { throw TokenizerJSONFailure("\(at).\(key): expected a string, found \(v.summary)") }
            return s
        }
        let unk = try optString("unk_token"), fuseUnk = try o.bool("fuse_unk", default: false)
        let byteFallback = try o.bool("byte_fallback", default: false), ignoreMerges = try o.bool("ignore_merges", default: false)
        let prefix = try optString("continuing_subword_prefix"), suffix = try optString("end_of_word_suffix")
        do throws(BPEModel.Failure) {
            return .bpe(try BPEModel(vocab: vocab, merges: merges, unkToken: unk, fuseUnk: fuseUnk, byteFallback: byteFallback,
                                     ignoreMerges: ignoreMerges, prefix: prefix, suffix: suffix))
        } catch {
            throw TokenizerJSONFailure(error.message)
        }
    }

    private static func readVocab(_ o: Obj, at: String) throws(TokenizerJSONFailure) -> [String: Int32] {
        let vocabObj = try Obj(try o.required("vocab"), at: at + ".vocab")
        var vocab: [String: Int32] = [:]
        vocab.reserveCapacity(vocabObj.members.count)
        for (token, idValue) in vocabObj.members {
            guard case let .int(id) = idValue, id >= 0, id < 1 << 24 else {
                throw TokenizerJSONFailure("\(at).vocab: token \(jsonQuoted(token)) has id \(idValue.summary); ids are integers in 0..<\(1 << 24)")
            }
            vocab[token] = Int32(id)
        }
        return vocab
    }

    private static func readWordPiece(_ o: Obj, at: String) throws(TokenizerJSONFailure) -> HFModel {
        let vocab = try readVocab(o, at: at)
        let prefix = try o.optional("continuing_subword_prefix") == nil ? "##" : try o.string("continuing_subword_prefix")
        let maxChars = try o.optional("max_input_chars_per_word") == nil ? 100 : try o.int("max_input_chars_per_word")
        let unk = try o.optional("unk_token") == nil ? "[UNK]" : try o.string("unk_token")
        do throws(WordPieceModel.Failure) {
            return .wordPiece(try WordPieceModel(vocab: vocab, unkToken: unk, prefix: prefix, maxInputCharsPerWord: maxChars))
        } catch {
            throw TokenizerJSONFailure(error.message)
        }
    }

    // MARK: Small readers

    private static func unsupported(_ at: String, _ what: String, _ type: String, _ supported: String) -> TokenizerJSONFailure {
        TokenizerJSONFailure("\(at): \(what) \(jsonQuoted(type)) is not supported (supported: \(supported))")
    }

    private static func stringPattern(_ v: JSONValue, at: String, component: String) throws(TokenizerJSONFailure) -> String {
        guard case let .object(m) = v, m.count == 1, m[0].key == "String", case let .string(s) = m[0].value, !s.isEmpty else {
            throw TokenizerJSONFailure("\(at): \(component) is supported with a {\"String\": …} pattern only, found \(v.summary)")
        }
        return s
    }

    private static func replacement(_ o: Obj, at: String) throws(TokenizerJSONFailure) -> Unicode.Scalar {
        let r = try o.string("replacement")
        guard r.unicodeScalars.count == 1 else { throw TokenizerJSONFailure("\(at).replacement: expected one character, found \(jsonQuoted(r))") }
        return r.unicodeScalars.first!
    }

    /// prepend_scheme, or the older add_prefix_space (true: "always").
    private static func prependScheme(_ o: Obj, at: String) throws(TokenizerJSONFailure) -> HFPreTokenizer.PrependScheme {
        if let v = try o.optional("prepend_scheme") {
            guard case let .string(s) = v, let scheme = HFPreTokenizer.PrependScheme(rawValue: s) else {
                throw TokenizerJSONFailure("\(at).prepend_scheme: expected \"always\", \"first\" or \"never\", found \(v.summary)")
            }
            return scheme
        }
        return try o.bool("add_prefix_space", default: true) ? .always : .never
    }
}

struct TokenizerJSONFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A JSON object of tokenizer.json, with its place in the file for messages.
private struct Obj {
    let members: [(key: String, value: JSONValue)]
    let at: String

    init(_ v: JSONValue, at: String) throws(TokenizerJSONFailure) {
        guard case let .object(m) = v else { throw TokenizerJSONFailure("\(at): expected an object, found \(v.summary)") }
        members = m
        self.at = at
    }

    /// The member, or nil where it is absent or null.
    func optional(_ key: String) throws(TokenizerJSONFailure) -> JSONValue? {
        guard let v = members.first(where: { $0.key == key })?.value, v != .null else { return nil }
        return v
    }

    func required(_ key: String) throws(TokenizerJSONFailure) -> JSONValue {
        guard let v = try optional(key) else { throw TokenizerJSONFailure("\(at): missing \"\(key)\"") }
        return v
    }

    func type() throws(TokenizerJSONFailure) -> String { try string("type") }

    func string(_ key: String) throws(TokenizerJSONFailure) -> String {
        let v = try required(key)
        guard case let .string(s) = v else { throw TokenizerJSONFailure("\(at).\(key): expected a string, found \(v.summary)") }
        return s
    }

    func int(_ key: String) throws(TokenizerJSONFailure) -> Int {
        let v = try required(key)
        guard case let .int(i) = v else { throw TokenizerJSONFailure("\(at).\(key): expected an integer, found \(v.summary)") }
        return i
    }

    func bool(_ key: String, default d: Bool) throws(TokenizerJSONFailure) -> Bool {
        guard let v = try optional(key) else { return d }
        guard case let .bool(b) = v else { throw TokenizerJSONFailure("\(at).\(key): expected true or false, found \(v.summary)") }
        return b
    }

    func list(_ key: String, default d: [JSONValue]? = nil) throws(TokenizerJSONFailure) -> [JSONValue] {
        guard let v = try optional(key) else {
            if let d { return d }
            throw TokenizerJSONFailure("\(at): missing \"\(key)\"")
        }
        guard case let .array(a) = v else { throw TokenizerJSONFailure("\(at).\(key): expected an array, found \(v.summary)") }
        return a
    }
}
