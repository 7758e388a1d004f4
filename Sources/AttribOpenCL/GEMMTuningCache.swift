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

    /// Stores the best parameters of one dtype for a device, keeping the other entries.
    public static func store(_ p: GEMMParameters, gflops: Double, dtype: DType, for info: DeviceInfo) throws {
        var all = readAll()
        var e = all[key(info)] ?? Entry(parameters: [:], gflops: [:], tunedAt: "")
        e.parameters[dtype.rawValue] = p
        e.gflops[dtype.rawValue] = gflops
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

extension OpenCLDevice {
    /// The GEMM parameters for a dtype: the tuned ones when the cache holds
    /// valid ones for this device, else the defaults for its kind.
    func gemmParameters(dtype: DType) -> GEMMParameters {
        if let p = state.withLock({ $0.gemmParameters[dtype] }) { return p }
        var p = GEMMParameters.defaults(for: info.kind)
        if let tuned = GEMMTuningCache.entry(for: info)?.parameters[dtype.rawValue], tuned.problem(on: info, dtype: dtype) == nil {
            p = tuned
        }
        state.withLock { $0.gemmParameters[dtype] = p }
        return p
    }

    /// Sets the parameters this process uses (the tuner, and tests of every candidate).
    public func setGEMMParameters(_ p: GEMMParameters, dtype: DType) throws {
        if let why = p.problem(on: info, dtype: dtype) {
            throw AttribError.invalidArgument(op: "gemm parameters", detail: "\(p): \(why)")
        }
        state.withLock { $0.gemmParameters[dtype] = p }
    }

    /// The parameters in use for a dtype, and whether they came from tuning.
    public func currentGEMMParameters(dtype: DType) -> GEMMParameters { gemmParameters(dtype: dtype) }
}
