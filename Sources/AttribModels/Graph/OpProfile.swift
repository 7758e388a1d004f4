import AttribCore
import FoundationEssentials
import Synchronization

/// Where a graph's time goes, per op kind and direction: set ATTRIB_PROFILE=1 and the executor
/// times every op (synchronising the device after each, so the figures are the op's own, not
/// the queue's), and the CLI prints the table when the command ends. Off by default: the
/// synchronisation costs a GPU its overlap.
public enum OpProfile {
    public static let enabled = ProcessInfo.processInfo.environment["ATTRIB_PROFILE"].map { !$0.isEmpty && $0 != "0" } ?? false
    static let table = Mutex<[String: (calls: Int, seconds: Double)]>([:])

    /// Runs `body`, timed under `kind` when profiling.
    @inline(__always)
    static func time<T>(_ kind: String, _ device: (any Device)?, _ body: () throws -> T) throws -> T {
        guard enabled else { return try body() }
        let clock = ContinuousClock(), start = clock.now
        let r = try body()
        try device?.synchronize()
        let s = (clock.now - start).seconds
        table.withLock { t in
            var e = t[kind] ?? (0, 0)
            e.calls += 1; e.seconds += s
            t[kind] = e
        }
        return r
    }

    /// The table, slowest first: calls, seconds, share of the profiled time.
    public static func report() -> String {
        let rows = table.withLock { $0 }.sorted { $0.value.seconds > $1.value.seconds }
        let total = rows.reduce(0) { $0 + $1.value.seconds }
        var out = "op profile (ATTRIB_PROFILE): \(format3(total)) s in graph ops\n"
        out += "  " + "op".padding(30) + "calls".padding(8) + "seconds".padding(10) + "share\n"
        for (k, v) in rows {
            out += "  " + k.padding(30) + String(v.calls).padding(8) + format3(v.seconds).padding(10) + format3(100 * v.seconds / max(total, 1e-12)) + "%\n"
        }
        return out
    }

    static func format3(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        return String(r)
    }
}

extension String {
    fileprivate func padding(_ w: Int) -> String { count >= w ? self + " " : self + String(repeating: " ", count: w - count) }
}
