// A per-channel affine map on the CPU backend (Device.channelAffine): a BatchNormalization
// that no convolution absorbs (DenseNet's pre-activation norms), either layout.
extension CPUDevice {
    public func channelAffine(outer: Int, channels: Int, inner: Int, x: BufferView, scale: BufferView, shift: BufferView?, y: BufferView) throws {
        let op = "channelAffine"
        try AttribError.requirePositive(op, ["outer": outer, "channels": channels, "inner": inner])
        let n = outer * channels * inner
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.channelAffine(outer, channels, inner, try pointer(T.self, x, op, n), try pointer(T.self, scale, op, channels),
                                     try shift.map { try pointer(T.self, $0, op, channels) }, try pointer(T.self, y, op, n))
        }
        try withScalar(y, op) { try run($0) }
    }
}

extension CPUKernels {
    /// y[o, c, i] = x[o, c, i]·scale[c] (+ shift[c]). By runs of one channel (a plane where
    /// inner > 1, one row of channels where inner = 1), so the inner loop has no division and
    /// vectorizes; each element is written once from its own x, so y may be x.
    static func channelAffine(_ outer: Int, _ channels: Int, _ inner: Int, _ x: P, _ scale: P, _ shift: P?, _ y: P) {
        if inner == 1 {
            parallelChunks(outer, grain: max(1, (1 << 15) / channels)) { r in
                for o in r {
                    let (xr, yr) = (x + o * channels, y + o * channels)
                    if let t = shift { for c in 0..<channels { yr[c] = xr[c] * scale[c] + t[c] } }
                    else { for c in 0..<channels { yr[c] = xr[c] * scale[c] } }
                }
            }
            return
        }
        parallelChunks(outer * channels, grain: max(1, (1 << 15) / inner)) { r in
            for plane in r {
                let c = plane % channels, s = scale[c], (xp, yp) = (x + plane * inner, y + plane * inner)
                if let t = shift?[c] { for i in 0..<inner { yp[i] = xp[i] * s + t } }
                else { for i in 0..<inner { yp[i] = xp[i] * s } }
            }
        }
    }
}
