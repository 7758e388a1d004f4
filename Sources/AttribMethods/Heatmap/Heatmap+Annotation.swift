/// Titles, axis labels and a colour bar around a rendered heatmap, so a picture says what it
/// shows: which input and target, which node is where, and what a colour means in the map's units.
extension Heatmap {
    public struct Annotation: Sendable {
        /// Lines above the picture (the first is the title).
        public var title: [String]
        /// One label per map row / column, beside the first panel (grids such as layers × heads).
        public var rowLabels: [String]?
        public var columnLabels: [String]?
        /// Names of the two axes (e.g. "layer", "head").
        public var rowAxis: String?
        public var columnAxis: String?
        /// What the colour bar's values are (the units), e.g. "attribution to class 3".
        public var colorBarLabel: String
        /// Lines under the colour bar: the scale rule in words.
        public var notes: [String]

        public init(title: [String] = [], rowLabels: [String]? = nil, columnLabels: [String]? = nil, rowAxis: String? = nil,
                    columnAxis: String? = nil, colorBarLabel: String = "attribution", notes: [String] = []) {
            self.title = title; self.rowLabels = rowLabels; self.columnLabels = columnLabels
            self.rowAxis = rowAxis; self.columnAxis = columnAxis; self.colorBarLabel = colorBarLabel; self.notes = notes
        }
    }

    /// Where the parts of an annotated picture are (for tests and callers that draw more).
    public struct AnnotatedLayout: Sendable, Equatable {
        /// The rendered heatmap's top-left corner in the annotated image.
        public let mapX: Int, mapY: Int
        /// The colour bar's rectangle.
        public let barX: Int, barY: Int, barWidth: Int, barHeight: Int
        public let textScale: Int
    }

    /// A value for a tick label: three significant digits, plain or scientific.
    public static func tickLabel(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e-2 && a < 1e4 {
            let digits = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3
            var p = 1.0
            for _ in 0..<digits { p *= 10 }
            var s = "\((v * p).rounded() / p)"
            if digits == 0, s.hasSuffix(".0") { s.removeLast(2) }
            return s
        }
        var e = 0, m = a
        while m >= 10 { m /= 10; e += 1 }
        while m < 1 { m *= 10; e -= 1 }
        m = (m * 100).rounded() / 100
        if m >= 10 { m /= 10; e += 1 }
        return (v < 0 ? "-" : "") + "\(m)e\(e)"
    }

    /// `r` with the annotation drawn around it, and where each part went. `mapHeight`/`mapWidth`
    /// are the map's size before upscaling (row and column labels sit at the centre of each cell
    /// of the first panel).
    public static func annotate(_ r: Rendering, mapHeight h: Int, mapWidth w: Int, _ a: Annotation,
                                background: RGB8 = .white) -> (image: RGBImage, layout: AnnotatedLayout) {
        let ts = r.image.width >= 384 ? 2 : 1
        let lineH = BitmapFont.glyphHeight * ts, gap = 3 * ts, margin = 4 * ts
        let rowLabelW = (a.rowLabels ?? []).map { BitmapFont.width($0, scale: ts) }.max() ?? 0
        let rowAxisW = a.rowAxis == nil ? 0 : lineH + gap
        let left = margin + rowAxisW + (rowLabelW > 0 ? rowLabelW + gap : 0)
        let titleH = a.title.isEmpty ? 0 : a.title.count * (lineH + gap)
        let colLabelsH = a.columnLabels == nil ? 0 : lineH + gap
        let colAxisH = a.columnAxis == nil ? 0 : lineH + gap
        let top = margin + titleH + colAxisH + colLabelsH
        let barW = Swift.max(r.image.width, 120), barH = 10 * ts
        let bottomH = gap + barH + gap + lineH + gap + lineH + a.notes.count * (lineH + gap) + margin
        let textW = (a.title + a.notes + [a.colorBarLabel]).map { BitmapFont.width($0, scale: ts) }.max() ?? 0
        let width = Swift.max(left + Swift.max(r.image.width, barW) + margin, margin + textW + margin)
        let height = top + r.image.height + bottomH
        var img = RGBImage(width: width, height: height, fill: background)
        var y = margin
        for (i, line) in a.title.enumerated() {
            img.text(line, x: margin, y: y, i == 0 ? .black : RGB8(60, 60, 60), scale: ts)
            y += lineH + gap
        }
        let k = r.upscale
        if let axis = a.columnAxis {
            img.text(axis, x: left + Swift.max(0, (w * k - BitmapFont.width(axis, scale: ts)) / 2), y: y, RGB8(60, 60, 60), scale: ts)
            y += lineH + gap
        }
        if let labels = a.columnLabels {
            for (c, s) in labels.prefix(w).enumerated() {
                img.text(s, x: left + c * k + (k - BitmapFont.width(s, scale: ts)) / 2, y: y, scale: ts)
            }
        }
        img.paste(r.image, x: left, y: top)
        if let labels = a.rowLabels {
            for (row, s) in labels.prefix(h).enumerated() {
                img.text(s, x: left - gap - BitmapFont.width(s, scale: ts), y: top + row * k + (k - lineH) / 2, scale: ts)
            }
        }
        if let axis = a.rowAxis {
            img.verticalText(axis, x: margin, y: top + (h * k + BitmapFont.width(axis, scale: ts)) / 2, RGB8(60, 60, 60), scale: ts)
        }
        // The colour bar, in the map's units: −S … 0 … +S (diverging) or 0 … S (sequential).
        let barX = left, barY = top + r.image.height + gap
        for x in 0..<barW {
            let f = Double(x) / Double(Swift.max(1, barW - 1))
            let c = r.colorMap.color(r.colorMap.isDiverging ? 2 * f - 1 : f)
            img.fill(x: barX + x, y: barY, width: 1, height: barH, c)
        }
        let ticks: [(Double, String)] = r.colorMap.isDiverging
            ? [(0, tickLabel(-r.scale)), (0.5, "0"), (1, "+" + tickLabel(r.scale))]
            : [(0, "0"), (1, tickLabel(r.scale))]
        let tickY = barY + barH + gap
        for (f, s) in ticks {
            let cx = barX + Int(f * Double(barW - 1))
            img.fill(x: cx, y: barY + barH, width: ts, height: gap, .black)
            let tw = BitmapFont.width(s, scale: ts)
            img.text(s, x: Swift.min(Swift.max(barX, cx - tw / 2), barX + barW - tw), y: tickY, scale: ts)
        }
        y = tickY + lineH + gap
        img.text(a.colorBarLabel, x: barX, y: y, scale: ts)
        y += lineH + gap
        for note in a.notes {
            img.text(note, x: margin, y: y, RGB8(60, 60, 60), scale: ts)
            y += lineH + gap
        }
        return (img, AnnotatedLayout(mapX: left, mapY: top, barX: barX, barY: barY, barWidth: barW, barHeight: barH, textScale: ts))
    }
}
