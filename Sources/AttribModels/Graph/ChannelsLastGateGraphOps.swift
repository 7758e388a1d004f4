import AttribCore

// Squeeze-and-excitation on channels-last values (MobileNetV3, EfficientNet), so that a
// network's depthwise convolutions and the gates between them stay in one channels-last
// stretch (Graph+ChannelsLast.swift). Per sample the image is [H, W, C] and the pooled value
// and the gate are [1, 1, C], which has the same memory as NCHW's [C, 1, 1]: the gate's own
// small layers run as they are, with reshapes (no copies) where they meet the stretch.
//
// Both ops reduce over and spread across the H·W rows of each sample's [H·W, C] matrix
// (Tensor.sumOverRows, spreadOverRows: products with a column of ones, on every device's
// GEMM); the gate runs in one pass each way where the device has the kernel (Ops/Gate.swift).

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
        let y = try x.sumOverRows(plane, alpha: 1 / Double(plane)).reshaped([x.batchSize, 1, 1, x.shape[3]])
        return (y, OpSaved(shapes: [x.shape]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        guard needed[0] else { return [nil] }
        let shape = saved.shapes[0], plane = shape[1] * shape[2]
        return [try dy.spreadOverRows(plane, alpha: 1 / Double(plane)).reshaped(shape)]       // [N, H, W, C]
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
        let rows = a.shape[1] * a.shape[2]
        if let y = try a.gateMultiplied(by: s, rows: rows) { return (y, OpSaved(tensors: [a, s])) }
        let e = try s.spreadOverRows(rows).reshaped(a.shape)                               // [N, H, W, C]
        return (try a.multiplying(e), OpSaved(tensors: [a, s, e]))
    }

    public func backward(_ dy: Tensor, _ saved: OpSaved, needed: [Bool]) throws -> [Tensor?] {
        let (a, s) = (saved.tensors[0], saved.tensors[1]), rows = a.shape[1] * a.shape[2]
        guard saved.tensors.count == 3 else {                                              // the forward ran the device's kernel
            guard let (da, ds) = try dy.gateMultiplyBackward(a: a, s: s, rows: rows, wantA: needed[0], wantS: needed[1]) else {
                throw AttribError.invalidArgument(op: kind, detail: "\(a.device.info.id) ran the forward's kernel but declines its backward")
            }
            return [da, ds]
        }
        let e = saved.tensors[2]
        let da = needed[0] ? try dy.multiplying(e) : nil
        let ds = needed[1] ? try dy.multiplying(a).sumOverRows(rows).reshaped(s.shape) : nil
        return [da, ds]
    }

    // keptElements: none beyond the inputs. The op is made by `Graph.channelsLast` only for
    // a device that convolves channels-last (the CPU's Float32), whose kernel keeps nothing
    // else; the spread buffer of the portable path is for other devices running such a graph.
}
