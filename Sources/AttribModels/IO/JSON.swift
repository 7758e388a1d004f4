/// A parsed JSON value: just enough JSON for model-file headers. Object keys
/// keep their order; integers without a fraction or exponent that fit an
/// `Int` are `.int`, every other number is `.double`.
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.double(x), .double(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    /// A short rendering for error messages.
    var summary: String {
        switch self {
        case .null: return "null"
        case let .bool(b): return String(b)
        case let .int(i): return String(i)
        case let .double(d): return String(d)
        case let .string(s): return "\"\(s.count > 40 ? s.prefix(40) + "…" : Substring(s))\""
        case let .array(a): return "[" + a.prefix(8).map(\.summary).joined(separator: ", ") + (a.count > 8 ? ", …]" : "]")
        case .object: return "an object"
        }
    }

    /// The integers of an array of integers, else nil.
    var intArray: [Int]? {
        guard case let .array(a) = self else { return nil }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for v in a { guard case let .int(i) = v else { return nil }; out.append(i) }
        return out
    }
}

/// A strict JSON parser (RFC 8259) over UTF-8 bytes. Errors carry the byte
/// offset; nesting is limited so a hostile header cannot exhaust the stack.
struct JSONParser {
    struct Failure: Error { let message: String }

    private let b: UnsafeRawBufferPointer
    private var i = 0
    private var depth = 0
    static let maxDepth = 64

    /// Parses one value filling `bytes` (surrounding whitespace allowed).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(Failure) -> JSONValue {
        var p = JSONParser(b: bytes)
        p.skipSpace()
        let v = try p.value()
        p.skipSpace()
        guard p.i == bytes.count else { throw p.fail("unexpected \(p.describeHere()) after the value") }
        return v
    }

    private init(b: UnsafeRawBufferPointer) { self.b = b }

    private func fail(_ what: String) -> Failure { Failure(message: "\(what) at byte \(i)") }

    private func describeHere() -> String {
        guard i < b.count else { return "end of input" }
        let c = b[i]
        return c >= 0x20 && c < 0x7F ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
    }

    private mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ literal: String, _ v: JSONValue) throws(Failure) -> JSONValue {
        let u = Array(literal.utf8), n = u.count
        guard i + n <= b.count, (0..<n).allSatisfy({ b[i + $0] == u[$0] }) else {
            throw fail("invalid literal (expected \(literal))")
        }
        i += n
        return v
    }

    private mutating func value() throws(Failure) -> JSONValue {
        guard i < b.count else { throw fail("unexpected end of input") }
        switch b[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw fail("unexpected \(describeHere())")
        }
    }

    private mutating func nest() throws(Failure) {
        depth += 1
        guard depth <= Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth)") }
    }

    private mutating func object() throws(Failure) -> JSONValue {
        try nest(); defer { depth -= 1 }
        i += 1
        var members: [(key: String, value: JSONValue)] = []
        var seen = Set<String>()
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key, found \(describeHere())") }
            let keyStart = i
            let key = try string()
            guard seen.insert(key).inserted else { i = keyStart; throw fail("duplicate key \"\(key)\"") }
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':', found \(describeHere())") }
            i += 1
            skipSpace()
            members.append((key, try value()))
            skipSpace()
            guard i < b.count else { throw fail("unterminated object") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}', found \(describeHere())")
        }
    }

    private mutating func array() throws(Failure) -> JSONValue {
        try nest(); defer { depth -= 1 }
        i += 1
        var items: [JSONValue] = []
        skipSpace()
        if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard i < b.count else { throw fail("unterminated array") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']', found \(describeHere())")
        }
    }

    private mutating func hex4() throws(Failure) -> UInt32 {
        guard i + 4 <= b.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    /// A string; the input was checked to be valid UTF-8 before parsing.
    private mutating func string() throws(Failure) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw fail("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            if c < 0x20 { throw fail("unescaped control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < b.count else { throw fail("unterminated string") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var u = try hex4()
                if (0xD800..<0xDC00).contains(u) {
                    guard i + 6 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate in \\u escape")
                    }
                    i += 2
                    let lo = try hex4()
                    guard (0xDC00..<0xE000).contains(lo) else { throw fail("unpaired surrogate in \\u escape") }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                } else if (0xDC00..<0xE000).contains(u) {
                    throw fail("unpaired surrogate in \\u escape")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(u)!)).utf8)
            default: i -= 1; throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func number() throws(Failure) -> JSONValue {
        let start = i
        if b[i] == UInt8(ascii: "-") { i += 1 }
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(p.b[p.i]) { p.i += 1 }
            return p.i - s
        }
        let intStart = i
        let n = digits(&self)
        guard n > 0 else { throw fail("invalid number") }
        guard !(n > 1 && b[intStart] == UInt8(ascii: "0")) else { i = intStart; throw fail("leading zero in number") }
        var integral = true
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1; integral = false
            guard digits(&self) > 0 else { throw fail("invalid number: no digits after '.'") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1; integral = false
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw fail("invalid number: no digits in the exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
        if integral, let v = Int(text) { return .int(v) }
        guard let d = Double(text) else { i = start; throw fail("invalid number") }
        return .double(d)
    }
}

/// JSON text for a string (quotes and escapes; non-ASCII stays UTF-8).
func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20:
            let h = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
