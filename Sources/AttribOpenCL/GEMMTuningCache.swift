import AttribCore
import FoundationEssentials

/// Tuned GEMM parameters per device, stored as JSON under
/// $XDG_CACHE_HOME/attrib (else ~/.cache/attrib) by `attrib tune gemm` and
/// read by every later run on the same device and driver.
public enum GEMMTuningCache {
    /// One device's entry: parameters per dtype, and what they measured.
    public struct Entry: Codable, Sendable {
        public var parameters: [String: GEMMParameters]
        public var gflops: [String: Double]
        public var tunedAt: String
    }

    public static var directory: String {
        let env = ProcessInfo.processInfo.environment
        if let x = env["XDG_CACHE_HOME"], !x.isEmpty { return x + "/attrib" }
        return (env["HOME"] ?? "/tmp") + "/.cache/attrib"
    }

    public static var path: String { directory + "/gemm-tuning.json" }

    /// The key of a device: vendor, name and driver, since a new driver may want new tiles.
    public static func key(_ info: DeviceInfo) -> String {
        "\(info.vendor) | \(info.name) | \(info.driverVersion ?? "")"
    }

    static func readAll() -> [String: Entry] {
        guard let data = FileManager.default.contents(atPath: path),
              let all = try? JSONDecoder().decode([String: Entry].self, from: data) else { return [:] }
        return all
    }

    public static func entry(for info: DeviceInfo) -> Entry? { readAll()[key(info)] }

    /// Stores the best parameters of one variant for a device, keeping the other entries.
    public static func store(_ p: GEMMParameters, gflops: Double, variant: GEMMVariant, for info: DeviceInfo) throws {
        var all = readAll()
        var e = all[key(info)] ?? Entry(parameters: [:], gflops: [:], tunedAt: "")
        e.parameters[variant.key] = p
        e.gflops[variant.key] = gflops
        e.tunedAt = Date.now.formatted(.iso8601)
        all[key(info)] = e
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(all).write(to: URL(fileURLWithPath: path))
        } catch {
            throw AttribError.io(path: path, detail: "cannot write the GEMM tuning cache: \(error)")
        }
    }
}

/// Which GEMM a parameter set is for: the dtype and the two transposes, since
/// the best tiles differ between them (a transposed operand is read across rows).
public struct GEMMVariant: Hashable, Sendable, CustomStringConvertible {
    public var dtype: DType
    public var transA: Bool, transB: Bool
    public init(dtype: DType, transA: Bool = false, transB: Bool = false) {
        self.dtype = dtype; self.transA = transA; self.transB = transB
    }
    /// "float32.NT": the key in the tuning cache.
    public var key: String { "\(dtype.rawValue).\(transA ? "T" : "N")\(transB ? "T" : "N")" }
    public var description: String { key }
    /// The four transpose combinations of a dtype.
    public static func all(_ dtype: DType) -> [GEMMVariant] {
        [false, true].flatMap { a in [false, true].map { b in GEMMVariant(dtype: dtype, transA: a, transB: b) } }
    }
}

extension OpenCLDevice {
    /// The GEMM parameters for a variant: the tuned ones when the cache holds
    /// valid ones for this device and driver, else the defaults for its kind.
    func gemmParameters(_ v: GEMMVariant) -> GEMMParameters {
        if let p = state.withLock({ $0.gemmParameters[v] }) { return p }
        var p = GEMMParameters.defaults(for: info.kind)
        if let tuned = GEMMTuningCache.entry(for: info)?.parameters[v.key], tuned.problem(on: info, dtype: v.dtype) == nil {
            p = tuned
        }
        state.withLock { $0.gemmParameters[v] = p }
        return p
    }

    /// Sets the parameters this process uses for a variant (the tuner, and tests of every candidate).
    public func setGEMMParameters(_ p: GEMMParameters, for v: GEMMVariant) throws {
        if let why = p.problem(on: info, dtype: v.dtype) {
            throw AttribError.invalidArgument(op: "gemm parameters", detail: "\(p): \(why)")
        }
        state.withLock { $0.gemmParameters[v] = p }
    }

    /// The parameters in use for a variant.
    public func currentGEMMParameters(_ v: GEMMVariant) -> GEMMParameters { gemmParameters(v) }
}
