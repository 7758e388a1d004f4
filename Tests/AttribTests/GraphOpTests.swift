import Attrib
import Testing

/// The graph's own ops (those that are not layers): each one's backward against Float64
/// central finite differences on the CPU backend, and each forward and backward on every
/// OpenCL device against the CPU backend.
@Suite struct GraphOpTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var shapes: [[Int]]             // per-sample input shapes
        var op: @Sendable () -> any GraphOp
        /// The longest sum in one output element (K of a product, the plane of a pool):
        /// Float32 rounding grows with it.
        var terms: Int = 1
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "Transpose [T, H, dh] → [H, T, dh]", shapes: [[4, 3, 2]]) { TransposeGraphOp([1, 0, 2]) },
        Case(name: "Transpose [C, H, W] → [H, W, C] (one block swap)", shapes: [[3, 4, 5]]) { TransposeGraphOp([1, 2, 0]) },
        Case(name: "Transpose reversing rank 4", shapes: [[2, 3, 4, 5]]) { TransposeGraphOp([3, 2, 1, 0]) },
        Case(name: "Slice axis 1", shapes: [[3, 7, 2]]) { SliceGraphOp(axis: 1, start: 2, end: 6) },
        Case(name: "Slice last axis (q of qkv)", shapes: [[4, 9]]) { SliceGraphOp(axis: -1, start: 3, end: 6) },
        Case(name: "Slice axis 1 by 2 from 1 (Swin's patch merging, x[1::2])", shapes: [[3, 7, 2]]) { SliceGraphOp(axis: 1, start: 1, end: 7, step: 2) },
        Case(name: "Slice last axis by 3, a partial last step", shapes: [[2, 8]]) { SliceGraphOp(axis: -1, start: 0, end: 8, step: 3) },
        Case(name: "Concat axis 0 of three", shapes: [[2, 3], [1, 3], [4, 3]]) { ConcatGraphOp(axis: 0, count: 3) },
        Case(name: "Concat last axis", shapes: [[2, 3], [2, 5]]) { ConcatGraphOp(axis: 1, count: 2) },
        Case(name: "MatMul [H, T, dh]·[H, dh, T]", shapes: [[2, 3, 4], [2, 4, 5]], op: { MatMulGraphOp() }, terms: 4),
        Case(name: "MatMul q·kᵀ", shapes: [[2, 3, 4], [2, 5, 4]], op: { MatMulGraphOp(transposeB: true) }, terms: 5),
        Case(name: "MatMul q·kᵀ × 0.3 (a fused scale)", shapes: [[2, 3, 4], [2, 5, 4]], op: { MatMulGraphOp(transposeB: true, alpha: 0.3) }, terms: 5),
        Case(name: "MatMul × 0.125", shapes: [[2, 3, 4], [2, 4, 5]], op: { MatMulGraphOp(alpha: 0.125) }, terms: 4),
        Case(name: "Scale", shapes: [[3, 4]]) { ScaleGraphOp(0.35) },
        Case(name: "Pow 3 (GELU's x³ where it is not fused)", shapes: [[3, 4]]) { PowGraphOp(exponent: 3) },
        Case(name: "Pow 2", shapes: [[5]]) { PowGraphOp(exponent: 2) },
        Case(name: "CausalSoftmax", shapes: [[2, 5, 5]], op: { CausalSoftmaxGraphOp() }, terms: 5),
        Case(name: "CausalSoftmax of the last 3 of 5 queries", shapes: [[2, 3, 5]], op: { CausalSoftmaxGraphOp() }, terms: 5),
        Case(name: "CausalSoftmax of the last 3 of 6 queries, window 2", shapes: [[2, 3, 6]], op: { CausalSoftmaxGraphOp(window: 2) }, terms: 2),
        Case(name: "SharedPrefix: 2 of a source's 5 positions before 3 own", shapes: [[5, 2, 3], [3, 2, 3]]) { SharedPrefixGraphOp(prefix: 2) },
        Case(name: "GlobalAveragePool", shapes: [[3, 4, 5]], op: { GlobalAvgPoolGraphOp() }, terms: 20),
        Case(name: "Mul", shapes: [[3, 4], [3, 4]]) { BinaryGraphOp(.mul) },
        Case(name: "Sub", shapes: [[3, 4], [3, 4]]) { BinaryGraphOp(.sub) },
        Case(name: "Reshape with −1", shapes: [[3, 4]]) { ReshapeGraphOp([2, -1]) },
        Case(name: "BroadcastMul: a [C, 1, 1] gate over [C, H, W] (squeeze-and-excitation)", shapes: [[3, 4, 5], [3, 1, 1]],
             op: { BroadcastMulGraphOp() }, terms: 20),
        Case(name: "BroadcastMul: a [C, H, 1] gate", shapes: [[2, 3, 4], [2, 3, 1]], op: { BroadcastMulGraphOp() }, terms: 4),
        // Channels-last squeeze-and-excitation (Graph+ChannelsLast), sums over the H·W plane.
        Case(name: "GlobalAveragePool NHWC [H, W, C] → [1, 1, C]", shapes: [[4, 5, 3]], op: { ChannelsLastGlobalAvgPoolGraphOp() }, terms: 20),
        Case(name: "BroadcastMul NHWC: a [1, 1, C] gate over [H, W, C]", shapes: [[4, 5, 3], [1, 1, 3]],
             op: { ChannelsLastBroadcastMulGraphOp() }, terms: 20),
    ]

    /// A graph of the one op, inputs "x0", "x1", …, output "y".
    static func graph(_ c: Case, dtype: DType) throws -> Graph {
        let names = c.shapes.indices.map { "x\($0)" }
        return try Graph(inputs: zip(names, c.shapes).map { ($0, ValueType($1, dtype)) },
                         nodes: [GraphNode("op", c.op(), inputs: names, output: "y")], outputs: ["y"])
    }

    static let batch = 2

    static func feeds(_ c: Case, dtype: DType, on device: any Device) throws -> [String: Tensor] {
        var f: [String: Tensor] = [:]
        for (i, s) in c.shapes.enumerated() {
            let shape = [batch] + s
            // Distinct values with gaps far above h, so no op sits on a kink.
            var v = randomValues(shape.reduce(1, *), seed: UInt64(10 + i), -2, 2)
            for j in v.indices { v[j] += Double(j % 5) * 1e-3 }
            f["x\(i)"] = try Tensor(v, shape: shape, dtype: dtype, on: device)
        }
        return f
    }

    @Test("backward against central finite differences (Float64, CPU backend)", arguments: cases)
    func finiteDifferences(_ c: Case) throws {
        let exec = GraphExecutor(try Self.graph(c, dtype: .float64))
        let feeds = try Self.feeds(c, dtype: .float64, on: cpu)
        let names = Set(feeds.keys)
        let run = try exec.forward(feeds, gradientsFor: names)
        let y = run["y"]!
        let dy = randomValues(y.count, seed: 99)
        let g = try exec.backward(run, upstream: ["y": Tensor(dy, shape: y.shape, on: cpu)], wrt: names)
        // L = Σ dy ⊙ y; h = 1e-6 keeps truncation (h²·|L‴|/6) and rounding (u·|L|/h) below
        // 1e-9 for values of order 1, so 1e-7·(1 + |g|) separates right from wrong by far.
        let h = 1e-6
        for name in names.sorted() {
            let x0 = try feeds[name]!.doubles(), shape = feeds[name]!.shape
            var fd: [Double] = []
            for i in x0.indices {
                var total = 0.0
                for sign in [1.0, -1.0] {
                    var x = x0
                    x[i] += sign * h
                    var f = feeds
                    f[name] = try Tensor(x, shape: shape, on: cpu)
                    let out = try exec.forward(f)["y"]!.doubles()
                    total += sign * zip(out, dy).reduce(0) { $0 + $1.0 * $1.1 }
                }
                fd.append(total / (2 * h))
            }
            expectClose(try g[name]!.doubles(), fd, bound: { 1e-7 * (1 + abs(fd[$0])) }, "\(c.name): ∂L/∂\(name)")
        }
    }

    @Test("forward and backward on every OpenCL device against the CPU backend (Float32)", arguments: cases)
    func parity(_ c: Case) throws {
        let exec = GraphExecutor(try Self.graph(c, dtype: .float32))
        let names = Set(c.shapes.indices.map { "x\($0)" })
        func run(_ d: any Device) throws -> (y: [Double], g: [String: [Double]]) {
            let r = try exec.forward(try Self.feeds(c, dtype: .float32, on: d), gradientsFor: names)
            let y = r["y"]!
            let dy = try Tensor(randomValues(y.count, seed: 98), shape: y.shape, dtype: .float32, on: d)
            let g = try exec.backward(r, upstream: ["y": dy], wrt: names)
            return (try y.doubles(), try g.mapValues { try $0.doubles() })
        }
        let want = try run(cpu)
        // Moves are exact. A sum of K terms of size ≤ 2·2 (inputs in [−2, 2], dy in [−1, 1])
        // in Float32 is off by at most K·u·Σ|terms| ≤ K²·u·4 per backend, twice that
        // between two; exp in the softmax adds a few ulp (OpenCL allows 3).
        let u = 0x1p-24, k = Double(c.terms)
        let bound = 2 * (k * k * 4 + 8) * u
        for d in openCLDevices {
            let got = try run(d)
            expectClose(got.y, want.y, bound: { _ in bound }, "\(c.name) forward on \(d.info.id)")
            for n in names.sorted() {
                expectClose(got.g[n]!, want.g[n]!, bound: { _ in bound * 2 }, "\(c.name) ∂/∂\(n) on \(d.info.id)")
            }
        }
    }

    @Test("shape rules: each bad use an error naming the op and the shapes")
    func shapeErrors() {
        func message(_ op: any GraphOp, _ inputs: [ValueType]) -> String {
            do { _ = try op.outputType(inputs); return "no error" } catch { return "\(error)" }
        }
        let f = DType.float32
        #expect(message(TransposeGraphOp([0, 0]), [ValueType([2, 3], f)]).contains("not a permutation"))
        #expect(message(SliceGraphOp(axis: 0, start: 2, end: 5), [ValueType([4], f)]).contains("2..<5 does not fit axis 0 of size 4"))
        #expect(message(SliceGraphOp(axis: 0, start: 0, end: 4, step: 0), [ValueType([4], f)]).contains("0..<4 by 0 does not fit"))
        #expect(message(PowGraphOp(exponent: 5), [ValueType([4], f)]).contains("exponent 5"))
        #expect(message(ConcatGraphOp(axis: 0, count: 2), [ValueType([2, 3], f), ValueType([2, 4], f)]).contains("only axis 0 may differ"))
        #expect(message(MatMulGraphOp(), [ValueType([2, 3], f), ValueType([4, 5], f)]).contains("K = 3 and 4"))
        // More queries than keys (S > T); S ≤ T is the last S queries of a shared-prefix run.
        #expect(message(CausalSoftmaxGraphOp(), [ValueType([4, 3], f)]).contains("1 ≤ S ≤ T"))
        #expect(message(SharedPrefixGraphOp(prefix: 5), [ValueType([4, 2, 8], f), ValueType([3, 2, 8], f)]).contains("[≥ 5]"))
        #expect(message(SharedPrefixGraphOp(prefix: 2), [ValueType([4, 2, 8], f), ValueType([3, 2, 4], f)]).contains("trailing shape"))
        #expect(message(ReshapeGraphOp([5, -1]), [ValueType([3, 4], f)]).contains("not a multiple of 5"))
        #expect(message(BroadcastMulGraphOp(), [ValueType([3, 4, 5], f), ValueType([1, 4, 1], f)]).contains("leading dimensions"))
        #expect(message(BroadcastMulGraphOp(), [ValueType([3, 4], f), ValueType([3, 4], f)]).contains("leading dimensions"))
        #expect(message(ChannelsLastBroadcastMulGraphOp(), [ValueType([4, 5, 3], f), ValueType([3, 1, 1], f)]).contains("[1, 1, C]"))
        #expect(message(ChannelsLastGlobalAvgPoolGraphOp(), [ValueType([4, 5], f)]).contains("[H, W, C]"))
    }
}
