import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// Prints a value as pretty, key-sorted JSON on standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// A number with `digits` decimals, for tables.
func fixed(_ x: Double, _ digits: Int = 1) -> String {
    guard x.isFinite else { return "\(x)" }
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (abs(x) * p).rounded()
    let whole = Int(r / p), frac = Int(r.truncatingRemainder(dividingBy: p))
    var f = String(frac)
    while f.count < digits { f = "0" + f }
    return (x < 0 && r != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + f : "")
}

/// A byte count in GiB or MiB.
func bytes(_ b: Int) -> String {
    let gib = Double(b) / 1_073_741_824
    return gib >= 1 ? fixed(gib, 1) + " GiB" : fixed(Double(b) / 1_048_576, 0) + " MiB"
}

/// A value in scientific notation with 2 significant decimals.
func sci(_ x: Double) -> String {
    guard x != 0, x.isFinite else { return x == 0 ? "0" : "\(x)" }
    var e = 0, m = abs(x)
    while m >= 10 { m /= 10; e += 1 }
    while m < 1 { m *= 10; e -= 1 }
    return (x < 0 ? "-" : "") + fixed(m, 2) + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
}

/// Pads to a width, left-aligned.
func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
