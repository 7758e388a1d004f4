/// A line plot as an RGB picture: curves over a shared x axis, with axes, ticks, labels and a
/// legend, drawn with `RGBImage`'s primitives (deletion and insertion curves of `attrib evaluate`).
public enum LinePlot {
    public struct Series: Sendable {
        public var name: String
        public var x: [Double], y: [Double]
        public init(name: String, x: [Double], y: [Double]) { self.name = name; self.x = x; self.y = y }
    }

    /// Distinct colours for up to eight series (then they repeat): colour-blind-safe hues.
    public static let palette: [RGB8] = [RGB8(0, 114, 178), RGB8(213, 94, 0), RGB8(0, 158, 115), RGB8(204, 121, 167),
                                         RGB8(230, 159, 0), RGB8(86, 180, 233), RGB8(0, 0, 0), RGB8(240, 228, 66)]

    /// Where the plot area lies in the picture (for tests).
    public struct Frame: Sendable, Equatable { public let x: Int, y: Int, width: Int, height: Int }

    /// The picture, with the y range [yMin, yMax] (nil: the data's, padded to include 0 and 1
    /// when the values lie within them, as probabilities do).
    public static func render(_ series: [Series], title: String, xLabel: String, yLabel: String,
                              yRange: (Double, Double)? = nil, width: Int = 640, height: Int = 420) -> (image: RGBImage, frame: Frame) {
        let ts = 2, lineH = BitmapFont.glyphHeight * ts
        let left = 16 + lineH + 6 * BitmapFont.advance * ts, right = 16, top = 16 + lineH + 12
        let legendH = series.count * (lineH + 6) + 8
        let bottom = 12 + lineH + 8 + lineH + 8 + legendH
        // Wide enough for the longest text line (title, x label, legend entries).
        let textW = ([title, xLabel] + series.map { "        " + $0.name }).map { BitmapFont.width($0, scale: ts) }.max() ?? 0
        let width = Swift.max(width, left + textW + right)
        let pw = width - left - right, ph = height - top - bottom
        var img = RGBImage(width: width, height: height + 0, fill: .white)
        img.text(title, x: 16, y: 12, scale: ts)
        let all = series.flatMap(\.y).filter(\.isFinite), xs = series.flatMap(\.x).filter(\.isFinite)
        var (y0, y1) = yRange ?? (all.min() ?? 0, all.max() ?? 1)
        if yRange == nil, y0 >= 0, y1 <= 1 { y0 = 0; y1 = 1 }
        if !(y1 > y0) { y1 = y0 + 1 }
        let x0 = xs.min() ?? 0, x1 = Swift.max(xs.max() ?? 1, x0 + 1e-12)
        func px(_ x: Double) -> Int { left + Int(((x - x0) / (x1 - x0) * Double(pw - 1)).rounded()) }
        func py(_ y: Double) -> Int { top + ph - 1 - Int(((Swift.min(y1, Swift.max(y0, y)) - y0) / (y1 - y0) * Double(ph - 1)).rounded()) }
        // Grid, axes and ticks at 0, ¼, ½, ¾, 1 of each range.
        let grid = RGB8(225, 225, 225)
        for i in 0...4 {
            let f = Double(i) / 4
            let gx = px(x0 + f * (x1 - x0)), gy = py(y0 + f * (y1 - y0))
            img.line(gx, top, gx, top + ph - 1, grid)
            img.line(left, gy, left + pw - 1, gy, grid)
            let xl = Heatmap.tickLabel(x0 + f * (x1 - x0)), yl = Heatmap.tickLabel(y0 + f * (y1 - y0))
            img.text(xl, x: gx - BitmapFont.width(xl, scale: ts) / 2, y: top + ph + 6, scale: ts)
            img.text(yl, x: left - 6 - BitmapFont.width(yl, scale: ts), y: gy - lineH / 2, scale: ts)
        }
        img.line(left, top, left, top + ph - 1, .black)
        img.line(left, top + ph - 1, left + pw - 1, top + ph - 1, .black)
        img.text(xLabel, x: left + (pw - BitmapFont.width(xLabel, scale: ts)) / 2, y: top + ph + 6 + lineH + 8, scale: ts)
        img.verticalText(yLabel, x: 12, y: top + (ph + BitmapFont.width(yLabel, scale: ts)) / 2, scale: ts)
        for (k, s) in series.enumerated() {
            let c = palette[k % palette.count]
            let pts = zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite }
            for (a, b) in zip(pts, pts.dropFirst()) { img.line(px(a.0), py(a.1), px(b.0), py(b.1), c, thickness: 2) }
            let ly = top + ph + 6 + 2 * (lineH + 8) + k * (lineH + 6)
            img.fill(x: left, y: ly + lineH / 2 - 2, width: 24, height: 4, c)
            img.text(s.name, x: left + 32, y: ly, scale: ts)
        }
        return (img, Frame(x: left, y: top, width: pw, height: ph))
    }
}
