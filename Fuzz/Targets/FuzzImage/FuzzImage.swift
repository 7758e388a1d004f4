import Attrib
import FuzzSupport

/// libFuzzer target: any bytes as an image input, through ImageFile.read as a .jpg
/// (libjpeg-turbo's TurboJPEG API) and as a .png (libpng's simplified API), each as RGB and as
/// gray: what `--inputs photo.jpg` and the heatmaps drawn over it read.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzImage(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    for name in ["input.jpg", "input.png"] {
        let path = FuzzFiles.write(data, size, name)
        for format in [PNGImage.PixelFormat.rgb, .gray] {
            if let img = try? ImageFile.read(path: path, format: format) {
                precondition(img.pixels.count == img.width * img.height * format.channels, "\(name): pixel count")
            }
        }
    }
    return 0
}

runFuzzer(fuzzImage)
