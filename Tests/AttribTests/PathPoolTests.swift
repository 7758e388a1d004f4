import Attrib
import Testing

/// The IG path fused into GELU + tiling average pooling (Ops/PathPool.swift, pathpool.c):
/// the path built inside the forward pass, the step-weighted sum taken inside the pooling
/// backward. Both do the ops apart's arithmetic in the same order, so each is held to
/// bitwise equality with them, signed zeros included.
@Suite struct PathPoolTests {
    /// [n, C, H, W], steps m, (kh, kw): plane groups of one and of many planes, planes whose
    /// size is no multiple of 8, windows leaving rows and columns uncovered, H not divisible
    /// by kh (no slabs in the backward), one step, and a rows-outer digits plane [8, 128].
    static let cases: [([Int], Int, Int, Int)] = [
        ([3, 16, 8, 8], 5, 2, 2), ([2, 3, 5, 5], 4, 2, 2), ([2, 2, 7, 6], 3, 3, 2), ([1, 70, 4, 4], 2, 2, 2),
        ([3, 1, 8, 128], 7, 2, 2), ([2, 2, 9, 12], 1, 2, 2), ([1, 2, 64, 64], 3, 2, 2),
    ]

    @Test("The path built inside GELU + pooling equals pathInterpolated then activatedAndAvgPooled, bitwise; nil where not fused")
    func forwardMatches() throws {
        for (shape, m, kh, kw) in Self.cases {
            let n = shape[0], d = shape.dropFirst().reduce(1, *)
            let x = try Tensor(randomValues(n * d, seed: UInt64(d), -4, 4), shape: shape, dtype: .float32, on: cpu)
            let alphas = try Tensor((0..<m).map { m == 1 ? 0.5 : Double($0) / Double(m - 1) }, shape: [m], dtype: .float32, on: cpu)
            for perInput in [true, false] {
                let b = try Tensor(randomValues((perInput ? n : 1) * d, seed: 9, -4, 4), shape: [perInput ? n : 1] + shape.dropFirst(), dtype: .float32, on: cpu)
                let what = "\(shape) m \(m) \(kh)×\(kw) \(perInput ? "a baseline per input" : "one baseline")"
                let fused = try #require(try x.pathActivatedAndAvgPooled(baselines: b, alphas: alphas, .geluErf, kernel: Size2D(kh, kw)), "\(what)")
                let apart = try #require(try x.pathInterpolated(baselines: b, alphas: alphas).activatedAndAvgPooled(.geluErf, kernel: Size2D(kh, kw)))
                try expectBitwise(fused.pooled, apart.pooled, "\(what) pooled")
                try expectBitwise(fused.derivative, apart.derivative, "\(what) derivative")
            }
        }
        let x64 = try Tensor(randomValues(64, seed: 3), shape: [1, 1, 8, 8], dtype: .float64, on: cpu)
        let a64 = try Tensor([0, 1], shape: [2], dtype: .float64, on: cpu)
        #expect(try x64.pathActivatedAndAvgPooled(baselines: x64, alphas: a64, .geluErf, kernel: Size2D(2, 2)) == nil, "Float64 is not fused")
        for device in openCLDevices {
            let x = try Tensor(randomValues(64, seed: 3), shape: [1, 1, 8, 8], dtype: .float32, on: device)
            let a = try Tensor([0, 1], shape: [2], dtype: .float32, on: device)
            #expect(try x.pathActivatedAndAvgPooled(baselines: x, alphas: a, .geluErf, kernel: Size2D(2, 2)) == nil, "\(device.id) does not fuse")
        }
        let x = try Tensor.zeros([2, 1, 8, 8], dtype: .float32, on: cpu), a = try Tensor([0, 1], shape: [2], dtype: .float32, on: cpu)
        expectAttribError(["pathActivatedAndAvgPooled", "baselines", "[3, 1, 8, 8]"]) {
            _ = try x.pathActivatedAndAvgPooled(baselines: Tensor.zeros([3, 1, 8, 8], dtype: .float32, on: cpu), alphas: a, .geluErf, kernel: Size2D(2, 2))
        }
    }

    @Test("Pooling backward × GELU′ summed over steps equals avgPool2dBackward(times:) then pathWeightedSum, bitwise; nil where not fused")
    func backwardMatches() throws {
        for (shape, m, kh, kw) in Self.cases {
            let rows = [shape[0] * m] + shape.dropFirst()
            let out = [rows[0], shape[1], shape[2] / kh, shape[3] / kw]
            let dy = try Tensor(randomValues(out.reduce(1, *), seed: 5), shape: out, dtype: .float32, on: cpu)
            // Negative multipliers and weights too: 0·(−m) is −0 in the ops apart, and must be here.
            let mult = try Tensor(randomValues(rows.reduce(1, *), seed: 6, -2, 2), shape: rows, dtype: .float32, on: cpu)
            let w = try Tensor(randomValues(m, seed: 7, -1, 1), shape: [m], dtype: .float32, on: cpu)
            let what = "\(shape) m \(m) \(kh)×\(kw)"
            let fused = try #require(try dy.avgPool2dBackwardPathSum(inputShape: rows, kernel: Size2D(kh, kw), times: mult, weights: w), "\(what)")
            let apart = try #require(try dy.avgPool2dBackward(inputShape: rows, kernel: Size2D(kh, kw), times: mult)).pathWeightedSum(weights: w)
            try expectBitwise(fused, apart, what)
        }
        for device in openCLDevices {
            let dy = try Tensor.zeros([2, 1, 4, 4], dtype: .float32, on: device), m = try Tensor.zeros([2, 1, 8, 8], dtype: .float32, on: device)
            let w = try Tensor([1, 1], shape: [2], dtype: .float32, on: device)
            #expect(try dy.avgPool2dBackwardPathSum(inputShape: [2, 1, 8, 8], kernel: Size2D(2, 2), times: m, weights: w) == nil, "\(device.id) does not fuse")
        }
        let dy = try Tensor.zeros([3, 1, 4, 4], dtype: .float32, on: cpu), m = try Tensor.zeros([3, 1, 8, 8], dtype: .float32, on: cpu)
        expectAttribError(["avgPool2dBackwardPathSum", "3 rows", "2-step"]) {
            _ = try dy.avgPool2dBackwardPathSum(inputShape: [3, 1, 8, 8], kernel: Size2D(2, 2), times: m, weights: Tensor([1, 1], shape: [2], dtype: .float32, on: cpu))
        }
    }

    @Test("A rows-outer trace of the path and its step-weighted gradient sum equal the built path's trace, backward and pathWeightedSum, bitwise", arguments: [false, true])
    func traceMatches(_ oblong: Bool) throws {
        let model = oblong ? try RowsOuterTests.oblongStack() : try RowsOuterTests.digitsCNN()
        let start = oblong ? 0 : 1, layers = start..<model.layers.count
        let s = start == 0 ? model.inputShape : model.shapes[start - 1]
        let (n, m) = (3, 6), rowsOuter = [s[1], s[0], s[2]]
        let x = try Tensor(randomValues(n * s.reduce(1, *), seed: 44, -3, 3), shape: [n] + rowsOuter, dtype: .float32, on: cpu)
        let b = try Tensor(randomValues(s.reduce(1, *), seed: 45, -1, 1), shape: [1] + rowsOuter, dtype: .float32, on: cpu)
        let alphas = try Tensor((0..<m).map { Double($0) / Double(m - 1) }, shape: [m], dtype: .float32, on: cpu)
        let w = try Tensor(randomValues(m, seed: 46, 0, 1), shape: [m], dtype: .float32, on: cpu)
        let fused = try model.traceRowsOuter(pathFrom: x, baselines: b, alphas: alphas, layers: layers)
        let built = try model.traceRowsOuter(x.pathInterpolated(baselines: b, alphas: alphas), layers: layers)
        try expectBitwise(fused.output, built.output, "outputs")
        let up = try Tensor(randomValues(built.output.count, seed: 47), shape: built.output.shape, dtype: .float32, on: cpu)
        let sum = try model.pathGradientSum(fused, upstream: up, layers: layers, weights: w)
        let want = try model.backward(built, upstream: up, layers: layers).pathWeightedSum(weights: w)
        #expect(sum.shape == [n] + rowsOuter)
        try expectBitwise(sum, want, "step-weighted input gradients")
    }
}
