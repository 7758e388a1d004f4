/// A Python literal as it appears in a `.npy` header.
enum PyValue: Equatable, Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([PyValue])
    case list([PyValue])
    case dict([String: PyValue])

    /// The integers of a list of `.int` values, else nil.
    static func integers(_ items: [PyValue]) -> [Int]? {
        var out: [Int] = []
        for v in items { guard case let .int(i) = v else { return nil }; out.append(i) }
        return out
    }

    var summary: String {
        switch self {
        case let .string(s): return "'\(s)'"
        case let .int(i): return String(i)
        case let .bool(b): return b ? "True" : "False"
        case .none: return "None"
        case let .tuple(t): return "(" + t.map(\.summary).joined(separator: ", ") + (t.count == 1 ? ",)" : ")")
        case let .list(l): return "[" + l.map(\.summary).joined(separator: ", ") + "]"
        case .dict: return "a dict"
        }
    }
}

/// Parses the subset of Python literals NumPy writes in `.npy` headers:
/// dicts with string keys, strings, integers, True/False/None, tuples and lists.
struct PyLiteralParser {
    struct Failure: Error { let message: String }

    private let s: [Unicode.Scalar]
    private var i = 0, depth = 0

    static func parseDict(_ text: String) throws(Failure) -> [String: PyValue] {
        var p = PyLiteralParser(s: Array(text.unicodeScalars))
        p.skipSpace()
        guard p.peek == "{" else { throw p.fail("expected '{'") }
        guard case let .dict(d) = try p.value() else { throw p.fail("expected a dict") }
        p.skipSpace()
        guard p.i == p.s.count else { throw p.fail("unexpected text after the dict") }
        return d
    }

    private init(s: [Unicode.Scalar]) { self.s = s }
    private var peek: Unicode.Scalar? { i < s.count ? s[i] : nil }
    private func fail(_ what: String) -> Failure { Failure(message: "\(what) at character \(i)") }

    private mutating func skipSpace() {
        while let c = peek, c == " " || c == "\n" || c == "\t" || c == "\r" || c == "\0" { i += 1 }
    }

    private mutating func value() throws(Failure) -> PyValue {
        skipSpace()
        guard let c = peek else { throw fail("unexpected end of header") }
        switch c {
        case "{":
            return .dict(try dict())
        case "(", "[":
            let items = try sequence(close: c == "(" ? ")" : "]")
            return c == "(" ? .tuple(items) : .list(items)
        case "'", "\"":
            return .string(try string())
        case "-", "0"..."9":
            let start = i
            if c == "-" { i += 1 }
            while let d = peek, ("0"..."9").contains(d) { i += 1 }
            if peek == "L" { i += 1 }   // Python 2 long
            let text = String(String.UnicodeScalarView(s[start..<i])).replacingLastL
            guard let v = Int(text) else { i = start; throw fail("invalid integer") }
            return .int(v)
        default:
            for (word, v) in [("True", PyValue.bool(true)), ("False", .bool(false)), ("None", .none)] {
                let w = Array(word.unicodeScalars)
                if i + w.count <= s.count, Array(s[i..<(i + w.count)]) == w { i += w.count; return v }
            }
            throw fail("unexpected '\(c)'")
        }
    }

    private mutating func nest() throws(Failure) {
        depth += 1
        guard depth <= 32 else { throw fail("nesting too deep") }
    }

    private mutating func dict() throws(Failure) -> [String: PyValue] {
        try nest(); defer { depth -= 1 }
        i += 1
        var out: [String: PyValue] = [:]
        while true {
            skipSpace()
            if peek == "}" { i += 1; return out }
            guard peek == "'" || peek == "\"" else { throw fail("expected a string key") }
            let key = try string()
            guard out[key] == nil else { throw fail("duplicate key '\(key)'") }
            skipSpace()
            guard peek == ":" else { throw fail("expected ':'") }
            i += 1
            out[key] = try value()
            skipSpace()
            if peek == "," { i += 1; continue }
            guard peek == "}" else { throw fail("expected ',' or '}'") }
        }
    }

    private mutating func sequence(close: Unicode.Scalar) throws(Failure) -> [PyValue] {
        try nest(); defer { depth -= 1 }
        i += 1
        var out: [PyValue] = []
        while true {
            skipSpace()
            if peek == close { i += 1; return out }
            out.append(try value())
            skipSpace()
            if peek == "," { i += 1; continue }
            guard peek == close else { throw fail("expected ',' or '\(close)'") }
        }
    }

    private mutating func string() throws(Failure) -> String {
        let quote = s[i]
        i += 1
        var out = String.UnicodeScalarView()
        while true {
            guard let c = peek else { throw fail("unterminated string") }
            i += 1
            if c == quote { return String(out) }
            if c == "\\" {
                guard let e = peek else { throw fail("unterminated string") }
                i += 1
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "\\", "'", "\"": out.append(e)
                default: throw fail("unsupported escape '\\\(e)'")
                }
            } else {
                out.append(c)
            }
        }
    }
}

extension String {
    fileprivate var replacingLastL: String { hasSuffix("L") ? String(dropLast()) : self }
}

extension Array where Element == PyValue {
    /// The integers of an array of `.int` values, else nil.
    var integers: [Int]? { PyValue.integers(self) }
}
