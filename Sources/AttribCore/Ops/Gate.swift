/// Gates spread over the rows of each sample (channels-last squeeze-and-excitation): a sample
/// is a [rows, cols] matrix (an image [H, W, C], rows = H·W) and its gate a row [cols].
extension Tensor {
    /// self (N samples of rows × cols) ⊙ s (N samples of cols), each sample's gate spread over
    /// its rows: self's shape. In one pass where the device has the kernel
    /// (Device.gateMultiply); nil where it declines (nothing computed).
    public func gateMultiplied(by s: Tensor, rows: Int) throws -> Tensor? {
        let op = "gate multiply"
        let (n, cols) = try checkGate(op, s, rows: rows)
        try checkCompatible(op, [("gate", s)])
        let y = try like(shape)                                                        // every element written
        return try device.gateMultiply(n: n, rows: rows, cols: cols, a: storage, s: s.storage, y: y.storage) ? y : nil
    }

    /// The backward of `a.gateMultiplied(by: s, rows:)` for this dy (a's shape): ∂/∂a = dy ⊙
    /// spread(s) and ∂/∂s = each sample's row sums of dy ⊙ a (s's shape), each where asked;
    /// nil where the device declines.
    public func gateMultiplyBackward(a: Tensor, s: Tensor, rows: Int, wantA: Bool, wantS: Bool) throws -> (da: Tensor?, ds: Tensor?)? {
        let op = "gate multiply backward"
        let (n, cols) = try a.checkGate(op, s, rows: rows)
        try checkCompatible(op, [("image", a), ("gate", s)])
        try a.checkSameShape(op, "upstream gradient", self)
        let da = wantA ? try like(a.shape) : nil, ds = wantS ? try like(s.shape) : nil
        guard try device.gateMultiplyBackward(n: n, rows: rows, cols: cols, a: a.storage, s: s.storage, dy: storage,
                                              da: da?.storage, ds: ds?.storage) else { return nil }
        return (da, ds)
    }

    /// s spread over `rows` rows per sample, times alpha: [N, rows, cols] for s of N samples of
    /// cols, as the product of a column of ones with each sample's row (one batched GEMM, on
    /// any device).
    public func spreadOverRows(_ rows: Int, alpha: Double = 1) throws -> Tensor {
        let (n, cols) = (shape[0], count / max(1, shape[0]))
        let ones = try Tensor.zeros([rows], dtype: dtype, on: device)
        try ones.fill(1)
        let y = try like([n, rows, cols])                                              // [N, rows, cols]
        try withExtendedLifetime(ones) {
            try device.gemm(GEMMArguments(m: rows, n: cols, k: 1, alpha: alpha, a: ones.storage, lda: 1, strideA: 0,
                                          b: storage, ldb: cols, strideB: cols, c: y.storage, ldc: cols, strideC: rows * cols, batch: n))
        }
        return y
    }

    /// Per sample, the sums of the rows of self (N samples of rows × cols), times alpha:
    /// [N, cols], as each sample's transpose times a column of ones.
    public func sumOverRows(_ rows: Int, alpha: Double = 1) throws -> Tensor {
        let (n, cols) = (shape[0], count / max(1, shape[0] * rows))
        let ones = try Tensor.zeros([rows, 1], dtype: dtype, on: device)
        try ones.fill(1)
        return try reshaped([n, rows, cols]).matmul(ones, transposeSelf: true, alpha: alpha).reshaped([n, cols])   // [N, cols]
    }

    /// (N, cols) of a gate s for self, N samples of `rows` rows each; else an error naming both shapes.
    private func checkGate(_ op: String, _ s: Tensor, rows: Int) throws -> (n: Int, cols: Int) {
        let n = shape[0], cols = s.count / max(1, s.shape[0])
        guard rows >= 1, s.shape[0] == n, n * rows * cols == count else {
            throw AttribError.shapeMismatch(op: op, detail: "image \(shape) and gate \(s.shape): expected N samples of \(rows) rows × C and N samples of C")
        }
        return (n, cols)
    }
}
