/// Drawing on an `RGBImage`: rectangles, lines, text in `BitmapFont`, and pasting one image into
/// another. Everything is clipped to the image, so callers can draw near the edges freely.
extension RGBImage {
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: RGB8) {
        let x0 = Swift.max(0, x), y0 = Swift.max(0, y), x1 = Swift.min(width, x + w), y1 = Swift.min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 { for xx in x0..<x1 { self[x: xx, y: yy] = color } }
    }

    /// A line from (x0, y0) to (x1, y1), `thickness` pixels square per point (Bresenham).
    public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ color: RGB8, thickness: Int = 1) {
        var x = x0, y = y0
        let dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
        var err = dx + dy
        while true {
            fill(x: x - thickness / 2, y: y - thickness / 2, width: thickness, height: thickness, color)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }

    /// Text with its top-left corner at (x, y), each font pixel `scale`×`scale`.
    public mutating func text(_ s: String, x: Int, y: Int, _ color: RGB8 = .black, scale: Int = 1) {
        BitmapFont.forEachPixel(s) { char, row, col in
            fill(x: x + (char * BitmapFont.advance + col) * scale, y: y + row * scale, width: scale, height: scale, color)
        }
    }

    /// Text drawn upwards (rotated 90° anticlockwise) with its bottom-left corner at (x, y): a vertical axis name.
    public mutating func verticalText(_ s: String, x: Int, y: Int, _ color: RGB8 = .black, scale: Int = 1) {
        BitmapFont.forEachPixel(s) { char, row, col in
            fill(x: x + row * scale, y: y - (char * BitmapFont.advance + col + 1) * scale, width: scale, height: scale, color)
        }
    }

    /// Copies `other` with its top-left corner at (x, y).
    public mutating func paste(_ other: RGBImage, x: Int, y: Int) {
        for yy in 0..<other.height where y + yy >= 0 && y + yy < height {
            for xx in 0..<other.width where x + xx >= 0 && x + xx < width {
                self[x: x + xx, y: y + yy] = other[x: xx, y: yy]
            }
        }
    }
}
