import Attrib
import Testing

/// Row gather / scatter-add and the path-integration ops.
@Suite struct GatherPathTests {
    @Test("gather and scatter-add: bitwise parity, and scatter-add is gather's adjoint")
    func gather() throws {
        let (rows, cols) = (11, 257)
        let table = randomValues(rows * cols, seed: 20)
        let idx: [Int32] = [3, 0, 10, 3, 3, 7, 0, 1, 10]
        let src = randomValues(idx.count * cols, seed: 21)
        func run(_ d: any Device, _ dtype: DType) throws -> ([Double], [Double]) {
            let t = try Tensor(table, shape: [rows, cols], dtype: dtype, on: d)
            let ix = try IndexTensor(idx, on: d)
            let g = try t.gatherRows(ix).doubles()
            try t.scatterAddRows(ix, Tensor(src, shape: [idx.count, cols], dtype: dtype, on: d))
            return (g, try t.doubles())
        }
        for device in openCLDevices { for dtype in dtypes(device) {
            let (g, s) = try run(device, dtype), (gRef, sRef) = try run(cpu, dtype)
            expectEqual(g, gRef, "\(device.id) \(dtype) gather")
            // Both add rows in index order with plain adds: the same roundings.
            expectEqual(s, sRef, "\(device.id) \(dtype) scatterAdd")
        } }
        // Adjoint: ⟨gather(T), Y⟩ = ⟨T, scatterAdd(0, Y)⟩ in Float64, up to rounding.
        let t = try Tensor(table, shape: [rows, cols], on: cpu), ix = try IndexTensor(idx, on: cpu)
        let g = try t.gatherRows(ix).doubles()
        let acc = try Tensor.zeros([rows, cols], dtype: .float64, on: cpu)
        try acc.scatterAddRows(ix, Tensor(src, shape: [idx.count, cols], on: cpu))
        let lhs = zip(g, src).reduce(0.0) { $0 + $1.0 * $1.1 }, rhs = zip(table, try acc.doubles()).reduce(0.0) { $0 + $1.0 * $1.1 }
        #expect(abs(lhs - rhs) <= 1e-12 * Double(g.count))
        // Known values.
        let want = idx.flatMap { Array(table[Int($0) * cols..<(Int($0) + 1) * cols]) }
        expectEqual(g, want, "gather picks the indexed rows")
    }

    @Test("path interpolation and weighted step sum, per-input and shared baselines")
    func path() throws {
        let (n, m, d) = (3, 7, 129)
        let x = randomValues(n * d, seed: 30), base = randomValues(n * d, seed: 31), w = randomValues(m, seed: 33, 0, 1)
        let alphas = (0..<m).map { Double($0) / Double(m - 1) }
        let g = randomValues(n * m * d, seed: 32)
        for shared in [false, true] {
            let b = shared ? Array(base.prefix(d)) : base
            func run(_ dev: any Device, _ dtype: DType) throws -> ([Double], [Double]) {
                let xi = try Tensor(x, shape: [n, d], dtype: dtype, on: dev)
                let path = try xi.pathInterpolated(baselines: Tensor(b, shape: [shared ? 1 : n, d], dtype: dtype, on: dev),
                                                   alphas: Tensor(alphas, shape: [m], dtype: dtype, on: dev))
                #expect(path.shape == [n * m, d])
                let sum = try Tensor(g, shape: [n * m, d], dtype: dtype, on: dev).pathWeightedSum(weights: Tensor(w, shape: [m], dtype: dtype, on: dev))
                #expect(sum.shape == [n, d])
                return (try path.doubles(), try sum.doubles())
            }
            // Truth in Float64 on the CPU backend.
            let (p64, s64) = try run(cpu, .float64)
            for i in 0..<n { for k in 0..<m { for j in 0..<d {
                let bb = b[(shared ? 0 : i) * d + j]
                #expect(abs(p64[(i * m + k) * d + j] - (bb + alphas[k] * (x[i * d + j] - bb))) <= 1e-15 * 4)
            } } }
            for i in 0..<n { for j in 0..<d {
                let want = (0..<m).reduce(0.0) { $0 + w[$1] * g[(i * m + $1) * d + j] }
                #expect(abs(s64[i * d + j] - want) <= 1e-15 * Double(m) * 2)
            } }
            for device in openCLDevices { for dtype in dtypes(device) {
                let (p, s) = try run(device, dtype), (pRef, sRef) = try run(cpu, dtype)
                let u = dtype.unitRoundoff
                // b + α(x − b): three roundings, or two with an FMA: ≤ 4u(|b| + |x − b|) ≤ 12u.
                expectClose(p, pRef, bound: { _ in 12 * u }, "\(device.id) \(dtype) pathInterpolate shared=\(shared)")
                // m products summed in order, FMA or not: ≤ 2(m + 1)u·Σ|w g| ≤ 2(m + 1)u·m.
                expectClose(s, sRef, bound: { _ in 2 * Double(m + 1) * u * Double(m) }, "\(device.id) \(dtype) pathWeightedSum")
            } }
        }
    }
}
