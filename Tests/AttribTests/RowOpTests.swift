import Attrib
import Testing

/// Row reductions and (log-)softmax: parity, truth and finite differences.
@Suite struct RowOpTests {
    static let shapes: [(Int, Int)] = [(1, 1), (3, 7), (33, 257), (5, 1031), (2, 4099)]

    @Test("row sum, max, mean", arguments: shapes)
    func reductions(_ shape: (Int, Int)) throws {
        let (rows, cols) = shape
        let x = randomValues(rows * cols, seed: 11)
        for device in openCLDevices { for dtype in dtypes(device) { for op in RowReduction.allCases {
            func run(_ d: any Device) throws -> [Double] { try Tensor(x, shape: [rows, cols], dtype: dtype, on: d).reduceRows(op).doubles() }
            let got = try run(device), want = try run(cpu)
            #expect(got.count == rows)
            if op == .max {
                expectEqual(got, want, "\(device.id) \(dtype) max")   // a max is exact
            } else {
                // A sum of `cols` terms in another order (tree vs sequential): |Δ| ≤ 2·cols·u·Σ|x|.
                var absSum = [Double](repeating: 0, count: rows)
                for r in 0..<rows { for c in 0..<cols { absSum[r] += abs(x[r * cols + c]) } }
                let scale = op == .mean ? 1 / Double(cols) : 1
                expectClose(got, want, bound: { 2 * Double(cols + 1) * dtype.unitRoundoff * absSum[$0] * scale }, "\(device.id) \(dtype) \(op) \(rows)×\(cols)")
            }
        } } }
    }

    @Test("broadcastRows copies one row into every row, exactly, on every device", arguments: shapes)
    func broadcastRows(_ shape: (Int, Int)) throws {
        let (rows, cols) = shape
        let x = randomValues(cols, seed: 13)
        for device in openCLDevices + [cpu] as [any Device] { for dtype in dtypes(device) {
            let row = try Tensor(x, shape: [cols], dtype: dtype, on: device)
            // NaN first: every element must be written, whatever was there.
            let y = try Tensor(Array(repeating: Double.nan, count: rows * cols), shape: [rows, cols], dtype: dtype, on: device)
            try device.broadcastRows(rows: rows, cols: cols, x: row.storage, y: y.storage)
            expectEqual(try y.doubles(), Array((0..<rows).map { _ in try! row.doubles() }.joined()), "\(device.id) \(dtype) \(rows)×\(cols)")
        } }
        expectAttribError(["broadcastRows", "rows"]) { try cpu.broadcastRows(rows: 0, cols: 3, x: Tensor.zeros([3], dtype: .float32, on: cpu).storage, y: Tensor.zeros([3], dtype: .float32, on: cpu).storage) }
    }

    @Test("softmax and log-softmax: parity, rows sum to 1", arguments: shapes)
    func softmax(_ shape: (Int, Int)) throws {
        let (rows, cols) = shape
        let x = randomValues(rows * cols, seed: 12, -20, 20)
        for device in openCLDevices + [cpu] as [any Device] { for dtype in dtypes(device) {
            let u = dtype.unitRoundoff
            let p = try Tensor(x, shape: [rows, cols], dtype: dtype, on: device).softmax().doubles()
            for r in 0..<rows {
                // Σ of cols values each with relative error ≤ (cols + 4)u (max, exp, sum, divide).
                let s = p[r * cols..<(r + 1) * cols].reduce(0, +)
                #expect(abs(s - 1) <= 2 * Double(cols + 4) * u, "\(device.id) \(dtype) row \(r) sums to \(s)")
            }
            if device is OpenCLDevice {
                let pRef = try Tensor(x, shape: [rows, cols], dtype: dtype, on: cpu).softmax().doubles()
                // Each output: exp (3 ulp in OpenCL) of an argument with error ≤ u·|x − max|
                // (≤ 40u here), divided by a sum with relative error ≤ cols·u.
                expectClose(p, pRef, bound: { 2 * (Double(cols) + 50) * u * pRef[$0] + u * 1e-30 }, "\(device.id) \(dtype) softmax")
                let l = try Tensor(x, shape: [rows, cols], dtype: dtype, on: device).logSoftmax().doubles()
                let lRef = try Tensor(x, shape: [rows, cols], dtype: dtype, on: cpu).logSoftmax().doubles()
                // x − max − log Σ: absolute error ≤ (cols + 50)·u·(|x| + |log Σ| + 1) ≤ …·60.
                expectClose(l, lRef, bound: { _ in 2 * (Double(cols) + 50) * u * 60 }, "\(device.id) \(dtype) logSoftmax")
            }
        } }
    }

    @Test("softmax and log-softmax backward: parity, and finite differences in Float64")
    func backward() throws {
        let (rows, cols) = (4, 9)
        let x = randomValues(rows * cols, seed: 13, -3, 3), dy = randomValues(rows * cols, seed: 14)
        for log in [false, true] {
            func grad(_ d: any Device, _ dtype: DType) throws -> [Double] {
                let y = try Tensor(x, shape: [rows, cols], dtype: dtype, on: d)
                let out = log ? try y.logSoftmax() : try y.softmax()
                let up = try Tensor(dy, shape: [rows, cols], dtype: dtype, on: d)
                return try (log ? out.logSoftmaxBackward(upstream: up) : out.softmaxBackward(upstream: up)).doubles()
            }
            // Finite differences of L(x) = Σ dy ⊙ f(x), h = 1e-6: truncation and rounding ≲ 1e-9.
            let h = 1e-6
            var fd = [Double](repeating: 0, count: x.count)
            for i in x.indices {
                var xp = x, xm = x
                xp[i] += h; xm[i] -= h
                let fp = try Tensor(xp, shape: [rows, cols], on: cpu), fm = try Tensor(xm, shape: [rows, cols], on: cpu)
                let yp = try (log ? fp.logSoftmax() : fp.softmax()).doubles(), ym = try (log ? fm.logSoftmax() : fm.softmax()).doubles()
                fd[i] = (0..<x.count).reduce(0.0) { $0 + dy[$1] * (yp[$1] - ym[$1]) } / (2 * h)
            }
            for device in [cpu as any Device] + openCLDevices {
                if device.supports(.float64) {
                    expectClose(try grad(device, .float64), fd, bound: { _ in 1e-8 }, "\(device.id) \(log ? "logSoftmax" : "softmax") backward vs FD")
                }
                // Float32: a row sum of cols products then one product: ≤ (cols + 8)u·Σ|dy| ≲ 20u·cols.
                expectClose(try grad(device, .float32), fd, bound: { _ in 4 * Double(cols + 8) * DType.float32.unitRoundoff * Double(cols) * 3 },
                            "\(device.id) float32 \(log ? "logSoftmax" : "softmax") backward")
            }
        }
    }
}
