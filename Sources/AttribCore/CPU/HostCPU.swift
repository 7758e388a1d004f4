import FoundationEssentials

/// What the host CPU reports in /proc/cpuinfo and /proc/meminfo: enough to
/// name it and derive its FP32 peak.
struct HostCPU {
    var vendor = "unknown"
    var model = "unknown CPU"
    var cores = 1
    var clockMHz: Int?
    var flags: Set<String> = []
    var memoryBytes = 0

    static func read() -> HostCPU {
        var cpu = HostCPU()
        cpu.cores = ProcessInfo.processInfo.activeProcessorCount
        cpu.memoryBytes = Int(ProcessInfo.processInfo.physicalMemory)
        guard let data = FileManager.default.contents(atPath: "/proc/cpuinfo") else { return cpu }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmed }
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "vendor_id" where cpu.vendor == "unknown": cpu.vendor = parts[1]
            case "model name" where cpu.model == "unknown CPU": cpu.model = parts[1]
            case "cpu MHz" where cpu.clockMHz == nil: cpu.clockMHz = Double(parts[1]).map { Int($0.rounded()) }
            case "flags" where cpu.flags.isEmpty: cpu.flags = Set(parts[1].split(separator: " ").map(String.init))
            default: break
            }
        }
        return cpu
    }

    /// The last-level cache in bytes, from sysfs (the largest of cpu0's caches), or nil.
    static func lastLevelCacheBytes() -> Int? {
        var best: Int?
        for index in 0..<8 {
            let dir = "/sys/devices/system/cpu/cpu0/cache/index\(index)"
            guard let data = FileManager.default.contents(atPath: dir + "/size") else { break }
            let text = String(decoding: data, as: UTF8.self).split(separator: "\n").first.map { $0.trimmed } ?? ""
            let scale = text.hasSuffix("K") ? 1 << 10 : text.hasSuffix("M") ? 1 << 20 : 1
            if let v = Int(text.filter(\.isNumber)) { best = max(best ?? 0, v * scale) }
        }
        return best
    }

    /// FP32 peak = cores × clock × FP32 flops per cycle per core.
    var fp32PeakGFLOPS: (gflops: Double, basis: String)? {
        guard let mhz = clockMHz, let simd = HostSIMD.flopsPerCycle(flags) else { return nil }
        let g = Double(cores) * Double(mhz) / 1000 * Double(simd.flops)
        return (g, "\(cores) cores × \(mhz) MHz × \(simd.flops) flop/cycle (\(simd.isa))")
    }
}

/// The host's FP32 flops per cycle per core, from the widest FMA its flags
/// show, two FMA pipes assumed (as on every x86 core since Haswell and Zen).
public enum HostSIMD {
    public static func fp32FlopsPerCycle() -> (flops: Int, isa: String)? { flopsPerCycle(HostCPU.read().flags) }
    /// Whether the CPU has AVX2 and FMA (the flags in /proc/cpuinfo), which the CPU
    /// backend's C kernels dispatch on at run time.
    public static var hasAVX2FMA: Bool { let f = HostCPU.read().flags; return f.contains("avx2") && f.contains("fma") }

    static func flopsPerCycle(_ flags: Set<String>) -> (flops: Int, isa: String)? {
        if flags.contains("avx512f") { return (64, "AVX-512 FMA, 2 pipes") }
        if flags.contains("avx2") && flags.contains("fma") { return (32, "AVX2 FMA, 2 pipes") }
        if flags.contains("avx") { return (16, "AVX") }
        if flags.contains("sse2") { return (8, "SSE2") }
        return nil
    }

    /// OpenBLAS cores (as `openblas_get_corename` names them) whose kernels use AVX2 FMA.
    static let avx2BLASCores: Set<String> = avx512BLASCores.union(["haswell", "zen", "excavator"])
    /// Those of them whose SGEMM kernels use AVX-512.
    static let avx512BLASCores: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]

    /// The OPENBLAS_CORETYPE whose kernels fit a CPU with these flags, where OpenBLAS's runtime
    /// dispatch chose older ones; nil when they fit or the CPU has no AVX2. An OpenBLAS that does
    /// not know a CPU model falls back to SSE3 kernels ("Prescott"): Debian 12's 0.3.21 does so
    /// on the Xeons of the GPU hosts and of the development VM seen here, where its products ran
    /// at 72 GFLOP/s against 334 with SkylakeX's (1024³, 2 threads). SkylakeX needs the AVX-512
    /// subsets its kernels use; Haswell's need AVX2 and FMA.
    public static func fittingBLASCore(core: String, flags: Set<String>) -> String? {
        guard flags.contains("avx2"), flags.contains("fma"), !avx2BLASCores.contains(core.lowercased()) else { return nil }
        return ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(flags.contains) ? "SkylakeX" : "Haswell"
    }

    /// A warning when OpenBLAS's kernels do not fit the CPU (see `fittingBLASCore`), naming the
    /// OPENBLAS_CORETYPE that does: it is read when the library loads, so it must be set before
    /// the process starts (the attrib CLI does so itself: `OpenBLASCore.reexecWithFittingCore`).
    public static func blasCoreWarning(core: String, flags: Set<String>) -> String? {
        guard let fit = fittingBLASCore(core: core, flags: flags) else { return nil }
        return "OpenBLAS runs its \(core) kernels on a CPU with \(flags.contains("avx512f") ? "AVX-512" : "AVX2"), "
            + "so CPU products run several times slower than they can; set OPENBLAS_CORETYPE=\(fit) before the process starts"
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmed: String {
        String(drop(while: { $0 == " " || $0 == "\t" }).reversed().drop(while: { $0 == " " || $0 == "\t" }).reversed())
    }
}
