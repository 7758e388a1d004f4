import AttribCore

/// The scalar per input that gradients are taken of: F(x_i).
public enum Objective: Sendable {
    /// F = output[i, class_i] (a logit, or whatever the model's last layer gives).
    case classIndex([Int])
    /// F = output[i, a_i] − output[i, b_i] (a logit difference).
    case difference([Int], [Int])
    /// F = Σ_j w[i, j]·output[i, j]: any linear functional of the outputs, i.e. a given
    /// upstream gradient w of shape [N] + output shape, already on the model's device.
    case upstream(Tensor)
    /// Any scalar function of the outputs: given outputs [N, …] it returns the values [N]
    /// and ∂F/∂outputs [N, …], on the device (e.g. a log-probability).
    case custom(@Sendable (Tensor) throws -> (values: Tensor, gradient: Tensor))

    /// The upstream gradient ∂F/∂outputs for a batch, and the values F, checking indices.
    func evaluate(_ outputs: Tensor) throws -> (values: Tensor, gradient: Tensor) {
        let n = outputs.batchSize, width = outputs.count / n
        func oneHots(_ pairs: [(Int, Double)]...) throws -> Tensor {
            var w = [Double](repeating: 0, count: n * width)
            for list in pairs { for (i, (j, v)) in list.enumerated() { w[i * width + j] += v } }
            return try Tensor(w, shape: outputs.shape, dtype: outputs.dtype, on: outputs.device)
        }
        func check(_ idx: [Int], _ what: String) throws {
            guard idx.count == n else {
                throw AttribError.shapeMismatch(op: "objective", detail: "\(idx.count) \(what) for \(n) inputs")
            }
            if let bad = idx.firstIndex(where: { $0 < 0 || $0 >= width }) {
                throw AttribError.indexOutOfRange(op: "objective", detail: "\(what) \(idx[bad]) of input \(bad) is outside the model's \(width) outputs")
            }
        }
        let gradient: Tensor
        switch self {
        case .classIndex(let c):
            try check(c, "target class")
            gradient = try oneHots(c.map { ($0, 1.0) })
        case .difference(let a, let b):
            try check(a, "target class"); try check(b, "contrast class")
            gradient = try oneHots(a.map { ($0, 1.0) }, b.map { ($0, -1.0) })
        case .upstream(let w):
            guard w.shape == outputs.shape else {
                throw AttribError.shapeMismatch(op: "objective", detail: "upstream gradient has shape \(w.shape), the outputs \(outputs.shape)")
            }
            gradient = w
        case .custom(let f):
            let (v, g) = try f(outputs)
            guard g.shape == outputs.shape, v.count == n else {
                throw AttribError.shapeMismatch(op: "objective", detail: "custom objective returned values \(v.shape) and gradient \(g.shape) for outputs \(outputs.shape)")
            }
            return (v, g)
        }
        // A linear objective's value is Σ_j w_ij·out_ij, on the device.
        let values = try outputs.multiplying(gradient).reshaped([n, width]).reduceRows(.sum)
        return (values, gradient)
    }
}
