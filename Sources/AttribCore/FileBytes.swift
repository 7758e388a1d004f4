#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A whole file's bytes by POSIX read, nil when it cannot be opened or read. The loaders read
/// config.json, labels and .onnx files through it rather than FileManager.contents(atPath:),
/// which leaks a 4 KiB buffer per empty file (found by the fuzz targets, scripts/fuzz.sh).
public func readFileBytes(_ path: String) -> [UInt8]? {
    readWholeFile(path, sized: { [UInt8](repeating: 0, count: $0) }, fill: { bytes, read in bytes.withUnsafeMutableBytes(read) })
}

/// A whole regular file read with POSIX calls into storage of fstat's size, `sized(size)`, which
/// `fill(&storage, read)` hands to `read` as raw bytes; then cut to what was there, or grown by
/// what followed (/proc's files report size 0). nil where the file cannot be opened or read, or
/// is not a regular file. One reader for every container: readFileBytes's array, AttribModels'
/// readFileData's Data (read straight into it, no copy).
public func readWholeFile<Bytes: RangeReplaceableCollection>(
    _ path: String, sized: (Int) -> Bytes,
    fill: (inout Bytes, (UnsafeMutableRawBufferPointer) -> Int?) -> Int?
) -> Bytes? where Bytes.Element == UInt8 {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
    var bytes = sized(Int(st.st_size))
    guard let filled = fill(&bytes, { readFully(fd, $0) }) else { return nil }
    if filled < bytes.count {
        bytes.removeSubrange(bytes.index(bytes.startIndex, offsetBy: filled)...)
    } else {
        // A file that grew since fstat (or a /proc file): the rest, in blocks.
        var block = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            guard let n = block.withUnsafeMutableBytes({ readFully(fd, $0) }) else { return nil }
            bytes.append(contentsOf: block[0..<n])
            if n < block.count { break }
        }
    }
    return bytes
}

/// Reads into `buffer` until it is full or the file ends: the bytes read, nil on an error.
private func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int? {
    var filled = 0
    while filled < buffer.count {
        let n = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
        if n < 0 { if errno == EINTR { continue }; return nil }
        if n == 0 { break }
        filled += n
    }
    return filled
}
