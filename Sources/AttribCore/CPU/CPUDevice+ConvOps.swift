import CVecMath
import Synchronization
// The CPU backend's convolution, pooling and layer-norm ops: checks, then the
// loops in CPUKernels+Conv.swift.

extension CPUDevice {
    public func im2col(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                       padH: Int, padW: Int, x: BufferView, cols: BufferView) throws {
        let op = "im2col"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW, padH: padH, padW: padW)
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.im2col(g, try pointer(T.self, x, op, g.inputCount), try pointer(T.self, cols, op, g.colsCount))
        }
        try withScalar(cols, op) { try run($0) }
    }

    public func col2im(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                       padH: Int, padW: Int, cols: BufferView, x: BufferView) throws {
        let op = "col2im"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW, padH: padH, padW: padW)
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.col2im(g, try pointer(T.self, cols, op, g.colsCount), try pointer(T.self, x, op, g.inputCount))
        }
        try withScalar(x, op) { try run($0) }
    }

    public func transpose01(a: Int, b: Int, c: Int, x: BufferView, y: BufferView) throws {
        let op = "transpose01"
        try AttribError.requirePositive(op, ["a": a, "b": b, "c": c])
        if try buffer(y, op).dtype == .float32 {
            // In C (CVecMath/transpose.c): tiles where c = 1, whole rows otherwise; the same copies.
            let xp = try pointer(Float.self, x, op, a * b * c), yp = try pointer(Float.self, y, op, a * b * c)
            parallelChunks(b, grain: max(1, (1 << 15) / (a * c))) { r in
                attrib_transpose01_f32(xp, yp, a, b, c, r.lowerBound, r.upperBound)
            }
            return
        }
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.transpose01(a, b, c, try pointer(T.self, x, op, a * b * c), try pointer(T.self, y, op, a * b * c))
        }
        try withScalar(y, op) { try run($0) }
    }

    public func rowBiasAdd(rows: Int, cols: Int, bias: BufferView, y: BufferView) throws {
        let op = "rowBiasAdd"
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.rowBiasAdd(rows, cols, try pointer(T.self, bias, op, rows), try pointer(T.self, y, op, rows * cols))
        }
        try withScalar(y, op) { try run($0) }
    }

    public func maxPool2d(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                          x: BufferView, y: BufferView, argmax: BufferView) throws {
        let op = "maxPool2d"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        let idx = try pointer(Int32.self, argmax, op, g.outputCount)
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.maxPool2d(g, try pointer(T.self, x, op, g.inputCount), try pointer(T.self, y, op, g.outputCount), idx)
        }
        try withScalar(y, op) { try run($0) }
    }

    public func maxPool2dBackward(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                                  dy: BufferView, argmax: BufferView, dx: BufferView) throws {
        let op = "maxPool2dBackward"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        let idx = try pointer(Int32.self, argmax, op, g.outputCount)
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.maxPool2dBackward(g, try pointer(T.self, dy, op, g.outputCount), idx, try pointer(T.self, dx, op, g.inputCount))
        }
        try withScalar(dx, op) { try run($0) }
    }

    public func avgPool2d(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                          x: BufferView, y: BufferView) throws {
        let op = "avgPool2d"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.avgPool2d(g, try pointer(T.self, x, op, g.inputCount), try pointer(T.self, y, op, g.outputCount))
        }
        try withScalar(y, op) { try run($0) }
    }

    public func avgPool2dBackward(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                                  dy: BufferView, dx: BufferView) throws {
        let op = "avgPool2dBackward"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.avgPool2dBackward(g, try pointer(T.self, dy, op, g.outputCount), try pointer(T.self, dx, op, g.inputCount))
        }
        try withScalar(dx, op) { try run($0) }
    }

    public func fusesActivationAvgPool(_ kind: Activation, dtype: DType, planeSize: Int) -> Bool {
        kind == .geluErf && dtype == .float32 && planeSize <= CPUKernels<Float>.fusedPlaneMax
    }

    /// Float32 GELU (erf form) on planes of at most `CPUKernels.fusedPlaneMax` elements.
    public func activationAvgPoolWithDerivative(_ kind: Activation, n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                                x: BufferView, pooled: BufferView, derivative: BufferView) throws -> Bool {
        let op = "activationAvgPoolWithDerivative"
        guard fusesActivationAvgPool(kind, dtype: try buffer(pooled, op).dtype, planeSize: h * w) else { return false }
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: kh, strideW: kw)
        CPUKernels<Float>.geluAvgPool(g, try pointer(Float.self, x, op, g.inputCount), try pointer(Float.self, pooled, op, g.outputCount),
                                      try pointer(Float.self, derivative, op, g.inputCount))
        return true
    }

    /// Float32.
    public func avgPool2dBackwardTimes(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                       dy: BufferView, m: BufferView, dx: BufferView) throws -> Bool {
        let op = "avgPool2dBackwardTimes"
        guard try buffer(dx, op).dtype == .float32 else { return false }
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: kh, strideW: kw)
        CPUKernels<Float>.avgPool2dBackwardTimes(g, try pointer(Float.self, dy, op, g.outputCount), try pointer(Float.self, m, op, g.inputCount),
                                                 try pointer(Float.self, dx, op, g.inputCount))
        return true
    }

    /// Float32 GELU on planes of at most `CPUKernels.fusedPlaneMax` elements.
    public func pathActivationAvgPoolWithDerivative(_ kind: Activation, n: Int, m: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                                    x: BufferView, base: BufferView, baseStride: Int, alphas: BufferView,
                                                    pooled: BufferView, derivative: BufferView) throws -> Bool {
        let op = "pathActivationAvgPoolWithDerivative"
        guard fusesActivationAvgPool(kind, dtype: try buffer(pooled, op).dtype, planeSize: h * w) else { return false }
        try AttribError.requirePositive(op, ["inputs": n, "steps": m])
        let g = try Window2D(op: op, n: n * m, c: c, h: h, w: w, kh: kh, kw: kw, strideH: kh, strideW: kw)
        let d = c * h * w
        guard baseStride == 0 || baseStride == d else {
            throw AttribError.invalidArgument(op: op, detail: "baseline stride \(baseStride), expected 0 or \(d)")
        }
        let xp = try pointer(Float.self, x, op, n * d), bp = try pointer(Float.self, base, op, baseStride == 0 ? d : n * d)
        let ap = try pointer(Float.self, alphas, op, m)
        let pp = try pointer(Float.self, pooled, op, g.outputCount), dp = try pointer(Float.self, derivative, op, g.inputCount)
        parallelChunks(n * m, grain: max(1, (1 << 13) / d)) { r in
            _ = attrib_gelu_erf_avgpool_path_forward_f32(xp, bp, baseStride, ap, m, r.lowerBound, r.upperBound, pp, dp, c, h, w, kh, kw)
        }
        return true
    }

    /// Float32, planes of at most `CPUKernels.fusedPlaneMax` elements. Split over inputs
    /// and, where the windows' rows tile the planes (h divisible by kh), over slabs of kh
    /// rows too, so that a batch of one input's steps still uses every worker.
    public func avgPool2dBackwardTimesPathSum(n: Int, m: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                              dy: BufferView, multiplier: BufferView, weights: BufferView, y: BufferView) throws -> Bool {
        let op = "avgPool2dBackwardTimesPathSum"
        guard try buffer(y, op).dtype == .float32, h * w <= CPUKernels<Float>.fusedPlaneMax else { return false }
        try AttribError.requirePositive(op, ["inputs": n, "steps": m])
        let g = try Window2D(op: op, n: n * m, c: c, h: h, w: w, kh: kh, kw: kw, strideH: kh, strideW: kw)
        let dyp = try pointer(Float.self, dy, op, g.outputCount), mp = try pointer(Float.self, multiplier, op, g.inputCount)
        let wp = try pointer(Float.self, weights, op, m), yp = try pointer(Float.self, y, op, n * c * h * w)
        // A plane of h rows is h/kh planes of kh rows to a tiling pooling: bitwise the same.
        let (planes, ph) = h % kh == 0 ? (c * (h / kh), kh) : (c, h)
        let perTask = max(1, min(planes, (1 << 13) / max(1, m * ph * w)))
        let tasks = (planes + perTask - 1) / perTask
        parallelChunks(n * tasks, grain: 1) { r in
            for t in r {
                let (i, p0) = (t / tasks, (t % tasks) * perTask)
                _ = attrib_avgpool_tiled_backward_mul_pathsum_f32(dyp, mp, wp, m, i, p0, min(planes, p0 + perTask), yp, planes, ph, w, kh, kw)
            }
        }
        return true
    }

    public func offersConv3x3RowsOuter(dtype: DType) -> Bool {
        dtype == .float32 && attrib_conv3x3_supported() != 0
    }

    /// Images per tile of conv3x3RowsOuter: 16 with AVX-512, else 8. The outputs do not
    /// depend on it (the same sums in every lane).
    public static var conv3x3TileLanes: Int { Int(attrib_conv3x3_lanes()) }
    /// Caps the tile at 8 images (`lanes` < 16) or lifts the cap: for the tests that compare widths.
    public static func capConv3x3TileLanes(_ lanes: Int) { attrib_conv3x3_set_max_lanes(Int32(lanes)) }

    /// Caps the Float32 max-pooling kernels at `lanes`: 16 (AVX-512 where the CPU has it; the
    /// default), 8 (AVX2: the 2×2 kernel; the general one runs scalar) or 1 (the scalar loops).
    /// Each width gives the same values, indices and gradients; the tests compare them.
    public static func capMaxPoolLanes(_ lanes: Int) {
        attrib_maxpool_set_max_lanes(Int32(lanes))
        attrib_maxpool_general_set_max_lanes(Int32(lanes))
    }

    /// Caps the Float32 activations' vector width (tanh, sigmoid, both GELUs, SiLU): 16 (AVX-512F
    /// where the CPU has it; the default), 8 (AVX2 + FMA) or 1 (libm, as ActivationMath). 16 and
    /// 8 give the same bits; the tests compare them.
    public static func capActivationLanes(_ lanes: Int) { attrib_activation_set_max_lanes(Int32(lanes)) }
    /// The width the Float32 activations run at: 16, 8 or 1.
    public static var activationLanes: Int { Int(attrib_activation_lanes()) }

    public func conv3x3RowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, x: BufferView, weight: BufferView,
                                 bias: BufferView?, y: BufferView) throws -> Bool {
        let op = "conv3x3RowsOuter"
        guard offersConv3x3RowsOuter(dtype: try buffer(y, op).dtype) else { return false }
        try requireConvExtents(op, n: n, c: c, h: h, w: w, oc: oc)
        let xp = try pointer(Float.self, x, op, n * h * c * w), wp = try pointer(Float.self, weight, op, oc * c * 9)
        let bp = try bias.map { try pointer(Float.self, $0, op, oc) }, yp = try pointer(Float.self, y, op, n * h * oc * w)
        try inTiles(op, n: n, h: h, w: w, c: max(c, oc), lanes: Int(attrib_conv3x3_lanes())) { attrib_conv3x3_rows_outer_f32(xp, wp, bp, yp, $0, $1, c, h, w, oc) }
        return true
    }

    public func conv3x3GELUAvgPool2RowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, x: BufferView, weight: BufferView,
                                             bias: BufferView?, pooled: BufferView, derivative: BufferView) throws -> Bool {
        let op = "conv3x3GELUAvgPool2RowsOuter"
        guard offersConv3x3RowsOuter(dtype: try buffer(pooled, op).dtype), h % 2 == 0, w % 2 == 0 else { return false }
        try requireConvExtents(op, n: n, c: c, h: h, w: w, oc: oc)
        let xp = try pointer(Float.self, x, op, n * h * c * w), wp = try pointer(Float.self, weight, op, oc * c * 9)
        let bp = try bias.map { try pointer(Float.self, $0, op, oc) }
        let pp = try pointer(Float.self, pooled, op, n * h * oc * w / 4), dp = try pointer(Float.self, derivative, op, n * h * oc * w)
        try inTiles(op, n: n, h: h, w: w, c: max(c, oc)) {
            attrib_conv3x3_gelu_avgpool2_rows_outer_f32(xp, wp, bp, pp, dp, $0, $1, c, h, w, oc)
        }
        return true
    }

    public func avgPool2TimesConv3x3BackwardRowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, g: BufferView, multiplier: BufferView,
                                                      flipped: BufferView, dx: BufferView) throws -> Bool {
        let op = "avgPool2TimesConv3x3BackwardRowsOuter"
        guard offersConv3x3RowsOuter(dtype: try buffer(dx, op).dtype), h % 2 == 0, w % 2 == 0 else { return false }
        try requireConvExtents(op, n: n, c: c, h: h, w: w, oc: oc)
        let gp = try pointer(Float.self, g, op, n * h * oc * w / 4), mp = try pointer(Float.self, multiplier, op, n * h * oc * w)
        let wp = try pointer(Float.self, flipped, op, oc * c * 9), dxp = try pointer(Float.self, dx, op, n * h * c * w)
        try inTiles(op, n: n, h: h, w: w, c: max(c, oc)) {
            attrib_avgpool2_mul_conv3x3_backward_rows_outer_f32(gp, mp, wp, dxp, $0, $1, c, h, w, oc)
        }
        return true
    }

    /// The direct 3×3 ops' extents, each at least 1, named as a caller knows them.
    private func requireConvExtents(_ op: String, n: Int, c: Int, h: Int, w: Int, oc: Int) throws {
        try AttribError.requirePositive(op, ["images": n, "channels": c, "rows": h, "columns": w, "output channels": oc])
    }

    /// Runs body(i0, i1) over images [0, n) in chunks of whole tiles of 8 (one image per
    /// lane), so that no tile is split and each image's sums are those of any other
    /// grouping; an error names the op where a chunk could not allocate its tiles.
    /// `body(i0, i1)` over chunks of whole tiles of `lanes` images (the kernel's tile width).
    private func inTiles(_ op: String, n: Int, h: Int, w: Int, c: Int, lanes: Int = 8, _ body: (Int, Int) -> Int32) throws {
        let tiles = (n + lanes - 1) / lanes
        let failed = Atomic<Bool>(false)
        parallelChunks(tiles, grain: max(1, 2048 * 8 / lanes / (h * w * c))) { r in
            if body(r.lowerBound * lanes, min(n, r.upperBound * lanes)) == 0 { failed.store(true, ordering: .relaxed) }
        }
        if failed.load(ordering: .relaxed) {
            throw AttribError.invalidArgument(op: op, detail: "\(info.id) could not allocate the lanes of \(n) images of \(h)×\(w)")
        }
    }

    public func layerNorm(rows: Int, cols: Int, eps: Double, x: BufferView, gamma: BufferView, beta: BufferView,
                          y: BufferView, mean: BufferView, rstd: BufferView) throws {
        let op = "layerNorm", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.layerNorm(rows, cols, T(eps), try pointer(T.self, x, op, n), try pointer(T.self, gamma, op, cols),
                                 try pointer(T.self, beta, op, cols), try pointer(T.self, y, op, n),
                                 try pointer(T.self, mean, op, rows), try pointer(T.self, rstd, op, rows))
        }
        try withScalar(y, op) { try run($0) }
    }

    public func layerNormBackward(rows: Int, cols: Int, x: BufferView, gamma: BufferView, mean: BufferView,
                                  rstd: BufferView, dy: BufferView, dx: BufferView, dgamma: BufferView?, dbeta: BufferView?) throws {
        let op = "layerNormBackward", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, x, op, n), mp = try pointer(T.self, mean, op, rows), rp = try pointer(T.self, rstd, op, rows)
            let dyp = try pointer(T.self, dy, op, n)
            CPUKernels.layerNormBackwardInput(rows, cols, xp, try pointer(T.self, gamma, op, cols), mp, rp, dyp,
                                              try pointer(T.self, dx, op, n))
            if let dgamma, let dbeta {
                CPUKernels.layerNormBackwardParameters(rows, cols, xp, mp, rp, dyp, try pointer(T.self, dgamma, op, cols),
                                                       try pointer(T.self, dbeta, op, cols))
            }
        }
        try withScalar(dx, op) { try run($0) }
    }

    public func rmsNorm(rows: Int, cols: Int, eps: Double, x: BufferView, gamma: BufferView, y: BufferView, rstd: BufferView) throws {
        let op = "rmsNorm", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, x, op, n), gp = try pointer(T.self, gamma, op, cols)
            let yp = try pointer(T.self, y, op, n), rp = try pointer(T.self, rstd, op, rows)
            let e = T(eps)
            parallelChunks(rows, grain: max(1, (1 << 14) / cols)) { r in
                for row in r {
                    let xr = xp + row * cols, yr = yp + row * cols
                    var s: T = 0
                    for c in 0..<cols { s += xr[c] * xr[c] }
                    let rs = 1 / (s / T(cols) + e).squareRoot()
                    for c in 0..<cols { yr[c] = xr[c] * rs * gp[c] }
                    rp[row] = rs
                }
            }
        }
        try withScalar(y, op) { try run($0) }
    }

    public func rmsNormBackward(rows: Int, cols: Int, x: BufferView, gamma: BufferView, rstd: BufferView, dy: BufferView, dx: BufferView) throws {
        let op = "rmsNormBackward", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, x, op, n), gp = try pointer(T.self, gamma, op, cols), rp = try pointer(T.self, rstd, op, rows)
            let dyp = try pointer(T.self, dy, op, n), dxp = try pointer(T.self, dx, op, n)
            parallelChunks(rows, grain: max(1, (1 << 14) / cols)) { r in
                for row in r {
                    let xr = xp + row * cols, dyr = dyp + row * cols, dxr = dxp + row * cols, rs = rp[row]
                    var a: T = 0
                    for c in 0..<cols { a += dyr[c] * gp[c] * xr[c] * rs }
                    let m = a / T(cols)
                    for c in 0..<cols { dxr[c] = rs * (dyr[c] * gp[c] - xr[c] * rs * m) }
                }
            }
        }
        try withScalar(dx, op) { try run($0) }
    }

    public func rotary(rows: Int, tokens: Int, heads: Int, headDim: Int, rotary rot: Int, inverse: Bool,
                       x: BufferView, cos: BufferView, sin: BufferView, y: BufferView) throws {
        let op = "rotary", n = rows * headDim, h = rot / 2
        try AttribError.requirePositive(op, ["rows": rows, "tokens": tokens, "heads": heads, "headDim": headDim, "rotary": rot])
        guard rot % 2 == 0, rot <= headDim else {
            throw AttribError.invalidArgument(op: op, detail: "rotary = \(rot) dimensions of a head of \(headDim): must be even and at most the head")
        }
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, x, op, n), yp = try pointer(T.self, y, op, n)
            let cp = try pointer(T.self, cos, op, tokens * h), sp = try pointer(T.self, sin, op, tokens * h)
            let sgn: T = inverse ? -1 : 1
            parallelChunks(rows, grain: max(1, (1 << 14) / headDim)) { r in
                for row in r {
                    let xr = xp + row * headDim, yr = yp + row * headDim
                    let pos = (row / heads) % tokens
                    for i in 0..<h {
                        let c = cp[pos * h + i], s = sgn * sp[pos * h + i]
                        let a = xr[i], b = xr[i + h]
                        yr[i] = a * c - b * s
                        yr[i + h] = b * c + a * s
                    }
                    for k in rot..<headDim { yr[k] = xr[k] }
                }
            }
        }
        try withScalar(y, op) { try run($0) }
    }
}
