import AttribCore
import CFuzzDriver
#if canImport(Glibc)
import Glibc
#endif

/// The fuzz targets feed bytes to parsers that read files (as users' files are read): each
/// input is written to a file in one directory per process, overwritten every run.
public enum FuzzFiles {
    nonisolated(unsafe) static var dir: String? = nil

    /// This process's scratch directory (under $TMPDIR or /tmp).
    public static func directory() -> String {
        if let d = dir { return d }
        var template = Array(((getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp") + "/attrib-fuzz-XXXXXX").utf8CString)
        let d = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        dir = d
        return d
    }

    /// Writes `size` bytes at `data` to `name` in the scratch directory; returns its path.
    @discardableResult
    public static func write(_ data: UnsafePointer<UInt8>?, _ size: Int, _ name: String) -> String {
        let path = directory() + "/" + name
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "cannot write \(path)")
        var off = 0
        while off < size, let data {
            let n = Glibc.write(fd, data + off, size - off)
            precondition(n > 0, "cannot write \(path)")
            off += n
        }
        close(fd)
        return path
    }

    /// Copies a file into the scratch directory (a fixed companion of the fuzzed one).
    public static func copy(_ source: String, as name: String) {
        guard let bytes = readFileBytes(source) else { preconditionFailure("cannot read \(source): run the fuzzers from the repository root") }
        bytes.withUnsafeBufferPointer { write($0.baseAddress, $0.count, name) }
    }
}

/// Runs libFuzzer with the process's arguments and `callback` as the target, then exits with its
/// status. The fuzz targets' top-level code: SwiftPM gives each executable a main of its own, so
/// libFuzzer's main is not the one that runs.
public func runFuzzer(_ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = withUnsafeMutablePointer(to: &argv) { LLVMFuzzerRunDriver(&argc, $0, callback) }
    exit(status)
}
