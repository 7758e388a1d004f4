import AttribCore

// Squeeze-and-excitation on channels-last values (MobileNetV3, EfficientNet), so that a
// network's depthwise convolutions and the gates between them stay in one channels-last
// stretch (Graph+ChannelsLast.swift). Per sample the image is [H, W, C] and the pooled value
// and the gate are [1, 1, C], which has the same memory as NCHW's [C, 1, 1]: the gate's own
// small layers run as they are, with reshapes (no copies) where they meet the stretch.
//
// Both ops reduce over and spread across the H·W rows of each sample's [H·W, C] matrix. They
// do it with products against a column of ones (a batched GEMM, one product per sample), so
// they run on every device's GEMM and on the CPU go to OpenBLAS.

/// The per-sample product with a column of ones: y[b] (rows×cols) = alpha · 1 · s[b] (1×cols)
/// for s [N, cols] (any shape of N·cols elements): s spread over `rows` rows, a [N, rows, cols].
func spreadOverRows(_ s: Tensor, rows: Int, alpha: Double = 1) throws -> Tensor {
    let (n, cols) = (s.batchSize, s.count / max(1, s.batchSize))
    let ones = try Tensor.zeros([rows], dtype: s.dtype, on: s.device)
    try ones.fill(1)
    let y = try Tensor(shape: [n, rows, cols], dtype: s.dtype, on: s.device)          // [N, rows, cols]
    try withExtendedLifetime(ones) {
        try s.device.gemm(GEMMArguments(m: rows, n: cols, k: 1, alpha: alpha, a: ones.storage, lda: 1, strideA: 0,
                                        b: s.storage, ldb: cols, strideB: cols, c: y.storage, ldc: cols, strideC: rows * cols,
                                        batch: n))
    }
    return y
}

/// Per sample, the sums of the rows of x [N, rows, cols] (any shape of N·rows·cols elements),
/// times alpha: [N, cols], as xᵀ · 1 for each sample (the shared right operand of a 3-D product).
func sumOverRows(_ x: Tensor, rows: Int, alpha: Double = 1) throws -> Tensor {
    let (n, cols) = (x.batchSize, x.count / max(1, x.batchSize * rows))
    let ones = try Tensor.zeros([rows, 1], dtype: x.dtype, on: x.device)
    try ones.fill(1)
    return try x.reshaped([n, rows, cols]).matmul(ones, transposeSelf: true, alpha: alpha).reshaped([n, cols])  // [N, cols]
}

/// GlobalAveragePool on channels-last values: x [H, W, C] → [1, 1, C] per sample, the mean
/// of each channel over the plane. Backward spreads dy/(H·W) over the plane.
public struct ChannelsLastGlobalAvgPoolGraphOp: GraphOp {
    public init() {}
    public var kind: String { "GlobalAveragePool NHWC" }
    public var description: String { kind }
    public var arity: Int { 1 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let x = inputs[0]
        guard x.shape.count == 3, x.dtype.isFloatingPoint else {
            throw AttribError.shapeMismatch(op: kind, detail: "input per sample is \(x); expected [H, W, C] floating")
        }
        return ValueType([1, 1, x.shape[2]], x.dtype)
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let x = inputs[0]                                                                  // [N, H, W, C]
        let plane = x.shape[1] * x.shape[2]
        let y = try sumOverRows(x, rows: plane, alpha: 1 / Double(plane)).reshaped([x.batchSize, 1, 1, x.shape[3]])
        return (y, OpSaved(shapes: [x.shape]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        let shape = saved.shapes[0], plane = shape[1] * shape[2]
        return [try spreadOverRows(dy, rows: plane, alpha: 1 / Double(plane)).reshaped(shape)]  // [N, H, W, C]
    }
}

/// A squeeze-and-excitation gate on channels-last values: a [H, W, C] ⊙ s [1, 1, C] per
/// sample, s spread over the plane. Inputs: [a, s]; output: a's type. Backward:
/// ∂/∂a = dy ⊙ spread(s), ∂/∂s = the plane's sums of dy ⊙ a. In one pass each way where the
/// device has the kernel (Device.gateMultiply: the CPU's Float32); elsewhere s is spread into
/// a buffer by a product, kept for the backward.
public struct ChannelsLastBroadcastMulGraphOp: GraphOp {
    public init() {}
    public var kind: String { "BroadcastMul NHWC" }
    public var description: String { kind }
    public var arity: Int { 2 }

    public func outputType(_ inputs: [ValueType]) throws -> ValueType {
        let (a, s) = (inputs[0], inputs[1])
        guard a.dtype == s.dtype, a.dtype.isFloatingPoint, a.shape.count == 3, s.shape == [1, 1, a.shape[2]] else {
            throw AttribError.shapeMismatch(op: kind, detail: "operands are \(a) and \(s); expected [H, W, C] and [1, 1, C], one floating-point type")
        }
        return a
    }

    public func forward(_ inputs: [Tensor]) throws -> (y: Tensor, saved: OpSaved) {
        let (a, s) = (inputs[0], inputs[1])                                                // [N, H, W, C], [N, 1, 1, C]
        let (n, rows, cols) = (a.batchSize, a.shape[1] * a.shape[2], a.shape[3])
        let y = try Tensor(shape: a.shape, dtype: a.dtype, on: a.device)                   // [N, H, W, C]
        try checkSameDevice(a, s)
        if try a.device.gateMultiply(n: n, rows: rows, cols: cols, a: a.storage, s: s.storage, y: y.storage) {
            return (y, OpSaved(tensors: [a, s]))
        }
        let e = try spreadOverRows(s, rows: rows).reshaped(a.shape)                        // [N, H, W, C]
        return (try a.multiplying(e), OpSaved(tensors: [a, s, e]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        let (a, s) = (saved.tensors[0], saved.tensors[1])
        let (n, rows, cols) = (a.batchSize, a.shape[1] * a.shape[2], a.shape[3])
        if saved.tensors.count == 2 {                                                      // the forward ran the device's kernel
            let da = needed[0] ? try Tensor(shape: a.shape, dtype: a.dtype, on: a.device) : nil
            let ds = needed[1] ? try Tensor(shape: s.shape, dtype: s.dtype, on: s.device) : nil
            guard try a.device.gateMultiplyBackward(n: n, rows: rows, cols: cols, a: a.storage, s: s.storage, dy: dy.storage,
                                                    da: da?.storage, ds: ds?.storage) else {
                throw AttribError.invalidArgument(op: kind, detail: "\(a.device.info.id) ran the forward's kernel but declines its backward")
            }
            return [da, ds]
        }
        let e = saved.tensors[2]
        let da = needed[0] ? try dy.multiplying(e) : nil
        let ds = needed[1] ? try sumOverRows(try dy.multiplying(a), rows: rows).reshaped(s.shape) : nil
        return [da, ds]
    }

    // keptElements: none beyond the inputs. The op is made by `Graph.channelsLast` only for
    // a device that convolves channels-last (the CPU's Float32), whose kernel keeps nothing
    // else; the spread buffer of the portable path is for other devices running such a graph.

    /// Both operands on one device (the kernel reads raw views).
    func checkSameDevice(_ a: Tensor, _ s: Tensor) throws {
        guard a.device === s.device else {
            throw AttribError.deviceMismatch(op: kind, detail: "the image is on \(a.device.info.id), the gate on \(s.device.info.id)")
        }
    }
}
