import CVecMath
import Synchronization

// Depthwise convolutions on the CPU backend (a MobileNet's or EfficientNet's 3×3 and 5×5, a
// ConvNeXt's 7×7): one filter per channel, each plane convolved directly.
//
// Why: as a grouped convolution of C groups of one channel each, the layer ran C separate
// im2col + GEMM pairs of one output row each, with a copy of each channel out and back;
// MobileNetV3-small's IG spent two thirds of its time there (2 threads, 4 inputs, m = 32).
// A depthwise convolution does k² multiply-adds per output; it is a pass over the planes.

extension CPUDevice {
    /// y [n, c, oh, ow] = depthwise convolution of x [n, c, h, w] with weight [c, kh, kw] and
    /// bias [c] (nil: none), stride (sh, sw), zero padding (ph, pw). Every element of y written.
    public func depthwiseConv2d(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH sh: Int, strideW sw: Int,
                                padH ph: Int, padW pw: Int, x: BufferView, weight: BufferView, bias: BufferView?, y: BufferView) throws {
        let op = "depthwiseConv2d"
        let (oh, ow) = try Self.depthwiseOutput(op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw)
        // Float64: the planes in Swift, each output row its bias and then every tap.
        func double() throws {
            let xp = try pointer(Double.self, x, op, n * c * h * w), wp = try pointer(Double.self, weight, op, c * kh * kw)
            let bp = try bias.map { try pointer(Double.self, $0, op, c) }, yp = try pointer(Double.self, y, op, n * c * oh * ow)
            try inPlanes(op, n * c, work: oh * ow * kh * kw) { p0, p1 in
                for plane in p0..<p1 {
                    let ch = plane % c, xpl = xp + plane * h * w, ypl = yp + plane * oh * ow, wpl = wp + ch * kh * kw
                    let b = bp.map { $0[ch] } ?? 0
                    for i in 0..<(oh * ow) { ypl[i] = b }
                    Self.eachTapRow(oh: oh, ow: ow, h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw) { yo, xo, t, cols in
                        let wv = wpl[t]
                        for ox in cols { ypl[yo + ox] += wv * xpl[xo + ox * sw] }
                    }
                }
                return 1
            }
        }
        try withConcreteScalar(y, op, float: {
            // Float32: CVecMath/depthwise.c, each plane padded and split by column phase so every
            // tap is one contiguous loop, 16 columns an AVX-512 register. The Swift loops (Float64
            // here) ran Float32 at 2.8 G multiply-adds a second: MobileNetV3-small's depthwise
            // forward 1.33 s, backward 1.35 s (16 inputs, m = 32), against 0.63 and 0.92 s now.
            let xp = try pointer(Float.self, x, op, n * c * h * w), wp = try pointer(Float.self, weight, op, c * kh * kw)
            let bp = try bias.map { UnsafePointer(try pointer(Float.self, $0, op, c)) }, yp = try pointer(Float.self, y, op, n * c * oh * ow)
            try inPlanes(op, n * c, work: oh * ow * kh * kw) { attrib_depthwise_forward_f32(xp, wp, bp, yp, $0, $1, c, h, w, kh, kw, sh, sw, ph, pw) }
        }, double: double)
    }

    /// Runs body(p0, p1) over planes [0, planes) in parallel chunks; an error naming the op where
    /// a chunk returned 0 (the C loops: it could not allocate its scratch plane).
    private func inPlanes(_ op: String, _ planes: Int, work: Int, _ body: (Int, Int) -> Int32) throws {
        let failed = Atomic<Bool>(false)
        parallelChunks(planes, grain: max(1, (1 << 14) / max(1, work))) { r in
            if body(r.lowerBound, r.upperBound) == 0 { failed.store(true, ordering: .relaxed) }
        }
        if failed.load(ordering: .relaxed) {
            throw AttribError.invalidArgument(op: op, detail: "\(info.id) could not allocate a padded plane")
        }
    }

    /// dx [n, c, h, w] from dy [n, c, oh, ow]: the adjoint of `depthwiseConv2d` (each output's
    /// gradient spread back over the inputs it read). Every element of dx written.
    public func depthwiseConv2dBackward(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH sh: Int, strideW sw: Int,
                                        padH ph: Int, padW pw: Int, dy: BufferView, weight: BufferView, dx: BufferView) throws {
        let op = "depthwiseConv2dBackward"
        let (oh, ow) = try Self.depthwiseOutput(op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw)
        // Float64: each output's gradient spread over the inputs its taps read.
        func double() throws {
            let dyp = try pointer(Double.self, dy, op, n * c * oh * ow), wp = try pointer(Double.self, weight, op, c * kh * kw)
            let dxp = try pointer(Double.self, dx, op, n * c * h * w)
            try inPlanes(op, n * c, work: oh * ow * kh * kw) { p0, p1 in
                for plane in p0..<p1 {
                    let dxpl = dxp + plane * h * w, dypl = dyp + plane * oh * ow, wpl = wp + (plane % c) * kh * kw
                    for i in 0..<(h * w) { dxpl[i] = 0 }
                    Self.eachTapRow(oh: oh, ow: ow, h: h, w: w, kh: kh, kw: kw, sh: sh, sw: sw, ph: ph, pw: pw) { yo, xo, t, cols in
                        let wv = wpl[t]
                        for ox in cols { dxpl[xo + ox * sw] += wv * dypl[yo + ox] }
                    }
                }
                return 1
            }
        }
        try withConcreteScalar(dx, op, float: {
            let dyp = try pointer(Float.self, dy, op, n * c * oh * ow), wp = try pointer(Float.self, weight, op, c * kh * kw)
            let dxp = try pointer(Float.self, dx, op, n * c * h * w)
            try inPlanes(op, n * c, work: oh * ow * kh * kw) { attrib_depthwise_backward_f32(dyp, wp, dxp, $0, $1, c, h, w, kh, kw, sh, sw, ph, pw) }
        }, double: double)
    }

    /// `float` or `double` by the view's dtype. Not `withScalar`: through its existential
    /// metatype the first, generic version of these loops ran unspecialised, 9× slower.
    private func withConcreteScalar(_ view: BufferView, _ op: String, float: () throws -> Void, double: () throws -> Void) throws {
        switch try buffer(view, op).dtype {
        case .float32: try float()
        case .float64: try double()
        case let t: throw AttribError.unsupportedDType(op: op, dtype: t, device: info.summary)
        }
    }

    /// Lets the Float32 depthwise loops use AVX-512 where the CPU has it (true, the default) or
    /// holds them to their scalar form (false): the tests run both.
    public static func allowDepthwiseAVX512(_ allowed: Bool) { attrib_depthwise_set_avx512(allowed ? 1 : 0) }

    /// body(yo, xo, tap, columns) for every tap (ki, kj) of every output row oy of a plane that
    /// reads inside it: output oy·ow + ox reads input xo + ox·sw (xo = iy·w + kj − pw, iy =
    /// oy·sh − ph + ki) with weight `tap` = ki·kw + kj, for ox in `columns`, the outputs whose
    /// input column ox·sw − pw + kj lies in [0, w). The walk both directions of the Float64
    /// loops take.
    @inline(__always)
    static func eachTapRow(oh: Int, ow: Int, h: Int, w: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int,
                           _ body: (Int, Int, Int, Range<Int>) -> Void) {
        for oy in 0..<oh {
            for ki in 0..<kh {
                let iy = oy * sh - ph + ki
                guard iy >= 0, iy < h else { continue }
                for kj in 0..<kw {
                    let lo = pw > kj ? (pw - kj + sw - 1) / sw : 0      // ox·sw ≥ pw − kj
                    let last = w - 1 + pw - kj                           // ox·sw ≤ last
                    let hi = last < 0 ? 0 : min(ow, last / sw + 1)
                    if lo < hi { body(oy * ow, iy * w + kj - pw, ki * kw + kj, lo..<hi) }
                }
            }
        }
    }

    /// (oh, ow) of a depthwise convolution, or an error naming the op where an extent is not
    /// positive or the kernel does not fit the padded plane.
    static func depthwiseOutput(_ op: String, n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, sh: Int, sw: Int, ph: Int, pw: Int) throws -> (Int, Int) {
        try AttribError.requirePositive(op, ["images": n, "channels": c, "rows": h, "columns": w, "kernel rows": kh, "kernel columns": kw,
                                             "row stride": sh, "column stride": sw])
        guard ph >= 0, pw >= 0, h + 2 * ph >= kh, w + 2 * pw >= kw else {
            throw AttribError.invalidArgument(op: op, detail: "a \(kh)×\(kw) kernel with padding (\(ph), \(pw)) does not fit a \(h)×\(w) plane")
        }
        return ((h + 2 * ph - kh) / sh + 1, (w + 2 * pw - kw) / sw + 1)
    }
}
