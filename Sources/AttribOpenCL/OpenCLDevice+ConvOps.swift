import AttribCore
import FoundationEssentials
import AttribKernels

/// The convolution, pooling and layer-norm ops on OpenCL (Kernels/conv.cl,
/// pool.cl, layernorm.cl; arguments as in docs/kernel-contract.md).
extension OpenCLDevice {
    /// The geometry arguments shared by the conv.cl kernels:
    /// n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow.
    private func convGeometry(_ g: Window2D) -> [KernelArgument] {
        [.int(g.n), .int(g.c), .int(g.h), .int(g.w), .int(g.kh), .int(g.kw), .int(g.strideH), .int(g.strideW),
         .int(g.padH), .int(g.padW), .int(g.outH), .int(g.outW)]
    }

    /// The geometry arguments shared by the pool.cl kernels: n, c, h, w, kh, kw, sh, sw, oh, ow.
    private func poolGeometry(_ g: Window2D) -> [KernelArgument] {
        [.int(g.n), .int(g.c), .int(g.h), .int(g.w), .int(g.kh), .int(g.kw), .int(g.strideH), .int(g.strideW),
         .int(g.outH), .int(g.outW)]
    }

    /// Implicit-GEMM convolutions run on GPUs (where the im2col matrix costs memory and
    /// bandwidth), and wherever `setImplicitConvolution(true)` asks (tests on PoCL).
    public func offersImplicitConvolution(dtype: DType) -> Bool {
        supports(dtype) && ((info.kind == .gpu && !implicitConvolutionTurnedOff) || state.withLock { $0.implicitConvolution })
    }

    /// Turns the implicit-GEMM convolutions on for this handle whatever its kind (or back
    /// to the rule: GPUs only): for tests and timings on CPU OpenCL devices.
    public func setImplicitConvolution(_ on: Bool) { state.withLock { $0.implicitConvolution = on } }

    public func conv2dImplicitGEMM(_ g: Window2D, oc: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                                   y: BufferView) throws -> Bool {
        guard offersImplicitConvolution(dtype: x.buffer.dtype), oc >= 1 else { return false }
        try implicitConvolution(g, oc: oc, x: x, weight: weight, bias: bias, y: y, activation: nil)
        return true
    }

    public func conv2dInputGradientImplicitGEMM(_ g: Window2D, oc: Int, dy: BufferView, weight: BufferView,
                                                dx: BufferView) throws -> Bool {
        guard offersImplicitConvolution(dtype: dy.buffer.dtype), oc >= 1 else { return false }
        try implicitInputGradient(g, oc: oc, dy: dy, multiplier: nil, weight: weight, dx: dx)
        return true
    }

    /// The activation fused into the convolution's store, f′ kept (CONV_FUSED, where the
    /// device fuses products' epilogues).
    public func conv2dImplicitGEMM(_ g: Window2D, oc: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                                   activation: Activation, y: BufferView, derivative: BufferView) throws -> Bool {
        guard offersImplicitConvolution(dtype: x.buffer.dtype), fusesGEMMEpilogues(dtype: x.buffer.dtype), oc >= 1 else { return false }
        try implicitConvolution(g, oc: oc, x: x, weight: weight, bias: bias, y: y, activation: (activation, derivative))
        return true
    }

    /// The input gradient of dy ⊙ multiplier, the multiply done as dy is gathered (CONV_MASK).
    public func conv2dInputGradientImplicitGEMM(_ g: Window2D, oc: Int, dy: BufferView, multiplier: BufferView, weight: BufferView,
                                                dx: BufferView) throws -> Bool {
        guard offersImplicitConvolution(dtype: dy.buffer.dtype), fusesGEMMEpilogues(dtype: dy.buffer.dtype), oc >= 1 else { return false }
        try implicitInputGradient(g, oc: oc, dy: dy, multiplier: multiplier, weight: weight, dx: dx)
        return true
    }

    /// MODE 0, with the activation and its f′ output where given.
    private func implicitConvolution(_ g: Window2D, oc: Int, x: BufferView, weight: BufferView, bias: BufferView?, y: BufferView,
                                     activation: (kind: Activation, derivative: BufferView)?) throws {
        let count = g.n * oc * g.outH * g.outW
        var operands = [Operand(x, g.inputCount), Operand(weight, oc * g.c * g.kh * g.kw), Operand(y, count)]
        if let bias { operands.append(Operand(bias, oc)) }
        if let a = activation { operands.append(Operand(a.derivative, count)) }
        let (t, bf) = try checkedOperands(activation.map { "conv2d + \($0.kind) (implicit GEMM)" } ?? "conv2d (implicit GEMM)", operands)
        let fused = activation.map { a in
            ([("CONV_FUSED", 1), ("CONV_ACT", Int(a.kind.rawValue)), ("CONV_D", 1)],
             [KernelArgument.buffer(bf.last!), .int(a.derivative.offset), .buffer(bf.last!), .int(0)])
        }
        try launchImplicitConv(mode: 0, g, oc: oc, dtype: t, weight: bf[1], wOff: weight.offset, input: bf[0], inOff: x.offset,
                               bias: bias.map { (bf[3], $0.offset) }, out: bf[2], outOff: y.offset, m: oc, n: g.n * g.outH * g.outW,
                               fused: fused)
    }

    /// MODE 1, gathering dy ⊙ multiplier where given.
    private func implicitInputGradient(_ g: Window2D, oc: Int, dy: BufferView, multiplier: BufferView?, weight: BufferView,
                                       dx: BufferView) throws {
        let count = g.n * oc * g.outH * g.outW
        var operands = [Operand(dy, count), Operand(weight, oc * g.c * g.kh * g.kw), Operand(dx, g.inputCount)]
        if let multiplier { operands.append(Operand(multiplier, count)) }
        let (t, bf) = try checkedOperands(multiplier == nil ? "conv2d input gradient (implicit GEMM)"
                                                            : "conv2d input gradient ⊙ multiplier (implicit GEMM)", operands)
        let fused = multiplier.map { v in
            ([("CONV_FUSED", 1), ("CONV_MASK", 1)], [KernelArgument.buffer(bf[2]), .int(0), .buffer(bf[3]), .int(v.offset)])
        }
        try launchImplicitConv(mode: 1, g, oc: oc, dtype: t, weight: bf[1], wOff: weight.offset, input: bf[0], inOff: dy.offset,
                               bias: nil, out: bf[2], outOff: dx.offset, m: g.c, n: g.n * g.h * g.w, fused: fused)
    }

    /// conv_igemm.cl's launch: 64×64 tiles of the M×N product, 16×16 items each; operands
    /// rounded as the Float32 products' precision asks (--precision); `fused`: the -D values
    /// and four arguments of CONV_FUSED.
    private func launchImplicitConv(mode: Int, _ g: Window2D, oc: Int, dtype: DType, weight: CLBuffer, wOff: Int,
                                    input: CLBuffer, inOff: Int, bias: (CLBuffer, Int)?, out: CLBuffer, outOff: Int,
                                    m: Int, n: Int, fused: ([(String, Int)], [KernelArgument])? = nil) throws {
        let k = (mode == 0 ? g.c : oc) * g.kh * g.kw
        guard m <= Int(Int32.max), n <= Int(Int32.max), k <= Int(Int32.max), m * k <= Int(Int32.max) else {
            throw AttribError.tooLarge(op: "conv2d (implicit GEMM)", detail: "a product of \(m)×\(n)×\(k) exceeds the kernels' 32-bit indexing; split the batch")
        }
        let precision = dtype == .float32 ? matmulPrecision : .fp32
        var defines = [("MODE", mode)] + (fused?.0 ?? [])
        if precision != .fp32 { defines.append(("ROUND", precision.roundCode)) }
        let args: [KernelArgument] = [.int(g.n), .int(g.c), .int(g.h), .int(g.w), .int(oc), .int(g.kh), .int(g.kw),
                                      .int(g.strideH), .int(g.strideW), .int(g.padH), .int(g.padW),
                                      .int(g.outH), .int(g.outW), .buffer(weight), .int(wOff), .buffer(input), .int(inOff),
                                      .buffer(bias?.0 ?? weight), .int(bias?.1 ?? 0), .int(bias == nil ? 0 : 1), .buffer(out), .int(outOff)]
                                      + (fused?.1 ?? [])
        try launch(.convIGEMM, "conv_igemm", dtype: dtype, defines: defines, args,
                   global: [(n + 63) / 64 * 16, (m + 63) / 64 * 16, 1], local: [16, 16, 1])
    }

    public func im2col(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                       padH: Int, padW: Int, x: BufferView, cols: BufferView) throws {
        let op = "im2col"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW, padH: padH, padW: padW)
        let (t, bf) = try checkedOperands(op, [Operand(x, g.inputCount), Operand(cols, g.colsCount)])
        try launch1D(.conv, "im2col", dtype: t,
                     convGeometry(g) + [.buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(cols.offset)], n: g.colsCount)
    }

    public func col2im(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                       padH: Int, padW: Int, cols: BufferView, x: BufferView) throws {
        let op = "col2im"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW, padH: padH, padW: padW)
        let (t, bf) = try checkedOperands(op, [Operand(cols, g.colsCount), Operand(x, g.inputCount)])
        try launch1D(.conv, "col2im", dtype: t,
                     convGeometry(g) + [.buffer(bf[0]), .int(cols.offset), .buffer(bf[1]), .int(x.offset)], n: g.inputCount)
    }

    public func transpose01(a: Int, b: Int, c: Int, x: BufferView, y: BufferView) throws {
        let op = "transpose01"
        try AttribError.requirePositive(op, ["a": a, "b": b, "c": c])
        let n = a * b * c
        let (t, bf) = try checkedOperands(op, [Operand(x, n), Operand(y, n)])
        try launch1D(.conv, "transpose01", dtype: t,
                     [.int(a), .int(b), .int(c), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], n: n)
    }

    public func rowBiasAdd(rows: Int, cols: Int, bias: BufferView, y: BufferView) throws {
        let op = "rowBiasAdd"
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        let (t, bf) = try checkedOperands(op, [Operand(bias, rows), Operand(y, rows * cols)])
        try launch1D(.conv, "row_bias_add", dtype: t,
                     [.int(rows), .int(cols), .buffer(bf[0]), .int(bias.offset), .buffer(bf[1]), .int(y.offset)], n: rows * cols)
    }

    public func maxPool2d(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                          x: BufferView, y: BufferView, argmax: BufferView) throws {
        let op = "maxPool2d"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        let (t, bf) = try checkedOperands(op, [Operand(x, g.inputCount), Operand(y, g.outputCount),
                                               Operand(argmax, g.outputCount, index: true)])
        try launch1D(.pool, "max_pool2d", dtype: t,
                     poolGeometry(g) + [.buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset),
                                        .buffer(bf[2]), .int(argmax.offset)], n: g.outputCount)
    }

    public func maxPool2dBackward(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                                  dy: BufferView, argmax: BufferView, dx: BufferView) throws {
        let op = "maxPool2dBackward"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        let (t, bf) = try checkedOperands(op, [Operand(dy, g.outputCount), Operand(argmax, g.outputCount, index: true),
                                               Operand(dx, g.inputCount)])
        try launch1D(.pool, "max_pool2d_backward", dtype: t,
                     poolGeometry(g) + [.buffer(bf[0]), .int(dy.offset), .buffer(bf[1]), .int(argmax.offset),
                                        .buffer(bf[2]), .int(dx.offset)], n: g.inputCount)
    }

    public func avgPool2d(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                          x: BufferView, y: BufferView) throws {
        let op = "avgPool2d"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        let (t, bf) = try checkedOperands(op, [Operand(x, g.inputCount), Operand(y, g.outputCount)])
        try launch1D(.pool, "avg_pool2d", dtype: t,
                     poolGeometry(g) + [.buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(y.offset)], n: g.outputCount)
    }

    public func avgPool2dBackward(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                                  dy: BufferView, dx: BufferView) throws {
        let op = "avgPool2dBackward"
        let g = try Window2D(op: op, n: n, c: c, h: h, w: w, kh: kh, kw: kw, strideH: strideH, strideW: strideW)
        let (t, bf) = try checkedOperands(op, [Operand(dy, g.outputCount), Operand(dx, g.inputCount)])
        try launch1D(.pool, "avg_pool2d_backward", dtype: t,
                     poolGeometry(g) + [.buffer(bf[0]), .int(dy.offset), .buffer(bf[1]), .int(dx.offset)], n: g.inputCount)
    }

    public func layerNorm(rows: Int, cols: Int, eps: Double, x: BufferView, gamma: BufferView, beta: BufferView,
                          y: BufferView, mean: BufferView, rstd: BufferView) throws {
        let op = "layerNorm", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        let (t, bf) = try checkedOperands(op, [Operand(x, n), Operand(gamma, cols), Operand(beta, cols), Operand(y, n),
                                               Operand(mean, rows), Operand(rstd, rows)])
        try launchRows(.layernorm, "layer_norm", dtype: t,
                       [.int(rows), .int(cols), .real(eps), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(gamma.offset),
                        .buffer(bf[2]), .int(beta.offset), .buffer(bf[3]), .int(y.offset), .buffer(bf[4]), .int(mean.offset),
                        .buffer(bf[5]), .int(rstd.offset)], rows: rows)
    }

    public func layerNormBackward(rows: Int, cols: Int, x: BufferView, gamma: BufferView, mean: BufferView,
                                  rstd: BufferView, dy: BufferView, dx: BufferView, dgamma: BufferView?, dbeta: BufferView?) throws {
        let op = "layerNormBackward", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        let params = dgamma.flatMap { g in dbeta.map { (g, $0) } }
        let (t, bf) = try checkedOperands(op, [Operand(x, n), Operand(gamma, cols), Operand(mean, rows), Operand(rstd, rows),
                                               Operand(dy, n), Operand(dx, n)] + (params.map { [Operand($0.0, cols), Operand($0.1, cols)] } ?? []))
        try launchRows(.layernorm, "layer_norm_backward_dx", dtype: t,
                       [.int(rows), .int(cols), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(gamma.offset),
                        .buffer(bf[2]), .int(mean.offset), .buffer(bf[3]), .int(rstd.offset), .buffer(bf[4]), .int(dy.offset),
                        .buffer(bf[5]), .int(dx.offset)], rows: rows)
        guard let (dgamma, dbeta) = params else { return }
        try launch1D(.layernorm, "layer_norm_backward_params", dtype: t,
                     [.int(rows), .int(cols), .buffer(bf[0]), .int(x.offset), .buffer(bf[2]), .int(mean.offset),
                      .buffer(bf[3]), .int(rstd.offset), .buffer(bf[4]), .int(dy.offset), .buffer(bf[6]), .int(dgamma.offset),
                      .buffer(bf[7]), .int(dbeta.offset)], n: cols)
    }

    public func rmsNorm(rows: Int, cols: Int, eps: Double, x: BufferView, gamma: BufferView, y: BufferView, rstd: BufferView) throws {
        let op = "rmsNorm", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        let (t, bf) = try checkedOperands(op, [Operand(x, n), Operand(gamma, cols), Operand(y, n), Operand(rstd, rows)])
        try launchRows(.layernorm, "rms_norm", dtype: t,
                       [.int(rows), .int(cols), .real(eps), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(gamma.offset),
                        .buffer(bf[2]), .int(y.offset), .buffer(bf[3]), .int(rstd.offset)], rows: rows)
    }

    public func rmsNormBackward(rows: Int, cols: Int, x: BufferView, gamma: BufferView, rstd: BufferView, dy: BufferView, dx: BufferView) throws {
        let op = "rmsNormBackward", n = rows * cols
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        let (t, bf) = try checkedOperands(op, [Operand(x, n), Operand(gamma, cols), Operand(rstd, rows), Operand(dy, n), Operand(dx, n)])
        try launchRows(.layernorm, "rms_norm_backward_dx", dtype: t,
                       [.int(rows), .int(cols), .buffer(bf[0]), .int(x.offset), .buffer(bf[1]), .int(gamma.offset),
                        .buffer(bf[2]), .int(rstd.offset), .buffer(bf[3]), .int(dy.offset), .buffer(bf[4]), .int(dx.offset)], rows: rows)
    }
}

/// ATTRIB_IMPLICIT_CONV=0: GPUs take im2col + GEMM instead (to compare the two paths).
private let implicitConvolutionTurnedOff = ProcessInfo.processInfo.environment["ATTRIB_IMPLICIT_CONV"] == "0"
