import AttribCore

/// A whole IG path through a small CNN in one op per batch of inputs, on the CPU backend
/// (CPUDevice.igConvGELUPoolPathSum, CVecMath/cnn_path.c): after the fused first layer,
/// GELU (erf) → 2×2 average pooling, then stages of direct 3×3 convolution → GELU → 2×2
/// average pooling, then Flatten → Linear, the model's last layer.
///
/// Why: layer by layer, each batch writes every activation, GELU′ and gradient to memory
/// and transposes them into the convolution's lanes and back, and the worker threads meet
/// after each op; on the digits CNN that was a third of the sweep. The sums are bitwise
/// those of `traceRowsOuter` + `pathGradientSum` over the same steps.
extension Sequential {
    /// The convolution stages from layer `start` (the fused first layer's successor), or nil
    /// where the layers from there are not of that shape or the device does not run them so.
    func cnnPathStages(from start: Int) -> [(conv: Conv2d, inputShape: [Int])]? {
        guard device is CPUDevice, dtype == .float32, start >= 1, start + 3 < layers.count,
              let head = layers.last as? Linear, head.inFeatures == shapes[layers.count - 2].reduce(1, *),
              isGELUPool2(start, inputShape: inputShape(ofLayer: start)) else { return nil }
        var stages: [(conv: Conv2d, inputShape: [Int])] = []
        var i = start + 2
        while i < layers.count - 2 {
            let shape = inputShape(ofLayer: i)
            // Any 3×3, stride-1, padding-1 convolution the direct kernel takes, banded or not.
            guard shape.count == 3, let conv = layers[i] as? Conv2d, conv.directKernelApplies,
                  isGELUPool2(i + 1, inputShape: shapes[i]), stages.count < CPUDevice.pathStagesMax else { return nil }
            stages.append((conv, shape))
            i += 3
        }
        guard !stages.isEmpty, i == layers.count - 2, layers[i] is Flatten else { return nil }
        return stages
    }

    /// Whether layers i, i + 1 are GELU (erf) and 2×2 average pooling with stride 2 over an
    /// input [C, H, W] of even H and W.
    private func isGELUPool2(_ i: Int, inputShape shape: [Int]) -> Bool {
        guard i + 1 < layers.count, shape.count == 3, shape[1] % 2 == 0, shape[2] % 2 == 0,
              let act = layers[i] as? ActivationLayer, act.kind == .geluErf,
              let pool = layers[i + 1] as? Pool2d, pool.isTilingAverage, pool.kernel == [2, 2] else { return false }
        return true
    }

    /// Whether `igPathGradientSum` runs for layers from `start`.
    public func runsIGPathWhole(from start: Int) -> Bool { cnnPathStages(from: start) != nil }

    /// For inputs i of zx, zb ([n, H, C, W] rows-outer: layer start's input, the first
    /// layer's output at x and at x′) and targets t: into[t] rows i (each [n, H, C, W]) =
    /// Σ_k weights[k]·∂F_t/∂z at z = zb_i + alphas[k]·(zx_i − zb_i), F_t the logit
    /// targets[i][t]. False, with nothing written, where `runsIGPathWhole` is false.
    public func igPathGradientSum(pathFrom zx: Tensor, baselines zb: Tensor, alphas: Tensor, weights: Tensor,
                                  targets: [[Int]], from start: Int, into: [Tensor]) throws -> Bool {
        guard let stages = cnnPathStages(from: start), let cpu = device as? CPUDevice else { return false }
        let s0 = inputShape(ofLayer: start), n = zx.batchSize, tcount = into.count
        let rowsOuter = [s0[1], s0[0], s0[2]]
        guard zx.shape == [n] + rowsOuter, zb.shape == zx.shape, into.allSatisfy({ $0.shape == zx.shape }),
              alphas.rank == 1, weights.shape == alphas.shape, targets.count == n, targets.allSatisfy({ $0.count == tcount }) else {
            throw AttribError.shapeMismatch(op: "igPathGradientSum", detail: "path \(zx.shape), baselines \(zb.shape), \(into.count) sums \(into.map(\.shape)), alphas \(alphas.shape), weights \(weights.shape), \(targets.count) target lists for \(n) inputs; expected [n, \(rowsOuter.map(String.init).joined(separator: ", "))] and \(tcount) targets each")
        }
        let head = layers.last as! Linear, flat = inputShape(ofLayer: layers.count - 2)     // [C, H, W] before the Flatten
        for (i, ts) in targets.enumerated() {
            if let t = ts.first(where: { $0 < 0 || $0 >= head.outFeatures }) {
                throw AttribError.invalidArgument(op: "igPathGradientSum", detail: "target \(t) of input \(i) is not one of the model's \(head.outFeatures) classes")
            }
        }
        let (c, h, w) = (flat[0], flat[1], flat[2])
        // The head's weight rows in the rows-outer order of the last pooled output, [classes, H·C·W].
        let wv = try head.weight.doubles(), fin = head.inFeatures
        var rows = [Double](repeating: 0, count: head.outFeatures * fin)
        for k in 0..<head.outFeatures { for y in 0..<h { for ci in 0..<c { for x in 0..<w {
            rows[k * fin + (y * c + ci) * w + x] = wv[k * fin + (ci * h + y) * w + x]
        } } } }
        let headRows = try Tensor(rows, shape: [head.outFeatures, fin], dtype: dtype, on: device)
        let cs = stages.map { s in
            ConvGELUPoolStage(c: s.inputShape[0], h: s.inputShape[1], w: s.inputShape[2], oc: s.conv.outChannels,
                              weight: s.conv.weight.storage, bias: s.conv.bias?.storage, flipped: s.conv.directBackwardWeight!.storage)
        }
        return try cpu.igConvGELUPoolPathSum(n: n, h0: s0[1], c0: s0[0], w0: s0[2], zx: zx.storage, zb: zb.storage, zbStride: s0.reduce(1, *),
                                             stages: cs, head: headRows.storage, classes: head.outFeatures,
                                             targets: targets.flatMap { $0.map { Int32($0) } }, tcount: tcount,
                                             alphas: alphas.storage, weights: weights.storage, steps: alphas.shape[0], out: into.map(\.storage))
    }
}
