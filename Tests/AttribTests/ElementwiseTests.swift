import Attrib
import Testing

/// Elementwise ops, bias add and column sums: OpenCL against the CPU backend.
@Suite struct ElementwiseTests {
    static let sizes = [1, 7, 257, 1031, 65_537]

    @Test("add, sub, mul are exactly rounded on both backends: bitwise equal", arguments: sizes)
    func binary(_ n: Int) throws {
        let a = randomValues(n, seed: 1), b = randomValues(n, seed: 2)
        for device in openCLDevices { for dtype in dtypes(device) { for op in BinaryOp.allCases {
            func run(_ d: any Device) throws -> [Double] {
                try Tensor(a, shape: [n], dtype: dtype, on: d).binary(op, Tensor(b, shape: [n], dtype: dtype, on: d)).doubles()
            }
            expectEqual(try run(device), try run(cpu), "\(device.id) \(dtype) \(op) n=\(n)")
        } } }
    }

    @Test("scale, axpy, fill, copy", arguments: sizes)
    func unary(_ n: Int) throws {
        let x = randomValues(n, seed: 3), y = randomValues(n, seed: 4)
        for device in openCLDevices { for dtype in dtypes(device) {
            let u = dtype.unitRoundoff
            func scaled(_ d: any Device) throws -> [Double] { try Tensor(x, shape: [n], dtype: dtype, on: d).scaled(by: -1.75).doubles() }
            // One product, exactly rounded: equal.
            expectEqual(try scaled(device), try scaled(cpu), "\(device.id) \(dtype) scale")
            func axpy(_ d: any Device) throws -> [Double] {
                let t = try Tensor(y, shape: [n], dtype: dtype, on: d)
                try t.axpy(0.3, Tensor(x, shape: [n], dtype: dtype, on: d))
                return try t.doubles()
            }
            // y + αx: two roundings, or one where the compiler contracts to an FMA
            // (OpenCL allows it): the results differ by at most 2u(|y| + |αx|).
            expectClose(try axpy(device), try axpy(cpu), bound: { 2 * u * (abs(y[$0]) + abs(0.3 * x[$0])) }, "\(device.id) \(dtype) axpy")
            let f = try Tensor(shape: [n], dtype: dtype, on: device)
            try f.fill(2.5)
            expectEqual(try f.doubles(), [Double](repeating: 2.5, count: n), "\(device.id) \(dtype) fill")
            let src = try Tensor(x, shape: [n], dtype: dtype, on: device), dst = try Tensor(shape: [n], dtype: dtype, on: device)
            try src.copy(into: dst)
            expectEqual(try dst.doubles(), try src.doubles(), "\(device.id) \(dtype) copy")
        } }
    }

    @Test("Views: ops on rows of a larger tensor touch only those rows")
    func views() throws {
        for device in openCLDevices + [cpu] as [any Device] {
            let big = try Tensor([Double](repeating: 1, count: 40), shape: [8, 5], dtype: .float32, on: device)
            let rows = try big.rows(3..<5)
            try rows.fill(7)
            let v = try big.doubles()
            #expect(v[0..<15].allSatisfy { $0 == 1 } && v[15..<25].allSatisfy { $0 == 7 } && v[25...].allSatisfy { $0 == 1 }, "\(device.id)")
        }
    }

    @Test("bias add and its gradient (column sums)", arguments: [(1, 1), (3, 7), (33, 257), (130, 1031)])
    func bias(_ shape: (Int, Int)) throws {
        let (rows, cols) = shape
        let y = randomValues(rows * cols, seed: 5), b = randomValues(cols, seed: 6)
        for device in openCLDevices { for dtype in dtypes(device) {
            func add(_ d: any Device) throws -> [Double] {
                let t = try Tensor(y, shape: [rows, cols], dtype: dtype, on: d)
                try t.addBias(Tensor(b, shape: [cols], dtype: dtype, on: d))
                return try t.doubles()
            }
            expectEqual(try add(device), try add(cpu), "\(device.id) \(dtype) biasAdd \(rows)×\(cols)")
            // Column sums: a sum of `rows` terms in the same order on both backends,
            // but FMA-free adds may still be reassociated by a vectorizing compiler:
            // bound 2·rows·u·Σ|x|.
            func sums(_ d: any Device, beta: Double) throws -> [Double] {
                let out = try Tensor(beta == 0 ? [Double](repeating: .nan, count: cols) : b, shape: [cols], dtype: dtype, on: d)
                try Tensor(y, shape: [rows, cols], dtype: dtype, on: d).columnSums(beta: beta, into: out)
                return try out.doubles()
            }
            var absSum = [Double](repeating: 0, count: cols)
            for r in 0..<rows { for c in 0..<cols { absSum[c] += abs(y[r * cols + c]) } }
            for beta in [0.0, 1.0] {
                let got = try sums(device, beta: beta)
                #expect(!got.contains { $0.isNaN }, "beta = 0 must not read the output")
                expectClose(got, try sums(cpu, beta: beta), bound: { 2 * Double(rows + 1) * dtype.unitRoundoff * (absSum[$0] + abs(b[$0])) },
                            "\(device.id) \(dtype) columnSum β=\(beta) \(rows)×\(cols)")
            }
        } }
    }
}
