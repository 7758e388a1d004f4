import AttribCore
import Glibc

/// A whole file mapped read-only into memory; unmapped when the last
/// reference goes. An empty file maps to an empty buffer.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let bytes: UnsafeRawBufferPointer

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AttribError.io(path: path, detail: "cannot open for reading: \(errnoDescription())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw AttribError.io(path: path, detail: "cannot stat: \(errnoDescription())") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw AttribError.io(path: path, detail: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else { bytes = UnsafeRawBufferPointer(start: nil, count: 0); return }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw AttribError.io(path: path, detail: "cannot map \(size) bytes: \(errnoDescription())")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit {
        if let p = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: p), bytes.count) }
    }
}

/// `strerror(errno)`, for messages.
func errnoDescription() -> String { String(cString: strerror(errno)) }

/// Writes `bytes` to `path` (created or truncated, mode 0644), naming the path in every error.
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw AttribError.io(path: path, detail: "cannot open for writing: \(errnoDescription())") }
    var done = 0
    let failure: String? = bytes.withUnsafeBytes { buf in
        while done < buf.count {
            let n = write(fd, buf.baseAddress! + done, buf.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return "write failed after \(done) of \(buf.count) bytes: \(errnoDescription())"
            }
            done += n
        }
        return nil
    }
    let closed = close(fd) == 0 ? nil : "close failed: \(errnoDescription())"
    if let f = failure ?? closed { throw AttribError.io(path: path, detail: f) }
}

/// Little-endian loads from possibly unaligned bytes.
extension UnsafeRawBufferPointer {
    @inline(__always) func le16(_ at: Int) -> UInt16 { UInt16(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
    @inline(__always) func le32(_ at: Int) -> UInt32 { UInt32(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt32.self)) }
    @inline(__always) func le64(_ at: Int) -> UInt64 { UInt64(littleEndian: loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
}

/// Appends little-endian integers to a byte array.
extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}

/// The element count of `shape`, or nil on a negative dimension or overflow.
func elementCount(_ shape: [Int]) -> Int? {
    var total = 1
    for d in shape {
        guard d >= 0 else { return nil }
        let (p, o) = total.multipliedReportingOverflow(by: d)
        guard !o else { return nil }
        total = p
    }
    return total
}

/// A list of names for a message: the first `limit`, then how many more.
func nameList(_ names: [String], limit: Int = 10) -> String {
    if names.isEmpty { return "none" }
    let shown = names.prefix(limit).map { "'\($0)'" }.joined(separator: ", ")
    return names.count > limit ? shown + ", … (\(names.count - limit) more)" : shown
}
