/// GPT-2's pre-tokenizer, written out by hand: the text is cut into the pieces
/// that the regular expression
///
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///
/// finds left to right, and BPE then runs inside each piece. `\p{L}` is a letter
/// (general category L*), `\p{N}` a number (N*: Nd, Nl, No) and `\s` a character
/// with the Unicode White_Space property (what Hugging Face's `tokenizers` and
/// the `regex` module use: tab through carriage return, space, U+0085, U+00A0,
/// U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000; not U+001C–U+001F).
/// Character properties come from the Swift runtime's Unicode tables, which can
/// be newer than those of a given Python build for characters assigned recently.
public enum GPT2PreTokenizer {
    /// One piece: its text and where it starts (offsets in Unicode scalars and UTF-8 bytes of the whole text).
    public struct Piece: Equatable, Sendable {
        public let text: String
        public let scalarOffset: Int
        public let byteOffset: Int
    }

    enum Kind { case letter, number, space, other }

    static func kind(_ u: Unicode.Scalar) -> Kind {
        let p = u.properties
        if p.isWhitespace { return .space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return .other
        }
    }

    /// The pieces of `text`, in order; their texts concatenate to `text`.
    public static func split(_ text: String) -> [String] { pieces(text).map(\.text) }

    /// The pieces of `text` with their offsets.
    public static func pieces(_ text: String, scalarBase: Int = 0, byteBase: Int = 0) -> [Piece] {
        let s = Array(text.unicodeScalars)
        let n = s.count
        var kinds = [Kind](); kinds.reserveCapacity(n)
        for u in s { kinds.append(kind(u)) }
        var out: [Piece] = []
        var i = 0
        var byteOffset = byteBase
        func run(_ from: Int, _ k: Kind) -> Int {
            var j = from
            while j < n, kinds[j] == k { j += 1 }
            return j
        }
        while i < n {
            let end: Int
            if s[i] == "'", let len = contraction(s, i) {
                end = i + len
            } else if kinds[i] != .space {
                end = run(i, kinds[i])
            } else if s[i] == " ", i + 1 < n, kinds[i + 1] != .space {
                end = run(i + 1, kinds[i + 1])  // " ?\p{L}+", " ?\p{N}+" or " ?[^\s\p{L}\p{N}]+"
            } else {
                let j = run(i, .space)
                // \s+(?!\S): the whole run at the end of the text, else all of it but its
                // last character (which then starts the next piece); \s+ for a run of one.
                end = j == n || j - i == 1 ? j : j - 1
            }
            var piece = String.UnicodeScalarView()
            piece.append(contentsOf: s[i..<end])
            let str = String(piece)
            out.append(Piece(text: str, scalarOffset: scalarBase + i, byteOffset: byteOffset))
            byteOffset += str.utf8.count
            i = end
        }
        return out
    }

    /// The length of the contraction ('s 't 're 've 'm 'll 'd, lower case only) at `i`, if any.
    private static func contraction(_ s: [Unicode.Scalar], _ i: Int) -> Int? {
        guard i + 1 < s.count else { return nil }
        switch s[i + 1] {
        case "s", "t", "m", "d": return 2
        case "r", "v":
            return i + 2 < s.count && s[i + 2] == "e" ? 3 : nil
        case "l":
            return i + 2 < s.count && s[i + 2] == "l" ? 3 : nil
        default: return nil
        }
    }
}
