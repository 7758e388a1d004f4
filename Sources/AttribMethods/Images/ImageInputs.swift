import AttribCore
import AttribModels
import FoundationEssentials

/// How a model's images are prepared (preprocessing.json in the model directory, written by
/// scripts/export_onnx.py): pixels scaled to [0, 1], resized to `size` ([H, W]), then
/// (x − mean)/std per channel. Every field optional: no mean/std means [0, 1] values.
public struct ImagePreprocessing: Decodable, Sendable, Equatable {
    public var mean: [Double]?
    public var std: [Double]?
    public var size: [Int]?
    public init(mean: [Double]? = nil, std: [Double]? = nil, size: [Int]? = nil) { self.mean = mean; self.std = std; self.size = size }

    /// DIR/preprocessing.json, or (for a .onnx file) FILE's directory's; nil where there is none.
    public static func load(forModel model: String) throws -> ImagePreprocessing? {
        let dir = model.hasSuffix(".onnx") ? (model.lastIndex(of: "/").map { String(model[..<$0]) } ?? ".") : model
        let path = dir + "/preprocessing.json"
        guard let data = readFileData(path) else { return nil }
        do { return try JSONDecoder().decode(ImagePreprocessing.self, from: data) } catch {
            throw AttribError.io(path: path, detail: "not a preprocessing file ({\"mean\": [...], \"std\": [...], \"size\": [H, W]}): \(error)")
        }
    }
}

/// Images as model inputs: a .png, .jpg or .jpeg file, or a directory of them (sorted by name),
/// read by libpng (gray, palette and 16-bit images converted to 8-bit RGB or gray as the model
/// needs) or libjpeg-turbo (ImageFile),
/// scaled to [0, 1], resized bilinearly to the model's [H, W] as
/// torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=False) does,
/// and normalised with the model's preprocessing. Matches PyTorch to rounding
/// (Tests/Fixtures/images). A pipeline that resizes otherwise (PIL's antialiased resize, a crop)
/// should save its tensors as .npy instead.
public enum ImageInputs {
    /// Whether `path` names images: an image file or a directory holding one.
    public static func isImages(_ path: String) -> Bool {
        if ImageFile.isImage(path) { return true }
        return (try? files(path))?.isEmpty == false
    }

    /// The image files `path` names, sorted by name.
    public static func files(_ path: String) throws -> [String] {
        if ImageFile.isImage(path) { return [path] }
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: path) else {
            throw AttribError.io(path: path, detail: "neither an image file (.png, .jpg, .jpeg) nor a readable directory")
        }
        let base = path.hasSuffix("/") ? path : path + "/"
        return names.filter(ImageFile.isImage).sorted().map { base + $0 }
    }

    /// [N] + `sampleShape` values (sampleShape [C, H, W] with C = 1 or 3), N = the images.
    public static func load(_ path: String, sampleShape shape: [Int], preprocessing p: ImagePreprocessing?,
                            limit: Int? = nil) throws -> (rows: Int, values: [Double], files: [String]) {
        guard shape.count == 3, shape[0] == 1 || shape[0] == 3 else {
            throw AttribError.shapeMismatch(op: path, detail: "images need a model input of [1 or 3, H, W]; this model takes \(shape)")
        }
        let (c, h, w) = (shape[0], shape[1], shape[2])
        if let size = p?.size, size != [h, w] {
            throw AttribError.shapeMismatch(op: path, detail: "preprocessing.json resizes to \(size) but the model takes \(shape)")
        }
        let mean = p?.mean ?? [Double](repeating: 0, count: c), std = p?.std ?? [Double](repeating: 1, count: c)
        guard mean.count == c, std.count == c, std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy(\.isFinite) else {
            throw AttribError.invalidArgument(op: path, detail: "preprocessing mean \(mean) and std \(std) need \(c) finite values each, std > 0")
        }
        var list = try files(path)
        guard !list.isEmpty else { throw AttribError.io(path: path, detail: "holds no image file (.png, .jpg, .jpeg)") }
        if let limit { list = Array(list.prefix(limit)) }
        var values: [Double] = []
        values.reserveCapacity(list.count * c * h * w)
        for f in list {
            let img = try ImageFile.read(path: f, format: c == 3 ? .rgb : .gray)
            let planes = resize(img.pixels, width: img.width, height: img.height, channels: c, toHeight: h, toWidth: w)
            for ch in 0..<c {
                for i in 0..<(h * w) { values.append((planes[ch * h * w + i] / 255 - mean[ch]) / std[ch]) }
            }
        }
        return (list.count, values, list)
    }

    /// Interleaved 8-bit pixels [height, width, channels] → planes [channels, h, w] (still 0…255),
    /// bilinear with half-pixel centres and no antialiasing: source = (dst + ½)·(in/out) − ½,
    /// clamped at 0, the upper neighbour clamped to the last pixel.
    public static func resize(_ px: [UInt8], width: Int, height: Int, channels c: Int, toHeight h: Int, toWidth w: Int) -> [Double] {
        resize(width: width, height: height, channels: c, toHeight: h, toWidth: w) { y, x, ch in Double(px[(y * width + x) * c + ch]) }
    }

    /// One plane [height, width] resized the same way (an attribution map to an image's size).
    public static func resizePlane(_ plane: [Double], width: Int, height: Int, toHeight h: Int, toWidth w: Int) -> [Double] {
        resize(width: width, height: height, channels: 1, toHeight: h, toWidth: w) { y, x, _ in plane[y * width + x] }
    }

    static func resize(width: Int, height: Int, channels c: Int, toHeight h: Int, toWidth w: Int,
                       _ pixel: (Int, Int, Int) -> Double) -> [Double] {
        func taps(_ out: Int, _ inn: Int) -> [(Int, Int, Double)] {
            let scale = Double(inn) / Double(out)
            return (0..<out).map { d in
                let s = max(0, (Double(d) + 0.5) * scale - 0.5)
                let i0 = min(Int(s), inn - 1), i1 = min(i0 + 1, inn - 1)
                return (i0, i1, s - Double(i0))
            }
        }
        let ty = taps(h, height), tx = taps(w, width)
        var out = [Double](repeating: 0, count: c * h * w)
        for (y, (y0, y1, fy)) in ty.enumerated() {
            for (x, (x0, x1, fx)) in tx.enumerated() {
                for ch in 0..<c {
                    func p(_ yy: Int, _ xx: Int) -> Double { pixel(yy, xx, ch) }
                    let top = p(y0, x0) * (1 - fx) + p(y0, x1) * fx, bottom = p(y1, x0) * (1 - fx) + p(y1, x1) * fx
                    out[(ch * h + y) * w + x] = top * (1 - fy) + bottom * fy
                }
            }
        }
        return out
    }
}
