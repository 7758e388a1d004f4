/// A tokenizer.json's `added_tokens` (special tokens such as `<s>` and `<|eot_id|>`, and
/// user-added ones such as `<think>`): found in the text before the model sees it, and
/// given their ids whole.
///
/// Matching is as the library's added vocabulary does it: leftmost, and the longest token
/// where several start at one place; tokens with `normalized: false` are found in the raw
/// text, those with `normalized: true` in each stretch after the normalizer (spelled as the
/// normalizer spells them). `single_word` skips a match with a word character (Unicode `\w`)
/// just before or after it; `lstrip`/`rstrip` take the whitespace before/after the match
/// into the token.
struct AddedToken: Sendable {
    var id: Int32
    var content: String
    var special: Bool
    var singleWord = false
    var lstrip = false
    var rstrip = false
    var normalized = false
}

/// A stretch of text after splitting out the added tokens.
enum AddedSplit {
    case text(String, atStart: Bool)
    case token(Int32)
}

/// One matching set: the tokens of one kind (raw or normalized) by their first UTF-8 byte,
/// longest first.
struct AddedTokenMatcher: Sendable {
    private var byFirstByte: [UInt8: [(bytes: [UInt8], token: Int)]] = [:]
    let tokens: [AddedToken]

    /// `spelled` gives each token's text as it is looked for (its normalized form, for the
    /// normalized set).
    init(_ tokens: [AddedToken], spelled: (AddedToken) -> String) {
        self.tokens = tokens
        for (k, t) in tokens.enumerated() {
            let b = Array(spelled(t).utf8)
            guard let first = b.first else { continue }
            byFirstByte[first, default: []].append((b, k))
        }
        for key in byFirstByte.keys { byFirstByte[key]!.sort { $0.bytes.count > $1.bytes.count } }
    }

    var isEmpty: Bool { byFirstByte.isEmpty }

    /// `text` cut into stretches and tokens. `atStart` says whether `text` starts the original text.
    func split(_ text: String, atStart: Bool) -> [AddedSplit] {
        if isEmpty || text.isEmpty { return text.isEmpty ? [] : [.text(text, atStart: atStart)] }
        let b = Array(text.utf8)
        var out: [AddedSplit] = []
        var offset = 0  // end of what has been emitted
        var i = 0
        func stretch(_ from: Int, _ to: Int) {
            if to > from { out.append(.text(String(decoding: b[from..<to], as: UTF8.self), atStart: atStart && from == 0)) }
        }
        while i < b.count {
            guard let candidates = byFirstByte[b[i]],
                  let hit = candidates.first(where: { i + $0.bytes.count <= b.count && b[i..<(i + $0.bytes.count)].elementsEqual($0.bytes) })
            else { i += 1; continue }
            var start = i, stop = i + hit.bytes.count
            i = stop  // the next search starts after this match, whatever stripping does
            let t = tokens[hit.token]
            if t.singleWord {
                let before = start > 0 && Self.endsWithWordCharacter(b[..<start])
                let after = stop < b.count && Self.startsWithWordCharacter(b[stop...])
                if before || after { continue }
            }
            if t.lstrip { start = max(offset, start - Self.trailingWhitespaceBytes(b[..<start])) }
            if t.rstrip { stop += Self.leadingWhitespaceBytes(b[stop...]) }
            stretch(offset, start)
            out.append(.token(t.id))
            offset = stop
        }
        stretch(offset, b.count)
        return out
    }

    private static func scalars(_ bytes: ArraySlice<UInt8>) -> String.UnicodeScalarView {
        String(decoding: bytes, as: UTF8.self).unicodeScalars
    }

    /// Unicode `\w`: alphabetic, marks, decimal digits, connector punctuation, join controls.
    static func isWordCharacter(_ u: Unicode.Scalar) -> Bool {
        let p = u.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    private static func endsWithWordCharacter(_ b: ArraySlice<UInt8>) -> Bool {
        // The last character starts at the last byte that is not a UTF-8 continuation byte.
        var k = b.endIndex - 1
        while k > b.startIndex, b[k] & 0xC0 == 0x80 { k -= 1 }
        return scalars(b[k...]).first.map(isWordCharacter) ?? false
    }

    private static func startsWithWordCharacter(_ b: ArraySlice<UInt8>) -> Bool {
        var k = b.startIndex + 1
        while k < b.endIndex, b[k] & 0xC0 == 0x80 { k += 1 }
        return scalars(b[b.startIndex..<k]).first.map(isWordCharacter) ?? false
    }

    private static func trailingWhitespaceBytes(_ b: ArraySlice<UInt8>) -> Int {
        var n = 0
        for u in scalars(b).reversed() {
            guard u.properties.isWhitespace else { break }
            n += String(u).utf8.count
        }
        return n
    }

    private static func leadingWhitespaceBytes(_ b: ArraySlice<UInt8>) -> Int {
        var n = 0
        for u in scalars(b) {
            guard u.properties.isWhitespace else { break }
            n += String(u).utf8.count
        }
        return n
    }
}
