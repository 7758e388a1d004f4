#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes to file descriptor 2 directly (stderr the FILE* is shared mutable state to
/// Swift 6): warnings from the library and the CLI alike.
public func writeStandardError(_ s: String) {
    var bytes = Array(s.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}
