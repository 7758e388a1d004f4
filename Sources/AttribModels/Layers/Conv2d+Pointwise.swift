import AttribCore

/// 1×1 convolutions with stride 1 and no padding on the CPU backend (a ResNet bottleneck's first
/// and last convolutions, a MobileNet's pointwise ones): per image y_n [OC, H·W] = W [OC, C] ·
/// x_n [C, H·W], a product per image on the shared W. The general path copies x into im2col's
/// [C, N·H·W], multiplies, and transposes the product back to [N, OC, H·W]; its backward
/// transposes dy and scatters the product through col2im. Here the backward is dx_n = Wᵀ · dy_n.
/// (GPUs run the implicit GEMM, which has no copies either.)
extension Conv2d {
    var isPointwise: Bool { kernel == [1, 1] && stride == [1, 1] && padding == [0, 0] }

    /// y [N, OC, H, W] for x [N, C, H, W], or nil where the layer or device is not this case.
    func forwardPointwise(_ x: Tensor) throws -> Tensor? {
        guard isPointwise, x.device is CPUDevice, x.rank == 4 else { return nil }
        let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        let y = try Tensor(shape: [n, outChannels, x.shape[2], x.shape[3]], dtype: x.dtype, on: x.device)   // every element written
        // One product per image, each split over the threads: a batch of products shares them
        // out whole, which leaves a thread idle for a third of the time at 3 images on 2.
        for i in 0..<n {
            try x.device.gemm(GEMMArguments(m: outChannels, n: hw, k: c, a: weightMatrix.storage, lda: c,
                                            b: x.rows(i..<(i + 1)).storage, ldb: hw, c: y.rows(i..<(i + 1)).storage, ldc: hw))
        }
        if let bias {
            // The bias of each (image, channel) row of H·W: [N·OC], the channels' bias repeated.
            let rows = try Tensor(shape: [n * outChannels], dtype: bias.dtype, on: bias.device)
            try bias.device.broadcastRows(rows: n, cols: outChannels, x: bias.storage, y: rows.storage)
            try y.reshaped([n * outChannels, hw]).addRowBias(rows)
        }
        return y
    }

    /// dx [N, C, H, W] for dy [N, OC, H, W], or nil where the layer or device is not this case.
    func backwardPointwise(_ dy: Tensor, inputShape: [Int]) throws -> Tensor? {
        guard isPointwise, dy.device is CPUDevice, inputShape.count == 4 else { return nil }
        let (n, c, hw) = (inputShape[0], inputShape[1], inputShape[2] * inputShape[3])
        guard dy.count == n * outChannels * hw else { return nil }
        let dx = try Tensor(shape: inputShape, dtype: dy.dtype, on: dy.device)                             // every element written
        let g = try dy.reshaped([n, outChannels * hw])
        for i in 0..<n {
            try dy.device.gemm(GEMMArguments(m: c, n: hw, k: outChannels, a: weightMatrixTransposed.storage, lda: outChannels,
                                             b: g.rows(i..<(i + 1)).storage, ldb: hw, c: dx.rows(i..<(i + 1)).storage, ldc: hw))
        }
        return dx
    }
}
