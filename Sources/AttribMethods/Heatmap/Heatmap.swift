import AttribCore
import FoundationEssentials

/// An 8-bit RGB raster, row-major, R G B interleaved.
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: RGB8 = .white) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = fill.r; pixels[3 * i + 1] = fill.g; pixels[3 * i + 2] = fill.b }
    }

    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width >= 1, height >= 1, pixels.count == width * height * 3 else {
            throw AttribError.shapeMismatch(op: "RGBImage", detail: "\(pixels.count) bytes for a \(width)×\(height) RGB image; expected \(max(0, width * height * 3))")
        }
        self.width = width; self.height = height; self.pixels = pixels
    }

    public subscript(x x: Int, y y: Int) -> RGB8 {
        get { let i = 3 * (y * width + x); return RGB8(pixels[i], pixels[i + 1], pixels[i + 2]) }
        set { let i = 3 * (y * width + x); pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b }
    }

    /// Writes the image as an 8-bit RGB PNG.
    public func write(to path: String) throws {
        try PNGImage.write(path: path, width: width, height: height, rgb: pixels)
    }
}

/// Renders attribution maps as PNG heatmaps, alone or over their input.
///
/// The attribution is `[H, W]` or `[C, H, W]` (channels summed, or |·|-summed);
/// the input, when given, is `[H, W]`, `[1, H, W]` (gray) or `[3, H, W]` (RGB), any range.
/// Signed maps use the blue–white–red diverging map, symmetric around 0, with
/// ±scale at the ends, scale = the `percentile`-th percentile of |a| (so a single
/// outlier does not wash the map out); non-negative maps use a sequential map
/// from 0 to the percentile of a. Everything is upscaled by an integer factor,
/// nearest neighbour, so small inputs (8×8 digits) stay visible.
public enum Heatmap {
    public struct Options: Sendable {
        /// What goes in the picture.
        public enum Layout: Sendable, Equatable {
            /// The colour-mapped attribution alone.
            case heatmap
            /// The colour map alpha-blended over the grayscale input.
            case overlay
            /// Input | heatmap.
            case sideBySide
            /// Input | heatmap | overlay.
            case triptych
        }
        /// How a `[C, H, W]` attribution becomes one `[H, W]` map.
        public enum ChannelReduction: Sendable, Equatable { case sum, absSum }
        /// How the input's values become intensities in [0, 1].
        public enum InputNormalization: Sendable, Equatable {
            /// Kept as they are when already in [0, 1], else min/max normalised.
            case auto
            /// Always min/max normalised (a constant input becomes mid-gray).
            case minMax
            /// Clamped to [0, 1].
            case clamp
        }

        /// nil: `.diverging` when any (reduced) attribution is negative, else `.inferno`.
        public var colorMap: HeatmapColorMap? = nil
        /// The percentile of |a| (diverging) or of a (sequential) that maps to the end of the colour map.
        public var percentile: Double = 99
        /// An explicit value for the end of the colour map (overrides `percentile`); useful to share one scale across images.
        public var scale: Double? = nil
        public var reduction: ChannelReduction = .sum
        /// Without an input, every layout draws the heatmap alone.
        public var layout: Layout = .triptych
        /// Opacity of the colour map in the overlay, in [0, 1].
        public var alpha: Double = 0.7
        /// Scale the overlay's opacity by |t| so zero attribution leaves the input untouched.
        public var alphaByMagnitude: Bool = true
        /// Nearest-neighbour upscaling factor; nil: the smallest that makes the short side ≥ `minShortSide`.
        public var upscale: Int? = nil
        public var minShortSide: Int = 128
        /// Pixels between panels (in the output).
        public var gap: Int = 4
        public var background: RGB8 = .white
        public var inputNormalization: InputNormalization = .auto

        public init() {}
        public init(colorMap: HeatmapColorMap? = nil, layout: Layout = .triptych, percentile: Double = 99,
                    scale: Double? = nil, reduction: ChannelReduction = .sum, alpha: Double = 0.7, upscale: Int? = nil) {
            self.colorMap = colorMap; self.layout = layout; self.percentile = percentile
            self.scale = scale; self.reduction = reduction; self.alpha = alpha; self.upscale = upscale
        }
    }

    /// A rendered heatmap and how it was scaled.
    public struct Rendering: Sendable {
        public let image: RGBImage
        public let colorMap: HeatmapColorMap
        /// The attribution value drawn at the end of the colour map (±scale for diverging).
        public let scale: Double
        /// The nearest-neighbour upscaling factor used.
        public let upscale: Int
    }

    // MARK: - One image

    /// Renders one attribution map (and its input, if given) to an RGB image.
    public static func render(attribution: [Double], shape: [Int], input: [Double]? = nil, inputShape: [Int]? = nil,
                              options: Options = Options()) throws -> Rendering {
        let op = "Heatmap"
        try checkOptions(options, op: op)
        let (map, h, w) = try reduce(attribution: attribution, shape: shape, reduction: options.reduction, op: op)
        var inputImage: (gray: [Double], rgb: [Double])? = nil
        if let input {
            inputImage = try normalizedInput(input, shape: inputShape, height: h, width: w,
                                             attributionShape: shape, mode: options.inputNormalization, op: op)
        } else if let inputShape {
            throw AttribError.invalidArgument(op: op, detail: "inputShape \(inputShape) given without input values")
        }
        let cmap = options.colorMap ?? (map.contains(where: { $0 < 0 }) ? .diverging : .inferno)
        let s = options.scale ?? scale(of: map, colorMap: cmap, percentile: options.percentile)
        guard s > 0, s.isFinite else {
            throw AttribError.invalidArgument(op: op, detail: "colour scale \(s) must be positive and finite")
        }

        // Base-resolution panels.
        var heat = [RGB8](repeating: .white, count: h * w)
        var magnitude = [Double](repeating: 0, count: h * w)
        for i in 0..<(h * w) {
            var t = map[i] / s
            t = cmap.isDiverging ? min(1, max(-1, t)) : min(1, max(0, t))
            heat[i] = cmap.color(t)
            magnitude[i] = abs(t)
        }
        var panels: [[RGB8]] = []
        if let inputImage {
            let inputPanel = (0..<(h * w)).map { i in
                RGB8(byte(inputImage.rgb[3 * i]), byte(inputImage.rgb[3 * i + 1]), byte(inputImage.rgb[3 * i + 2]))
            }
            let overlay = (0..<(h * w)).map { i -> RGB8 in
                let a = options.alpha * (options.alphaByMagnitude ? magnitude[i] : 1)
                let g = inputImage.gray[i] * 255
                func blend(_ c: UInt8) -> UInt8 { byte(((1 - a) * g + a * Double(c)) / 255) }
                return RGB8(blend(heat[i].r), blend(heat[i].g), blend(heat[i].b))
            }
            switch options.layout {
            case .heatmap: panels = [heat]
            case .overlay: panels = [overlay]
            case .sideBySide: panels = [inputPanel, heat]
            case .triptych: panels = [inputPanel, heat, overlay]
            }
        } else {
            panels = [heat]
        }

        let k = options.upscale ?? max(1, (options.minShortSide + min(h, w) - 1) / min(h, w))
        let panelW = w * k, panelH = h * k
        let gap = panels.count > 1 ? options.gap : 0
        let (outW, o1) = (panelW * panels.count).addingReportingOverflow(gap * (panels.count - 1))
        let (outPixels, o2) = outW.multipliedReportingOverflow(by: panelH)
        guard !o1, !o2, outPixels <= 1 << 28 else {
            throw AttribError.tooLarge(op: op, detail: "a \(h)×\(w) map upscaled \(k)× in \(panels.count) panels is too large an image")
        }
        var image = RGBImage(width: outW, height: panelH, fill: options.background)
        for (p, panel) in panels.enumerated() {
            let x0 = p * (panelW + gap)
            for y in 0..<panelH {
                let sy = y / k
                for x in 0..<panelW { image[x: x0 + x, y: y] = panel[sy * w + x / k] }
            }
        }
        return Rendering(image: image, colorMap: cmap, scale: s, upscale: k)
    }

    /// Renders one attribution map and writes it as a PNG at `path`.
    @discardableResult
    public static func write(attribution: [Double], shape: [Int], input: [Double]? = nil, inputShape: [Int]? = nil,
                             to path: String, options: Options = Options()) throws -> Rendering {
        let r = try render(attribution: attribution, shape: shape, input: input, inputShape: inputShape, options: options)
        try r.image.write(to: path)
        return r
    }

    /// Tensor convenience: `attribution` is `[H, W]` or `[C, H, W]`, `input` `[H, W]`, `[1, H, W]` or `[3, H, W]`.
    @discardableResult
    public static func write(attribution: Tensor, input: Tensor? = nil, to path: String,
                             options: Options = Options()) throws -> Rendering {
        try write(attribution: try attribution.doubles(), shape: attribution.shape,
                  input: try input?.doubles(), inputShape: input?.shape, to: path, options: options)
    }

    // MARK: - Batches

    /// Writes one PNG per sample, `directory/prefix_0000.png`, `prefix_0001.png`, …
    /// `shape` is `[N, H, W]` or `[N, C, H, W]`; `inputShape` (with `inputs`) `[N, H, W]` or `[N, C, H, W]`.
    /// With `sharedScale`, one colour scale (the percentile over every image drawn) is used for every
    /// image so they compare; otherwise each image is scaled on its own. `limit`: draw only the first
    /// `limit` samples. `annotation(i)`, when given, titles image i and adds a colour bar; the
    /// scale rule is added to its notes in words. Creates `directory`. Returns the paths written.
    @discardableResult
    public static func writeBatch(attributions: [Double], shape: [Int], inputs: [Double]? = nil, inputShape: [Int]? = nil,
                                  directory: String, prefix: String = "heatmap", sharedScale: Bool = false, limit: Int? = nil,
                                  options: Options = Options(), annotation: ((Int) -> Annotation)? = nil) throws -> [String] {
        let op = "Heatmap.writeBatch"
        guard shape.count == 3 || shape.count == 4, shape.allSatisfy({ $0 >= 1 }) else {
            throw AttribError.invalidArgument(op: op, detail: "attribution shape \(shape) must be [N, H, W] or [N, C, H, W] with every dimension ≥ 1")
        }
        let total = shape[0], sampleShape = Array(shape.dropFirst()), per = sampleShape.reduce(1, *)
        guard attributions.count == total * per else {
            throw AttribError.shapeMismatch(op: op, detail: "\(attributions.count) attribution values for shape \(shape) (\(total * per) expected)")
        }
        if let limit, limit < 0 { throw AttribError.invalidArgument(op: op, detail: "limit \(limit) must be ≥ 0") }
        let n = Swift.min(total, limit ?? total)
        var inputSampleShape: [Int]? = nil, inputPer = 0
        if let inputs {
            guard let inputShape else {
                throw AttribError.invalidArgument(op: op, detail: "inputs given without inputShape; pass [N, H, W] or [N, C, H, W]")
            }
            guard inputShape.count == 3 || inputShape.count == 4, inputShape.allSatisfy({ $0 >= 1 }) else {
                throw AttribError.invalidArgument(op: op, detail: "input shape \(inputShape) must be [N, H, W] or [N, C, H, W] with every dimension ≥ 1")
            }
            guard inputShape[0] == total else {
                throw AttribError.shapeMismatch(op: op, detail: "attributions hold \(n) samples (shape \(shape)) but inputs hold \(inputShape[0]) (shape \(inputShape))")
            }
            inputSampleShape = Array(inputShape.dropFirst())
            inputPer = inputSampleShape!.reduce(1, *)
            guard inputs.count == total * inputPer else {
                throw AttribError.shapeMismatch(op: op, detail: "\(inputs.count) input values for shape \(inputShape) (\(total * inputPer) expected)")
            }
        }
        var opts = options
        if sharedScale, opts.scale == nil {
            var maps: [Double] = []
            maps.reserveCapacity(n * sampleShape.suffix(2).reduce(1, *))
            var anyNegative = false
            for i in 0..<n {
                let (m, _, _) = try reduce(attribution: Array(attributions[(i * per)..<((i + 1) * per)]), shape: sampleShape,
                                           reduction: options.reduction, op: op)
                anyNegative = anyNegative || m.contains(where: { $0 < 0 })
                maps += m
            }
            let cmap = opts.colorMap ?? (anyNegative ? .diverging : .inferno)
            opts.colorMap = cmap
            opts.scale = scale(of: maps, colorMap: cmap, percentile: options.percentile)
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw AttribError.io(path: directory, detail: "cannot create the heatmap directory: \(error)")
        }
        let digits = max(4, String(n - 1).count)
        var paths: [String] = []
        for i in 0..<n {
            var number = String(i)
            number = String(repeating: "0", count: digits - number.count) + number
            let path = (directory.hasSuffix("/") ? directory : directory + "/") + "\(prefix)_\(number).png"
            let input = inputs.map { Array($0[(i * inputPer)..<((i + 1) * inputPer)]) }
            let r = try render(attribution: Array(attributions[(i * per)..<((i + 1) * per)]), shape: sampleShape,
                               input: input, inputShape: inputSampleShape, options: opts)
            if var a = annotation?(i) {
                let which = r.colorMap.isDiverging ? "|attr.|" : "attr."
                let rule = options.scale != nil ? "a fixed scale"
                    : "the \(options.percentile == 100 ? "largest" : "\(Int(options.percentile))th percentile of") \(which)"
                a.notes.append(sharedScale || options.scale != nil
                    ? "one scale for all \(n) images: the bar's ends are \(rule)\(options.scale == nil ? " over all of them" : "")"
                    : "scaled per image: the bar's ends are \(rule) in this image")
                try annotate(r, mapHeight: sampleShape[sampleShape.count - 2], mapWidth: sampleShape[sampleShape.count - 1], a).image.write(to: path)
            } else {
                try r.image.write(to: path)
            }
            paths.append(path)
        }
        return paths
    }

    // MARK: - Scaling

    /// The p-th percentile (0…100) of `values`, interpolating linearly between
    /// order statistics (numpy's default). NaNs are ignored; 0 for no values.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        let v = values.filter { !$0.isNaN }.sorted()
        guard !v.isEmpty else { return 0 }
        let x = min(100, max(0, p)) / 100 * Double(v.count - 1)
        let i = Int(x.rounded(.down)), f = x - Double(i)
        return i + 1 < v.count ? v[i] + (v[i + 1] - v[i]) * f : v[i]
    }

    /// The value drawn at the end of `colorMap` for `map`: the percentile of |a|
    /// (diverging) or of max(a, 0) (sequential); the maximum when that is 0; 1 for an all-zero map.
    public static func scale(of map: [Double], colorMap: HeatmapColorMap, percentile p: Double = 99) -> Double {
        let m = colorMap.isDiverging ? map.map { abs($0) } : map.map { max($0, 0) }
        var s = percentile(m, p)
        if !(s > 0) { s = m.max() ?? 0 }
        return s > 0 && s.isFinite ? s : 1
    }

    // MARK: - Internals

    static func checkOptions(_ o: Options, op: String) throws {
        guard o.percentile > 0, o.percentile <= 100 else {
            throw AttribError.invalidArgument(op: op, detail: "percentile \(o.percentile) must be in (0, 100]")
        }
        guard o.alpha >= 0, o.alpha <= 1 else {
            throw AttribError.invalidArgument(op: op, detail: "alpha \(o.alpha) must be in [0, 1]")
        }
        if let k = o.upscale, !(1...256).contains(k) {
            throw AttribError.invalidArgument(op: op, detail: "upscale factor \(k) must be in 1…256")
        }
        guard o.minShortSide >= 1, o.minShortSide <= 4096, o.gap >= 0, o.gap <= 1024 else {
            throw AttribError.invalidArgument(op: op, detail: "minShortSide \(o.minShortSide) must be in 1…4096 and gap \(o.gap) in 0…1024")
        }
        if let s = o.scale, !(s > 0 && s.isFinite) {
            throw AttribError.invalidArgument(op: op, detail: "colour scale \(s) must be positive and finite")
        }
    }

    /// `[H, W]` or `[C, H, W]` → one `[H, W]` map, checked finite.
    static func reduce(attribution a: [Double], shape: [Int], reduction: Options.ChannelReduction,
                       op: String) throws -> (map: [Double], height: Int, width: Int) {
        guard shape.count == 2 || shape.count == 3 else {
            throw AttribError.invalidArgument(op: op, detail: "attribution shape \(shape) must be [H, W] or [C, H, W]")
        }
        guard shape.allSatisfy({ $0 >= 1 }) else { throw AttribError.emptyTensor(op: op, shape: shape) }
        let (count, overflow) = shape.reduce((1, false)) { acc, d in
            let r = acc.0.multipliedReportingOverflow(by: d); return (r.partialValue, acc.1 || r.overflow)
        }
        guard !overflow, a.count == count else {
            throw AttribError.shapeMismatch(op: op, detail: "\(a.count) attribution values for shape \(shape) (\(overflow ? "overflow" : String(count)) expected)")
        }
        if let bad = a.firstIndex(where: { !$0.isFinite }) {
            throw AttribError.invalidArgument(op: op, detail: "attribution value \(bad) is \(a[bad]); heatmaps need finite values")
        }
        let h = shape[shape.count - 2], w = shape[shape.count - 1], c = shape.count == 3 ? shape[0] : 1
        if c == 1 && reduction == .sum { return (a, h, w) }
        var map = [Double](repeating: 0, count: h * w)
        for ch in 0..<c {
            for i in 0..<(h * w) {
                let v = a[ch * h * w + i]
                map[i] += reduction == .absSum ? abs(v) : v
            }
        }
        return (map, h, w)
    }

    /// The input as intensities in [0, 1]: grayscale (luminance) and RGB, both `[H·W]`-major.
    static func normalizedInput(_ x: [Double], shape: [Int]?, height h: Int, width w: Int, attributionShape: [Int],
                                mode: Options.InputNormalization, op: String) throws -> (gray: [Double], rgb: [Double]) {
        let s: [Int]
        if let shape {
            s = shape
        } else if x.count == h * w {
            s = [h, w]
        } else if x.count == 3 * h * w {
            s = [3, h, w]
        } else {
            throw AttribError.shapeMismatch(op: op, detail: "\(x.count) input values fit neither [\(h), \(w)] nor [3, \(h), \(w)] (attribution shape \(attributionShape)); pass inputShape")
        }
        guard s.count == 2 || s.count == 3 else {
            throw AttribError.invalidArgument(op: op, detail: "input shape \(s) must be [H, W] or [C, H, W] with C = 1 or 3")
        }
        let c = s.count == 3 ? s[0] : 1
        guard c == 1 || c == 3 else {
            throw AttribError.invalidArgument(op: op, detail: "input shape \(s) has \(c) channels; heatmaps draw 1 (gray) or 3 (RGB)")
        }
        guard s[s.count - 2] == h, s[s.count - 1] == w else {
            throw AttribError.shapeMismatch(op: op, detail: "attribution shape \(attributionShape) is \(h)×\(w) but input shape \(s) is \(s[s.count - 2])×\(s[s.count - 1])")
        }
        guard x.count == c * h * w else {
            throw AttribError.shapeMismatch(op: op, detail: "\(x.count) input values for input shape \(s) (\(c * h * w) expected)")
        }
        if let bad = x.firstIndex(where: { !$0.isFinite }) {
            throw AttribError.invalidArgument(op: op, detail: "input value \(bad) is \(x[bad]); heatmaps need finite values")
        }
        let lo = x.min()!, hi = x.max()!
        let norm: (Double) -> Double
        switch mode {
        case .clamp: norm = { min(1, max(0, $0)) }
        case .auto where lo >= 0 && hi <= 1: norm = { $0 }
        case .auto, .minMax: norm = hi > lo ? { ($0 - lo) / (hi - lo) } : { _ in 0.5 }
        }
        let n = h * w
        var rgb = [Double](repeating: 0, count: 3 * n), gray = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let r = norm(x[i]), g = c == 3 ? norm(x[n + i]) : r, b = c == 3 ? norm(x[2 * n + i]) : r
            rgb[3 * i] = r; rgb[3 * i + 1] = g; rgb[3 * i + 2] = b
            gray[i] = c == 3 ? 0.299 * r + 0.587 * g + 0.114 * b : r
        }
        return (gray, rgb)
    }

    /// [0, 1] → 0…255, rounded.
    @inline(__always) static func byte(_ v: Double) -> UInt8 { UInt8(min(255, max(0, (v * 255).rounded()))) }
}
