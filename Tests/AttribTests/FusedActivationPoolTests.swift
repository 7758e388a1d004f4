import Attrib
import Testing

/// GELU fused with the average pooling after it (forward: pooled GELU and GELU′ without
/// GELU's output; backward: pooling backward times GELU′), which the gradient methods take
/// on the CPU backend in Float32. Each fused op must equal the ops apart bit for bit: the
/// element formulas and summation orders are the same.
@Suite struct FusedActivationPoolTests {
    /// [N, C, H, W] and (kh, kw), windows that tile: planes whose size is no multiple of 8
    /// (the GELU loop's vector width), windows that leave rows and columns uncovered, and
    /// more planes than one buffer group holds; rows that the 2×2 loops take in blocks of 8
    /// and 4 columns with a scalar remainder.
    static let cases: [([Int], Int, Int)] = [
        ([3, 16, 8, 8], 2, 2), ([2, 3, 5, 5], 2, 2), ([2, 2, 7, 6], 3, 2), ([1, 1, 3, 3], 3, 3),
        ([5, 70, 4, 4], 2, 2), ([1, 2, 64, 64], 2, 2), ([2, 3, 7, 12], 2, 2), ([1, 2, 4, 11], 2, 2),
    ]

    @Test("Pooled GELU with GELU′ equals activatedWithDerivative then avgPool2d, bitwise (CPU Float32); nil elsewhere")
    func forwardMatches() throws {
        for (shape, kh, kw) in Self.cases {
            let n = shape.reduce(1, *)
            // Tails where Φ or φ underflows, 0, and the bulk.
            let x = Array(([-120, -40, -13.5, -9, 0, 1e-30, 9, 40] + randomValues(n, seed: UInt64(n), -6, 6)).prefix(n))
            let xt = try Tensor(x, shape: shape, dtype: .float32, on: cpu)
            let what = "\(shape) \(kh)×\(kw)"
            let fused = try #require(try xt.activatedAndAvgPooled(.geluErf, kernel: Size2D(kh, kw)), "\(what): CPU Float32 fuses")
            let (y, d) = try #require(try xt.activatedWithDerivative(.geluErf))
            expectEqual(try fused.pooled.doubles(), try y.avgPool2d(kernel: Size2D(kh, kw)).doubles(), "\(what) pooled")
            expectEqual(try fused.derivative.doubles(), try d.doubles(), "\(what) derivative")
            #expect(fused.pooled.shape == [shape[0], shape[1], shape[2] / kh, shape[3] / kw])
        }
        let x = try Tensor(randomValues(64, seed: 3), shape: [1, 1, 8, 8], dtype: .float64, on: cpu)
        #expect(try x.activatedAndAvgPooled(.geluErf, kernel: Size2D(2, 2)) == nil, "Float64 is not fused")
        let x32 = try Tensor(randomValues(64, seed: 3), shape: [1, 1, 8, 8], dtype: .float32, on: cpu)
        #expect(try x32.activatedAndAvgPooled(.relu, kernel: Size2D(2, 2)) == nil, "ReLU is not fused")
        let big = try Tensor.zeros([1, 1, 65, 65], dtype: .float32, on: cpu)
        #expect(try big.activatedAndAvgPooled(.geluErf, kernel: Size2D(2, 2)) == nil, "planes over the stack buffer are not fused")
        #expect(cpu.fusesActivationAvgPool(.geluErf, dtype: .float32, planeSize: 64))
        #expect(!cpu.fusesActivationAvgPool(.geluErf, dtype: .float64, planeSize: 64) && !cpu.fusesActivationAvgPool(.relu, dtype: .float32, planeSize: 64))
        for device in openCLDevices {
            #expect(!device.fusesActivationAvgPool(.geluErf, dtype: .float32, planeSize: 64), "\(device.id) allocates nothing for a fusion it lacks")
            let t = try Tensor(randomValues(64, seed: 3), shape: [1, 1, 8, 8], dtype: .float32, on: device)
            #expect(try t.activatedAndAvgPooled(.geluErf, kernel: Size2D(2, 2)) == nil, "\(device.id) does not fuse")
        }
    }

    @Test("Pooling backward times a multiplier equals avgPool2dBackward then multiplying, bitwise (CPU Float32)")
    func backwardMatches() throws {
        for (shape, kh, kw) in Self.cases {
            let out = [shape[0], shape[1], shape[2] / kh, shape[3] / kw]
            let dy = try Tensor(randomValues(out.reduce(1, *), seed: 5), shape: out, dtype: .float32, on: cpu)
            // Negative multipliers too: 0·(−m) is −0 in the unfused path, and must be here.
            let m = try Tensor(randomValues(shape.reduce(1, *), seed: 6, -2, 2), shape: shape, dtype: .float32, on: cpu)
            let what = "\(shape) \(kh)×\(kw)"
            let fused = try #require(try dy.avgPool2dBackward(inputShape: shape, kernel: Size2D(kh, kw), times: m), "\(what)")
            let apart = try dy.avgPool2dBackward(inputShape: shape, kernel: Size2D(kh, kw)).multiplying(m)
            try expectBitwise(fused, apart, what)
        }
        let dy = try Tensor.zeros([1, 1, 2, 2], dtype: .float32, on: cpu)
        expectAttribError(["multiplier", "[1, 1, 4, 5]"]) {
            _ = try dy.avgPool2dBackward(inputShape: [1, 1, 4, 4], kernel: Size2D(2, 2), times: try Tensor.zeros([1, 1, 4, 5], dtype: .float32, on: cpu))
        }
    }

    @Test("The digits CNN: a trace without activations and a backward without a visitor give bitwise the plain gradients")
    func sequentialMatches() throws {
        let model = try Sequential.load(fixturePath("../../Models/digits-cnn"), on: cpu, dtype: .float32)
        let x = try Tensor(Array(try NPY.read(fixturePath("../../Models/digits-data/test_inputs.npy")).doubles().prefix(37 * 64)),
                           shape: [37, 1, 8, 8], dtype: .float32, on: cpu)
        let upstream = try Tensor((0..<370).map { $0 % 10 == 3 ? 1.0 : 0.0 }, shape: [37, 10], dtype: .float32, on: cpu)
        let plain = try model.trace(x)
        var visited: [Int] = []
        let gPlain = try model.backward(plain, upstream: upstream) { i, _ in visited.append(i) }
        let lean = try model.trace(x, keepActivations: false)
        let gLean = try model.backward(lean, upstream: upstream)
        #expect(visited == Array((0..<model.layers.count).reversed()), "a visitor sees every layer")
        #expect(!lean.activationsKept && plain.activationsKept)
        expectEqual(try lean.output.doubles(), try plain.output.doubles(), "outputs")
        expectEqual(try gLean.doubles(), try gPlain.doubles(), "input gradients")
        // The fused forward really ran: the first GELU's Saved holds its input where a plain
        // trace holds GELU's output, and f′ beside it.
        expectEqual(try lean.saved[1].output.doubles(), try lean.saved[1].input.doubles(), "fused GELU keeps no output")
        #expect(try lean.saved[1].output.doubles() != plain.saved[1].output.doubles())
        #expect(lean.saved[1].extra.count == 1 && lean.saved[2].output.shape == [37, 16, 4, 4])
    }
}
