import Attrib
import Testing

/// Every layer's backward against central finite differences in Float64 on the
/// CPU backend: for L(x) = Σ dy ⊙ layer(x), ∂L/∂x_i ≈ (L(x + h·e_i) − L(x − h·e_i)) / 2h.
/// With h = 1e-6 the truncation error h²·|L‴|/6 and the rounding error u·|L|/h are
/// both below 1e-8 for these sizes, so 1e-7·(1 + |g|) separates a right gradient
/// from a wrong one by orders of magnitude.
@Suite struct LayerGradientTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var inputShape: [Int]          // including the batch
        var make: @Sendable () throws -> any Layer
        var testDescription: String { name }
    }

    static func weights(_ shape: [Int], seed: UInt64) throws -> Tensor {
        try Tensor(randomValues(shape.reduce(1, *), seed: seed), shape: shape, on: cpu)
    }

    static let cases: [Case] = [
        Case(name: "Linear", inputShape: [3, 7]) { try Linear(weight: weights([5, 7], seed: 1), bias: weights([5], seed: 2)) },
        Case(name: "Linear on [N, T, in]", inputShape: [2, 3, 4]) { try Linear(weight: weights([6, 4], seed: 3), bias: nil) },
        Case(name: "Conv2d 3×3 pad 1", inputShape: [2, 2, 6, 7]) { try Conv2d(weight: weights([3, 2, 3, 3], seed: 4), bias: weights([3], seed: 5), stride: [1, 1], padding: [1, 1]) },
        Case(name: "Conv2d 2×3 stride [2, 1]", inputShape: [2, 3, 7, 5]) { try Conv2d(weight: weights([2, 3, 2, 3], seed: 6), bias: nil, stride: [2, 1], padding: [0, 1]) },
        Case(name: "MaxPool2d 2×2", inputShape: [2, 2, 6, 7]) { try Pool2d(max: true, kernel: [2, 2], stride: [2, 2]) },
        Case(name: "MaxPool2d 3×3 stride 2 (overlapping)", inputShape: [1, 2, 7, 7]) { try Pool2d(max: true, kernel: [3, 3], stride: [2, 2]) },
        Case(name: "AvgPool2d 2×3", inputShape: [2, 2, 6, 7]) { try Pool2d(max: false, kernel: [2, 3], stride: [2, 3]) },
        Case(name: "Flatten", inputShape: [2, 3, 4]) { Flatten() },
        Case(name: "ReLU", inputShape: [3, 11]) { ActivationLayer(.relu) },
        Case(name: "GELU", inputShape: [3, 11]) { ActivationLayer(.geluErf) },
        Case(name: "GELU(tanh)", inputShape: [3, 11]) { ActivationLayer(.geluTanh) },
        Case(name: "Tanh", inputShape: [3, 11]) { ActivationLayer(.tanh) },
        Case(name: "Sigmoid", inputShape: [3, 11]) { ActivationLayer(.sigmoid) },
        Case(name: "Softplus", inputShape: [3, 11]) { ActivationLayer(.softplus) },
        Case(name: "LayerNorm", inputShape: [3, 2, 9]) {
            try LayerNormLayer(normalizedShape: [9], eps: 1e-5, weight: weights([9], seed: 7), bias: weights([9], seed: 8), device: cpu, dtype: .float64)
        },
        Case(name: "Softmax", inputShape: [3, 8]) { SoftmaxLayer(log: false) },
        Case(name: "LogSoftmax", inputShape: [3, 8]) { SoftmaxLayer(log: true) },
    ]

    @Test("backward against central finite differences (Float64, CPU backend)", arguments: cases)
    func finiteDifferences(_ c: Case) throws {
        let layer = try c.make()
        let n = c.inputShape.reduce(1, *)
        // Inputs kept away from ReLU's kink and from max-pool ties by construction:
        // distinct values with gaps far larger than h.
        var x = randomValues(n, seed: 11, -2, 2)
        for i in x.indices { x[i] += Double(i % 7) * 1e-3 }
        let xt = try Tensor(x, shape: c.inputShape, on: cpu)
        let (y, saved) = try layer.forward(xt)
        let dy = randomValues(y.count, seed: 12)
        let g = try layer.backward(Tensor(dy, shape: y.shape, on: cpu), saved).doubles()
        #expect(g.count == n)
        let h = 1e-6
        func loss(_ v: [Double]) throws -> Double {
            let out = try layer.forward(Tensor(v, shape: c.inputShape, on: cpu)).y.doubles()
            return zip(out, dy).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var fd = [Double](repeating: 0, count: n)
        for i in 0..<n {
            var p = x, m = x
            p[i] += h; m[i] -= h
            fd[i] = (try loss(p) - loss(m)) / (2 * h)
        }
        expectClose(g, fd, bound: { 1e-7 * (1 + abs(fd[$0])) }, "\(c.name) backward vs finite differences")
    }

    @Test("Embedding: lookup and the gradient at its output")
    func embedding() throws {
        let table = randomValues(10 * 4, seed: 13)
        let e = try Embedding(weight: Tensor(table, shape: [10, 4], on: cpu))
        let ids = try Tensor(indices: [3, 9, 0, 3], shape: [2, 2], on: cpu)
        let (y, saved) = try e.forward(ids)
        #expect(y.shape == [2, 2, 4])
        expectEqual(try y.doubles(), [3, 9, 0, 3].flatMap { Array(table[$0 * 4..<($0 + 1) * 4]) }, "embedding rows")
        let dy = try Tensor(randomValues(16, seed: 14), shape: [2, 2, 4], on: cpu)
        expectEqual(try e.backward(dy, saved).doubles(), try dy.doubles(), "gradient at the embedding output")
        expectAttribError(["index out of range", "10 rows"]) { _ = try e.forward(Tensor(indices: [10], shape: [1, 1], on: cpu)) }
        expectAttribError(["not a token id"]) { _ = try e.forward(Tensor([1.5], shape: [1, 1], on: cpu)) }
    }
}
