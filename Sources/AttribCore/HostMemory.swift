#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How much host memory the process can still take: the smaller of the kernel's MemAvailable
/// and what is left of the process's address-space limit (`ulimit -v`, RLIMIT_AS). Loading a
/// file checks against it first, so a file larger than memory is refused with a message naming
/// it instead of the process being killed by the OOM killer or trapping in an allocation.
public enum HostMemory {
    /// Bytes available, or nil where neither figure can be read.
    public static func availableBytes() -> Int? {
        var best: Int? = nil
        if let text = readSmallFile("/proc/meminfo") {
            for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
                let parts = line.split(separator: " ")
                if parts.count >= 2, let kb = Int(parts[1]) { best = kb * 1024 }
            }
        }
        var lim = rlimit()
        if getrlimit(RLIMIT_AS_VALUE, &lim) == 0, lim.rlim_cur != rlim_t.max,
           let statm = readSmallFile("/proc/self/statm"), let pages = Int(statm.split(separator: " ").first ?? "") {
            let used = pages * Int(sysconf(Int32(_SC_PAGESIZE)))
            let left = max(0, Int(clamping: lim.rlim_cur) - used)
            best = min(best ?? left, left)
        }
        return best
    }

    /// The process's peak resident memory so far (the kernel's VmHWM), or nil where it cannot
    /// be read. On the CPU backend every tensor lives there, so it is what a sweep took of the
    /// host's memory at its worst; summaries report it beside the memory plan's estimate.
    public static func peakResidentBytes() -> Int? {
        guard let text = readSmallFile("/proc/self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }

    /// Throws `tooLarge` naming `path` when `bytes` more would not fit in what is available.
    /// A margin of a quarter is kept for the copies and the device tensors that follow.
    public static func require(_ bytes: Int, for path: String, _ what: String) throws {
        guard let avail = availableBytes(), bytes > avail / 4 * 3 else { return }
        throw AttribError.tooLarge(op: path, detail: "\(what) needs \(gib(bytes)) of host memory and \(gib(avail)) is available (MemAvailable, or what the address-space limit leaves); use --limit, or split the file")
    }

    static func gib(_ b: Int) -> String {
        let g = Double(b) / Double(1 << 30)
        return g >= 1 ? "\((g * 100).rounded() / 100) GiB" : "\((Double(b) / Double(1 << 20) * 10).rounded() / 10) MiB"
    }

    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 8192)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n], as: UTF8.self)
    }

    #if canImport(Glibc)
    static var RLIMIT_AS_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_AS.rawValue) }
    #else
    static var RLIMIT_AS_VALUE: Int32 { RLIMIT_AS }
    #endif
}
