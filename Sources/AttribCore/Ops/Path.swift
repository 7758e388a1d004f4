// Path integration on the device: the interpolated batch of Integrated
// Gradients and the weighted sum of its gradients.

extension Tensor {
    /// For inputs self [n, …] (feature size d), baselines [n, …] or one shared
    /// baseline [1, …], and alphas [m]: the batch [n·m, …] whose row i·m + k is
    /// baseline_i + α_k(x_i − baseline_i).
    public func pathInterpolated(baselines: Tensor, alphas: Tensor) throws -> Tensor {
        let op = "pathInterpolate"
        let (n, m, d, baseStride) = try checkPath(op, baselines: baselines, alphas: alphas)
        let out = try like([n * m] + shape.dropFirst())
        try device.pathInterpolate(n: n, m: m, d: d, x: storage, base: baselines.storage, baseStride: baseStride,
                                   alphas: alphas.storage, y: out.storage)
        return out
    }

    /// Checks the ends of a path from self (inputs [n, …]) to `baselines` ([n, …] or [1, …])
    /// at `alphas` [m]: (n, m, feature size d, the baselines' row stride, 0 for one shared).
    func checkPath(_ op: String, baselines: Tensor, alphas: Tensor) throws -> (n: Int, m: Int, d: Int, baseStride: Int) {
        try checkCompatible(op, [("baselines", baselines), ("alphas", alphas)])
        let n = shape[0], d = count / n
        guard alphas.rank == 1 else { throw AttribError.shapeMismatch(op: op, detail: "alphas has shape \(alphas.shape), expected [m]") }
        let featureShape = Array(shape.dropFirst())
        guard Array(baselines.shape.dropFirst()) == featureShape, baselines.shape[0] == n || baselines.shape[0] == 1 else {
            throw AttribError.shapeMismatch(op: op, detail: "baselines have shape \(baselines.shape), expected [\(n) or 1] + \(featureShape) for inputs \(shape)")
        }
        return (n, alphas.count, d, baselines.shape[0] == 1 ? 0 : d)
    }

    /// For gradients self [n·m, …] and weights [m]: [n, …] with row i = Σ_k w_k g_{i·m+k}.
    /// (f(path), f′(path)) for the path pathInterpolated(baselines:alphas:) would build, from
    /// one pass where the device offers it (Device.pathActivationWithDerivative), the path
    /// never written; nil where it does not. Both [n·m] + the feature shape.
    public func pathActivatedWithDerivative(_ kind: Activation, baselines: Tensor, alphas: Tensor) throws -> (y: Tensor, derivative: Tensor)? {
        let (n, m, d, baseStride) = try checkPath("pathActivationWithDerivative", baselines: baselines, alphas: alphas)
        let y = try like([n * m] + shape.dropFirst()), dy = try like([n * m] + shape.dropFirst())   // every element written
        guard try device.pathActivationWithDerivative(kind, n: n, m: m, d: d, x: storage, base: baselines.storage, baseStride: baseStride,
                                                      alphas: alphas.storage, y: y.storage, derivative: dy.storage) else { return nil }
        return (y, dy)
    }

    /// pathWeightedSum(weights:) of self ⊙ multiplier, the product never written, where the
    /// device offers it (Device.pathWeightedSumTimes); else the two ops. Bitwise either way.
    public func pathWeightedSum(weights: Tensor, times multiplier: Tensor) throws -> Tensor {
        let op = "pathWeightedSumTimes"
        try checkCompatible(op, [("weights", weights), ("multiplier", multiplier)])
        try checkSameShape(op, "multiplier", multiplier)
        let m = weights.count
        guard weights.rank == 1, shape[0] % m == 0 else {
            throw AttribError.shapeMismatch(op: op, detail: "gradients \(shape) are not a whole number of \(m)-step paths (weights \(weights.shape))")
        }
        let n = shape[0] / m, d = count / shape[0]
        let out = try like([n] + shape.dropFirst())
        if try device.pathWeightedSumTimes(n: n, m: m, d: d, g: storage, multiplier: multiplier.storage, weights: weights.storage, y: out.storage) {
            return out
        }
        return try multiplying(multiplier).pathWeightedSum(weights: weights)
    }

    public func pathWeightedSum(weights: Tensor) throws -> Tensor {
        let op = "pathWeightedSum"
        try checkCompatible(op, [("weights", weights)])
        let m = weights.count
        guard weights.rank == 1, shape[0] % m == 0 else {
            throw AttribError.shapeMismatch(op: op, detail: "gradients \(shape) are not a whole number of \(m)-step paths (weights \(weights.shape))")
        }
        let n = shape[0] / m, d = count / shape[0]
        let out = try like([n] + shape.dropFirst())
        try device.pathWeightedSum(n: n, m: m, d: d, g: storage, weights: weights.storage, y: out.storage)
        return out
    }
}
