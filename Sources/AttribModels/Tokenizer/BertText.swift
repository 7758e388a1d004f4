/// The text stages of BERT-style tokenizer.json files (BertNormalizer, BertPreTokenizer, the
/// WordPiece decoder), as Hugging Face's tokenizers runs them, by Unicode scalars.
enum BertText {
    struct NormalizerOptions: Sendable {
        var cleanText: Bool, handleChineseChars: Bool, stripAccents: Bool, lowercase: Bool
    }

    /// BertNormalizer, in the library's order: control characters removed and whitespace made
    /// " " (clean_text); CJK ideographs spaced (handle_chinese_chars); NFD and nonspacing marks
    /// removed (strip_accents, which defaults to lowercase); each scalar lowercased by its full
    /// mapping.
    static func normalize(_ s: String, _ o: NormalizerOptions) -> String {
        var u = Array(s.unicodeScalars)
        if o.cleanText {
            u = u.compactMap { c in
                if c.value == 0 || c.value == 0xFFFD || isControl(c) { return nil }
                return isWhitespace(c) ? " " : c
            }
        }
        if o.handleChineseChars {
            var spaced: [Unicode.Scalar] = []
            spaced.reserveCapacity(u.count)
            for c in u {
                if isChinese(c) { spaced += [" ", c, " "] } else { spaced.append(c) }
            }
            u = spaced
        }
        if o.stripAccents {
            var v = String.UnicodeScalarView(); v.append(contentsOf: u)
            u = Array(UnicodeNFD.decompose(String(v)).unicodeScalars).filter { $0.properties.generalCategory != .nonspacingMark }
        }
        var out = String.UnicodeScalarView()
        for c in u {
            if o.lowercase { out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars) } else { out.append(c) }
        }
        return String(out)
    }

    /// BertPreTokenizer: split at whitespace (dropped), every punctuation character a piece of
    /// its own (ASCII punctuation, which counts $+<=>^`|~, and Unicode's P* categories).
    static func preTokenize(_ p: HFPiece, into out: inout [HFPiece]) {
        var start = 0
        let s = p.scalars
        func emit(_ lo: Int, _ hi: Int) {
            if hi > lo { out.append(HFPiece(scalars: Array(s[lo..<hi]), atStart: p.atStart && lo == 0)) }
        }
        for (i, c) in s.enumerated() {
            if isWhitespace(c) { emit(start, i); start = i + 1 }
            else if isPunctuation(c) { emit(start, i); emit(i, i + 1); start = i + 1 }
        }
        emit(start, s.count)
    }

    /// The WordPiece decoder: tokens after the first joined by a space unless they carry the
    /// continuation prefix (which is dropped), then, with `cleanup`, spaces before
    /// punctuation and English contractions removed, token by token, as the library does.
    static func decode(_ tokens: [String], prefix: String, cleanup: Bool) -> [String] {
        tokens.enumerated().map { i, t in
            var s = t
            if i != 0 { s = s.hasPrefix(prefix) ? String(s.dropFirst(prefix.count)) : " " + s }
            guard cleanup else { return s }
            for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                           (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
                s = HFNormalizer.replaceAll(s, a, b)
            }
            return s
        }
    }

    /// White_Space, and the tab, newline and carriage return the library counts with it.
    static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        c == "\t" || c == "\n" || c == "\r" || c.properties.isWhitespace
    }

    /// General category C (Cc, Cf, Cs, Co, Cn) other than tab, newline and carriage return.
    static func isControl(_ c: Unicode.Scalar) -> Bool {
        if c == "\t" || c == "\n" || c == "\r" { return false }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    static func isPunctuation(_ c: Unicode.Scalar) -> Bool {
        if c.isASCII, let b = UInt8(exactly: c.value), (0x21...0x2F).contains(b) || (0x3A...0x40).contains(b)
            || (0x5B...0x60).contains(b) || (0x7B...0x7E).contains(b) { return true }
        switch c.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
             .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    /// The CJK Unified Ideographs blocks and their extensions and compatibility forms, as BERT's
    /// original tokenizer lists them (not Japanese kana or Hangul).
    static func isChinese(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}
