#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AttribCore
import FoundationEssentials

/// A whole file as Data, by POSIX reads straight into the Data's own bytes (no FileManager
/// leak on empty files; see readFileBytes), nil when it cannot be opened or read. Why not
/// `Data(readFileBytes(path))`: that held the file twice and copied it once, for a ViT-B/16's
/// 346 MB ONNX file a second of page faults and copying at every load.
public func readFileData(_ path: String) -> Data? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
    var data = Data(count: Int(st.st_size))
    var filled = 0
    let ok: Bool = data.withUnsafeMutableBytes { buf in
        while filled < buf.count {
            let n = read(fd, buf.baseAddress! + filled, buf.count - filled)
            if n < 0 { if errno == EINTR { continue }; return false }
            if n == 0 { break }
            filled += n
        }
        return true
    }
    guard ok else { return nil }
    // A file that grew since fstat: the rest too; one that shrank: what was there.
    if filled < data.count { data.removeSubrange(filled...) }
    else if let more = readRest(fd) { data.append(contentsOf: more) }
    return data
}

/// Bytes after the size fstat gave (a file still being written), nil for none.
private func readRest(_ fd: Int32) -> [UInt8]? {
    var out: [UInt8] = [], buf = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { if errno == EINTR { continue }; return out.isEmpty ? nil : out }
        if n == 0 { return out.isEmpty ? nil : out }
        out += buf[0..<n]
    }
}
