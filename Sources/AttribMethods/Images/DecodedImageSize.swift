#if canImport(Glibc)
import Glibc
#endif
import AttribCore

/// The bytes an image file decodes to, checked before they are allocated: the PNG and JPEG
/// readers' one check of the size a header claims.
enum DecodedImageSize {
    /// At most this many decoded bytes per byte of a valid file. Deflate expands at most 1032:1,
    /// and a PNG of 1-bit pixels read as 8-bit RGB is 24 times larger again (24,768); a
    /// Huffman-coded JPEG spends at least one bit on every 8 × 8 block of each component (at
    /// most 1,536 read as RGB). A header that claims more is malformed: a 332-byte JPEG claiming
    /// 52,807 × 35,152 pixels (FuzzImage) asked for 5.6 GB before its data failed to decode.
    static let maxBytesPerFileByte = 1 << 15
    /// At most this many decoded bytes in all, whatever the file's size.
    static let maxBytes = 1 << 34

    /// (bytes per row, bytes in all) of a width × height image with `channels` bytes a pixel
    /// decoded from `path`; throws where that overflows or exceeds the bounds above.
    static func check(width: Int, height: Int, channels: Int, path: String, op: String) throws -> (row: Int, total: Int) {
        let (row, o1) = width.multipliedReportingOverflow(by: channels)
        let (total, o2) = row.multipliedReportingOverflow(by: height)
        guard width >= 1, height >= 1, !o1, !o2, row <= Int(Int32.max), total <= maxBytes else {
            throw AttribError.tooLarge(op: op, detail: "\(path) is a \(width)×\(height) image, too large to load")
        }
        var st = stat()
        let fileBytes = stat(path, &st) == 0 ? Int(st.st_size) : 0
        guard total / maxBytesPerFileByte <= fileBytes else {
            throw AttribError.io(path: path, detail: "its header claims a \(width)×\(height) image (\(total) bytes decoded) from a file of \(fileBytes) bytes, more than a valid PNG or JPEG holds (at most \(maxBytesPerFileByte) decoded bytes a file byte): the file is malformed")
        }
        return (row, total)
    }
}
