import Attrib
import Foundation
import Testing

/// PNG images as inputs (issue 17): read by libpng, resized and normalised as PyTorch does
/// (Tests/Fixtures/images/make_image_fixtures.py), and taken by --inputs on the CLI.
@Suite struct ImageInputTests {
    static let dir = fixturePath("images")

    @Test("a folder of PNGs (RGB down- and upsampled, a gray one read as RGB) equals PyTorch's interpolate + normalise (Float64 1e-12)")
    func againstPyTorch() throws {
        let p = try #require(try ImagePreprocessing.load(forModel: Self.dir))
        #expect(p.size == [8, 12] && p.mean?.count == 3)
        let r = try ImageInputs.load(Self.dir + "/inputs", sampleShape: [3, 8, 12], preprocessing: p)
        #expect(r.rows == 3 && r.files.map { ($0 as NSString).lastPathComponent } == ["a.png", "b.png", "gray.png"])
        let want = try NPY.read(Self.dir + "/expected.npy").doubles()
        // The same formula in Float64 on both sides; sums of four products reordered: ~1e-15.
        expectClose(r.values, want, bound: { _ in 1e-12 }, "images vs PyTorch")
        let two = try ImageInputs.load(Self.dir + "/inputs", sampleShape: [3, 8, 12], preprocessing: p, limit: 2)
        #expect(two.rows == 2 && two.values == Array(r.values.prefix(2 * 3 * 96)))
    }

    @Test("bad uses are errors naming the file: a model that does not take images, a size or mean/std that do not fit, no PNG in a folder")
    func errors() throws {
        let inputs = Self.dir + "/inputs"
        expectAttribError([inputs, "[1 or 3, H, W]", "[64]"]) { _ = try ImageInputs.load(inputs, sampleShape: [64], preprocessing: nil) }
        expectAttribError([inputs, "resizes to [8, 12]", "[3, 4, 4]"]) {
            _ = try ImageInputs.load(inputs, sampleShape: [3, 4, 4], preprocessing: ImagePreprocessing(size: [8, 12]))
        }
        expectAttribError([inputs, "std > 0"]) {
            _ = try ImageInputs.load(inputs, sampleShape: [3, 8, 12], preprocessing: ImagePreprocessing(mean: [0, 0, 0], std: [1, 0, 1]))
        }
        expectAttribError([fixturePath("io"), "holds no image file"]) { _ = try ImageInputs.load(fixturePath("io"), sampleShape: [3, 8, 12], preprocessing: nil) }
    }

    @Test("the CLI takes a folder of PNGs as --inputs for an ONNX CNN; heatmaps are drawn over them")
    func cli() throws {
        let out = try cliTempDir("pngs")
        let r = try runAttrib(["saliency", "--model", fixturePath("onnx/tinyresnet/model.onnx"), "--inputs", Self.dir + "/inputs", "--json", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try r.json()["completedInputs"] as? Int == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/heatmaps").count == 3)
        // Drawn over the original images, not the model's 32×32 (which would make every panel
        // 128 px high): a.png is 20×14, drawn ×10 (140 px), gray.png 9×9, drawn ×15 (135 px);
        // the annotation around them is the same height in both.
        let a = try PNGImage.read(path: out + "/heatmaps/saliency_0000.png")
        let gray = try PNGImage.read(path: out + "/heatmaps/saliency_0002.png")
        #expect(a.height - gray.height == 5, "\(a.height) and \(gray.height)")
        let bad = try runAttrib(["predict", "--model", fixturePath("onnx/resmlp/model.onnx"), "--inputs", Self.dir + "/inputs/a.png"])
        #expect(bad.status != 0 && bad.stderr.contains("images need a model input of [1 or 3, H, W]"), "\(bad.stderr)")
    }
}

/// JPEG inputs (Tests/Fixtures/images/make_jpeg_fixtures.py): written and decoded by Pillow,
/// read here through libjpeg-turbo's TurboJPEG API.
@Suite struct JPEGInputTests {
    static let dir = fixturePath("images/jpeg")

    /// Pillow decodes with libjpeg-turbo too (accurate integer IDCT, fancy upsampling), so the
    /// pixels are expected equal; a decoder off by one level somewhere would fail this.
    @Test("JPEGs (4:2:0, progressive 4:4:4, one-component gray read as RGB) decode to Pillow's pixels, and a folder of them equals PyTorch's interpolate + normalise")
    func againstPillow() throws {
        for name in ["c420.jpg", "d444.jpeg", "e.jpg"] {
            let img = try ImageFile.read(path: Self.dir + "/inputs/" + name, format: .rgb)
            let want = try NPY.read(Self.dir + "/decoded/" + name + ".npy")
            #expect(want.shape == [img.height, img.width, 3], "\(name): \(img.width)×\(img.height), Pillow \(want.shape)")
            let diff = zip(img.pixels, try want.doubles()).map { abs(Double($0) - $1) }.max() ?? .infinity
            #expect(diff == 0, "\(name): pixels differ from Pillow's by up to \(diff) levels")
        }
        let p = try #require(try ImagePreprocessing.load(forModel: fixturePath("images")))
        let r = try ImageInputs.load(Self.dir + "/inputs", sampleShape: [3, 8, 12], preprocessing: p)
        #expect(r.rows == 3 && r.files.map { ($0 as NSString).lastPathComponent } == ["c420.jpg", "d444.jpeg", "e.jpg"])
        // As the PNG test: the same Float64 formula on both sides.
        expectClose(r.values, try NPY.read(Self.dir + "/expected.npy").doubles(), bound: { _ in 1e-12 }, "JPEGs vs PyTorch")
    }

    @Test("a truncated or corrupt JPEG is an error naming the file and libjpeg's message, not grey rows")
    func errors() throws {
        expectAttribError([Self.dir + "/truncated.jpg", "cannot read JPEG"]) { _ = try ImageFile.read(path: Self.dir + "/truncated.jpg", format: .rgb) }
        let junk = try cliTempDir("jpeg") + "/junk.jpg"
        try Data("not a jpeg".utf8).write(to: URL(fileURLWithPath: junk))
        expectAttribError([junk, "cannot read JPEG (header)"]) { _ = try ImageFile.read(path: junk, format: .rgb) }
    }

    @Test("the CLI takes a JPEG as --inputs for an ONNX CNN and draws the heatmap over it")
    func cli() throws {
        let out = try cliTempDir("jpegs")
        let r = try runAttrib(["saliency", "--model", fixturePath("onnx/tinyresnet/model.onnx"), "--inputs", Self.dir + "/inputs/c420.jpg", "--json", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out + "/heatmaps").count == 1)
    }
}
