import AttribCore

/// Images held rows outermost, [N, H, C, W] instead of NCHW, through a CNN's convolution
/// stack: the layout a banded convolution (Conv2dUnrolled.Band) reads and writes, so
/// its four transposes per batch (input and output, forward and backward) disappear.
///
/// Why it needs nothing else: an elementwise activation does not see the layout, and
/// average pooling whose windows tile (stride = kernel, kw dividing W) of an image
/// [H, C, W] is the same pooling of the one plane [H, C·W], since no window crosses
/// from one channel's columns into the next; its output [H/kh, C·W/kw] is again rows
/// outermost. The Flatten at the span's end restores NCHW order (PyTorch's flatten
/// order) with one transpose of the smallest tensor in the stack.
///
/// Every op computes the same values in the same order as in NCHW, so a rows-outer
/// trace and backward give bitwise the gradients of `trace(keepActivations: false)`.
extension Sequential {
    /// Where layers from `start` can run rows-outer: the index of the Flatten ending the
    /// span, or nil. The span holds banded convolutions and activation + tiling average
    /// pooling pairs the device fuses (CPU Float32 GELU), at least one convolution, and
    /// nothing else.
    public func rowsOuterSpan(from start: Int) -> Int? {
        guard start < layers.count else { return nil }
        var shape = inputShape(ofLayer: start)
        var i = start, convolutions = 0
        while i < layers.count {
            guard shape.count == 3 else { return nil }
            if layers[i] is Flatten { return convolutions > 0 ? i : nil }
            if let conv = layers[i] as? Conv2d {
                guard (try? conv.bands(inputShape: shape)) ?? nil != nil else { return nil }
                convolutions += 1
            } else if let act = layers[i] as? ActivationLayer, i + 1 < layers.count,
                      let pool = layers[i + 1] as? Pool2d, pool.isTilingAverage,
                      shape[1] % pool.kernel[0] == 0, shape[2] % pool.kernel[1] == 0,
                      device.fusesActivationAvgPool(act.kind, dtype: dtype, planeSize: shape.reduce(1, *)) {
                i += 1
            } else {
                return nil
            }
            shape = shapes[i]
            i += 1
        }
        return nil
    }

    /// The trace of layers `range` (from a start `rowsOuterSpan` accepts) for x held
    /// rows-outer, [N, H, C, W] for the start's input [C, H, W]. Layers after the span's
    /// Flatten run as usual. Read it back with `backward`, which sees the layout.
    public func traceRowsOuter(_ x: Tensor, layers range: Range<Int>) throws -> Trace {
        let end = try rowsOuterEnd(range)
        try checkRowsOuter(x, layer: range.lowerBound)
        return try traceRowsOuter(x, from: range.lowerBound, saved: [], layers: range, end: end)
    }

    /// `traceRowsOuter` of the IG path x_i + … rows (i, k) = baselines_i + alphas_k·(x_i −
    /// baselines_i), x and baselines rows-outer [n, H, C, W] (baselines [1, …] for one for
    /// all). Where the span opens with an activation and pooling the device fuses with the
    /// path (CPU Float32 GELU), the path is never formed; else it is built first. Bitwise
    /// the trace of the built path either way.
    public func traceRowsOuter(pathFrom x: Tensor, baselines: Tensor, alphas: Tensor, layers range: Range<Int>) throws -> Trace {
        let end = try rowsOuterEnd(range)
        try checkRowsOuter(x, layer: range.lowerBound)
        let i = range.lowerBound
        if let act = layers[i] as? ActivationLayer, let pool = layers[i + 1] as? Pool2d {
            let n = x.batchSize, (hh, c, w) = (x.shape[1], x.shape[2], x.shape[3])
            let planes = try x.reshaped([n, 1, hh, c * w]), basePlanes = try baselines.reshaped([baselines.batchSize, 1, hh, c * w])
            if let (pooled, d) = try planes.pathActivatedAndAvgPooled(baselines: basePlanes, alphas: alphas, act.kind, kernel: pool.k2) {
                let y = try rowsOuter(pooled, shapes[i + 1])
                // The path is never formed: f′ stands in for it where only its shape is read.
                let saved = [Saved(input: d, output: d, extra: [d]), Saved(input: d, output: y)]
                return try traceRowsOuter(y, from: i + 2, saved: saved, layers: range, end: end)
            }
        }
        let path = try x.pathInterpolated(baselines: baselines, alphas: alphas)
        return try traceRowsOuter(path, from: i, saved: [], layers: range, end: end)
    }

    /// The Flatten ending the rows-outer span that `range` starts, or an error naming it.
    private func rowsOuterEnd(_ range: Range<Int>) throws -> Int {
        guard let end = rowsOuterSpan(from: range.lowerBound), end < range.upperBound else {
            throw AttribError.invalidArgument(op: "traceRowsOuter", detail: "layers \(range) do not start a rows-outer span")
        }
        return end
    }

    private func checkRowsOuter(_ h: Tensor, layer i: Int) throws {
        let shape = inputShape(ofLayer: i)                           // [C, H, W] in NCHW terms
        guard h.rank == 4, h.shape == [h.batchSize, shape[1], shape[0], shape[2]] else {
            throw AttribError.shapeMismatch(op: "traceRowsOuter", detail: "layer \(i) input has shape \(h.shape), expected [N, \(shape[1]), \(shape[0]), \(shape[2])] (rows outermost)")
        }
    }

    /// t [N, …] viewed rows-outer for the per-sample NCHW shape [C, H, W]: [N, H, C, W].
    private func rowsOuter(_ t: Tensor, _ shape: [Int]) throws -> Tensor {
        try t.reshaped([t.batchSize, shape[1], shape[0], shape[2]])
    }

    /// The upstream gradient g of the pooling at layer i, held rows-outer, as the pooling
    /// of one plane [1, H, C·W] per image sees it (`plane`: that plane batch's shape).
    private func planeUpstream(_ g: Tensor, pool: Pool2d, plane: [Int]) throws -> Tensor {
        try g.reshaped([g.batchSize, 1, plane[2] / pool.kernel[0], plane[3] / pool.kernel[1]])
    }

    /// The backward of the activation at layer i − 1 and the tiling pooling at layer i,
    /// fused, from g rows-outer to the activation's input rows-outer; d is f′ [N, 1, H, C·W].
    private func pairBackward(_ g: Tensor, pool i: Int, derivative d: Tensor) throws -> Tensor {
        let pool = layers[i] as! Pool2d
        guard let dx = try planeUpstream(g, pool: pool, plane: d.shape).avgPool2dBackward(inputShape: d.shape, kernel: pool.k2, times: d) else {
            throw AttribError.invalidArgument(op: "backward", detail: "\(device.info.id) no longer fuses \(pool.description) with the activation before it")
        }
        return try rowsOuter(dx, inputShape(ofLayer: i - 1))
    }

    /// The span's layers from `i0` (the rest of the trace `saved` holds), the Flatten, and
    /// the layers after it.
    private func traceRowsOuter(_ x: Tensor, from i0: Int, saved saved0: [Saved], layers range: Range<Int>, end: Int) throws -> Trace {
        var h = x, saved = saved0
        var i = i0
        while i < end {
            try checkRowsOuter(h, layer: i)
            let shape = inputShape(ofLayer: i)
            let (c, hh, w) = (shape[0], shape[1], shape[2]), n = h.batchSize
            if let conv = layers[i] as? Conv2d {
                if fusesWithDirectConv(i), let (pooled, d) = try conv.forwardDirectGELUAvgPool(h, inputShape: shape) {
                    // conv → GELU → pool in one op. The conv's saved `extra` marks the fusion for
                    // the backward; the pair's entries are those of the unfused pair (f′ as a plane).
                    let plane = try d.reshaped([n, 1, d.shape[1], d.shape[2] * d.shape[3]])
                    saved.append(Saved(input: h, output: plane, extra: [plane]))
                    saved.append(Saved(input: plane, output: plane, extra: [plane]))
                    saved.append(Saved(input: plane, output: pooled))
                    h = pooled; i += 3
                    continue
                }
                let y = try conv.forwardRowsOuter(h, inputShape: shape)
                saved.append(Saved(input: h, output: y)); h = y; i += 1
            } else {
                let act = layers[i] as! ActivationLayer, pool = layers[i + 1] as! Pool2d
                let plane = try h.reshaped([n, 1, hh, c * w])
                guard let (pooled, d) = try plane.activatedAndAvgPooled(act.kind, kernel: pool.k2) else {
                    throw AttribError.invalidArgument(op: "traceRowsOuter", detail: "\(device.info.id) no longer fuses \(act.description) with \(pool.description)")
                }
                let y = try rowsOuter(pooled, shapes[i + 1])
                saved.append(Saved(input: plane, output: plane, extra: [d]))
                saved.append(Saved(input: plane, output: y))
                h = y; i += 2
            }
        }
        // The Flatten, from NCHW order: PyTorch's flatten order, which the layers after it expect.
        let (y, s) = try layers[end].forward(h.transposed12())
        saved.append(s)
        var trace = end + 1 < range.upperBound ? try self.trace(y, layers: (end + 1)..<range.upperBound, keepActivations: false)
                                               : Trace(saved: [], activationsKept: false)
        trace.saved.insert(contentsOf: saved, at: 0)
        trace.rowsOuterEnd = end
        return trace
    }

    /// `backward` of a rows-outer trace: layers after the Flatten as usual, the Flatten's
    /// gradient back to rows-outer, then the span; returns ∂F/∂x rows-outer.
    func backwardRowsOuter(_ trace: Trace, upstream: Tensor, layers r: Range<Int>, end: Int) throws -> Tensor {
        try backwardRowsOuter(trace, upstream: upstream, layers: r, end: end, downTo: r.lowerBound)
    }

    /// Σ_k w_k·∂F/∂(row (i, k)) per input i of a rows-outer trace of rows input-major, m =
    /// weights.count steps each: [n, H, C, W]. Where the span opens with an activation and
    /// pooling, their backward and the sum run as one op on a device that fuses them (CPU
    /// Float32), the per-step gradient never formed; else backward, then pathWeightedSum.
    /// Bitwise the same either way.
    public func pathGradientSum(_ trace: Trace, upstream: Tensor, layers r: Range<Int>, weights: Tensor) throws -> Tensor {
        let i = r.lowerBound
        guard let end = trace.rowsOuterEnd, end > i + 1, layers[i] is ActivationLayer, let pool = layers[i + 1] as? Pool2d else {
            return try backward(trace, upstream: upstream, layers: r).pathWeightedSum(weights: weights)
        }
        let g = try backwardRowsOuter(trace, upstream: upstream, layers: r, end: end, downTo: i + 2)
        let d = trace.saved[0].extra[0]                                  // f′, [rows, 1, H, C·W]
        if let sum = try planeUpstream(g, pool: pool, plane: d.shape).avgPool2dBackwardPathSum(inputShape: d.shape, kernel: pool.k2, times: d, weights: weights) {
            return try rowsOuter(sum, inputShape(ofLayer: i))
        }
        return try pairBackward(g, pool: i + 1, derivative: d).pathWeightedSum(weights: weights)
    }

    /// Whether the Conv2d at layer i, a GELU (erf) and a 2×2 tiling average pooling after it
    /// inside the span may run as one direct op each way (Conv2d.forwardDirectGELUAvgPool).
    private func fusesWithDirectConv(_ i: Int) -> Bool {
        guard i + 2 < layers.count, let act = layers[i + 1] as? ActivationLayer, act.kind == .geluErf,
              let pool = layers[i + 2] as? Pool2d, pool.isTilingAverage, pool.kernel == [2, 2] else { return false }
        return true
    }

    /// The backward of a rows-outer trace down to the input of layer `stop` (a layer the
    /// span's pairs start at, or its first layer).
    private func backwardRowsOuter(_ trace: Trace, upstream: Tensor, layers r: Range<Int>, end: Int, downTo stop: Int) throws -> Tensor {
        var g = upstream
        if end + 1 < r.upperBound {
            let tail = Trace(saved: Array(trace.saved[(end + 1 - r.lowerBound)...]), activationsKept: false)
            g = try backward(tail, upstream: upstream, layers: (end + 1)..<r.upperBound)
        }
        g = try layers[end].backward(g, trace.saved[end - r.lowerBound]).transposed12()
        var i = end - 1
        while i >= stop {
            let k = i - r.lowerBound
            if let conv = layers[i] as? Conv2d {
                g = try conv.backwardRowsOuter(g, inputShape: inputShape(ofLayer: i))
                i -= 1
            } else if i - 2 >= stop, let conv = layers[i - 2] as? Conv2d, let d = trace.saved[k - 2].extra.first {
                // A fused conv → GELU → pool (see traceRowsOuter): its backward in one op.
                guard let dx = try conv.backwardDirectGELUAvgPool(g, derivative: d, inputShape: inputShape(ofLayer: i - 2)) else {
                    throw AttribError.invalidArgument(op: "backward", detail: "\(device.info.id) no longer fuses \(conv.description) with the GELU and pooling after it")
                }
                g = dx
                i -= 3
            } else {
                g = try pairBackward(g, pool: i, derivative: trace.saved[k - 1].extra[0])
                i -= 2
            }
        }
        return g
    }
}
