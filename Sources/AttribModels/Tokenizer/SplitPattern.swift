/// The pre-tokenizer regular expressions of byte-level BPE models, written out by hand
/// (as ``GPT2PreTokenizer`` does for GPT-2) rather than run by a regex engine: a
/// tokenizer.json names its pattern as a string, and only these strings are accepted,
/// so an unknown pattern is an error instead of a guess.
///
///     gpt2:    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
///     llama3:  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///     qwen2:   the same with \p{N} for \p{N}{1,3} (one digit a piece)
///
/// Each alternative is tried in order at a position, as a backtracking engine does
/// (leftmost-first), with the backtracking worked out by hand where it matters
/// (`\s*[\r\n]+` and `\s+(?!\S)`). Classes as in Hugging Face's tokenizers:
/// `\p{L}` general category L*, `\p{N}` N*, `\s` the White_Space property.
enum SplitPattern: Sendable, Equatable {
    case gpt2
    /// Llama 3's pattern; `maxDigits` is 3 for Llama 3 and 1 for Qwen2.
    case llama3(maxDigits: Int)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The pattern a regex source string spells, or nil for one not written out here.
    init?(source: String) {
        switch source {
        case Self.gpt2Source: self = .gpt2
        case Self.llama3Source: self = .llama3(maxDigits: 3)
        case Self.qwen2Source: self = .llama3(maxDigits: 1)
        default: return nil
        }
    }

    enum Kind: UInt8 { case letter, number, space, other }

    static func kind(_ u: Unicode.Scalar) -> Kind {
        // ASCII first: most text is, and the property lookups are slower.
        let v = u.value
        if v < 0x80 {
            switch v {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0D, 0x20: return .space
            default: return .other
            }
        }
        switch GPT2PreTokenizer.kind(u) {
        case .letter: return .letter
        case .number: return .number
        case .space: return .space
        case .other: return .other
        }
    }

    /// The pieces of `s` (ranges of scalar indices, in order, covering all of `s`): each
    /// match, and any text between matches as a piece of its own (split behaviour "Isolated").
    func split(_ s: [Unicode.Scalar]) -> [Range<Int>] {
        let n = s.count
        var kinds = [Kind](); kinds.reserveCapacity(n)
        for u in s { kinds.append(Self.kind(u)) }
        var out: [Range<Int>] = []
        var i = 0, gapStart = 0
        while i < n {
            if let end = matchEnd(s, kinds, i), end > i {
                if gapStart < i { out.append(gapStart..<i) }
                out.append(i..<end)
                i = end; gapStart = end
            } else {
                i += 1
            }
        }
        if gapStart < n { out.append(gapStart..<n) }
        return out
    }

    /// Where the match starting at `i` ends, or nil where no alternative matches there.
    private func matchEnd(_ s: [Unicode.Scalar], _ k: [Kind], _ i: Int) -> Int? {
        let n = s.count
        func run(_ from: Int, _ kind: Kind) -> Int {
            var j = from
            while j < n, k[j] == kind { j += 1 }
            return j
        }
        func isCRLF(_ j: Int) -> Bool { s[j] == "\r" || s[j] == "\n" }
        switch self {
        case .gpt2:
            if s[i] == "'", let len = Self.contraction(s, i, caseInsensitive: false) { return i + len }
            if k[i] != .space { return run(i, k[i]) }
            // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" with the optional space.
            if s[i] == " ", i + 1 < n, k[i + 1] != .space { return run(i + 1, k[i + 1]) }
            return Self.trailingSpace(run(i, .space), i, n)
        case let .llama3(maxDigits):
            if s[i] == "'", let len = Self.contraction(s, i, caseInsensitive: true) { return i + len }
            // [^\r\n\p{L}\p{N}]?\p{L}+
            if k[i] == .letter { return run(i, .letter) }
            if k[i] != .number, !isCRLF(i), i + 1 < n, k[i + 1] == .letter { return run(i + 1, .letter) }
            // \p{N}{1,maxDigits}
            if k[i] == .number {
                var j = i
                while j < n, j - i < maxDigits, k[j] == .number { j += 1 }
                return j
            }
            // " ?[^\s\p{L}\p{N}]+[\r\n]*"
            var otherStart: Int? = nil
            if k[i] == .other { otherStart = i } else if s[i] == " ", i + 1 < n, k[i + 1] == .other { otherStart = i + 1 }
            if let start = otherStart {
                var j = run(start, .other)
                while j < n, isCRLF(j) { j += 1 }
                return j
            }
            // Here s[i] is whitespace.
            let j = run(i, .space)
            // \s*[\r\n]+: the greedy \s* gives back characters until one is CR or LF, so
            // the match ends after the run's last CR or LF.
            var last = j - 1
            while last >= i, !isCRLF(last) { last -= 1 }
            if last >= i { return last + 1 }
            return Self.trailingSpace(j, i, n)
        }
    }

    /// `\s+(?!\S)|\s+` for the whitespace run i..<j: all of it at the end of the text,
    /// else all but its last character (which then starts the next piece), else (a run
    /// of one) the run itself.
    private static func trailingSpace(_ j: Int, _ i: Int, _ n: Int) -> Int {
        j == n || j - i == 1 ? j : j - 1
    }

    /// The length of the contraction ('s 't 're 've 'm 'll 'd) at `i`, if any. Case-insensitive
    /// matching folds as Unicode does, so the long s (U+017F) is an s there.
    private static func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int? {
        guard i + 1 < s.count else { return nil }
        func fold(_ u: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive else { return u }
            if u == "\u{17F}" { return "s" }
            if u.value >= 0x41 && u.value <= 0x5A { return Unicode.Scalar(u.value + 32)! }
            return u
        }
        switch fold(s[i + 1]) {
        case "s", "t", "m", "d": return 2
        case "r", "v": return i + 2 < s.count && fold(s[i + 2]) == "e" ? 3 : nil
        case "l": return i + 2 < s.count && fold(s[i + 2]) == "l" ? 3 : nil
        default: return nil
        }
    }
}
