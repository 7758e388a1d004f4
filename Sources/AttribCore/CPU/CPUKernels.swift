// The CPU backend's loops, generic over Float and Double. Products go to
// OpenBLAS; everything else is plain Swift spread over the cores (GELU in
// Float32 through libmvec, see CVecMath).

import CVecMath

enum CPUKernels<T: CPUScalar> {
    typealias P = UnsafeMutablePointer<T>

    static func binary(_ op: BinaryOp, _ n: Int, _ a: P, _ b: P, _ y: P) {
        parallelChunks(n) { r in
            switch op {
            case .add: for i in r { y[i] = a[i] + b[i] }
            case .sub: for i in r { y[i] = a[i] - b[i] }
            case .mul: for i in r { y[i] = a[i] * b[i] }
            }
        }
    }

    static func scale(_ n: Int, _ alpha: T, _ x: P, _ y: P) {
        parallelChunks(n) { r in for i in r { y[i] = alpha * x[i] } }
    }

    static func axpy(_ n: Int, _ alpha: T, _ x: P, _ y: P) {
        parallelChunks(n) { r in for i in r { y[i] += alpha * x[i] } }
    }

    static func fill(_ n: Int, _ v: T, _ y: P) {
        parallelChunks(n) { r in for i in r { y[i] = v } }
    }

    static func biasAdd(_ rows: Int, _ cols: Int, _ bias: P, _ y: P) {
        parallelChunks(rows, grain: max(1, (1 << 15) / cols)) { r in
            for row in r { let yr = y + row * cols; for c in 0..<cols { yr[c] += bias[c] } }
        }
    }

    static func columnSum(_ rows: Int, _ cols: Int, _ x: P, _ beta: T, _ y: P) {
        parallelChunks(cols, grain: max(1, (1 << 15) / rows)) { r in
            for c in r {
                var s: T = 0
                for row in 0..<rows { s += x[row * cols + c] }
                y[c] = beta == 0 ? s : beta * y[c] + s
            }
        }
    }

    /// The Float32 C loop of an activation (CVecMath), where it has one.
    static func floatForward(_ kind: Activation) -> (@convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void)? {
        switch kind {
        case .silu: attrib_silu_forward_f32
        case .tanh: attrib_tanh_forward_f32
        case .sigmoid: attrib_sigmoid_forward_f32
        case .relu: attrib_relu_forward_f32
        case .geluTanh: attrib_gelu_tanh_forward_f32
        case .hardSwish: attrib_hardswish_forward_f32
        case .hardSigmoid: attrib_hardsigmoid_forward_f32
        case .relu6: attrib_relu6_forward_f32
        case .geluErf, .erf, .softplus: nil
        }
    }

    /// Its backward, dx = dy ⊙ f′(x), likewise.
    static func floatBackward(_ kind: Activation) -> (@convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void)? {
        switch kind {
        case .silu: attrib_silu_backward_f32
        case .tanh: attrib_tanh_backward_f32
        case .sigmoid: attrib_sigmoid_backward_f32
        case .relu: attrib_relu_backward_f32
        case .geluTanh: attrib_gelu_tanh_backward_f32
        case .hardSwish: attrib_hardswish_backward_f32
        case .hardSigmoid: attrib_hardsigmoid_backward_f32
        case .relu6: attrib_relu6_backward_f32
        case .geluErf, .erf, .softplus: nil
        }
    }

    static func activation(_ kind: Activation, _ n: Int, _ x: P, _ y: P) {
        if kind == .geluErf, T.self == Float.self {
            // Float32 GELU through libmvec (CVecMath): the same formula, 8 lanes at a time.
            let (xf, yf) = (UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self))
            parallelChunks(n, grain: 1 << 13) { r in attrib_gelu_erf_forward_f32(xf + r.lowerBound, yf + r.lowerBound, r.count) }
            return
        }
        if T.self == Float.self, let f = floatForward(kind) {
            let (xf, yf) = (UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self), UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self))
            parallelChunks(n, grain: 1 << 13) { r in f(xf + r.lowerBound, yf + r.lowerBound, r.count) }
            return
        }
        parallelChunks(n, grain: 1 << 13) { r in for i in r { y[i] = ActivationMath<T>.forward(kind, x[i]) } }
    }

    static func activationBackward(_ kind: Activation, _ n: Int, _ x: P, _ dy: P, _ dx: P) {
        if kind == .geluErf, T.self == Float.self {
            let f = { (p: P) in UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
            let (xf, dyf, dxf) = (f(x), f(dy), f(dx))
            parallelChunks(n, grain: 1 << 13) { r in
                attrib_gelu_erf_backward_f32(xf + r.lowerBound, dyf + r.lowerBound, dxf + r.lowerBound, r.count)
            }
            return
        }
        if T.self == Float.self, let b = floatBackward(kind) {
            let f = { (p: P) in UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
            let (xf, dyf, dxf) = (f(x), f(dy), f(dx))
            parallelChunks(n, grain: 1 << 13) { r in
                b(xf + r.lowerBound, dyf + r.lowerBound, dxf + r.lowerBound, r.count)
            }
            return
        }
        parallelChunks(n, grain: 1 << 13) { r in
            for i in r { dx[i] = dy[i] * ActivationMath<T>.derivative(kind, x[i]) }
        }
    }

    /// f and f′ together for tanh and sigmoid (ActivationMath.valueAndDerivative; Float32 in C).
    static func activationWithDerivative(_ kind: Activation, _ n: Int, _ x: P, _ y: P, _ d: P) {
        if T.self == Float.self {
            // Float32: the 8-lane code of the forward and backward (CVecMath/logistic.c).
            let f = { (p: P) in UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
            let (xf, yf, df) = (f(x), f(y), f(d))
            let both = kind == .tanh ? attrib_tanh_forward_derivative_f32 : attrib_sigmoid_forward_derivative_f32
            parallelChunks(n, grain: 1 << 13) { r in both(xf + r.lowerBound, yf + r.lowerBound, df + r.lowerBound, r.count) }
            return
        }
        parallelChunks(n, grain: 1 << 13) { r in
            for i in r { let (v, g) = ActivationMath<T>.valueAndDerivative(kind, x[i])!; y[i] = v; d[i] = g }
        }
    }

    static func geluWithDerivative(_ n: Int, _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ d: UnsafeMutablePointer<Float>) {
        parallelChunks(n, grain: 1 << 13) { r in
            attrib_gelu_erf_forward_derivative_f32(x + r.lowerBound, y + r.lowerBound, d + r.lowerBound, r.count)
        }
    }

    static func rowReduce(_ op: RowReduction, _ rows: Int, _ cols: Int, _ x: P, _ y: P) {
        parallelChunks(rows, grain: max(1, (1 << 15) / cols)) { r in
            for row in r {
                let xr = x + row * cols
                switch op {
                case .sum, .mean:
                    var s: T = 0
                    for c in 0..<cols { s += xr[c] }
                    y[row] = op == .sum ? s : s / T(cols)
                case .max:
                    var mx = xr[0]
                    for c in 1..<max(cols, 1) where xr[c] > mx { mx = xr[c] }
                    y[row] = mx
                }
            }
        }
    }

    static func softmax(_ log: Bool, _ rows: Int, _ cols: Int, _ x: P, _ y: P) {
        parallelChunks(rows, grain: max(1, (1 << 13) / cols)) { r in
            // Float32 with AVX2: one exp per element from vecmath.c's fit instead of two from libm
            // (attention's softmax over [heads, T, T] was a seventh of a ViT's IG).
            if T.self == Float.self, attrib_softmax_rows_f32(UnsafeRawPointer(x + r.lowerBound * cols).assumingMemoryBound(to: Float.self),
                                                             UnsafeMutableRawPointer(y + r.lowerBound * cols).assumingMemoryBound(to: Float.self),
                                                             r.count, cols, log ? 1 : 0) == 1 { return }
            for row in r {
                let xr = x + row * cols, yr = y + row * cols
                var mx = -T.infinity
                for c in 0..<cols where xr[c] > mx { mx = xr[c] }
                var s: T = 0
                for c in 0..<cols { s += T.exp(xr[c] - mx) }
                if log {
                    let lse = mx + T.log(s)
                    for c in 0..<cols { yr[c] = xr[c] - lse }
                } else {
                    for c in 0..<cols { yr[c] = T.exp(xr[c] - mx) / s }
                }
            }
        }
    }

    static func softmaxBackward(_ log: Bool, _ rows: Int, _ cols: Int, _ y: P, _ dy: P, _ dx: P) {
        parallelChunks(rows, grain: max(1, (1 << 14) / cols)) { r in
            for row in r {
                let yr = y + row * cols, dyr = dy + row * cols, dxr = dx + row * cols
                var s: T = 0
                if log {
                    for c in 0..<cols { s += dyr[c] }
                    for c in 0..<cols { dxr[c] = dyr[c] - T.exp(yr[c]) * s }
                } else {
                    for c in 0..<cols { s += dyr[c] * yr[c] }
                    for c in 0..<cols { dxr[c] = yr[c] * (dyr[c] - s) }
                }
            }
        }
    }

    static func gatherRows(_ n: Int, _ cols: Int, _ idx: UnsafeMutablePointer<Int32>, _ table: P, _ y: P) {
        parallelChunks(n, grain: max(1, (1 << 15) / cols)) { r in
            for i in r { (y + i * cols).update(from: table + Int(idx[i]) * cols, count: cols) }
        }
    }

    static func scatterAddRows(_ n: Int, _ cols: Int, _ idx: UnsafeMutablePointer<Int32>, _ src: P, _ table: P) {
        // Parallel over columns, in order over i: the same sums as the OpenCL kernel.
        parallelChunks(cols, grain: max(1, (1 << 15) / n)) { r in
            for i in 0..<n {
                let t = table + Int(idx[i]) * cols, s = src + i * cols
                for c in r { t[c] += s[c] }
            }
        }
    }

    static func pathInterpolate(_ n: Int, _ m: Int, _ d: Int, _ x: P, _ base: P, _ baseStride: Int, _ alpha: P, _ y: P) {
        parallelChunks(n * m, grain: max(1, (1 << 15) / d)) { r in
            for row in r {
                let i = row / m, a = alpha[row % m]
                let xr = x + i * d, br = base + i * baseStride, yr = y + row * d
                for j in 0..<d { yr[j] = br[j] + a * (xr[j] - br[j]) }
            }
        }
    }

    /// y[i, j] = Σₖ w[k]·g[i, k, j], k ascending from 0 for every element. The loop runs
    /// over runs of j within one input, step by step, so the inner loop is contiguous
    /// (vectorised) instead of striding over the steps; the sum order is unchanged.
    /// With `times`: Σₖ w[k]·(g ⊙ times)[i, k, j], each product rounded before it is weighted,
    /// as multiplying first would (Swift contracts no multiply-add, so the bits are those).
    static func pathWeightedSum(_ n: Int, _ m: Int, _ d: Int, _ g: P, _ w: P, _ y: P, times: P? = nil) {
        parallelChunks(n * d, grain: max(1, (1 << 15) / m)) { r in
            var e = r.lowerBound
            while e < r.upperBound {
                let i = e / d, j0 = e % d, len = min(r.upperBound - e, d - j0)
                let yr = y + e
                for j in 0..<len { yr[j] = 0 }
                for k in 0..<m {
                    let wk = w[k], gr = g + (i * m + k) * d + j0
                    if let times {
                        let tr = times + (i * m + k) * d + j0
                        for j in 0..<len { yr[j] += wk * (gr[j] * tr[j]) }
                    } else {
                        for j in 0..<len { yr[j] += wk * gr[j] }
                    }
                }
                e += len
            }
        }
    }

    /// pathInterpolate, then f and f′ of each row from a row-sized scratch (the path is never
    /// written), each through the routine the activation layer apart uses for this kind and
    /// type, so the bits are the same: the 8-lane value-and-derivative kernels for Float32
    /// tanh, sigmoid and GELU (erf), whose results do not depend on where a range starts;
    /// valueAndDerivative for Float64 tanh and sigmoid (activationWithDerivative's); the
    /// scalar f and f′ (activation and activationBackward's) for the others. False for
    /// Float32 SiLU and tanh-GELU, whose 8-lane forward and backward are separate kernels.
    static func pathActivationWithDerivative(_ kind: Activation, _ n: Int, _ m: Int, _ d: Int, _ x: P, _ base: P, _ baseStride: Int,
                                             _ alpha: P, _ y: P, _ deriv: P) -> Bool {
        let both: ((UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void)?
        if T.self == Float.self {
            switch kind {
            case .tanh: both = { attrib_tanh_forward_derivative_f32($0, $1, $2, $3) }
            case .sigmoid: both = { attrib_sigmoid_forward_derivative_f32($0, $1, $2, $3) }
            case .geluErf: both = { attrib_gelu_erf_forward_derivative_f32($0, $1, $2, $3) }
            case .relu: both = { attrib_relu_forward_derivative_f32($0, $1, $2, $3) }
            case .silu, .geluTanh: return false
            default: both = nil
            }
        } else {
            both = nil
        }
        let pairwise = T.self != Float.self && (kind == .tanh || kind == .sigmoid)
        let f = { (p: P) in UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self) }
        parallelChunks(n * m, grain: max(1, (1 << 14) / d)) { r in
            let z = P.allocate(capacity: d)           // one row of the path, [d]
            defer { z.deallocate() }
            for row in r {
                let i = row / m, a = alpha[row % m]
                let xr = x + i * d, br = base + i * baseStride, yr = y + row * d, dr = deriv + row * d
                for j in 0..<d { z[j] = br[j] + a * (xr[j] - br[j]) }
                if let both {
                    both(f(z), f(yr), f(dr), d)
                } else if pairwise {
                    for j in 0..<d { let (v, g) = ActivationMath<T>.valueAndDerivative(kind, z[j])!; yr[j] = v; dr[j] = g }
                } else {
                    for j in 0..<d { yr[j] = ActivationMath<T>.forward(kind, z[j]); dr[j] = ActivationMath<T>.derivative(kind, z[j]) }
                }
            }
        }
        return true
    }
}
