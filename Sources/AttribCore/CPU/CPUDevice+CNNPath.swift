import CVecMath
import Synchronization

/// One stage of `CPUDevice.igConvGELUPoolPathSum`: a 3×3, stride-1, padding-1
/// convolution of [h, c, w] (rows-outer) to [h, oc, w], GELU (erf), 2×2 average pooling.
public struct ConvGELUPoolStage: Sendable {
    public var c: Int, h: Int, w: Int, oc: Int
    /// [oc, c, 3, 3], [oc] or nil, and the backward weight [c, oc, 3, 3] (flipped, channels swapped).
    public var weight: BufferView, bias: BufferView?, flipped: BufferView
    public init(c: Int, h: Int, w: Int, oc: Int, weight: BufferView, bias: BufferView?, flipped: BufferView) {
        self.c = c; self.h = h; self.w = w; self.oc = oc; self.weight = weight; self.bias = bias; self.flipped = flipped
    }
}

extension CPUDevice {
    /// Most stages `igConvGELUPoolPathSum` takes.
    public static var pathStagesMax: Int { Int(ATTRIB_PATH_STAGES_MAX) }

    /// The whole IG path of a small CNN after its fused first layer, in one pass per input
    /// (CVecMath/cnn_path.c): GELU → 2×2 pooling, the stages, Flatten and a Linear head.
    /// For inputs i < n and targets t: out[t][i] = Σ_k weights[k]·∂F/∂z at z = zb_i +
    /// alphas[k]·(zx_i − zb_i), the first layer's output z [h0, c0, w0] rows-outer, F the
    /// logit targets[i·tcount + t], head [classes, dlast] the head's weight rows in the
    /// rows-outer order of the last pooled output. Bitwise the sums of the ops apart.
    /// False, with nothing written, where the kernel does not run (no AVX2 and FMA, Float64,
    /// extents that do not chain).
    ///
    /// Inputs are shared among the worker threads one at a time: an input is tens of
    /// microseconds to milliseconds of work, so the threads finish within one of each other.
    public func igConvGELUPoolPathSum(n: Int, h0: Int, c0: Int, w0: Int, zx: BufferView, zb: BufferView, zbStride: Int,
                                      stages: [ConvGELUPoolStage], head: BufferView, classes: Int, targets: [Int32], tcount: Int,
                                      alphas: BufferView, weights: BufferView, steps: Int, out: [BufferView]) throws -> Bool {
        let op = "igConvGELUPoolPathSum"
        guard offersConv3x3RowsOuter(dtype: try buffer(zx, op).dtype), !stages.isEmpty,
              stages.count <= Self.pathStagesMax else { return false }
        try AttribError.requirePositive(op, ["inputs": n, "steps": steps, "targets": tcount, "classes": classes])
        let d0 = h0 * c0 * w0, last = stages[stages.count - 1], dlast = (last.h / 2) * last.oc * (last.w / 2)
        guard targets.count == n * tcount, out.count == tcount else {
            throw AttribError.shapeMismatch(op: op, detail: "\(targets.count) targets and \(out.count) outputs for \(n) inputs × \(tcount) targets")
        }
        if let bad = targets.first(where: { $0 < 0 || Int($0) >= classes }) {
            throw AttribError.invalidArgument(op: op, detail: "target \(bad) is not one of the head's \(classes) classes")
        }
        let zxp = try pointer(Float.self, zx, op, n * d0), zbp = try pointer(Float.self, zb, op, (n - 1) * zbStride + d0)
        let hp = try pointer(Float.self, head, op, classes * dlast)
        let ap = try pointer(Float.self, alphas, op, steps), wp = try pointer(Float.self, weights, op, steps)
        let outs: [UnsafeMutablePointer<Float>?] = try out.map { try pointer(Float.self, $0, op, n * d0) }
        let cs: [attrib_conv_gelu_pool_stage] = try stages.map { s in
            attrib_conv_gelu_pool_stage(c: s.c, h: s.h, w: s.w, oc: s.oc,
                                        weight: UnsafePointer(try pointer(Float.self, s.weight, op, s.oc * s.c * 9)),
                                        bias: try s.bias.map { UnsafePointer(try pointer(Float.self, $0, op, s.oc)) },
                                        flipped: UnsafePointer(try pointer(Float.self, s.flipped, op, s.oc * s.c * 9)))
        }
        let failed = Atomic<Bool>(false)
        targets.withUnsafeBufferPointer { tp in
            cs.withUnsafeBufferPointer { sp in
                outs.withUnsafeBufferPointer { op in
                    parallelEach(n) { i in
                        if attrib_ig_conv_gelu_pool_path_sum_f32(zxp, zbp, zbStride, h0, c0, w0, sp.baseAddress, sp.count, hp,
                                                                 tp.baseAddress, tcount, ap, wp, steps, i, i + 1, op.baseAddress) == 0 {
                            failed.store(true, ordering: .relaxed)
                        }
                    }
                }
            }
        }
        if failed.load(ordering: .relaxed) {
            // The first input's call checks what every call checks; a later failure is an allocation's.
            throw AttribError.invalidArgument(op: op, detail: "\(info.id) could not run the path of \(n) inputs through \(stages.count) stages (extents \(h0)×\(c0)×\(w0) that do not pool evenly, or no memory for the lanes)")
        }
        return true
    }
}
