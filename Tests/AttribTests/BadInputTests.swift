import Attrib
import Testing

/// Bad input gets a thrown error that names the problem, never a crash.
@Suite struct BadInputTests {
    static var allDevices: [any Device] { openCLDevices + [cpu] }

    @Test("shape mismatches name the op and the shapes")
    func shapes() throws {
        for d in Self.allDevices {
            let a = try Tensor.zeros([3, 4], on: d), b = try Tensor.zeros([5, 6], on: d), v = try Tensor.zeros([4], on: d)
            expectAttribError(["matmul", "[3, 4]", "[5, 6]"]) { _ = try a.matmul(b) }
            expectAttribError(["add", "[5, 6]", "[3, 4]"]) { _ = try a.adding(b) }
            expectAttribError(["biasAdd", "[4]"]) { try b.addBias(v) }
            expectAttribError(["reshaped", "[5]"]) { _ = try a.reshaped([5]) }
            expectAttribError(["pathInterpolate", "baselines"]) { _ = try a.pathInterpolated(baselines: b, alphas: v) }
            expectAttribError(["pathWeightedSum"]) { _ = try a.pathWeightedSum(weights: try Tensor.zeros([5], on: d)) }
            expectAttribError(["values given", "[2, 2]"]) { _ = try Tensor([1, 2, 3] as [Float], shape: [2, 2], on: d) }
        }
    }

    @Test("zero-sized tensors are refused")
    func zeroSized() {
        for d in Self.allDevices {
            expectAttribError(["zero-sized", "[3, 0]"]) { _ = try Tensor(shape: [3, 0], on: d) }
            expectAttribError(["zero-sized"]) { _ = try Tensor(shape: [], on: d) }
            expectAttribError(["zero-sized"]) { _ = try IndexTensor([], on: d) }
        }
    }

    @Test("an unknown device lists what exists")
    func unknownDevice() {
        expectAttribError(["unknown device 'no-such-gpu'", "cpu"]) { _ = try Devices.select("no-such-gpu") }
        expectAttribError(["unknown device 'opencl:99'"]) { _ = try Devices.select("opencl:99") }
    }

    @Test("device selection by spec")
    func selection() throws {
        #expect(try Devices.select("cpu") === cpu)
        #expect(try Devices.select("CPU") === cpu)
        if let first = openCLDevices.first {
            #expect(try Devices.select("opencl") === first)
            #expect(try Devices.select("opencl:0") === first)
            #expect(try Devices.select(String(first.info.name.prefix(6))) === first)
        }
        let auto = try Devices.select("auto")
        #expect(auto.info.kind == .gpu || auto === cpu)
    }

    @Test("a kernel that does not compile throws its build log")
    func brokenKernel() {
        for d in openCLDevices {
            expectAttribError(["broken.cl", "failed to build", "undeclared_thing"]) {
                try d.compile(source: "__kernel void k(__global float* x) { x[0] = undeclared_thing; }", name: "broken.cl")
            }
        }
    }

    @Test("out-of-range indices, views past the end, mixed devices, bad GEMM arguments")
    func rawArguments() throws {
        for d in Self.allDevices {
            let table = try Tensor.zeros([4, 3], on: d)
            expectAttribError(["gatherRows", "index out of range", "4 rows"]) { _ = try table.gatherRows(try IndexTensor([0, 4], on: d)) }
            expectAttribError(["index out of range"]) { _ = try table.gatherRows(try IndexTensor([-1], on: d)) }
            expectAttribError(["rows"]) { _ = try table.rows(3..<5) }
            let x = try Tensor.zeros([8], on: d)
            expectAttribError(["fill", "buffer of 8"]) { try d.fill(n: 8, value: 1, y: BufferView(x.storage.buffer, offset: 1)) }
            expectAttribError(["gemm", "lda"]) {
                try d.gemm(GEMMArguments(m: 2, n: 2, k: 3, a: x.storage, lda: 2, b: x.storage, ldb: 2, c: x.storage, ldc: 2))
            }
            expectAttribError(["gemm", "A needs"]) {
                try d.gemm(GEMMArguments(m: 3, n: 2, k: 3, a: x.storage, lda: 3, b: x.storage, ldb: 2, c: x.storage, ldc: 2))
            }
        }
        if let d = openCLDevices.first {
            let a = try Tensor.zeros([2, 2], on: d), b = try Tensor.zeros([2, 2], on: cpu)
            expectAttribError(["different devices", "cpu"]) { _ = try a.adding(b) }
        }
    }

    @Test("Float64 on a device without fp64 is refused by name")
    func fp64() throws {
        for d in openCLDevices where !d.supports(.float64) {
            expectAttribError(["float64", d.info.name]) { _ = try Tensor(shape: [2], dtype: .float64, on: d) }
        }
        let i = try Tensor(indices: [1, 2], shape: [2], on: cpu)
        expectAttribError(["int32"]) { try i.fill(1) }
    }
}
