import Attrib
import FoundationEssentials
import Testing

/// A fresh scratch directory for one test.
private func scratchDirectory(_ name: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.path + "/attrib-heatmap-\(name)-\(UUID().uuidString)"
    try FileHelpers.makeDirectory(dir)
    return dir
}

/// A synthetic 8×8 "digit" (a zero: a ring) in [0, 1] and a signed attribution
/// map: positive on the ring's left half, negative on its right, a little noise.
private func syntheticDigit() -> (image: [Double], attribution: [Double]) {
    var img = [Double](repeating: 0, count: 64), attr = [Double](repeating: 0, count: 64)
    let noise = randomValues(64, seed: 7, -0.05, 0.05)
    for y in 0..<8 {
        for x in 0..<8 {
            let dx = Double(x) - 3.5, dy = (Double(y) - 3.5) * 0.8
            let r = (dx * dx + dy * dy).squareRoot()
            let ink = max(0, 1 - abs(r - 2.6) / 1.1)
            img[y * 8 + x] = ink
            attr[y * 8 + x] = (x < 4 ? 1 : -0.7) * ink + noise[y * 8 + x]
        }
    }
    return (img, attr)
}

@Suite struct HeatmapTests {
    // MARK: PNG I/O

    @Test func rgbRoundTrip() throws {
        let dir = try scratchDirectory("rt"); defer { FileHelpers.remove(dir) }
        let w = 13, h = 7
        let rgb = randomValues(w * h * 3, seed: 1, 0, 256).map { UInt8(min(255, $0)) }
        let path = dir + "/rt.png"
        try PNGImage.write(path: path, width: w, height: h, rgb: rgb)
        let back = try PNGImage.read(path: path)
        #expect(back.width == w && back.height == h)
        #expect(back.rgb == rgb)
    }

    @Test(arguments: PNGImage.PixelFormat.allCases)
    func formatRoundTrip(_ format: PNGImage.PixelFormat) throws {
        let dir = try scratchDirectory("fmt"); defer { FileHelpers.remove(dir) }
        let w = 5, h = 9
        let px = randomValues(w * h * format.channels, seed: 2, 0, 256).map { UInt8(min(255, $0)) }
        let path = dir + "/f.png"
        try PNGImage.write(path: path, width: w, height: h, pixels: px, format: format)
        let back = try PNGImage.read(path: path, format: format)
        #expect(back.width == w && back.height == h)
        #expect(back.pixels == px, "\(format) pixels differ after a round trip")
        if format == .gray {   // gray read as RGB replicates the channel
            let rgb = try PNGImage.read(path: path).rgb
            #expect(rgb == px.flatMap { [$0, $0, $0] })
        }
    }

    @Test func libpngVersion() {
        #expect(PNGImage.libpngVersion.hasPrefix("1."))
    }

    @Test func unwritablePathNamesIt() throws {
        let bad = "/nonexistent-attrib-dir/sub/heat.png"
        expectAttribError([bad, "cannot write PNG", "No such file"]) {
            try PNGImage.write(path: bad, width: 2, height: 2, rgb: [UInt8](repeating: 0, count: 12))
        }
        // A directory is not a writable file either.
        let dir = try scratchDirectory("dir"); defer { FileHelpers.remove(dir) }
        expectAttribError([dir, "cannot write PNG"]) {
            try PNGImage.write(path: dir, width: 2, height: 2, rgb: [UInt8](repeating: 0, count: 12))
        }
        expectAttribError([bad, "cannot write PNG"]) {
            try Heatmap.write(attribution: [1, -1, 0, 0.5], shape: [2, 2], to: bad)
        }
    }

    @Test func unreadableFilesNameThem() throws {
        let missing = "/nonexistent-attrib-dir/x.png"
        expectAttribError([missing, "cannot read PNG"]) { _ = try PNGImage.read(path: missing) }
        let dir = try scratchDirectory("bad"); defer { FileHelpers.remove(dir) }
        let notPNG = dir + "/not.png"
        try FileHelpers.write("hello, this is not a PNG file at all", notPNG)
        expectAttribError([notPNG, "cannot read PNG"]) { _ = try PNGImage.read(path: notPNG) }
    }

    @Test func pixelCountMismatch() {
        expectAttribError(["PNGImage.write", "11 bytes", "2×2", "12"]) {
            try PNGImage.write(path: "/tmp/never.png", width: 2, height: 2, rgb: [UInt8](repeating: 0, count: 11))
        }
        expectAttribError(["PNGImage.write", "0×2"]) {
            try PNGImage.write(path: "/tmp/never.png", width: 0, height: 2, rgb: [])
        }
    }

    // MARK: Colour maps

    @Test func colorMapEndpoints() {
        let d = HeatmapColorMap.diverging
        #expect(d.color(0) == .white)
        #expect(d.color(-1) == RGB8(5, 48, 97))
        #expect(d.color(1) == RGB8(103, 0, 31))
        #expect(d.color(-7) == d.color(-1) && d.color(7) == d.color(1))   // clamped
        // Reds for positive, blues for negative, symmetric lightness around white.
        let p = d.color(0.5), n = d.color(-0.5)
        #expect(p.r > p.b && n.b > n.r)
        #expect(HeatmapColorMap.inferno.color(0) == RGB8(0, 0, 4))
        #expect(HeatmapColorMap.inferno.color(1) == RGB8(252, 255, 164))
        #expect(HeatmapColorMap.viridis.color(0) == RGB8(68, 1, 84))
        #expect(HeatmapColorMap.viridis.color(1) == RGB8(253, 231, 37))
        #expect(HeatmapColorMap.gray.color(0.5) == RGB8(128, 128, 128))
        #expect(HeatmapColorMap.inferno.color(-1) == HeatmapColorMap.inferno.color(0))
        // Sequential maps get brighter monotonically (sum of channels as a proxy).
        for m in [HeatmapColorMap.inferno, .viridis, .gray] {
            let sums = stride(from: 0.0, through: 1.0, by: 0.05).map { t -> Int in let c = m.color(t); return Int(c.r) + Int(c.g) + Int(c.b) }
            #expect(sums.first! < sums.last!, "\(m) does not brighten")
        }
    }

    @Test func signedMapColours() throws {
        // [−2, 0, 2, 1] at scale 2 (the max; the 100th percentile): blue end, white, red end, halfway red.
        var o = Heatmap.Options(layout: .heatmap, percentile: 100, upscale: 1)
        o.minShortSide = 1
        let r = try Heatmap.render(attribution: [-2, 0, 2, 1], shape: [2, 2], options: o)
        #expect(r.colorMap == .diverging)
        #expect(r.scale == 2)
        #expect(r.image.width == 2 && r.image.height == 2)
        #expect(r.image[x: 0, y: 0] == RGB8(5, 48, 97))
        #expect(r.image[x: 1, y: 0] == .white)
        #expect(r.image[x: 0, y: 1] == RGB8(103, 0, 31))
        #expect(r.image[x: 1, y: 1] == HeatmapColorMap.diverging.color(0.5))
    }

    @Test func nonNegativeMapPicksSequential() throws {
        let r = try Heatmap.render(attribution: [0, 0.25, 0.5, 1], shape: [2, 2], options: .init(percentile: 100, upscale: 1))
        #expect(r.colorMap == .inferno)
        #expect(r.image[x: 0, y: 0] == HeatmapColorMap.inferno.color(0))
        #expect(r.image[x: 1, y: 1] == HeatmapColorMap.inferno.color(1))
        // absSum turns a signed [C, H, W] map non-negative.
        let a = try Heatmap.render(attribution: [1, -1, 0, 0, -1, -1, 0, 0], shape: [2, 2, 2],
                                   options: .init(percentile: 100, reduction: .absSum, upscale: 1))
        #expect(a.colorMap == .inferno && a.scale == 2)
        // Plain sum cancels channel 0 position 1: (-1) + (-1) = -2 at (1,0), 1 + (-1) = 0 at (0,0).
        let s = try Heatmap.render(attribution: [1, -1, 0, 0, -1, -1, 0, 0], shape: [2, 2, 2],
                                   options: .init(percentile: 100, upscale: 1))
        #expect(s.colorMap == .diverging && s.scale == 2)
        #expect(s.image[x: 0, y: 0] == .white && s.image[x: 1, y: 0] == RGB8(5, 48, 97))
    }

    // MARK: Percentile scaling

    @Test func percentileMatchesNumpy() {
        let v = (1...100).map(Double.init)
        #expect(abs(Heatmap.percentile(v, 99) - 99.01) < 1e-12)   // numpy.percentile(range(1, 101), 99)
        #expect(Heatmap.percentile(v, 50) == 50.5)
        #expect(Heatmap.percentile(v, 100) == 100)
        #expect(Heatmap.percentile([3, 1, 2], 0) == 1)
        #expect(Heatmap.percentile([], 99) == 0)
    }

    @Test func outlierDoesNotWashOut() throws {
        // 999 values of ±1 and one 10⁶ outlier: the 99th percentile of |a| is 1,
        // so the ±1 pixels reach the ends of the map instead of staying white.
        var a = (0..<1000).map { $0 % 2 == 0 ? 1.0 : -1.0 }
        a[500] = 1e6
        #expect(Heatmap.scale(of: a, colorMap: .diverging) == 1)
        let r = try Heatmap.render(attribution: a, shape: [10, 100], options: .init(layout: .heatmap, upscale: 1))
        #expect(r.scale == 1)
        #expect(r.image[x: 0, y: 0] == RGB8(103, 0, 31))
        #expect(r.image[x: 1, y: 0] == RGB8(5, 48, 97))
        #expect(r.image[x: 0, y: 5] == RGB8(103, 0, 31))   // the outlier is clamped
        // With the max as scale the same pixels are nearly white.
        let m = try Heatmap.render(attribution: a, shape: [10, 100], options: .init(layout: .heatmap, percentile: 100, upscale: 1))
        #expect(m.image[x: 0, y: 0] == .white)
        // An all-zero map gets scale 1 and draws white.
        #expect(Heatmap.scale(of: [0, 0, 0], colorMap: .diverging) == 1)
        // An explicit scale overrides the percentile.
        let e = try Heatmap.render(attribution: a, shape: [10, 100], options: .init(layout: .heatmap, scale: 2, upscale: 1))
        #expect(e.scale == 2 && e.image[x: 0, y: 0] == HeatmapColorMap.diverging.color(0.5))
    }

    // MARK: Layout

    @Test func layoutsAndUpscaling() throws {
        let (img, attr) = syntheticDigit()
        // 8×8 → ×16 so the short side is 128; three panels with 4-pixel gaps.
        let t = try Heatmap.render(attribution: attr, shape: [8, 8], input: img, inputShape: [1, 8, 8])
        #expect(t.upscale == 16)
        #expect(t.image.width == 3 * 128 + 2 * 4 && t.image.height == 128)
        #expect(t.image[x: 128 + 1, y: 5] == .white)   // the gap
        // Nearest neighbour: every 16×16 block is one colour.
        for by in 0..<8 { for bx in 0..<8 {
            let c = t.image[x: 128 + 4 + bx * 16, y: by * 16]
            #expect(t.image[x: 128 + 4 + bx * 16 + 15, y: by * 16 + 15] == c)
        } }
        // The input panel shows the input in gray.
        let ink = img.firstIndex(of: img.max()!)!
        let v = UInt8((img[ink] * 255).rounded())
        #expect(t.image[x: (ink % 8) * 16, y: (ink / 8) * 16] == RGB8(v, v, v))

        let s = try Heatmap.render(attribution: attr, shape: [8, 8], input: img, options: .init(layout: .sideBySide))
        #expect(s.image.width == 2 * 128 + 4)
        let o = try Heatmap.render(attribution: attr, shape: [8, 8], input: img, options: .init(layout: .overlay))
        #expect(o.image.width == 128)
        // Without an input every layout is the heatmap alone.
        let h = try Heatmap.render(attribution: attr, shape: [8, 8])
        #expect(h.image.width == 128 && h.image.height == 128)
        // 28×28 → ×5; explicit factors win.
        let big = try Heatmap.render(attribution: [Double](repeating: 0.1, count: 784), shape: [28, 28])
        #expect(big.upscale == 5 && big.image.width == 140)
        let one = try Heatmap.render(attribution: attr, shape: [8, 8], options: .init(upscale: 1))
        #expect(one.image.width == 8)
    }

    @Test func overlayLeavesZeroAttributionUntouched() throws {
        // Zero attribution: the overlay shows the gray input; full attribution: blended at alpha.
        let input: [Double] = [0.2, 0.8, 0.5, 1.0]
        let r = try Heatmap.render(attribution: [0, 0, 1, -1], shape: [2, 2], input: input,
                                   options: .init(layout: .overlay, percentile: 100, alpha: 0.5, upscale: 1))
        #expect(r.image[x: 0, y: 0] == RGB8(51, 51, 51))
        #expect(r.image[x: 1, y: 0] == RGB8(204, 204, 204))
        let red = RGB8(103, 0, 31), g = 0.5 * 255.0
        func mix(_ c: UInt8) -> UInt8 { UInt8((0.5 * g + 0.5 * Double(c)).rounded()) }
        #expect(r.image[x: 0, y: 1] == RGB8(mix(red.r), mix(red.g), mix(red.b)))
    }

    @Test func inputNormalization() throws {
        // A [3, 1, 2] RGB input in [−10, 10] is min/max normalised.
        let r = try Heatmap.render(attribution: [0, 0], shape: [1, 2], input: [-10, 10, 0, 0, 10, -10], inputShape: [3, 1, 2],
                                   options: .init(layout: .sideBySide, upscale: 1))
        #expect(r.image[x: 0, y: 0] == RGB8(0, 128, 255))
        #expect(r.image[x: 1, y: 0] == RGB8(255, 128, 0))
        // Values already in [0, 1] are kept (a faint digit stays faint).
        let f = try Heatmap.render(attribution: [0, 0], shape: [1, 2], input: [0.1, 0.2], options: .init(layout: .sideBySide, upscale: 1))
        #expect(f.image[x: 0, y: 0] == RGB8(26, 26, 26) && f.image[x: 1, y: 0] == RGB8(51, 51, 51))
    }

    // MARK: Errors

    @Test func shapeMismatchesAreClear() {
        expectAttribError(["Heatmap", "63 attribution values", "[8, 8]", "64"]) {
            _ = try Heatmap.render(attribution: [Double](repeating: 0, count: 63), shape: [8, 8])
        }
        expectAttribError(["Heatmap", "[8, 8]", "[1, 28, 28]", "8×8", "28×28"]) {
            _ = try Heatmap.render(attribution: [Double](repeating: 0, count: 64), shape: [8, 8],
                                   input: [Double](repeating: 0, count: 784), inputShape: [1, 28, 28])
        }
        expectAttribError(["Heatmap", "2 channels", "1 (gray) or 3 (RGB)"]) {
            _ = try Heatmap.render(attribution: [Double](repeating: 0, count: 4), shape: [2, 2],
                                   input: [Double](repeating: 0, count: 8), inputShape: [2, 2, 2])
        }
        expectAttribError(["Heatmap", "5 input values", "[2, 2]", "[3, 2, 2]"]) {
            _ = try Heatmap.render(attribution: [Double](repeating: 0, count: 4), shape: [2, 2], input: [0, 0, 0, 0, 0])
        }
        expectAttribError(["Heatmap", "[4]", "[H, W] or [C, H, W]"]) {
            _ = try Heatmap.render(attribution: [0, 0, 0, 0], shape: [4])
        }
        expectAttribError(["Heatmap", "value 2 is nan"]) {
            _ = try Heatmap.render(attribution: [0, 0, .nan, 0], shape: [2, 2])
        }
        expectAttribError(["Heatmap", "percentile 0"]) {
            _ = try Heatmap.render(attribution: [0, 0, 0, 0], shape: [2, 2], options: .init(percentile: 0))
        }
        expectAttribError(["Heatmap.writeBatch", "3 samples", "2"]) {
            try Heatmap.writeBatch(attributions: [Double](repeating: 0, count: 12), shape: [3, 2, 2],
                                   inputs: [Double](repeating: 0, count: 8), inputShape: [2, 2, 2], directory: "/tmp/never")
        }
    }

    // MARK: Batches and files

    @Test func batchWritesOnePNGPerSample() throws {
        let dir = try scratchDirectory("batch"); defer { FileHelpers.remove(dir) }
        let (img, attr) = syntheticDigit()
        let n = 3
        let attrs = (0..<n).flatMap { i in attr.map { $0 * Double(i + 1) } }
        let inputs = (0..<n).flatMap { _ in img }
        let out = dir + "/maps"
        let paths = try Heatmap.writeBatch(attributions: attrs, shape: [n, 1, 8, 8], inputs: inputs, inputShape: [n, 8, 8],
                                           directory: out, prefix: "digit")
        #expect(paths == (0..<n).map { out + "/digit_000\($0).png" })
        for p in paths {
            let r = try PNGImage.read(path: p)
            #expect(r.width == 3 * 128 + 8 && r.height == 128)
        }
        // Each image on its own scale: identical pictures up to the factor.
        #expect(try PNGImage.read(path: paths[0]).rgb == PNGImage.read(path: paths[2]).rgb)
        // One shared scale: the first sample is paler than the last.
        let shared = try Heatmap.writeBatch(attributions: attrs, shape: [n, 8, 8], directory: dir + "/shared", sharedScale: true)
        #expect(try PNGImage.read(path: shared[0]).rgb != PNGImage.read(path: shared[2]).rgb)
        // The file equals the rendering.
        let r = try Heatmap.write(attribution: attr, shape: [8, 8], input: img, to: dir + "/one.png")
        #expect(try PNGImage.read(path: dir + "/one.png").rgb == r.image.pixels)
    }

    /// Renders the synthetic digit to /tmp for a person to look at.
    @Test func writesExample() throws {
        let (img, attr) = syntheticDigit()
        let path = FileManager.default.temporaryDirectory.path + "/attrib-heatmap-example.png"
        try Heatmap.write(attribution: attr, shape: [8, 8], input: img, inputShape: [8, 8], to: path)
        let sobol = attr.map { abs($0) }
        try Heatmap.write(attribution: sobol, shape: [8, 8], input: img, to: FileManager.default.temporaryDirectory.path + "/attrib-heatmap-example-sobol.png")
        #expect(FileManager.default.fileExists(atPath: path))
    }
}
