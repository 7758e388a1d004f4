import AttribCore

/// One 8-bit RGB colour.
public struct RGB8: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    public static let white = RGB8(255, 255, 255)
    public static let black = RGB8(0, 0, 0)
    public var description: String { "(\(r), \(g), \(b))" }
}

/// Colour maps for attribution heatmaps: small tables interpolated linearly.
public enum HeatmapColorMap: String, Sendable, CaseIterable {
    /// For signed maps: dark blue (−1) → white (0) → dark red (+1), ColorBrewer's
    /// RdBu reversed with a pure-white centre, so zero attribution is white.
    case diverging
    /// Sequential, for non-negative maps (e.g. Sobol indices): black → purple → orange → pale yellow.
    case inferno
    /// Sequential: dark purple → teal → yellow.
    case viridis
    /// Sequential: black → white.
    case gray

    /// True for the map that takes signed values in [−1, 1].
    public var isDiverging: Bool { self == .diverging }

    /// The colour of a normalised value: t ∈ [−1, 1] for `.diverging` (0 is white),
    /// t ∈ [0, 1] for the sequential maps. Values outside are clamped; NaN maps like 0.
    public func color(_ t: Double) -> RGB8 {
        let table = self.table
        var u: Double
        if isDiverging { u = (t + 1) / 2 } else { u = t }
        if !(u >= 0) { u = isDiverging && t.isNaN ? 0.5 : 0 }   // NaN or below the range
        if u > 1 { u = 1 }
        let x = u * Double(table.count - 1)
        let i = min(Int(x), table.count - 2)
        let f = x - Double(i)
        let a = table[i], b = table[i + 1]
        func mix(_ p: UInt8, _ q: UInt8) -> UInt8 {
            UInt8(min(255, max(0, (Double(p) + (Double(q) - Double(p)) * f).rounded())))
        }
        return RGB8(mix(a.r, b.r), mix(a.g, b.g), mix(a.b, b.b))
    }

    /// The colours at evenly spaced points from the low end to the high end.
    public var table: [RGB8] {
        switch self {
        case .diverging:
            // RdBu_r (ColorBrewer, 11 classes), centre replaced by white.
            return [RGB8(5, 48, 97), RGB8(33, 102, 172), RGB8(67, 147, 195), RGB8(146, 197, 222), RGB8(209, 229, 240),
                    RGB8(255, 255, 255),
                    RGB8(253, 219, 199), RGB8(244, 165, 130), RGB8(214, 96, 77), RGB8(178, 24, 43), RGB8(103, 0, 31)]
        case .inferno:
            // matplotlib's inferno sampled at 0, 1/8, …, 1.
            return [RGB8(0, 0, 4), RGB8(31, 12, 72), RGB8(85, 15, 109), RGB8(136, 34, 106), RGB8(186, 54, 85),
                    RGB8(227, 89, 51), RGB8(249, 140, 10), RGB8(249, 201, 50), RGB8(252, 255, 164)]
        case .viridis:
            // matplotlib's viridis sampled at 0, 1/8, …, 1.
            return [RGB8(68, 1, 84), RGB8(71, 44, 122), RGB8(59, 81, 139), RGB8(44, 113, 142), RGB8(33, 144, 141),
                    RGB8(39, 173, 129), RGB8(92, 200, 99), RGB8(170, 220, 50), RGB8(253, 231, 37)]
        case .gray:
            return [RGB8(0, 0, 0), RGB8(255, 255, 255)]
        }
    }
}
