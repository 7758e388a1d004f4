import Attrib
import Testing

/// Titles, axis labels and colour bars on heatmaps, the line plot of evaluate's curves, and the
/// bitmap font they are written in.
@Suite struct HeatmapAnnotationTests {
    @Test("every printable ASCII glyph is 7 rows of 5 bits; only the space is blank; glyphs are distinct")
    func font() {
        var seen = Set<[UInt8]>()
        for a in UInt8(32)...126 {
            let rows = BitmapFont.rows(Character(UnicodeScalar(a)))
            #expect(rows.count == 7 && rows.allSatisfy { $0 < 32 })
            #expect((rows.reduce(0, |) == 0) == (a == 32), "glyph \(a)")
            #expect(seen.insert(rows).inserted, "glyph \(Character(UnicodeScalar(a))) repeats another")
        }
        #expect(BitmapFont.ascii("≥ 0 · −1 × 2") == ">= 0 . -1 x 2")
        #expect(BitmapFont.width("ab", scale: 2) == (2 * 6 - 1) * 2)
    }

    @Test("text lands where it is drawn, in the glyph's pixels")
    func textPixels() {
        var img = RGBImage(width: 20, height: 10)
        img.text("1", x: 2, y: 1)
        // '1' is ..#.. / .##.. / ..#.. ×4 / .###.: column 2 of the glyph is set in every row.
        for r in 0..<7 { #expect(img[x: 4, y: 1 + r] == .black) }
        #expect(img[x: 2, y: 1] == .white && img[x: 3, y: 2] == .black && img[x: 19, y: 9] == .white)
    }

    @Test("an annotated heads grid: title above, row and column labels at their cells, a colour bar from −S (blue) through white to +S (red)")
    func annotatedGrid() throws {
        let values = [-2.0, 0, 1, 2, 0.5, -1]                       // [2 layers, 3 heads]
        var opts = Heatmap.Options(colorMap: .diverging, layout: .heatmap, percentile: 100)
        opts.minShortSide = 40
        let r = try Heatmap.render(attribution: values, shape: [2, 3], options: opts)
        #expect(r.scale == 2 && r.upscale == 20)
        let a = Heatmap.Annotation(title: ["atp per head"], rowLabels: ["L0", "L1"], columnLabels: ["H0", "H1", "H2"],
                                   rowAxis: "layer", columnAxis: "head", colorBarLabel: "change of the metric")
        let (img, at) = Heatmap.annotate(r, mapHeight: 2, mapWidth: 3, a)
        #expect(at.mapX > 0 && at.mapY > 0 && img.height > at.mapY + r.image.height + at.barHeight)
        // The map is pasted unchanged.
        for y in 0..<r.image.height { for x in 0..<r.image.width { #expect(img[x: at.mapX + x, y: at.mapY + y] == r.image[x: x, y: y]) } }
        // The bar: the colour map's ends and white in the middle.
        let midY = at.barY + at.barHeight / 2
        #expect(img[x: at.barX, y: midY] == HeatmapColorMap.diverging.color(-1))
        #expect(img[x: at.barX + at.barWidth - 1, y: midY] == HeatmapColorMap.diverging.color(1))
        let mid = img[x: at.barX + at.barWidth / 2, y: midY]
        #expect(mid.r > 240 && mid.g > 240 && mid.b > 240)
        // Dark label pixels left of row 0's cells, and above the first column.
        func dark(_ x0: Int, _ y0: Int, _ w: Int, _ h: Int) -> Int {
            var n = 0
            for y in y0..<(y0 + h) { for x in x0..<(x0 + w) where img[x: x, y: y].r < 60 { n += 1 } }
            return n
        }
        #expect(dark(0, at.mapY, at.mapX, r.upscale) > 5, "row label L0")
        #expect(dark(at.mapX, at.mapY - 12, r.upscale, 12) > 5, "column label H0")
        #expect(dark(0, 0, img.width, 12) > 20, "title")
        #expect(Heatmap.tickLabel(9.1234) == "9.12" && Heatmap.tickLabel(-0.000123) == "-1.23e-4" && Heatmap.tickLabel(250) == "250")
    }

    @Test("a line plot draws each series in its palette colour inside the plot frame")
    func linePlot() {
        let x = (0...10).map { Double($0) / 10 }
        let (img, f) = LinePlot.render([LinePlot.Series(name: "a", x: x, y: x.map { 1 - $0 }),
                                        LinePlot.Series(name: "b", x: x, y: x.map { $0 * $0 })],
                                       title: "deletion", xLabel: "fraction", yLabel: "p")
        func count(_ c: RGB8) -> Int {
            var n = 0
            for y in f.y..<(f.y + f.height) { for xx in f.x..<(f.x + f.width) where img[x: xx, y: y] == c { n += 1 } }
            return n
        }
        #expect(count(LinePlot.palette[0]) > f.width && count(LinePlot.palette[1]) > f.width / 2)
        // Series a runs from the top-left corner (x = 0, y = 1) to the bottom-right.
        #expect(img[x: f.x + 1, y: f.y + 1] == LinePlot.palette[0] || img[x: f.x + 1, y: f.y] == LinePlot.palette[0])
    }
}
