// Reading the image files models take as inputs and heatmaps are drawn over: PNG through
// libpng (PNGImage), JPEG through libjpeg-turbo's TurboJPEG API.
import AttribCore
import FoundationEssentials
internal import CTurboJPEG

/// 8-bit images from PNG or JPEG files, by extension (.png; .jpg, .jpeg).
public enum ImageFile {
    /// The extensions read as images, lowercased.
    public static let extensions = ["png", "jpg", "jpeg"]

    public static func isImage(_ path: String) -> Bool {
        let p = path.lowercased()
        return extensions.contains { p.hasSuffix("." + $0) }
    }

    /// The image converted to 8-bit `format` (.rgb or .gray): PNG as libpng converts it, JPEG
    /// as libjpeg-turbo decodes it (accurate integer IDCT, fancy upsampling: what PIL gives).
    public static func read(path: String, format: PNGImage.PixelFormat) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        let p = path.lowercased()
        if p.hasSuffix(".jpg") || p.hasSuffix(".jpeg") { return try readJPEG(path: path, format: format) }
        return try PNGImage.read(path: path, format: format)
    }

    static func readJPEG(path: String, format: PNGImage.PixelFormat) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        guard format == .rgb || format == .gray else {
            throw AttribError.invalidArgument(op: "ImageFile.read", detail: "JPEG images are read as RGB or gray, not \(format)")
        }
        guard let bytes = readFileBytes(path) else { throw AttribError.io(path: path, detail: "cannot read the file") }
        guard !bytes.isEmpty else { throw AttribError.io(path: path, detail: "cannot read JPEG: the file is empty") }
        guard let h = tjInitDecompress() else { throw AttribError.io(path: path, detail: "cannot read JPEG: TurboJPEG did not start") }
        defer { tjDestroy(h) }
        func failure(_ what: String) -> AttribError {
            .io(path: path, detail: "cannot read JPEG (\(what)): \(String(cString: tjGetErrorStr2(h)))")
        }
        var w: Int32 = 0, ht: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        let header = bytes.withUnsafeBufferPointer { b in
            tjDecompressHeader3(h, b.baseAddress, UInt(b.count), &w, &ht, &subsampling, &colorspace)
        }
        guard header == 0 else { throw failure("header") }
        let (width, height) = (Int(w), Int(ht))
        let (row, total) = try DecodedImageSize.check(width: width, height: height, channels: format.channels, path: path, op: "ImageFile.read")
        var pixels = [UInt8](repeating: 0, count: total)
        let pf = format == .rgb ? TJPF_RGB : TJPF_GRAY
        let ok = bytes.withUnsafeBufferPointer { b in
            pixels.withUnsafeMutableBufferPointer { out in
                tjDecompress2(h, b.baseAddress, UInt(b.count), out.baseAddress, w, Int32(row), ht, Int32(pf.rawValue), TJFLAG_ACCURATEDCT)
            }
        }
        // A warning (a truncated file's missing rows, filled grey) is an error here: the model
        // would see pixels the file does not hold.
        guard ok == 0 else { throw failure("data") }
        return (width, height, pixels)
    }
}
