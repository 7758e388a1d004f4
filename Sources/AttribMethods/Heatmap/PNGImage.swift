// PNG files through Debian's libpng (libpng-dev), using libpng 1.6's
// simplified API. Those calls run libpng's setjmp/longjmp error handling
// entirely inside libpng and hand failures back in `png_image.message`, so
// no longjmp ever crosses a Swift frame and no C shim is needed.
import AttribCore
internal import CPNG

/// Reads and writes 8-bit PNG images (gray, gray+alpha, RGB, RGBA).
public enum PNGImage {
    /// The layout of 8-bit pixels in a buffer, channels interleaved, rows top to bottom.
    public enum PixelFormat: Int, Sendable, CaseIterable {
        case gray = 1, grayAlpha = 2, rgb = 3, rgba = 4

        /// Bytes per pixel.
        public var channels: Int { rawValue }

        var pngFormat: UInt32 {
            switch self {
            case .gray: return UInt32(PNG_FORMAT_GRAY)
            case .grayAlpha: return UInt32(PNG_FORMAT_GA)
            case .rgb: return UInt32(PNG_FORMAT_RGB)
            case .rgba: return UInt32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)
            }
        }
    }

    /// The version of the libpng the program runs against, e.g. "1.6.39".
    public static var libpngVersion: String {
        guard let p = png_get_libpng_ver(nil) else { return "unknown" }
        return String(cString: p)
    }

    /// Writes an 8-bit RGB image: `rgb` holds `width × height × 3` bytes, row-major, R G B interleaved.
    public static func write(path: String, width: Int, height: Int, rgb: [UInt8]) throws {
        try write(path: path, width: width, height: height, pixels: rgb, format: .rgb)
    }

    /// Writes an 8-bit image in `format`. Throws `AttribError.io` naming the path
    /// and libpng's message when the file cannot be written (a partial file is removed).
    public static func write(path: String, width: Int, height: Int, pixels: [UInt8], format: PixelFormat) throws {
        let op = "PNGImage.write"
        // PNG's own limit is 2^31 − 1 per side; keep the row stride inside png_int_32 too.
        guard width >= 1, height >= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "image of \(width)×\(height) pixels for \(path); width and height must be at least 1")
        }
        let (rowBytes, o1) = width.multipliedReportingOverflow(by: format.channels)
        let (total, o2) = rowBytes.multipliedReportingOverflow(by: height)
        guard !o1, !o2, rowBytes <= Int(Int32.max), height <= Int(Int32.max) else {
            throw AttribError.tooLarge(op: op, detail: "image of \(width)×\(height) pixels for \(path) is larger than PNG allows")
        }
        guard pixels.count == total else {
            throw AttribError.shapeMismatch(op: op, detail: "\(pixels.count) bytes for a \(width)×\(height) \(format) image (\(path)); expected \(width)×\(height)×\(format.channels) = \(total)")
        }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        image.format = format.pngFormat
        let ok = pixels.withUnsafeBytes { buf in
            png_image_write_to_file(&image, path, 0, buf.baseAddress, Int32(rowBytes), nil)
        }
        let message = messageOf(&image)
        png_image_free(&image)
        if ok == 0 {
            throw AttribError.io(path: path, detail: "cannot write PNG: \(message.isEmpty ? "libpng reported an error" : message) (libpng \(libpngVersion))")
        }
    }

    /// Reads a PNG of any colour type and bit depth as 8-bit RGB
    /// (gray is replicated, alpha is composited over black by libpng, 16-bit is reduced).
    public static func read(path: String) throws -> (width: Int, height: Int, rgb: [UInt8]) {
        let r = try read(path: path, format: .rgb)
        return (r.width, r.height, r.pixels)
    }

    /// Reads a PNG converted by libpng to 8-bit `format`.
    /// Throws `AttribError.io` naming the path and libpng's message on failure.
    public static func read(path: String, format: PixelFormat) throws -> (width: Int, height: Int, pixels: [UInt8]) {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            let message = messageOf(&image)
            png_image_free(&image)
            throw AttribError.io(path: path, detail: "cannot read PNG: \(message.isEmpty ? "libpng reported an error" : message)")
        }
        let width = Int(image.width), height = Int(image.height)
        let rowBytes: Int, total: Int
        do { (rowBytes, total) = try DecodedImageSize.check(width: width, height: height, channels: format.channels, path: path, op: "PNGImage.read") }
        catch { png_image_free(&image); throw error }
        image.format = format.pngFormat
        var pixels = [UInt8](repeating: 0, count: total)
        let ok = pixels.withUnsafeMutableBytes { buf in
            png_image_finish_read(&image, nil, buf.baseAddress, Int32(rowBytes), nil)
        }
        let message = messageOf(&image)
        png_image_free(&image)   // finish_read frees on its own; this is a no-op then
        guard ok != 0 else {
            throw AttribError.io(path: path, detail: "cannot read PNG: \(message.isEmpty ? "libpng reported an error" : message)")
        }
        return (width, height, pixels)
    }

    /// png_image.message, a NUL-terminated char[64].
    private static func messageOf(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
