import AttribCore

/// Host-side image helpers of the perturbation methods, on planes [c, h, w] in Double:
/// the box blur the Sobol reference uses for its blurred baseline, and the resizes of
/// an index map to the input.
public enum ImageResampling {
    /// `cv2.blur(x, (k, k))` on each channel plane: the mean of the k×k window whose
    /// anchor is (k/2, k/2) (integer division: rows y − k/2 … y − k/2 + k − 1), with
    /// OpenCV's default border BORDER_REFLECT_101 (… 2 1 | 0 1 2 … n−1 | n−2 …), reflected
    /// again as often as a window wider than the image needs.
    public static func boxBlur(_ x: [Double], channels c: Int, height h: Int, width w: Int, kernelSize k: Int) throws -> [Double] {
        let op = "boxBlur"
        try AttribError.requirePositive(op, ["channels": c, "height": h, "width": w, "kernel size": k])
        guard x.count == c * h * w else {
            throw AttribError.shapeMismatch(op: op, detail: "\(x.count) values for an image [\(c), \(h), \(w)]")
        }
        let a = k / 2
        func reflect(_ p: Int, _ n: Int) -> Int {
            if n == 1 { return 0 }
            var p = p
            while p < 0 || p >= n { p = p < 0 ? -p : 2 * n - p - 2 }
            return p
        }
        let ry = (0..<(h + k - 1)).map { reflect($0 - a, h) }, rx = (0..<(w + k - 1)).map { reflect($0 - a, w) }
        var out = [Double](repeating: 0, count: x.count)
        let norm = 1 / Double(k * k)
        for ci in 0..<c {
            let plane = ci * h * w
            // Rows first, then columns (a separable sum; the order of the k² terms is fixed).
            var rows = [Double](repeating: 0, count: h * w)
            for y in 0..<h {
                for xx in 0..<w {
                    var s = 0.0
                    for i in 0..<k { s += x[plane + ry[y + i] * w + xx] }
                    rows[y * w + xx] = s
                }
            }
            for y in 0..<h {
                for xx in 0..<w {
                    var s = 0.0
                    for j in 0..<k { s += rows[y * w + rx[xx + j]] }
                    out[plane + y * w + xx] = s * norm
                }
            }
        }
        return out
    }

    /// How an s×s map is brought to the input's size.
    public enum MapResize: String, Sendable, CaseIterable {
        /// Each input pixel takes its grid cell's value (src = ⌊dst·s/size⌋, as the masks).
        case nearest
        /// `cv2.resize(map, (w, h), interpolation=cv2.INTER_CUBIC)`, as the Sobol reference
        /// (utils.py `resize`): half-pixel centres, src = (dst + ½)·s/size − ½ (not clamped),
        /// Keys' cubic with A = −0.75 over the 4 neighbours, indices clamped to the map
        /// (BORDER_REPLICATE). The same convention as torch's bicubic, align_corners=False.
        case bicubic
    }

    /// Planes [c, gh, gw] resized to [c, h, w].
    public static func resize(_ map: [Double], channels c: Int, gridHeight gh: Int, gridWidth gw: Int,
                              height h: Int, width w: Int, _ mode: MapResize) throws -> [Double] {
        let op = "resizeMap"
        try AttribError.requirePositive(op, ["channels": c, "grid height": gh, "grid width": gw, "height": h, "width": w])
        guard map.count == c * gh * gw else {
            throw AttribError.shapeMismatch(op: op, detail: "\(map.count) values for a map [\(c), \(gh), \(gw)]")
        }
        let ry = weights(h, gh, mode), rx = weights(w, gw, mode)
        var out = [Double](repeating: 0, count: c * h * w)
        for ci in 0..<c {
            let p = ci * gh * gw
            // Along x first (every grid row), then along y, as OpenCV's horizontal then vertical passes.
            var tmp = [Double](repeating: 0, count: gh * w)
            for r in 0..<gh {
                for x in 0..<w {
                    var s = 0.0
                    for (idx, wt) in rx[x] { s += wt * map[p + r * gw + idx] }
                    tmp[r * w + x] = s
                }
            }
            for y in 0..<h {
                for x in 0..<w {
                    var s = 0.0
                    for (idx, wt) in ry[y] { s += wt * tmp[idx * w + x] }
                    out[(ci * h + y) * w + x] = s
                }
            }
        }
        return out
    }

    /// Per output index, the (source index, weight) pairs along one axis.
    static func weights(_ size: Int, _ g: Int, _ mode: MapResize) -> [[(Int, Double)]] {
        (0..<size).map { dst in
            switch mode {
            case .nearest:
                return [((dst * g) / size, 1)]
            case .bicubic:
                let f = (Double(dst) + 0.5) * Double(g) / Double(size) - 0.5
                let i = Int(f.rounded(.down)), t = f - Double(i)
                let wts = cubicWeights(t)
                return (0..<4).map { k in (min(max(i - 1 + k, 0), g - 1), wts[k]) }
            }
        }
    }

    /// Keys' cubic convolution weights for offsets −1, 0, 1, 2 at fraction t (A = −0.75,
    /// OpenCV's `interpolateCubic`).
    static func cubicWeights(_ t: Double) -> [Double] {
        let a = -0.75
        let w0 = ((a * (t + 1) - 5 * a) * (t + 1) + 8 * a) * (t + 1) - 4 * a
        let w1 = ((a + 2) * t - (a + 3)) * t * t + 1
        let w2 = ((a + 2) * (1 - t) - (a + 3)) * (1 - t) * (1 - t) + 1
        return [w0, w1, w2, 1 - w0 - w1 - w2]
    }
}
