/// The stages of a Hugging Face tokenizer.json that run around the model: normalizer,
/// pre-tokenizer and decoder, each limited to the components byte-level BPE (GPT-2,
/// Llama 3, Qwen2, SmolLM), sentencepiece-style BPE (Llama 2, Mistral, Gemma) and WordPiece
/// (BERT, DistilBERT) files use.
/// Everything else is refused when the file is read (``HFTokenizer``), never approximated.

/// `"normalizer"`: applied to each stretch of text between added tokens.
indirect enum HFNormalizer: Sendable {
    case nfc
    case prepend(String)
    case replace(String, String)
    /// BertNormalizer (BertText.swift).
    case bert(BertText.NormalizerOptions)
    case sequence([HFNormalizer])

    func apply(_ s: String) -> String {
        switch self {
        case let .bert(o):
            return BertText.normalize(s, o)
        case .nfc:
            // The standard library's own NFC (what String comparison uses).
            return String(decoding: s._nfcCodeUnits, as: UTF8.self)
        case let .prepend(p):
            return s.isEmpty ? s : p + s
        case let .replace(pattern, content):
            return Self.replaceAll(s, pattern, content)
        case let .sequence(list):
            return list.reduce(s) { $1.apply($0) }
        }
    }

    /// Every non-overlapping occurrence of `pattern`, left to right, replaced (by Unicode scalars,
    /// as the library compares text, not by Swift's grapheme-aware String equality).
    static func replaceAll(_ s: String, _ pattern: String, _ content: String) -> String {
        let p = Array(pattern.unicodeScalars)
        guard !p.isEmpty else { return s }
        let u = Array(s.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < u.count {
            if u[i] == p[0], i + p.count <= u.count, u[i..<(i + p.count)].elementsEqual(p) {
                out.append(contentsOf: content.unicodeScalars)
                i += p.count
            } else {
                out.append(u[i]); i += 1
            }
        }
        return String(out)
    }
}

/// A piece of text on its way through the pre-tokenizer: its scalars, and whether it
/// starts the original text (Metaspace's prepend_scheme "first" asks).
struct HFPiece {
    var scalars: [Unicode.Scalar]
    var atStart: Bool
}

/// `"pre_tokenizer"`: splits each piece into smaller ones (empty pieces are dropped, as the library does).
indirect enum HFPreTokenizer: Sendable {
    enum PrependScheme: String, Sendable { case always, first, never }

    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// Split with a pattern written out in ``SplitPattern`` and the behaviour "Isolated".
    case split(SplitPattern)
    case digits(individual: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    /// BertPreTokenizer (BertText.swift).
    case bert
    case sequence([HFPreTokenizer])

    func apply(_ pieces: [HFPiece]) -> [HFPiece] {
        var out: [HFPiece] = []
        out.reserveCapacity(pieces.count)
        for p in pieces { apply(p, into: &out) }
        return out
    }

    private func apply(_ p: HFPiece, into out: inout [HFPiece]) {
        func emit(_ r: Range<Int>, _ s: [Unicode.Scalar]) {
            guard !r.isEmpty else { return }
            out.append(HFPiece(scalars: Array(s[r]), atStart: p.atStart && r.lowerBound == 0))
        }
        switch self {
        case let .byteLevel(addPrefixSpace, useRegex):
            var s = p.scalars
            if addPrefixSpace, s.first != " " { s.insert(" ", at: 0) }
            let ranges = useRegex ? SplitPattern.gpt2.split(s) : [0..<s.count]
            for r in ranges where !r.isEmpty {
                var mapped: [Unicode.Scalar] = []
                mapped.reserveCapacity(r.count)
                for u in s[r] {
                    if u.value < 0x80 {
                        mapped.append(GPT2ByteLevel.byteToScalar[Int(u.value)])
                    } else {
                        for b in String(u).utf8 { mapped.append(GPT2ByteLevel.byteToScalar[Int(b)]) }
                    }
                }
                out.append(HFPiece(scalars: mapped, atStart: p.atStart && r.lowerBound == 0))
            }
        case let .split(pattern):
            for r in pattern.split(p.scalars) { emit(r, p.scalars) }
        case .bert:
            BertText.preTokenize(p, into: &out)
        case let .digits(individual):
            let s = p.scalars
            var i = 0
            while i < s.count {
                let isDigit = SplitPattern.kind(s[i]) == .number
                var j = i + 1
                if !(isDigit && individual) {
                    while j < s.count, (SplitPattern.kind(s[j]) == .number) == isDigit { j += 1 }
                }
                emit(i..<j, s)
                i = j
            }
        case let .metaspace(replacement, scheme, split):
            var s = p.scalars.map { $0 == " " ? replacement : $0 }
            let prepend = scheme == .always || (scheme == .first && p.atStart)
            if prepend, s.first != replacement { s.insert(replacement, at: 0) }
            guard split else { emit(0..<s.count, s); return }
            // Each replacement character starts a new piece (behaviour "MergedWithNext").
            var start = 0
            for i in 1..<max(1, s.count) where s[i] == replacement {
                emit(start..<i, s)
                start = i
            }
            emit(start..<s.count, s)
        case let .sequence(list):
            var pieces = [p]
            for stage in list { pieces = stage.apply(pieces) }
            out.append(contentsOf: pieces)
        }
    }
}

/// `"decoder"`: turns the tokens of some ids back into text, stage by stage on the list of token strings.
indirect enum HFDecoder: Sendable {
    case byteLevel
    case replace(String, String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case metaspace(replacement: Unicode.Scalar, prependScheme: HFPreTokenizer.PrependScheme)
    /// The WordPiece decoder (BertText.swift).
    case wordPiece(prefix: String, cleanup: Bool)
    case sequence([HFDecoder])

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .byteLevel:
            // A token with a character outside the byte table (an added token such as
            // "<|x y|>") stands for its own UTF-8, as a whole.
            var bytes: [UInt8] = []
            for t in tokens {
                var mine: [UInt8] = []
                var ok = true
                for u in t.unicodeScalars {
                    guard let b = GPT2ByteLevel.byte(for: u) else { ok = false; break }
                    mine.append(b)
                }
                bytes.append(contentsOf: ok ? mine : Array(t.utf8))
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case let .replace(pattern, content):
            return tokens.map { HFNormalizer.replaceAll($0, pattern, content) }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                // Bytes that are not valid UTF-8 become one U+FFFD each.
                if let s = String(validating: pending, as: UTF8.self) { out.append(s) } else {
                    out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for t in tokens {
                if let b = Self.byteToken(t) { pending.append(b) } else { flush(); out.append(t) }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case let .wordPiece(prefix, cleanup):
            return BertText.decode(tokens, prefix: prefix, cleanup: cleanup)
        case let .strip(content, start, stop):
            return tokens.map { t in
                let u = Array(t.unicodeScalars)
                var lo = 0
                while lo < min(start, u.count), u[lo] == content { lo += 1 }
                var hi = u.count
                while u.count - hi < stop, hi > lo, u[hi - 1] == content { hi -= 1 }
                var s = String.UnicodeScalarView(); s.append(contentsOf: u[lo..<hi])
                return String(s)
            }
        case let .metaspace(replacement, scheme):
            // Every replacement character is a space, except in the first token, where
            // they are dropped (the prefix space the pre-tokenizer added), unless "never".
            return tokens.enumerated().map { i, t in
                var s = String.UnicodeScalarView()
                for u in t.unicodeScalars {
                    if u == replacement {
                        if i == 0 && scheme != .never { continue }
                        s.append(" ")
                    } else {
                        s.append(u)
                    }
                }
                return String(s)
            }
        case let .sequence(list):
            return list.reduce(tokens) { $1.decodeChain($0) }
        }
    }

    /// The byte of a `<0xXX>` token (six characters, two hex digits), else nil.
    static func byteToken(_ t: String) -> UInt8? {
        let u = Array(t.utf8)
        guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"),
              u[5] == UInt8(ascii: ">") else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }
}
