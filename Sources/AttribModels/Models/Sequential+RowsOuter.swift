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
        var shape = start == 0 ? inputShape : shapes[start - 1]
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
        guard let end = rowsOuterSpan(from: range.lowerBound), end < range.upperBound else {
            throw AttribError.invalidArgument(op: "traceRowsOuter", detail: "layers \(range) do not start a rows-outer span")
        }
        var h = x, saved: [Saved] = []
        var i = range.lowerBound
        while i < end {
            let shape = i == 0 ? inputShape : shapes[i - 1]          // [C, H, W] in NCHW terms
            let (c, hh, w) = (shape[0], shape[1], shape[2]), n = h.batchSize
            guard h.shape == [n, hh, c, w] else {
                throw AttribError.shapeMismatch(op: "traceRowsOuter", detail: "layer \(i) input has shape \(h.shape), expected [N, \(hh), \(c), \(w)] (rows outermost)")
            }
            if let conv = layers[i] as? Conv2d {
                let y = try conv.forwardRowsOuter(h, inputShape: shape)
                saved.append(Saved(input: h, output: y)); h = y; i += 1
            } else {
                let act = layers[i] as! ActivationLayer, pool = layers[i + 1] as! Pool2d
                let plane = try h.reshaped([n, 1, hh, c * w])
                guard let (pooled, d) = try plane.activatedAndAvgPooled(act.kind, kernel: pool.k2) else {
                    throw AttribError.invalidArgument(op: "traceRowsOuter", detail: "\(device.info.id) no longer fuses \(act.description) with \(pool.description)")
                }
                let out = shapes[i + 1]
                let y = try pooled.reshaped([n, out[1], out[0], out[2]])
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
        var g = upstream
        if end + 1 < r.upperBound {
            let tail = Trace(saved: Array(trace.saved[(end + 1 - r.lowerBound)...]), activationsKept: false)
            g = try backward(tail, upstream: upstream, layers: (end + 1)..<r.upperBound)
        }
        g = try layers[end].backward(g, trace.saved[end - r.lowerBound]).transposed12()
        var i = end - 1
        while i >= r.lowerBound {
            let k = i - r.lowerBound
            if let conv = layers[i] as? Conv2d {
                g = try conv.backwardRowsOuter(g, inputShape: i == 0 ? inputShape : shapes[i - 1])
                i -= 1
            } else {
                let pool = layers[i] as! Pool2d, plane = trace.saved[k].input
                let upstream = try g.reshaped([g.batchSize, 1, plane.shape[2] / pool.kernel[0], plane.shape[3] / pool.kernel[1]])
                guard let dx = try upstream.avgPool2dBackward(inputShape: plane.shape, kernel: pool.k2, times: trace.saved[k - 1].extra[0]) else {
                    throw AttribError.invalidArgument(op: "backward", detail: "\(device.info.id) no longer fuses \(pool.description) with the activation before it")
                }
                let shape = i - 1 == 0 ? inputShape : shapes[i - 2]        // the activation's input [C, H, W]
                g = try dx.reshaped([g.batchSize, shape[1], shape[0], shape[2]])
                i -= 2
            }
        }
        return g
    }
}
