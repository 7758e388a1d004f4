import Attrib
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif

/// A value as pretty, key-sorted JSON: every summary.json and curves.json, and --json output.
func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value)
}

/// Prints a value as pretty, key-sorted JSON on standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    print(String(decoding: try prettyJSON(value), as: UTF8.self))
}

/// A byte count in GiB or MiB.
func bytes(_ b: Int) -> String {
    let gib = Double(b) / 1_073_741_824
    return gib >= 1 ? fixed(gib, 1) + " GiB" : fixed(Double(b) / 1_048_576, 0) + " MiB"
}

/// Pads to a width, left-aligned.
func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
