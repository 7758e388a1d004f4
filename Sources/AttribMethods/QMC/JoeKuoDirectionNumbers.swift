import AttribCore

/// The Joe–Kuo direction numbers (new-joe-kuo-6.21201, rows for dimensions
/// 2…2048) embedded in the binary, parsed once.
///
/// Each row reads `d s a m_1 … m_s`: the primitive polynomial of degree `s`
/// over GF(2), x^s + a_1 x^(s−1) + … + a_(s−1) x + 1, with `a` holding the
/// interior coefficients a_1…a_(s−1) as bits (a_1 the most significant), and
/// the initial odd numbers m_k < 2^k. Dimension 1 (van der Corput) has no row.
public enum JoeKuoDirectionNumbers {
    /// The highest dimension the embedded table covers.
    public static let maxDimension = 2048

    struct Row: Sendable {
        let degree: Int
        let coefficients: UInt32
        let initial: [UInt32]
    }

    /// rows[k] is dimension k + 2.
    static let rows: [Row] = parse(PackageResources.joe_kuo_6_2048_txt)

    static func parse(_ bytes: [UInt8]) -> [Row] {
        var rows: [Row] = []
        rows.reserveCapacity(maxDimension - 1)
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).makeIterator()
        _ = lines.next()  // header: d s a m_i
        while let line = lines.next() {
            var fields: [UInt32] = []
            var value: UInt32 = 0, inNumber = false
            for c in line {
                if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                    value = value * 10 + UInt32(c - UInt8(ascii: "0")); inNumber = true
                } else if inNumber {
                    fields.append(value); value = 0; inNumber = false
                }
            }
            if inNumber { fields.append(value) }
            guard fields.count >= 3 else { continue }
            let s = Int(fields[1])
            precondition(fields.count == 3 + s && Int(fields[0]) == rows.count + 2,
                         "corrupt embedded Joe–Kuo table at dimension \(fields[0])")
            rows.append(Row(degree: s, coefficients: fields[2], initial: Array(fields[3...])))
        }
        precondition(rows.count == maxDimension - 1, "embedded Joe–Kuo table has \(rows.count + 1) dimensions, expected \(maxDimension)")
        return rows
    }

    /// The direction numbers v_(j) of dimension `dimension` (1-based), j = 0…bits−1,
    /// as `bits`-bit integers: v_j = m_(j+1) · 2^(bits−1−j), with m_j continued
    /// past the table by the Joe–Kuo/Bratley–Fox recurrence
    /// m_j = 2a_1 m_(j−1) ⊕ 4a_2 m_(j−2) ⊕ … ⊕ 2^(s−1)a_(s−1) m_(j−s+1) ⊕ 2^s m_(j−s) ⊕ m_(j−s).
    /// Dimension 1 has m_j = 1 for all j (van der Corput). This is exactly how
    /// scipy's `_initialize_v` builds its table.
    static func directions(dimension: Int, bits: Int) -> [UInt32] {
        precondition(dimension >= 1 && dimension <= maxDimension && bits >= 1 && bits <= 32)
        var m = [UInt32](repeating: 1, count: bits)
        if dimension > 1 {
            let row = rows[dimension - 2]
            let s = row.degree
            for j in 0..<min(s, bits) { m[j] = row.initial[j] }
            if s < bits {
                for j in s..<bits {
                    var v = m[j - s] ^ (m[j - s] << UInt32(s))
                    for k in 1..<s where (row.coefficients >> UInt32(s - 1 - k)) & 1 == 1 {
                        v ^= m[j - k] << UInt32(k)
                    }
                    m[j] = v
                }
            }
        }
        return (0..<bits).map { j in m[j] << UInt32(bits - 1 - j) }
    }
}
