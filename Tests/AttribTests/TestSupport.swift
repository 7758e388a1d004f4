import Attrib
import Testing

/// Every OpenCL device on this machine (PoCL where there is no GPU). Parity
/// tests run on each against the CPU backend.
let openCLDevices: [OpenCLDevice] = Devices.openCL

/// The CPU backend, the reference of every parity test.
let cpu = CPUDevice.shared

/// Deterministic test data in [lo, hi).
func randomValues(_ n: Int, seed: UInt64, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
    var rng = SplitMix64(seed: seed)
    return rng.uniform(n, lo, hi)
}

/// Expects |got − want| ≤ bound[i] for every element, naming the first that fails.
func expectClose(_ got: [Double], _ want: [Double], bound: (Int) -> Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == want.count, "\(what): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
    var failures = 0
    for i in 0..<min(got.count, want.count) {
        let d = abs(got[i] - want[i])
        if !(d <= bound(i)) || got[i].isNaN != want[i].isNaN {
            if got[i].isNaN && want[i].isNaN { continue }
            failures += 1
            if failures <= 3 {
                Issue.record("\(what): element \(i) is \(got[i]), expected \(want[i]) (|Δ| = \(d), bound \(bound(i)))", sourceLocation: sourceLocation)
            }
        }
    }
    if failures > 3 { Issue.record("\(what): \(failures) elements out of bound in all", sourceLocation: sourceLocation) }
}

/// Expects bitwise-equal values.
func expectEqual(_ got: [Double], _ want: [Double], _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(got, want, bound: { _ in 0 }, what, sourceLocation: sourceLocation)
}

/// Expects two Float32 tensors of one shape whose elements are equal bit for bit, signed
/// zeros included: what the fused CPU ops promise against the ops apart.
func expectBitwise(_ got: Tensor, _ want: Tensor, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let (g, w) = (try got.floats(), try want.floats())
    let first = g.count == w.count ? g.indices.first { g[$0].bitPattern != w[$0].bitPattern } : nil
    #expect(got.shape == want.shape && first == nil,
            "\(what): bitwise, signed zeros included; shapes \(got.shape) / \(want.shape); first difference \(first.map { "\($0): \(g[$0]) vs \(w[$0])" } ?? "none")",
            sourceLocation: sourceLocation)
}

/// The float types the parity tests cover on a device.
func dtypes(_ d: any Device) -> [DType] { d.supports(.float64) ? [.float32, .float64] : [.float32] }

/// The path of a file under Tests/Fixtures (fixtures are read from the source tree).
/// ATTRIB_SOURCE_ROOT names the project root instead, for a test binary carried to
/// another host (a GPU machine without Swift) where the build's source path is absent.
func fixturePath(_ relative: String) -> String {
    if let root = ProcessInfo.processInfo.environment["ATTRIB_SOURCE_ROOT"], !root.isEmpty {
        return root + "/Tests/Fixtures/" + relative
    }
    var dir = #filePath
    while let slash = dir.lastIndex(of: "/"), !dir.hasSuffix("/Tests") { dir = String(dir[..<slash]) }
    return dir + "/Fixtures/" + relative
}

/// Expects `body` to throw an AttribError whose message contains every fragment.
func expectAttribError(_ fragments: [String], sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error mentioning \(fragments)", sourceLocation: sourceLocation)
    } catch let e as AttribError {
        for f in fragments where !e.description.contains(f) {
            Issue.record("error \"\(e.description)\" does not mention \"\(f)\"", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
    }
}

import FoundationEssentials

/// Small file helpers for tests that build bad model directories.
enum FileHelpers {
    static func makeDirectory(_ p: String) throws { try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true) }
    static func remove(_ p: String) { try? FileManager.default.removeItem(atPath: p) }
    static func copy(_ a: String, _ b: String) throws { try FileManager.default.copyItem(atPath: a, toPath: b) }
    static func read(_ p: String) throws -> String { String(decoding: FileManager.default.contents(atPath: p) ?? Data(), as: UTF8.self) }
    static func write(_ s: String, _ p: String) throws { try Data(s.utf8).write(to: URL(fileURLWithPath: p)) }
}

extension String {
    func replacingFirst(_ a: String, with b: String) -> String {
        let parts = components(separatedBy: a)
        guard parts.count > 1 else { return self }
        return parts[0] + b + parts.dropFirst().joined(separator: a)
    }
}
