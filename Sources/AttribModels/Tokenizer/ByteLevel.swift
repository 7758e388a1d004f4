/// GPT-2's byte-to-unicode table (`bytes_to_unicode` of OpenAI's encoder.py):
/// each byte is one printable character in vocab.json and merges.txt. The bytes
/// `!`…`~`, `¡`…`¬` and `®`…`ÿ` stand for themselves; the other 68 bytes (controls,
/// space, DEL, NBSP, soft hyphen) become U+0100, U+0101, … in byte order, so the
/// space 0x20 is `Ġ` (U+0120) and the newline 0x0A is `Ċ` (U+010A).
public enum GPT2ByteLevel {
    /// The character for each byte value.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The byte a table character stands for, or nil for a character outside the table.
    public static func byte(for u: Unicode.Scalar) -> UInt8? {
        let v = u.value
        if (0x21...0x7E).contains(v) || (0xA1...0xAC).contains(v) || (0xAE...0xFF).contains(v) { return UInt8(v) }
        guard v >= 256, v < 256 + 68 else { return nil }
        return unmappedBytes[Int(v - 256)]
    }

    /// The bytes that are not their own character, in order (U+0100 + i stands for unmappedBytes[i]).
    private static let unmappedBytes: [UInt8] = (0..<256).compactMap { b in
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) ? nil : UInt8(b)
    }

    /// The byte-level form of some bytes (what vocab.json spells).
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }

    /// The bytes of a byte-level string. A character outside the table (only in
    /// added tokens such as a special token with a space) stands for its own UTF-8.
    public static func decode(_ token: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for u in token.unicodeScalars {
            if let b = byte(for: u) { out.append(b) } else { out.append(contentsOf: String(u).utf8) }
        }
        return out
    }
}
