#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AttribCore
import CZlib

/// CRC-32 (zlib's) of files and bytes: what a sweep's manifest records for each finished unit's
/// files, so that a resume or a merge uses only files that are whole. Not a defence against
/// tampering, only against truncation and torn writes (a crash, a full disk, a killed rank).
public enum Checksum {
    /// The CRC-32 of `bytes`, as 8 hex digits.
    public static func crc32(_ bytes: [UInt8]) -> String {
        let c = bytes.withUnsafeBufferPointer { b in CZlib.crc32(0, b.baseAddress, uInt(b.count)) }
        return hex(UInt32(c))
    }

    /// The CRC-32 and size of the file at `path`, read in 4 MiB blocks (models of gigabytes are
    /// hashed without holding them).
    public static func crc32(file path: String) throws -> (crc: String, bytes: Int) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw AttribError.io(path: path, detail: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var crc: uLong = CZlib.crc32(0, nil, 0)
        var total = 0
        // A unit's files are often a few kilobytes: a buffer of the file's size (at most 4 MiB),
        // not 4 MiB zeroed for each (on the digits MLP that zeroing was 6% of an IG sweep).
        var st = stat()
        let size = fstat(fd, &st) == 0 ? Int(st.st_size) : 1 << 22
        var buf = [UInt8](repeating: 0, count: max(4096, min(1 << 22, size + 1)))
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw AttribError.io(path: path, detail: "read failed: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            crc = buf.withUnsafeBufferPointer { CZlib.crc32(crc, $0.baseAddress, uInt(n)) }
            total += n
        }
        return (hex(UInt32(crc)), total)
    }

    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }
}
