import AttribCore
import FoundationEssentials

extension Heatmap {
    /// Heatmaps drawn over the original images at their own resolution: each attribution map
    /// (channels summed) is resized bilinearly from the model's [H, W] to the image's size and
    /// drawn as input | heatmap | overlay, with the annotation (title, colour bar, scale rule).
    /// `shape`: [N, H, W] or [N, C, H, W]; `images`: one PNG per map, in order.
    @discardableResult
    public static func writeOverImages(attributions: [Double], shape: [Int], images: [String], directory: String,
                                       prefix: String, sharedScale: Bool, percentile: Double = 99,
                                       annotation: (Int) -> Annotation) throws -> [String] {
        let op = "Heatmap.writeOverImages"
        guard shape.count == 3 || shape.count == 4, shape[0] == images.count else {
            throw AttribError.shapeMismatch(op: op, detail: "attribution shape \(shape) for \(images.count) images")
        }
        let n = shape[0], sample = Array(shape.dropFirst()), per = sample.reduce(1, *)
        let maps = try (0..<n).map { i in try reduce(attribution: Array(attributions[(i * per)..<((i + 1) * per)]), shape: sample, reduction: .sum, op: op) }
        let signed = maps.contains { $0.map.contains { $0 < 0 } }
        let cmap: HeatmapColorMap = signed ? .diverging : .inferno
        let global = sharedScale ? scale(of: maps.flatMap(\.map), colorMap: cmap, percentile: percentile) : nil
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var paths: [String] = []
        for (i, m) in maps.enumerated() {
            let img = try ImageFile.read(path: images[i], format: .rgb)
            let up = ImageInputs.resizePlane(m.map, width: m.width, height: m.height, toHeight: img.height, toWidth: img.width)
            // The image as planes [3, h, w] in [0, 1].
            let hw = img.width * img.height
            var planes = [Double](repeating: 0, count: 3 * hw)
            for k in 0..<hw { for ch in 0..<3 { planes[ch * hw + k] = Double(img.pixels[3 * k + ch]) / 255 } }
            var opts = Options(colorMap: cmap, layout: .triptych, percentile: percentile)
            // The scale from the model-resolution map (bilinear resizing keeps values within it).
            opts.scale = global ?? scale(of: m.map, colorMap: cmap, percentile: percentile)
            let r = try render(attribution: up, shape: [img.height, img.width], input: planes, inputShape: [3, img.height, img.width], options: opts)
            var a = annotation(i)
            a.notes.append(sharedScale ? "one scale for all \(n) images (the \(Int(percentile))th percentile of |attr.| over all)"
                                       : "scaled per image (the \(Int(percentile))th percentile of |attr.| in this one)")
            a.notes.append("drawn over \(images[i]) at \(img.width)x\(img.height); the model saw it at \(m.width)x\(m.height)")
            var number = String(i)
            number = String(repeating: "0", count: max(0, 4 - number.count)) + number
            let path = directory + "/\(prefix)_\(number).png"
            try annotate(r, mapHeight: img.height, mapWidth: img.width, a).image.write(to: path)
            paths.append(path)
        }
        return paths
    }
}
