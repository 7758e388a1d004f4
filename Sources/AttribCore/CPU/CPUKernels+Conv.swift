// The CPU loops of the convolution, pooling and layer-norm ops. Each output
// element is computed from its own gather, in the same order as the OpenCL
// kernels (Kernels/conv.cl, pool.cl, layernorm.cl), so the backends differ
// only where OpenCL contracts a·b + c to FMA, divides or takes √ with its own
// rounding, or (layer norm) sums a row as a tree.

import CVecMath

extension CPUKernels {
    typealias I = UnsafeMutablePointer<Int32>

    /// Row ci·kh·kw + ki·kw + kj of cols, column ni·OH·OW + oy·OW + ox.
    static func im2col(_ g: Window2D, _ x: P, _ cols: P) {
        let ncols = g.colsColumns, ohw = g.outH * g.outW
        if g.strideH == 1 && g.strideW == 1 { im2colStride1(g, x, cols); return }
        parallelChunks(g.colsRows, grain: max(1, (1 << 15) / ncols)) { r in
            for row in r {
                let ci = row / (g.kh * g.kw), ki = (row / g.kw) % g.kh, kj = row % g.kw
                let out = cols + row * ncols
                for ni in 0..<g.n {
                    let plane = x + (ni * g.c + ci) * g.h * g.w
                    for oy in 0..<g.outH {
                        let iy = oy * g.strideH - g.padH + ki
                        let o = out + ni * ohw + oy * g.outW
                        if iy < 0 || iy >= g.h {
                            for ox in 0..<g.outW { o[ox] = 0 }
                            continue
                        }
                        let line = plane + iy * g.w
                        for ox in 0..<g.outW {
                            let ix = ox * g.strideW - g.padW + kj
                            o[ox] = ix >= 0 && ix < g.w ? line[ix] : 0
                        }
                    }
                }
            }
        }
    }

    /// im2col at stride 1: each output line is the input line shifted by kj − padW,
    /// so its valid part is one contiguous run (ox in lo..<hi) between zeros,
    /// found once per cols row instead of tested per element. The same values.
    static func im2colStride1(_ g: Window2D, _ x: P, _ cols: P) {
        let ncols = g.colsColumns, ohw = g.outH * g.outW
        let (h, w, outH, outW, padH, padW, kh, kw, n, c) = (g.h, g.w, g.outH, g.outW, g.padH, g.padW, g.kh, g.kw, g.n, g.c)
        parallelChunks(g.colsRows, grain: max(1, (1 << 15) / ncols)) { r in
            for row in r {
                let ci = row / (kh * kw), ki = (row / kw) % kh, kj = row % kw
                let lo = min(outW, max(0, padW - kj)), hi = max(lo, min(outW, w + padW - kj))
                let out = cols + row * ncols
                for ni in 0..<n {
                    let plane = x + (ni * c + ci) * h * w
                    for oy in 0..<outH {
                        let iy = oy - padH + ki
                        let o = out + ni * ohw + oy * outW
                        if iy < 0 || iy >= h {
                            for ox in 0..<outW { o[ox] = 0 }
                            continue
                        }
                        let line = plane + iy * w + kj - padW       // line[ox] = x[iy, ox + kj − padW]
                        for ox in 0..<lo { o[ox] = 0 }
                        for ox in lo..<hi { o[ox] = line[ox] }
                        for ox in hi..<outW { o[ox] = 0 }
                    }
                }
            }
        }
    }

    /// x[ni, ci, iy, ix] = Σ_(ki, kj) cols[…] over the windows that read it, ki then kj ascending.
    static func col2im(_ g: Window2D, _ cols: P, _ x: P) {
        let ncols = g.colsColumns, ohw = g.outH * g.outW
        parallelChunks(g.n * g.c * g.h, grain: max(1, (1 << 13) / (g.w * g.kh * g.kw))) { r in
            for line in r {                       // line = (ni·C + ci)·H + iy
                let iy = line % g.h, plane = line / g.h, ci = plane % g.c, ni = plane / g.c
                let xl = x + line * g.w
                if g.strideH == 1 && g.strideW == 1 {
                    // Stride 1: each (ki, kj) reads a contiguous run of the row, so the loop runs
                    // over row segments without per-element index checks. Every element still
                    // sums its terms from 0 in (ki, kj) order, as the kernel does: bitwise the same.
                    for ix in 0..<g.w { xl[ix] = 0 }
                    for ki in 0..<g.kh {
                        let oy = iy + g.padH - ki
                        if oy < 0 || oy >= g.outH { continue }
                        for kj in 0..<g.kw {
                            let lo = max(0, kj - g.padW), hi = min(g.w, kj - g.padW + g.outW)
                            if lo >= hi { continue }
                            let src = cols + ((ci * g.kh + ki) * g.kw + kj) * ncols + ni * ohw + oy * g.outW + g.padW - kj
                            for ix in lo..<hi { xl[ix] += src[ix] }
                        }
                    }
                    continue
                }
                // Other strides: each (ki, kj) reaches the columns ix = ox·sw − pw + kj, so the
                // loop runs over those outputs with no division or remainder per element (they
                // made this a tenth of ResNet-50's IG). Every element sums its terms from 0 in
                // (ki, kj) order, as before: bitwise the same.
                for ix in 0..<g.w { xl[ix] = 0 }
                for ki in 0..<g.kh {
                    let ty = iy + g.padH - ki
                    if ty < 0 || ty % g.strideH != 0 { continue }
                    let oy = ty / g.strideH
                    if oy >= g.outH { continue }
                    for kj in 0..<g.kw {
                        // ox from the first with ix = ox·sw − pw + kj ≥ 0 to the last with ix < w
                        // (none where kj is past the padded row's end).
                        let last = g.w - 1 + g.padW - kj
                        if last < 0 { continue }
                        let ox0 = max(0, (g.padW - kj + g.strideW - 1) / g.strideW)
                        let ox1 = min(g.outW, last / g.strideW + 1)
                        if ox0 >= ox1 { continue }
                        let src = cols + ((ci * g.kh + ki) * g.kw + kj) * ncols + ni * ohw + oy * g.outW
                        for ox in ox0..<ox1 { xl[ox * g.strideW - g.padW + kj] += src[ox] }
                    }
                }
            }
        }
    }

    /// y[j, i, k] = x[i, j, k].
    static func transpose01(_ a: Int, _ b: Int, _ c: Int, _ x: P, _ y: P) {
        parallelChunks(a * b, grain: max(1, (1 << 15) / c)) { r in
            for ji in r {
                let j = ji / a, i = ji % a
                (y + ji * c).update(from: x + (i * b + j) * c, count: c)
            }
        }
    }

    /// y[r, c] += bias[r].
    static func rowBiasAdd(_ rows: Int, _ cols: Int, _ bias: P, _ y: P) {
        // By runs within a row: a division per element made this 8% of ResNet-50's IG.
        parallelChunks(rows * cols) { r in
            var e = r.lowerBound
            while e < r.upperBound {
                let row = e / cols, end = min(r.upperBound, (row + 1) * cols), b = bias[row]
                for i in e..<end { y[i] += b }
                e = end
            }
        }
    }

    /// Along one axis (kernel k, stride s, outCount outputs): the outputs whose
    /// window covers input position i, lo...hi (none when lo > hi).
    @inline(__always)
    static func covering(_ i: Int, _ k: Int, _ s: Int, _ outCount: Int) -> (Int, Int) {
        let lo = i - k + 1 <= 0 ? 0 : (i - k + s) / s
        return (lo, min(i / s, outCount - 1))
    }

    static func maxPool2d(_ g: Window2D, _ x: P, _ y: P, _ argmax: I) {
        let (oh, ow) = (g.outH, g.outW)
        if T.self == Float.self && g.strideH == g.kh && g.strideW == g.kw {
            // Tiled windows in Float32: CVecMath/pool.c, a plane at a time (bitwise this loop's).
            let (xf, yf) = (UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self))
            parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (g.h * g.w))) { r in
                attrib_maxpool_tiled_forward_f32(xf + r.lowerBound * g.h * g.w, yf + r.lowerBound * oh * ow, argmax + r.lowerBound * oh * ow,
                                                 r.count, g.h, g.w, g.kh, g.kw)
            }
            return
        }
        if T.self == Float.self {
            // Any window and stride in C (CVecMath/maxpool_general.c, bitwise this loop's), a plane at a time.
            let (xf, yf) = (UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self))
            parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (oh * ow * g.kh * g.kw))) { r in
                attrib_maxpool_forward_f32(xf + r.lowerBound * g.h * g.w, yf + r.lowerBound * oh * ow, argmax + r.lowerBound * oh * ow,
                                           r.count, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW)
            }
            return
        }
        parallelChunks(g.n * g.c * oh, grain: max(1, (1 << 14) / (ow * g.kh * g.kw))) { r in
            for line in r {                       // line = plane·OH + oy
                let oy = line % oh, plane = line / oh
                let xp = x + plane * g.h * g.w
                for ox in 0..<ow {
                    var m = -T.infinity
                    var idx = oy * g.strideH * g.w + ox * g.strideW
                    for ky in 0..<g.kh {
                        let iy = oy * g.strideH + ky
                        for kx in 0..<g.kw {
                            let p = iy * g.w + ox * g.strideW + kx, v = xp[p]
                            if v > m || v.isNaN { m = v; idx = p }
                        }
                    }
                    y[line * ow + ox] = m
                    argmax[line * ow + ox] = Int32(idx)
                }
            }
        }
    }

    static func maxPool2dBackward(_ g: Window2D, _ dy: P, _ argmax: I, _ dx: P) {
        let (oh, ow) = (g.outH, g.outW)
        if T.self == Float.self && g.strideH == g.kh && g.strideW == g.kw {
            // Tiled windows: each pixel in at most one window, so a scatter of dy is the
            // gather's one-term sum (CVecMath/pool.c, bitwise this loop's).
            let (dyf, dxf) = (UnsafeMutableRawPointer(dy).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self))
            parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (g.h * g.w))) { r in
                attrib_maxpool_tiled_backward_f32(dyf + r.lowerBound * oh * ow, argmax + r.lowerBound * oh * ow, dxf + r.lowerBound * g.h * g.w,
                                                  r.count, g.h, g.w, g.kh, g.kw)
            }
            return
        }
        if T.self == Float.self {
            // The gather as a scatter in the same order (CVecMath/maxpool_general.c, bitwise this loop's).
            let (dyf, dxf) = (UnsafeMutableRawPointer(dy).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self))
            parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (g.h * g.w))) { r in
                attrib_maxpool_backward_f32(dyf + r.lowerBound * oh * ow, argmax + r.lowerBound * oh * ow, dxf + r.lowerBound * g.h * g.w,
                                            r.count, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW)
            }
            return
        }
        parallelChunks(g.n * g.c * g.h, grain: max(1, (1 << 13) / g.w)) { r in
            for line in r {                       // line = plane·H + iy
                let iy = line % g.h, plane = line / g.h
                let (oy0, oy1) = covering(iy, g.kh, g.strideH, oh)
                let base = plane * oh * ow
                for ix in 0..<g.w {
                    let (ox0, ox1) = covering(ix, g.kw, g.strideW, ow)
                    let me = Int32(iy * g.w + ix)
                    var s: T = 0
                    if oy0 <= oy1 && ox0 <= ox1 {
                        for oy in oy0...oy1 {
                            for ox in ox0...ox1 where argmax[base + oy * ow + ox] == me { s += dy[base + oy * ow + ox] }
                        }
                    }
                    dx[line * g.w + ix] = s
                }
            }
        }
    }

    /// One plane (one sample's channel) per task step, so no index is divided per line
    /// or element; the window is summed from 0, rows then columns, as in pool.cl.
    static func avgPool2d(_ g: Window2D, _ x: P, _ y: P) {
        let (oh, ow, h, w, kh, kw, sh, sw) = (g.outH, g.outW, g.h, g.w, g.kh, g.kw, g.strideH, g.strideW)
        let div = T(kh * kw)
        // 2ᵏ-element windows: multiply by the exact reciprocal (the same rounding as dividing).
        let exactInverse = (kh * kw) & (kh * kw - 1) == 0, inv = 1 / div
        if T.self == Float.self && sh == kh && sw == kw {
            // Tiled windows in Float32: the same loop in C (CVecMath/pool.c), which keeps its indices in registers.
            let (xf, yf) = (UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self))
            parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (h * w))) { r in
                attrib_avgpool_tiled_forward_f32(xf + r.lowerBound * h * w, yf + r.lowerBound * oh * ow, r.count, h, w, kh, kw)
            }
            return
        }
        parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (h * w))) { r in
            for plane in r {
                let xp = x + plane * h * w, yp = y + plane * oh * ow
                for oy in 0..<oh {
                    let yl = yp + oy * ow
                    for ox in 0..<ow {
                        var s: T = 0
                        for ky in 0..<kh {
                            let row = xp + (oy * sh + ky) * w + ox * sw
                            for kx in 0..<kw { s += row[kx] }
                        }
                        yl[ox] = exactInverse ? s * inv : s / div
                    }
                }
            }
        }
    }

    static func avgPool2dBackward(_ g: Window2D, _ dy: P, _ dx: P) {
        let (oh, ow) = (g.outH, g.outW), div = T(g.kh * g.kw)
        if g.strideH == g.kh && g.strideW == g.kw {
            // Windows that tile without overlap: each input reads at most one output,
            // (iy / kh, ix / kw), so no covering range is searched, and one plane per task
            // step keeps divisions out of the loop. Same value as below: (0 + dy) / div.
            // A window of 2ᵏ elements divides by multiplying with its exact reciprocal: the
            // same correctly rounded result, without a division's latency per element.
            let (kh, kw, h, w) = (g.kh, g.kw, g.h, g.w)
            let exactInverse = (kh * kw) & (kh * kw - 1) == 0, inv = 1 / div
            if T.self == Float.self {
                let (dyf, dxf) = (UnsafeMutableRawPointer(dy).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self))
                parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (h * w))) { r in
                    attrib_avgpool_tiled_backward_f32(dyf + r.lowerBound * oh * ow, dxf + r.lowerBound * h * w, r.count, h, w, kh, kw)
                }
                return
            }
            parallelChunks(g.n * g.c, grain: max(1, (1 << 14) / (h * w))) { r in
                for plane in r {
                    let xp = dx + plane * h * w, dyp = dy + plane * oh * ow
                    var oy = 0, ky = 0
                    for iy in 0..<h {
                        let xl = xp + iy * w
                        var covered = 0
                        if oy < oh {
                            let dyl = dyp + oy * ow
                            covered = ow * kw
                            for ox in 0..<ow {
                                let d = 0 + dyl[ox], v = exactInverse ? d * inv : d / div
                                for kx in 0..<kw { xl[ox &* kw &+ kx] = v }
                            }
                        }
                        for ix in covered..<w { xl[ix] = 0 }
                        ky += 1
                        if ky == kh { ky = 0; oy += 1 }
                    }
                }
            }
            return
        }
        parallelChunks(g.n * g.c * g.h, grain: max(1, (1 << 13) / g.w)) { r in
            for line in r {
                let iy = line % g.h, plane = line / g.h
                let (oy0, oy1) = covering(iy, g.kh, g.strideH, oh)
                let base = plane * oh * ow
                for ix in 0..<g.w {
                    let (ox0, ox1) = covering(ix, g.kw, g.strideW, ow)
                    var s: T = 0
                    if oy0 <= oy1 && ox0 <= ox1 {
                        for oy in oy0...oy1 { for ox in ox0...ox1 { s += dy[base + oy * ow + ox] } }
                    }
                    dx[line * g.w + ix] = s / div
                }
            }
        }
    }

    static func layerNorm(_ rows: Int, _ cols: Int, _ eps: T, _ x: P, _ gamma: P, _ beta: P, _ y: P, _ mean: P, _ rstd: P) {
        parallelChunks(rows, grain: max(1, (1 << 14) / cols)) { r in
            for row in r {
                let xr = x + row * cols, yr = y + row * cols
                var s: T = 0
                for c in 0..<cols { s += xr[c] }
                let mu = s / T(cols)
                var v: T = 0
                for c in 0..<cols { let d = xr[c] - mu; v += d * d }
                let rs = 1 / (v / T(cols) + eps).squareRoot()
                for c in 0..<cols { yr[c] = (xr[c] - mu) * rs * gamma[c] + beta[c] }
                mean[row] = mu
                rstd[row] = rs
            }
        }
    }

    static func layerNormBackwardInput(_ rows: Int, _ cols: Int, _ x: P, _ gamma: P, _ mean: P, _ rstd: P, _ dy: P, _ dx: P) {
        parallelChunks(rows, grain: max(1, (1 << 14) / cols)) { r in
            for row in r {
                let xr = x + row * cols, dyr = dy + row * cols, dxr = dx + row * cols
                let mu = mean[row], rs = rstd[row]
                var s1: T = 0, s2: T = 0
                for c in 0..<cols {
                    let g = dyr[c] * gamma[c], xh = (xr[c] - mu) * rs
                    s1 += g; s2 += g * xh
                }
                let m1 = s1 / T(cols), m2 = s2 / T(cols)
                for c in 0..<cols {
                    let g = dyr[c] * gamma[c], xh = (xr[c] - mu) * rs
                    dxr[c] = rs * (g - m1 - xh * m2)
                }
            }
        }
    }

    /// dgamma[c] = Σ_r dy·x̂, dbeta[c] = Σ_r dy, rows in order.
    static func layerNormBackwardParameters(_ rows: Int, _ cols: Int, _ x: P, _ mean: P, _ rstd: P, _ dy: P, _ dgamma: P, _ dbeta: P) {
        parallelChunks(cols, grain: max(1, (1 << 15) / rows)) { r in
            for c in r {
                var dg: T = 0, db: T = 0
                for row in 0..<rows {
                    let e = row * cols + c, xh = (x[e] - mean[row]) * rstd[row]
                    dg += dy[e] * xh; db += dy[e]
                }
                dgamma[c] = dg; dbeta[c] = db
            }
        }
    }
}

extension CPUKernels where T == Float {
    /// The largest plane the fused GELU + pooling takes (its buffer is on the stack).
    static var fusedPlaneMax: Int { Int(ATTRIB_FUSED_PLANE_MAX) }

    /// Pooled GELU and GELU′ (stride = kernel), planes split over the workers: CVecMath's
    /// attrib_gelu_erf_avgpool_forward_f32. Needs h·w ≤ fusedPlaneMax.
    static func geluAvgPool(_ g: Window2D, _ x: P, _ pooled: P, _ d: P) {
        let (hw, ohw) = (g.h * g.w, g.outH * g.outW)
        parallelChunks(g.n * g.c, grain: max(1, (1 << 13) / hw)) { r in
            _ = attrib_gelu_erf_avgpool_forward_f32(x + r.lowerBound * hw, pooled + r.lowerBound * ohw, d + r.lowerBound * hw,
                                                    r.count, g.h, g.w, g.kh, g.kw)
        }
    }

    /// avgPool2dBackward(dy) ⊙ m (stride = kernel), planes split over the workers.
    static func avgPool2dBackwardTimes(_ g: Window2D, _ dy: P, _ m: P, _ dx: P) {
        let (hw, ohw) = (g.h * g.w, g.outH * g.outW)
        parallelChunks(g.n * g.c, grain: max(1, (1 << 13) / hw)) { r in
            attrib_avgpool_tiled_backward_mul_f32(dy + r.lowerBound * ohw, m + r.lowerBound * hw, dx + r.lowerBound * hw,
                                                  r.count, g.h, g.w, g.kh, g.kw)
        }
    }
}
