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
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, x, op, n * c * h * w), wp = try pointer(T.self, weight, op, c * kh * kw)
            let bp = try bias.map { try pointer(T.self, $0, op, c) }, yp = try pointer(T.self, y, op, n * c * oh * ow)
            parallelChunks(n * c, grain: max(1, (1 << 14) / max(1, oh * ow * kh * kw))) { r in
                for plane in r {
                    let ch = plane % c, xpl = xp + plane * h * w, ypl = yp + plane * oh * ow, wpl = wp + ch * kh * kw
                    let b = bp.map { $0[ch] } ?? 0
                    for i in 0..<(oh * ow) { ypl[i] = b }
                    for oy in 0..<oh {
                        let yrow = ypl + oy * ow
                        for ki in 0..<kh {
                            let iy = oy * sh - ph + ki
                            guard iy >= 0, iy < h else { continue }
                            let xrow = xpl + iy * w
                            for kj in 0..<kw {
                                let (lo, hi) = Self.columns(kj, ow: ow, w: w, sw: sw, pw: pw), wv = wpl[ki * kw + kj]
                                if lo >= hi { continue }
                                if sw == 1 {
                                    let xs = xrow + (kj - pw)
                                    for ox in lo..<hi { yrow[ox] += wv * xs[ox] }
                                } else {
                                    for ox in lo..<hi { yrow[ox] += wv * xrow[ox * sw - pw + kj] }
                                }
                            }
                        }
                    }
                }
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
        }, double: { try run(Double.self) })
    }

    /// Runs body(p0, p1) over planes [0, planes) in parallel chunks; an error naming the op where
    /// a chunk could not allocate its scratch plane.
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
        func run<T: CPUScalar>(_: T.Type) throws {
            let dyp = try pointer(T.self, dy, op, n * c * oh * ow), wp = try pointer(T.self, weight, op, c * kh * kw)
            let dxp = try pointer(T.self, dx, op, n * c * h * w)
            parallelChunks(n * c, grain: max(1, (1 << 14) / max(1, oh * ow * kh * kw))) { r in
                for plane in r {
                    let ch = plane % c, dxpl = dxp + plane * h * w, dypl = dyp + plane * oh * ow, wpl = wp + ch * kh * kw
                    for i in 0..<(h * w) { dxpl[i] = 0 }
                    for oy in 0..<oh {
                        let dyrow = dypl + oy * ow
                        for ki in 0..<kh {
                            let iy = oy * sh - ph + ki
                            guard iy >= 0, iy < h else { continue }
                            let dxrow = dxpl + iy * w
                            for kj in 0..<kw {
                                let (lo, hi) = Self.columns(kj, ow: ow, w: w, sw: sw, pw: pw), wv = wpl[ki * kw + kj]
                                if lo >= hi { continue }
                                if sw == 1 {
                                    let xs = dxrow + (kj - pw)
                                    for ox in lo..<hi { xs[ox] += wv * dyrow[ox] }
                                } else {
                                    for ox in lo..<hi { dxrow[ox * sw - pw + kj] += wv * dyrow[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
        try withConcreteScalar(dx, op, float: {
            let dyp = try pointer(Float.self, dy, op, n * c * oh * ow), wp = try pointer(Float.self, weight, op, c * kh * kw)
            let dxp = try pointer(Float.self, dx, op, n * c * h * w)
            try inPlanes(op, n * c, work: oh * ow * kh * kw) { attrib_depthwise_backward_f32(dyp, wp, dxp, $0, $1, c, h, w, kh, kw, sh, sw, ph, pw) }
        }, double: { try run(Double.self) })
    }

    /// `float` or `double` by the view's dtype: each a call with a concrete type, so the loops are
    /// specialised (through `withScalar`'s existential metatype they ran generic, 9× slower).
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

    /// Output columns [lo, hi) whose input column ox·sw − pw + kj lies in [0, w).
    @inline(__always)
    static func columns(_ kj: Int, ow: Int, w: Int, sw: Int, pw: Int) -> (Int, Int) {
        let lo = pw > kj ? (pw - kj + sw - 1) / sw : 0      // ox·sw ≥ pw − kj
        let last = w - 1 + pw - kj                           // ox·sw ≤ last
        return (lo, last < 0 ? 0 : min(ow, last / sw + 1))
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
