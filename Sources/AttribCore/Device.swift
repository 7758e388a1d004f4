/// Memory owned by one device. The backend that made it is the only one
/// that can read it; `count` elements of `dtype`.
public protocol DeviceBuffer: AnyObject, Sendable {
    var count: Int { get }
    var dtype: DType { get }
}

/// A buffer and an element offset into it: what every raw op takes, so
/// views (rows of a batch, one chunk of a sweep) cost nothing.
public struct BufferView: @unchecked Sendable {
    public let buffer: any DeviceBuffer
    public let offset: Int
    public init(_ buffer: any DeviceBuffer, offset: Int = 0) {
        self.buffer = buffer; self.offset = offset
    }
}

/// The arguments of one (strided batched) GEMM, row-major:
/// C[b] (m×n) = alpha·op(A[b])·op(B[b]) + beta·C[b] for b in 0..<batch,
/// with op(A) m×k and op(B) k×n. With `transA`, A is stored k×m; with
/// `transB`, B is stored n×k. Element (i, j) of C is C[offset + i·ldc + j].
/// beta = 0 means C is not read (it may hold anything, NaN included).
public struct GEMMArguments: @unchecked Sendable {
    public var transA: Bool, transB: Bool
    public var m: Int, n: Int, k: Int
    public var alpha: Double, beta: Double
    public var a: BufferView, lda: Int, strideA: Int
    public var b: BufferView, ldb: Int, strideB: Int
    public var c: BufferView, ldc: Int, strideC: Int
    public var batch: Int

    public init(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                alpha: Double = 1, a: BufferView, lda: Int, strideA: Int = 0,
                b: BufferView, ldb: Int, strideB: Int = 0,
                beta: Double = 0, c: BufferView, ldc: Int, strideC: Int = 0, batch: Int = 1) {
        self.transA = transA; self.transB = transB; self.m = m; self.n = n; self.k = k
        self.alpha = alpha; self.beta = beta
        self.a = a; self.lda = lda; self.strideA = strideA
        self.b = b; self.ldb = ldb; self.strideB = strideB
        self.c = c; self.ldc = ldc; self.strideC = strideC; self.batch = batch
    }
}

/// What a product does besides C = α·op(A)·op(B) (β must be 0), where a backend fuses it
/// into the product (OpenCL): a sweep's layer y = f(x·Wᵀ + b) in one pass, keeping f′ for
/// the backward, and that backward's product (dy ⊙ f′)·W with the multiply done as the
/// operand is read. Nothing is written between the product and the epilogue.
public struct GEMMEpilogue: @unchecked Sendable {
    /// [n], added to every row of C.
    public var bias: BufferView?
    /// f applied after the bias: C = f(z), z = α·op(A)·op(B) + bias.
    public var activation: Activation?
    /// f′(z), laid out as C (ldc, strideC); needs `activation`.
    public var derivative: BufferView?
    /// op(A) read as A ⊙ multiplier, the multiplier laid out as A (lda, strideA).
    public var multiplierA: BufferView?
    public init(bias: BufferView? = nil, activation: Activation? = nil, derivative: BufferView? = nil, multiplierA: BufferView? = nil) {
        self.bias = bias; self.activation = activation; self.derivative = derivative; self.multiplierA = multiplierA
    }
    /// Whether it does anything at all.
    public var isEmpty: Bool { bias == nil && activation == nil && derivative == nil && multiplierA == nil }
}

public enum BinaryOp: String, Sendable, CaseIterable { case add, sub, mul }

/// Activations with a forward and a backward. The backward takes the
/// forward's input x and returns dy ⊙ f′(x).
public enum Activation: Int32, Sendable, CaseIterable {
    case relu = 0
    /// GELU, tanh approximation (GPT-2's): 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))).
    case geluTanh = 1
    /// GELU, exact: 0.5x(1 + erf(x/√2)).
    case geluErf = 2
    case tanh = 3
    case sigmoid = 4
    /// log(1 + eˣ), computed stably.
    case softplus = 5
    /// min(max(x + 3, 0), 6)/6 (PyTorch's Hardsigmoid; ONNX HardSigmoid with α = 1/6, β = ½).
    case hardSigmoid = 6
    /// x·min(max(x + 3, 0), 6)/6 (PyTorch's Hardswish, ONNX HardSwish): MobileNetV3's.
    case hardSwish = 7
    /// erf(x): ONNX Erf, which exporters emit for the exact GELU (x·½·(1 + erf(x/√2))) of
    /// Hugging Face's ViT and BERT; f′ = (2/√π)·e^(−x²).
    case erf = 8
    /// x·sigmoid(x) (SiLU, Swish): the gate of Llama, Qwen2 and Mistral's SwiGLU MLP.
    case silu = 9
    /// min(max(x, 0), 6) (PyTorch's ReLU6, ONNX Clip(0, 6)): MobileNetV2's; f′ = 1 on (0, 6),
    /// 0 elsewhere (PyTorch's hardtanh backward).
    case relu6 = 10
}

public enum RowReduction: String, Sendable, CaseIterable { case sum, max, mean }

/// A compute device: the OpenCL backend or the CPU (BLAS) backend. Every
/// op has the same contract on both; parity tests hold them to it.
///
/// These are the raw ops: sizes and views, no shape checks beyond what
/// protects memory. The `Tensor` API in Ops/ validates shapes and is what
/// models and methods call.
public protocol Device: AnyObject, Sendable {
    var info: DeviceInfo { get }
    /// Whether tensors of this dtype can live here (Float64 needs fp64).
    func supports(_ dtype: DType) -> Bool

    func allocate(count: Int, dtype: DType) throws -> any DeviceBuffer
    /// Copies `bytes` (whole elements of the buffer's dtype) into the buffer at element `offset`.
    func upload(_ bytes: UnsafeRawBufferPointer, to view: BufferView) throws
    /// Copies `into.count` bytes from the buffer, starting at element `offset`.
    func download(_ view: BufferView, into bytes: UnsafeMutableRawBufferPointer) throws
    /// Waits until every queued op has finished.
    func synchronize() throws

    func gemm(_ g: GEMMArguments) throws
    /// The arithmetic of this device's Float32 products (MatmulPrecision); .fp32 unless set.
    var matmulPrecision: MatmulPrecision { get }
    /// Sets it for every later Float32 product on this device; throws where the
    /// device offers only FP32 (the CPU backend).
    func setMatmulPrecision(_ p: MatmulPrecision) throws
    /// Products run in order, as `gemm` one by one, with the same results bit for bit.
    /// Where they share m and none transposes A, a backend that splits products by rows
    /// of C (the CPU backend) gives each worker all of them for its block of rows, so
    /// they meet the workers once, not once each (a banded convolution's bands).
    func gemmSequence(_ gs: [GEMMArguments]) throws
    /// The product with its epilogue fused (GEMMEpilogue), β = 0: bitwise the product, then
    /// biasAdd, then activation and its derivative, with op(A) formed as A ⊙ multiplier
    /// first, where α = 1. False, with nothing written, where the backend does not fuse
    /// this combination; callers then run the ops apart.
    func gemmFused(_ g: GEMMArguments, _ epilogue: GEMMEpilogue) throws -> Bool
    /// Whether gemmFused fuses products of this dtype: graphs fuse their layers for it.
    func fusesGEMMEpilogues(dtype: DType) -> Bool
    /// The IG path fused into an activation + tiling average pooling, where a backend
    /// offers it (CPU Float32 GELU): for rows (i, k) of n inputs × m steps, z = base_i +
    /// alphas_k·(x_i − base_i) (as pathInterpolate), then pooled = avgPool(f(z)) and
    /// derivative = f′(z) over planes [c, h, w] per row, z never written. False, with
    /// nothing written, where it is not offered.
    func pathActivationAvgPoolWithDerivative(_ kind: Activation, n: Int, m: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                             x: BufferView, base: BufferView, baseStride: Int, alphas: BufferView,
                                             pooled: BufferView, derivative: BufferView) throws -> Bool
    /// The tiling average pooling's backward times a multiplier, summed over each input's
    /// m steps with weights (as pathWeightedSum): y [n, c, h, w] from dy [n·m, c, oh, ow]
    /// and multiplier [n·m, c, h, w], each step's gradient never written. False, with
    /// nothing written, where it is not offered (CPU Float32 has it).
    func avgPool2dBackwardTimesPathSum(n: Int, m: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                       dy: BufferView, multiplier: BufferView, weights: BufferView, y: BufferView) throws -> Bool
    /// The convolution as one implicit GEMM, where a backend offers it for this geometry
    /// (OpenCL GPUs): y [n, oc, outH, outW] = conv(x [n, c, h, w], weight [oc, c, kh, kw])
    /// + bias [oc], the im2col matrix never written. False, with nothing written, where not.
    /// Whether conv2dImplicitGEMM and its input gradient run for this dtype (callers ask
    /// before allocating their outputs).
    func offersImplicitConvolution(dtype: DType) -> Bool
    func conv2dImplicitGEMM(_ g: Window2D, oc: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                            y: BufferView) throws -> Bool
    /// Its input gradient: dx [n, c, h, w] from dy [n, oc, outH, outW] (the transposed
    /// convolution), where offered with conv2dImplicitGEMM; false, nothing written, where not.
    func conv2dInputGradientImplicitGEMM(_ g: Window2D, oc: Int, dy: BufferView, weight: BufferView,
                                         dx: BufferView) throws -> Bool
    /// conv2dImplicitGEMM with the activation after it in the same kernel (as gemmFused):
    /// y = f(z), derivative = f′(z), z = the convolution + bias, never written. Bitwise the
    /// ops apart. False, nothing written, where not offered (callers run them apart).
    func conv2dImplicitGEMM(_ g: Window2D, oc: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                            activation: Activation, y: BufferView, derivative: BufferView) throws -> Bool
    /// conv2dInputGradientImplicitGEMM of dy ⊙ multiplier (multiplier laid out as dy), the
    /// product never written; bitwise binary(.mul) first. False, nothing written, where not.
    func conv2dInputGradientImplicitGEMM(_ g: Window2D, oc: Int, dy: BufferView, multiplier: BufferView, weight: BufferView,
                                         dx: BufferView) throws -> Bool
    /// Whether conv2dChannelsLast and its input gradient run for this dtype (CPU Float32 on
    /// oneDNN). Callers ask before allocating their outputs.
    func offersChannelsLastConvolution(dtype: DType) -> Bool
    /// y [n, outH, outW, oc] = conv(x [n, h, w, c], weight [oc, c/groups, kh, kw]) + bias [oc]:
    /// images channels-last, the weight as stored (OIHW; `groups` of c/groups input channels
    /// each, 1 for an ordinary convolution), g's sizes those of the NCHW geometry; the
    /// weight's copies in the kernels' layouts kept in `prepared` (the layer's) where given.
    /// False, with nothing written, where this geometry is not offered.
    func conv2dChannelsLast(_ g: Window2D, oc: Int, groups: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                            y: BufferView, prepared: PreparedWeights?) throws -> Bool
    /// Its input gradient, dx [n, h, w, c] from dy [n, outH, outW, oc]; false, nothing
    /// written, where not offered.
    func conv2dInputGradientChannelsLast(_ g: Window2D, oc: Int, groups: Int, dy: BufferView, weight: BufferView,
                                         dx: BufferView, prepared: PreparedWeights?) throws -> Bool
    /// Whether conv3x3RowsOuter runs for this dtype (CPU Float32 with AVX2 and FMA).
    func offersConv3x3RowsOuter(dtype: DType) -> Bool
    /// The 3×3, stride-1, padding-1 convolution of n small images held rows-outer, where a
    /// backend offers it: y [n, h, oc, w] = bias + conv(x [n, h, c, w], weight [oc, c, 3, 3]),
    /// bias [oc] or nil, every multiply-add one of the convolution's (a banded product's
    /// zeros are not). Each image's result does not depend on the others in the batch.
    /// False, with nothing written, where it is not offered.
    func conv3x3RowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, x: BufferView, weight: BufferView,
                          bias: BufferView?, y: BufferView) throws -> Bool
    /// conv3x3RowsOuter, then GELU (erf) and 2×2 stride-2 average pooling, in one pass where
    /// offered with conv3x3RowsOuter (h and w even): pooled [n, h/2, oc, w/2] and derivative
    /// [n, h, oc, w] = GELU′ of the convolution's output, which is never written. Bitwise
    /// the three ops apart. False, with nothing written, where it is not offered.
    func conv3x3GELUAvgPool2RowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, x: BufferView, weight: BufferView,
                                      bias: BufferView?, pooled: BufferView, derivative: BufferView) throws -> Bool
    /// Its backward: dx [n, h, c, w] = the convolution's backward of avgPoolBackward(g) ⊙
    /// multiplier, g [n, h/2, oc, w/2], multiplier [n, h, oc, w], flipped [c, oc, 3, 3] the
    /// weight flipped with its channels swapped. Bitwise the ops apart. False, with nothing
    /// written, where it is not offered.
    func avgPool2TimesConv3x3BackwardRowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, g: BufferView, multiplier: BufferView,
                                               flipped: BufferView, dx: BufferView) throws -> Bool
    func binary(_ op: BinaryOp, n: Int, a: BufferView, b: BufferView, y: BufferView) throws
    func scale(n: Int, alpha: Double, x: BufferView, y: BufferView) throws
    func axpy(n: Int, alpha: Double, x: BufferView, y: BufferView) throws
    func fill(n: Int, value: Double, y: BufferView) throws
    func copy(n: Int, x: BufferView, y: BufferView) throws
    /// y[r, c] += bias[c].
    func biasAdd(rows: Int, cols: Int, bias: BufferView, y: BufferView) throws
    /// y[r, c] = x[c] for every row r: a bias written where a product then adds into it
    /// (beta = 1), saving the product's own clearing pass and a bias pass after it.
    func broadcastRows(rows: Int, cols: Int, x: BufferView, y: BufferView) throws
    /// y[c] = beta·y[c] + Σ_r x[r, c] (the bias gradient); beta = 0 does not read y.
    func columnSum(rows: Int, cols: Int, x: BufferView, beta: Double, y: BufferView) throws
    func activation(_ kind: Activation, n: Int, x: BufferView, y: BufferView) throws
    /// A gate spread over each sample's rows: y[b, r, c] = a[b, r, c]·s[b, c] for b < n,
    /// r < rows, c < cols (channels-last squeeze-and-excitation). False where the device has
    /// no such kernel: the caller then spreads s by a product.
    func gateMultiply(n: Int, rows: Int, cols: Int, a: BufferView, s: BufferView, y: BufferView) throws -> Bool
    /// Its backward: da = dy ⊙ spread(s) where `da` is given, and ds[b, c] = Σ_r dy[b, r, c]·
    /// a[b, r, c] (r in order) where `ds` is given. False likewise.
    func gateMultiplyBackward(n: Int, rows: Int, cols: Int, a: BufferView, s: BufferView, dy: BufferView,
                              da: BufferView?, ds: BufferView?) throws -> Bool
    /// y[o, c, i] = x[o, c, i]·scale[c] + shift[c] for o < outer, c < channels, i < inner (no
    /// shift term where `shift` is nil): a per-channel affine map, an inference
    /// BatchNormalization that no convolution absorbs, channels-first (inner = H·W) or
    /// channels-last (inner = 1). With shift nil it is also the map's input gradient. y may be x.
    func channelAffine(outer: Int, channels: Int, inner: Int, x: BufferView, scale: BufferView, shift: BufferView?, y: BufferView) throws
    func activationBackward(_ kind: Activation, n: Int, x: BufferView, dy: BufferView, dx: BufferView) throws
    /// y = f(x) and derivative = f′(x) in one pass, where a backend computes them more
    /// cheaply together than apart; false, with nothing written, where it does not.
    func activationWithDerivative(_ kind: Activation, n: Int, x: BufferView, y: BufferView, derivative: BufferView) throws -> Bool
    func rowReduce(_ op: RowReduction, rows: Int, cols: Int, x: BufferView, y: BufferView) throws
    /// Row softmax (or log-softmax when `log`).
    func softmax(log: Bool, rows: Int, cols: Int, x: BufferView, y: BufferView) throws
    /// Backward of the row softmax given its output y: dx = y ⊙ (dy − Σ dy·y);
    /// of log-softmax: dx = dy − exp(y)·Σ dy.
    func softmaxBackward(log: Bool, rows: Int, cols: Int, y: BufferView, dy: BufferView, dx: BufferView) throws
    /// y[i, :] = table[idx[i], :]. Indices are checked by the caller. A BFloat16 or Float16
    /// table gathers into a Float32 y, each value widened (exact): an embedding stored at 16 bits.
    func gatherRows(n: Int, cols: Int, indices: BufferView, table: BufferView, y: BufferView) throws
    /// y[i] = x[i] widened to Float32, for x BFloat16 or Float16 and y Float32: exact. What a
    /// weight stored at 16 bits goes through before a Float32 product reads it.
    func widen(n: Int, x: BufferView, y: BufferView) throws
    /// table[idx[i], :] += src[i, :], in order of i (deterministic).
    func scatterAddRows(n: Int, cols: Int, indices: BufferView, source: BufferView, table: BufferView) throws
    /// y[(i·m + k)·d + j] = b + α_k(x[i·d + j] − b), b = base[i·baseStride + j].
    func pathInterpolate(n: Int, m: Int, d: Int, x: BufferView, base: BufferView, baseStride: Int,
                         alphas: BufferView, y: BufferView) throws
    /// y[i·d + j] = Σ_k w_k g[(i·m + k)·d + j].
    func pathWeightedSum(n: Int, m: Int, d: Int, g: BufferView, weights: BufferView, y: BufferView) throws
    /// The path and the activation after it in one pass, where a backend offers it: for rows
    /// (i, k), z = b + α_k(x_i − b) as pathInterpolate, y = f(z) and derivative = f′(z), z
    /// never written. Bitwise pathInterpolate, then the activation layer's forward, and f′
    /// as its backward applies it. False, with nothing written, where it is not offered.
    func pathActivationWithDerivative(_ kind: Activation, n: Int, m: Int, d: Int, x: BufferView, base: BufferView, baseStride: Int,
                                      alphas: BufferView, y: BufferView, derivative: BufferView) throws -> Bool
    /// y[i·d + j] = Σ_k w_k (g ⊙ multiplier)[(i·m + k)·d + j], the product never written:
    /// bitwise binary(.mul) then pathWeightedSum. False, with nothing written, where not offered.
    func pathWeightedSumTimes(n: Int, m: Int, d: Int, g: BufferView, multiplier: BufferView, weights: BufferView, y: BufferView) throws -> Bool

    // MARK: convolution, pooling, layer norm (Ops/Conv.swift, Pool.swift, LayerNorm.swift)
    // Images are NCHW, row-major. OH = (H + 2·padH − kh)/strideH + 1 (floor), OW
    // likewise; pooling has no padding (OH = (H − kh)/strideH + 1). Every output,
    // gradients included, is overwritten, each element from its own gather in a
    // fixed order (no atomics): deterministic, and the same sums on every backend.

    /// cols[C·kh·kw, N·OH·OW]: row ci·kh·kw + ki·kw + kj, column ni·OH·OW + oy·OW + ox holds
    /// x[ni, ci, oy·strideH − padH + ki, ox·strideW − padW + kj], or 0 outside the image.
    func im2col(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                padH: Int, padW: Int, x: BufferView, cols: BufferView) throws
    /// The adjoint of im2col: x[ni, ci, iy, ix] = Σ of the cols entries im2col read from that
    /// pixel, in order of (ki, kj). Overwrites x.
    func col2im(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                padH: Int, padW: Int, cols: BufferView, x: BufferView) throws
    /// y[j, i, k] = x[i, j, k] for x [a, b, c], y [b, a, c].
    func transpose01(a: Int, b: Int, c: Int, x: BufferView, y: BufferView) throws
    /// y[r, c] += bias[r] (the conv bias in the [OC, N·OH·OW] layout).
    func rowBiasAdd(rows: Int, cols: Int, bias: BufferView, y: BufferView) throws
    /// y[ni, ci, oy, ox] = max over the kh×kw window at (oy·strideH, ox·strideW); argmax (Int32)
    /// = iy·W + ix of that maximum in its H×W plane (PyTorch's return_indices). The first
    /// maximum wins ties; a NaN propagates (the rule `v > m || isnan(v)`, as PyTorch).
    func maxPool2d(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                   x: BufferView, y: BufferView, argmax: BufferView) throws
    /// dx[ni, ci, iy, ix] = Σ dy over the windows covering (iy, ix) whose argmax is iy·W + ix,
    /// in order of (oy, ox). Overwrites dx.
    func maxPool2dBackward(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                           dy: BufferView, argmax: BufferView, dx: BufferView) throws
    /// y = (Σ of the kh×kw window, in row order) / (kh·kw).
    func avgPool2d(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                   x: BufferView, y: BufferView) throws
    /// dx[ni, ci, iy, ix] = (Σ dy over the windows covering it, in order of (oy, ox)) / (kh·kw).
    /// Overwrites dx.
    func avgPool2dBackward(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int, strideH: Int, strideW: Int,
                           dy: BufferView, dx: BufferView) throws
    /// Average pooling with stride = kernel of f(x) into `pooled`, and `derivative` = f′(x),
    /// without writing f(x), where a backend does this in one pass; false, with nothing
    /// written, where it does not. Bitwise activationWithDerivative then avgPool2d.
    func activationAvgPoolWithDerivative(_ kind: Activation, n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                         x: BufferView, pooled: BufferView, derivative: BufferView) throws -> Bool
    /// Whether activationAvgPoolWithDerivative can run for this activation, dtype and plane
    /// size: asked first, so that a device without it allocates nothing for the attempt.
    func fusesActivationAvgPool(_ kind: Activation, dtype: DType, planeSize: Int) -> Bool
    /// dx = avgPool2dBackward(dy) ⊙ m (stride = kernel) in one pass where a backend offers
    /// it; false, with nothing written, where it does not. Bitwise the two ops apart.
    func avgPool2dBackwardTimes(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                dy: BufferView, m: BufferView, dx: BufferView) throws -> Bool
    /// Per row of x [rows, cols]: μ = mean, var = Σ(x − μ)²/cols (biased, two-pass),
    /// rstd = 1/√(var + eps), y = (x − μ)·rstd·γ + β; writes mean[rows] and rstd[rows].
    func layerNorm(rows: Int, cols: Int, eps: Double, x: BufferView, gamma: BufferView, beta: BufferView,
                   y: BufferView, mean: BufferView, rstd: BufferView) throws
    /// With x̂ = (x − μ)·rstd and g = dy ⊙ γ: dx = rstd·(g − mean_c(g) − x̂·mean_c(g ⊙ x̂)),
    /// dgamma[c] = Σ_r dy·x̂, dbeta[c] = Σ_r dy (rows in order). Overwrites dx, and dgamma and
    /// dbeta where given: an attribution's backward needs dx alone, and the parameters' sums,
    /// a pass down each column, cost as much again.
    func layerNormBackward(rows: Int, cols: Int, x: BufferView, gamma: BufferView, mean: BufferView,
                           rstd: BufferView, dy: BufferView, dx: BufferView, dgamma: BufferView?, dbeta: BufferView?) throws
    /// RMSNorm per row of x [rows, cols]: rstd = 1/√(Σx²/cols + eps), y = x·rstd·γ; writes rstd[rows].
    func rmsNorm(rows: Int, cols: Int, eps: Double, x: BufferView, gamma: BufferView, y: BufferView, rstd: BufferView) throws
    /// With x̂ = x·rstd and g = dy ⊙ γ: dx = rstd·(g − x̂·mean_c(g ⊙ x̂)). Overwrites dx.
    func rmsNormBackward(rows: Int, cols: Int, x: BufferView, gamma: BufferView, rstd: BufferView, dy: BufferView, dx: BufferView) throws
    /// Rotary position embedding of x [rows, headDim], rows = n·T·heads in [n, T, heads] order (the
    /// position of a row is (row / heads) mod T): with h = rotary/2 and i < h,
    /// y_i = x_i·cos − x_(i+h)·sin, y_(i+h) = x_(i+h)·cos + x_i·sin, cos and sin from [T, h] tables;
    /// `inverse` negates sin (the backward). Entries rotary..<headDim are copied. x and y distinct.
    func rotary(rows: Int, tokens: Int, heads: Int, headDim: Int, rotary: Int, inverse: Bool,
                x: BufferView, cos: BufferView, sin: BufferView, y: BufferView) throws

    // MARK: masks (Ops/Masks.swift; Sobol attribution, deletion / insertion)
    // Masks are [m, mc, gh, gw], upsampled to h×w by `mode` (torch interpolate: nearest
    // src = ⌊dst·g/size⌋; bilinear with align_corners = False), never stored at full size.

    /// y[k, ci, iy, ix] = mask k, plane ci, upsampled to h×w: y is [m, mc, h, w].
    func maskUpsample(_ mode: MaskUpsampling, m: Int, mc: Int, gh: Int, gw: Int, h: Int, w: Int,
                      masks: BufferView, y: BufferView) throws
    /// For one input x [c, h, w] and masks with mc = 1 (shared by the channels) or mc = c
    /// planes, y [m, c, h, w] with M the upsampled mask k (plane ci, or 0 when mc = 1):
    /// inpainting y = x·M + (1 − M)·x₀, x₀ = base[j·baseStep] (j the element of x; baseStep 1
    /// for a per-input tensor, 0 for a constant); amplitude y = x·(M − ½)·sigma.
    func maskPerturb(_ kind: MaskPerturbation, _ mode: MaskUpsampling, m: Int, mc: Int, c: Int, gh: Int, gw: Int,
                     h: Int, w: Int, masks: BufferView, x: BufferView, base: BufferView, baseStep: Int,
                     sigma: Double, y: BufferView) throws

    // MARK: attention (Ops/Attention.swift; CPU/CPUDevice+AttentionOps.swift, Kernels/attention.cl)

    /// y[i, k, j, l] = x[i, j, k, l] for x [a, b, c, d], y [a, c, b, d]: swaps the two
    /// middle dimensions ([B, T, H, dh] ↔ [B, H, T, dh]). Overwrites y.
    func transpose12(a: Int, b: Int, c: Int, d: Int, x: BufferView, y: BufferView) throws
    /// Copies an n0 × n1 × n2 box between strided views:
    /// y[i·yStride0 + j·yStride1 + k] = x[i·xStride0 + j·xStride1 + k] (element offsets from each
    /// view's offset). Strides ≥ 0; the boxes must not overlap.
    func copyBox(n0: Int, n1: Int, n2: Int, x: BufferView, xStride0: Int, xStride1: Int,
                 y: BufferView, yStride0: Int, yStride1: Int) throws

    // MARK: AtP* (Ops/AtP.swift; CPU/CPUDevice+AtPOps.swift, Kernels/atp.cl)

    /// AtP*'s QK fix for keys, per head and key: for scores, delta, grad [n, T, T] (row t = query,
    /// column s = key; entries s > t are not read) writes y[b, s] = Σ_{t ≥ s} (A'_ts − A_ts)·(g_ts − ḡ_ts),
    /// A = the causal row softmax of the scores, A' = the same with score (t, s) moved by delta_ts,
    /// g = grad, ḡ_ts = Σ_{s' ≠ s} A_ts'·g_ts' / Σ_{s' ≠ s} A_ts' (methods.md's
    /// (1/Z − 1)·G_t + A_ts(e^Δ − 1)/Z·∂L/∂A_ts, rearranged to stay finite for any Δ). y is [n, T].
    func atpKeyEffects(n: Int, t: Int, scores: BufferView, delta: BufferView, grad: BufferView, y: BufferView) throws
}

extension Device {
    public var matmulPrecision: MatmulPrecision { .fp32 }
    public func setMatmulPrecision(_ p: MatmulPrecision) throws {
        guard p == .fp32 else {
            throw AttribError.invalidArgument(op: "precision \(p.rawValue)",
                detail: "\(info.summary) computes Float32 products in FP32 only; --precision tf32 and bf16 apply to OpenCL devices")
        }
    }
    /// Not offered unless a backend says so.
    public func activationWithDerivative(_ kind: Activation, n: Int, x: BufferView, y: BufferView, derivative: BufferView) throws -> Bool { false }
    public func activationAvgPoolWithDerivative(_ kind: Activation, n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                                x: BufferView, pooled: BufferView, derivative: BufferView) throws -> Bool { false }
    public func fusesActivationAvgPool(_ kind: Activation, dtype: DType, planeSize: Int) -> Bool { false }
    public func avgPool2dBackwardTimes(n: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                       dy: BufferView, m: BufferView, dx: BufferView) throws -> Bool { false }
    public func gemmSequence(_ gs: [GEMMArguments]) throws { for g in gs { try gemm(g) } }
    public func gateMultiply(n: Int, rows: Int, cols: Int, a: BufferView, s: BufferView, y: BufferView) throws -> Bool { false }
    public func gateMultiplyBackward(n: Int, rows: Int, cols: Int, a: BufferView, s: BufferView, dy: BufferView,
                                     da: BufferView?, ds: BufferView?) throws -> Bool { false }
    public func gemmFused(_ g: GEMMArguments, _ epilogue: GEMMEpilogue) throws -> Bool { false }
    public func fusesGEMMEpilogues(dtype: DType) -> Bool { false }
    public func pathActivationWithDerivative(_ kind: Activation, n: Int, m: Int, d: Int, x: BufferView, base: BufferView, baseStride: Int,
                                             alphas: BufferView, y: BufferView, derivative: BufferView) throws -> Bool { false }
    public func pathWeightedSumTimes(n: Int, m: Int, d: Int, g: BufferView, multiplier: BufferView, weights: BufferView, y: BufferView) throws -> Bool { false }
    public func pathActivationAvgPoolWithDerivative(_ kind: Activation, n: Int, m: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                                    x: BufferView, base: BufferView, baseStride: Int, alphas: BufferView,
                                                    pooled: BufferView, derivative: BufferView) throws -> Bool { false }
    public func avgPool2dBackwardTimesPathSum(n: Int, m: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
                                              dy: BufferView, multiplier: BufferView, weights: BufferView, y: BufferView) throws -> Bool { false }
    public func offersConv3x3RowsOuter(dtype: DType) -> Bool { false }
    public func offersImplicitConvolution(dtype: DType) -> Bool { false }
    public func offersChannelsLastConvolution(dtype: DType) -> Bool { false }
    public func conv2dChannelsLast(_ g: Window2D, oc: Int, groups: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                                   y: BufferView, prepared: PreparedWeights?) throws -> Bool { false }
    public func conv2dInputGradientChannelsLast(_ g: Window2D, oc: Int, groups: Int, dy: BufferView, weight: BufferView,
                                                dx: BufferView, prepared: PreparedWeights?) throws -> Bool { false }
    public func conv2dImplicitGEMM(_ g: Window2D, oc: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                                   y: BufferView) throws -> Bool { false }
    public func conv2dInputGradientImplicitGEMM(_ g: Window2D, oc: Int, dy: BufferView, weight: BufferView,
                                                dx: BufferView) throws -> Bool { false }
    public func conv2dImplicitGEMM(_ g: Window2D, oc: Int, x: BufferView, weight: BufferView, bias: BufferView?,
                                   activation: Activation, y: BufferView, derivative: BufferView) throws -> Bool { false }
    public func conv2dInputGradientImplicitGEMM(_ g: Window2D, oc: Int, dy: BufferView, multiplier: BufferView, weight: BufferView,
                                                dx: BufferView) throws -> Bool { false }
    public func conv3x3RowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, x: BufferView, weight: BufferView,
                                 bias: BufferView?, y: BufferView) throws -> Bool { false }
    public func conv3x3GELUAvgPool2RowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, x: BufferView, weight: BufferView,
                                             bias: BufferView?, pooled: BufferView, derivative: BufferView) throws -> Bool { false }
    public func avgPool2TimesConv3x3BackwardRowsOuter(n: Int, c: Int, h: Int, w: Int, oc: Int, g: BufferView, multiplier: BufferView,
                                                      flipped: BufferView, dx: BufferView) throws -> Bool { false }
    /// Two passes (a fill, then the bias) where a backend has no copy of its own.
    public func broadcastRows(rows: Int, cols: Int, x: BufferView, y: BufferView) throws {
        try fill(n: rows * cols, value: 0, y: y)
        try biasAdd(rows: rows, cols: cols, bias: x, y: y)
    }
    public var name: String { info.name }
    public var id: String { info.id }
}
