import CBLAS
import CVecMath
#if canImport(Glibc)
import Glibc
#endif

/// The CPU backend: OpenBLAS for every product, Swift loops over the cores
/// for the rest. Float32 and Float64. Ops run synchronously.
public final class CPUDevice: Device, @unchecked Sendable {
    public static let shared = CPUDevice()

    /// Threads for every CPU op: OpenBLAS's own count, which honours
    /// OPENBLAS_NUM_THREADS / OMP_NUM_THREADS like every OpenBLAS user.
    /// Reading it also turns OpenBLAS's own threading off: products are split
    /// over the same workers as the loops (WorkerPool, CPUKernels+GEMM.swift),
    /// one single-threaded OpenBLAS call per block. Why: OpenBLAS's idle
    /// workers spin (sched_yield) for a while after each product, and on a
    /// machine with as many workers as cores they took the cores from the loops
    /// that follow; measured, a third of an IG sweep on the digits CNN went to
    /// the scheduler.
    static let threadCount: Int = {
        let t = max(1, Int(openblas_get_num_threads()))
        openblas_set_num_threads(1)
        stopOpenBLASThreads()
        return t
    }()

    /// Ends the thread pool a threaded OpenBLAS starts when it loads. Why: those
    /// threads sched_yield in a loop for about 0.1 s after their last job before
    /// they sleep, and they start out so; on 2 cores that was a third of a short
    /// sweep (the digits MLP, 64 inputs). With one thread per call OpenBLAS never
    /// uses them again. The entry point is exported by the pthread and OpenMP
    /// builds (not the serial one, which has no pool), so it is looked up, not linked.
    private static func stopOpenBLASThreads() {
        #if canImport(Glibc)
        typealias Shutdown = @convention(c) () -> Int32
        if let f = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "blas_thread_shutdown_") {
            _ = unsafeBitCast(f, to: Shutdown.self)()
        }
        #endif
    }

    public let info: DeviceInfo

    /// Bytes of activations a CPU batch should keep to, so that each op finds its
    /// operands in cache: a quarter of the last-level cache (sysfs), or 8 MiB when
    /// unknown. (A quarter: the cache is shared with the weights, the BLAS's packed
    /// panels and, on a server, other processes; on the 32 MiB L3 of the development
    /// machine the digits MLP ran fastest at 1,000–2,000 rows, 4–8 MiB.)
    public static let batchWorkingSetBytes: Int = (HostCPU.lastLevelCacheBytes() ?? (32 << 20)) / 4

    private init() {
        let config = String(cString: openblas_get_config())
        let host = HostCPU.read()
        let peak = host.fp32PeakGFLOPS
        info = DeviceInfo(
            id: "cpu", kind: .cpuBackend, vendor: host.vendor, name: host.model,
            computeUnits: host.cores, clockMHz: host.clockMHz,
            globalMemoryBytes: host.memoryBytes, maxAllocationBytes: host.memoryBytes,
            fp64: true,
            blas: BLASInfo(library: "OpenBLAS", config: config, threads: CPUDevice.threadCount,
                           warning: HostSIMD.blasCoreWarning(core: OpenBLASCore.name, flags: host.flags), core: OpenBLASCore.description),
            fp32PeakGFLOPS: peak?.gflops, peakBasis: peak?.basis ?? "unknown: clock or SIMD width not reported")
    }

    public func supports(_ dtype: DType) -> Bool { true }

    public func allocate(count: Int, dtype: DType) throws -> any DeviceBuffer {
        guard count >= 1 else { throw AttribError.emptyTensor(op: "allocate", shape: [count]) }
        let bytes = count.multipliedReportingOverflow(by: dtype.size)
        guard !bytes.overflow, bytes.partialValue <= info.maxAllocationBytes else {
            throw AttribError.outOfMemory(device: info.summary, bytes: bytes.partialValue, limit: info.maxAllocationBytes)
        }
        return CPUBuffer(count: count, dtype: dtype)
    }

    public func upload(_ bytes: UnsafeRawBufferPointer, to view: BufferView) throws {
        let b = try buffer(view, "upload")
        guard bytes.count % b.dtype.size == 0 else {
            throw AttribError.invalidArgument(op: "upload", detail: "\(bytes.count) bytes is not a whole number of \(b.dtype) elements")
        }
        try view.require(bytes.count / b.dtype.size, "upload", "destination")
        if let base = bytes.baseAddress { (b.pointer + view.offset * b.dtype.size).copyMemory(from: base, byteCount: bytes.count) }
    }

    public func download(_ view: BufferView, into bytes: UnsafeMutableRawBufferPointer) throws {
        let b = try buffer(view, "download")
        try view.require(bytes.count / b.dtype.size, "download", "source")
        if let base = bytes.baseAddress { base.copyMemory(from: b.pointer + view.offset * b.dtype.size, byteCount: bytes.count) }
    }

    public func synchronize() throws {}

    // MARK: ops

    public func gemm(_ g: GEMMArguments) throws {
        try g.validate()
        try withScalar(g.c, "gemm") { try gemmTyped($0, g) }
    }

    public func gemmSequence(_ gs: [GEMMArguments]) throws {
        for g in gs { try g.validate() }
        guard let first = gs.first else { return }
        let dtype = try buffer(first.c, "gemmSequence").dtype
        guard gs.allSatisfy({ $0.m == first.m && !$0.transA && $0.batch == 1 }),
              try gs.allSatisfy({ try buffer($0.c, "gemmSequence").dtype == dtype }) else {
            for g in gs { try gemm(g) }
            return
        }
        func run<T: CPUScalar>(_: T.Type) throws {
            let ptrs = try gs.map { (try pointer(T.self, $0.a, "gemm"), try pointer(T.self, $0.b, "gemm"), try pointer(T.self, $0.c, "gemm")) }
            CPUKernels<T>.gemmRows(gs, ptrs)
        }
        try withScalar(first.c, "gemmSequence") { try run($0) }
    }

    private func gemmTyped<T: CPUScalar>(_: T.Type, _ g: GEMMArguments) throws {
        let a = try pointer(T.self, g.a, "gemm"), b = try pointer(T.self, g.b, "gemm"), c = try pointer(T.self, g.c, "gemm")
        CPUKernels<T>.gemm(g, a, b, c)
    }

    public func binary(_ op: BinaryOp, n: Int, a: BufferView, b: BufferView, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.binary(op, n, try pointer(T.self, a, op.rawValue, n), try pointer(T.self, b, op.rawValue, n), try pointer(T.self, y, op.rawValue, n))
        }
        try withScalar(y, op.rawValue) { try run($0) }
    }

    public func scale(n: Int, alpha: Double, x: BufferView, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.scale(n, T(alpha), try pointer(T.self, x, "scale", n), try pointer(T.self, y, "scale", n))
        }
        try withScalar(y, "scale") { try run($0) }
    }

    public func axpy(n: Int, alpha: Double, x: BufferView, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.axpy(n, T(alpha), try pointer(T.self, x, "axpy", n), try pointer(T.self, y, "axpy", n))
        }
        try withScalar(y, "axpy") { try run($0) }
    }

    public func fill(n: Int, value: Double, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.fill(n, T(value), try pointer(T.self, y, "fill", n))
        }
        try withScalar(y, "fill") { try run($0) }
    }

    public func copy(n: Int, x: BufferView, y: BufferView) throws {
        let xb = try buffer(x, "copy"), yb = try buffer(y, "copy")
        guard xb.dtype == yb.dtype else {
            throw AttribError.invalidArgument(op: "copy", detail: "source is \(xb.dtype), destination \(yb.dtype)")
        }
        try x.require(n, "copy", "source"); try y.require(n, "copy", "destination")
        let s = xb.dtype.size
        (yb.pointer + y.offset * s).copyMemory(from: xb.pointer + x.offset * s, byteCount: n * s)
    }

    public func broadcastRows(rows: Int, cols: Int, x: BufferView, y: BufferView) throws {
        let op = "broadcastRows"
        try AttribError.requirePositive(op, ["rows": rows, "cols": cols])
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, x, op, cols), yp = try pointer(T.self, y, op, rows * cols)
            parallelChunks(rows, grain: max(1, (1 << 15) / cols)) { r in
                for row in r { (yp + row * cols).update(from: xp, count: cols) }
            }
        }
        try withScalar(y, op) { try run($0) }
    }

    public func biasAdd(rows: Int, cols: Int, bias: BufferView, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.biasAdd(rows, cols, try pointer(T.self, bias, "biasAdd", cols), try pointer(T.self, y, "biasAdd", rows * cols))
        }
        try withScalar(y, "biasAdd") { try run($0) }
    }

    public func columnSum(rows: Int, cols: Int, x: BufferView, beta: Double, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.columnSum(rows, cols, try pointer(T.self, x, "columnSum", rows * cols), T(beta), try pointer(T.self, y, "columnSum", cols))
        }
        try withScalar(y, "columnSum") { try run($0) }
    }

    public func activation(_ kind: Activation, n: Int, x: BufferView, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.activation(kind, n, try pointer(T.self, x, "activation", n), try pointer(T.self, y, "activation", n))
        }
        try withScalar(y, "activation") { try run($0) }
    }

    public func activationBackward(_ kind: Activation, n: Int, x: BufferView, dy: BufferView, dx: BufferView) throws {
        let op = "activationBackward"
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.activationBackward(kind, n, try pointer(T.self, x, op, n), try pointer(T.self, dy, op, n), try pointer(T.self, dx, op, n))
        }
        try withScalar(dx, op) { try run($0) }
    }

    /// Float32 GELU (erf form): one erfc then serves both (CVecMath); tanh and sigmoid in
    /// both float types: one tanh or exp for both (a backward recomputed it). The backward
    /// pass then becomes a product. Everything else goes the two-op way.
    public func activationWithDerivative(_ kind: Activation, n: Int, x: BufferView, y: BufferView, derivative: BufferView) throws -> Bool {
        let op = "activationWithDerivative"
        if kind == .tanh || kind == .sigmoid {
            func run<T: CPUScalar>(_: T.Type) throws {
                CPUKernels.activationWithDerivative(kind, n, try pointer(T.self, x, op, n), try pointer(T.self, y, op, n), try pointer(T.self, derivative, op, n))
            }
            try withScalar(y, op) { try run($0) }
            return true
        }
        guard kind == .geluErf, try buffer(y, op).dtype == .float32 else { return false }
        CPUKernels<Float>.geluWithDerivative(n, try pointer(Float.self, x, op, n), try pointer(Float.self, y, op, n), try pointer(Float.self, derivative, op, n))
        return true
    }

    public func rowReduce(_ op: RowReduction, rows: Int, cols: Int, x: BufferView, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.rowReduce(op, rows, cols, try pointer(T.self, x, "rowReduce", rows * cols), try pointer(T.self, y, "rowReduce", rows))
        }
        try withScalar(y, "rowReduce") { try run($0) }
    }

    public func softmax(log: Bool, rows: Int, cols: Int, x: BufferView, y: BufferView) throws {
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.softmax(log, rows, cols, try pointer(T.self, x, "softmax", rows * cols), try pointer(T.self, y, "softmax", rows * cols))
        }
        try withScalar(y, "softmax") { try run($0) }
    }

    public func softmaxBackward(log: Bool, rows: Int, cols: Int, y: BufferView, dy: BufferView, dx: BufferView) throws {
        let op = "softmaxBackward", n = rows * cols
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.softmaxBackward(log, rows, cols, try pointer(T.self, y, op, n), try pointer(T.self, dy, op, n), try pointer(T.self, dx, op, n))
        }
        try withScalar(dx, op) { try run($0) }
    }

    public func gatherRows(n: Int, cols: Int, indices: BufferView, table: BufferView, y: BufferView) throws {
        let idx = try pointer(Int32.self, indices, "gatherRows", n)
        let tb = try buffer(table, "gatherRows")
        let rows = tb.count - table.offset
        if tb.dtype.isStorageOnly {
            try table.require(cols, "gatherRows", "table")
            let out = try pointer(Float.self, y, "gatherRows", n * cols)
            let bits = tb.typed(UInt16.self, table.offset), bf = tb.dtype == .bfloat16 ? Int32(1) : 0
            parallelChunks(n, grain: max(1, (1 << 15) / max(cols, 1))) { r in
                attrib_gather_rows_half(bf, r.count, cols, idx + r.lowerBound, bits, out + r.lowerBound * cols)
            }
            return
        }
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.gatherRows(n, cols, idx, try pointer(T.self, table, "gatherRows", rows), try pointer(T.self, y, "gatherRows", n * cols))
        }
        try withScalar(y, "gatherRows") { try run($0) }
    }

    public func widen(n: Int, x: BufferView, y: BufferView) throws {
        let xb = try buffer(x, "widen")
        guard xb.dtype.isStorageOnly else {
            throw AttribError.invalidArgument(op: "widen", detail: "a \(xb.dtype) source; widen reads bfloat16 or float16")
        }
        try x.require(n, "widen", "source")
        let out = try pointer(Float.self, y, "widen", n)
        let bits = xb.typed(UInt16.self, x.offset), bf = xb.dtype == .bfloat16 ? Int32(1) : 0
        parallelChunks(n) { r in attrib_widen_half(bf, r.count, bits + r.lowerBound, out + r.lowerBound) }
    }

    public func scatterAddRows(n: Int, cols: Int, indices: BufferView, source: BufferView, table: BufferView) throws {
        let idx = try pointer(Int32.self, indices, "scatterAddRows", n)
        let rows = try buffer(table, "scatterAddRows").count - table.offset
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.scatterAddRows(n, cols, idx, try pointer(T.self, source, "scatterAddRows", n * cols), try pointer(T.self, table, "scatterAddRows", rows))
        }
        try withScalar(table, "scatterAddRows") { try run($0) }
    }

    public func pathInterpolate(n: Int, m: Int, d: Int, x: BufferView, base: BufferView, baseStride: Int,
                                alphas: BufferView, y: BufferView) throws {
        let op = "pathInterpolate"
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.pathInterpolate(n, m, d, try pointer(T.self, x, op, n * d), try pointer(T.self, base, op, (n - 1) * baseStride + d),
                                       baseStride, try pointer(T.self, alphas, op, m), try pointer(T.self, y, op, n * m * d))
        }
        try withScalar(y, op) { try run($0) }
    }

    public func pathWeightedSum(n: Int, m: Int, d: Int, g: BufferView, weights: BufferView, y: BufferView) throws {
        let op = "pathWeightedSum"
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.pathWeightedSum(n, m, d, try pointer(T.self, g, op, n * m * d), try pointer(T.self, weights, op, m), try pointer(T.self, y, op, n * d))
        }
        try withScalar(y, op) { try run($0) }
    }

    public func pathActivationWithDerivative(_ kind: Activation, n: Int, m: Int, d: Int, x: BufferView, base: BufferView, baseStride: Int,
                                             alphas: BufferView, y: BufferView, derivative: BufferView) throws -> Bool {
        let op = "pathActivationWithDerivative"
        var done = false
        func run<T: CPUScalar>(_: T.Type) throws {
            done = CPUKernels.pathActivationWithDerivative(kind, n, m, d, try pointer(T.self, x, op, n * d),
                                                           try pointer(T.self, base, op, (n - 1) * baseStride + d), baseStride,
                                                           try pointer(T.self, alphas, op, m), try pointer(T.self, y, op, n * m * d),
                                                           try pointer(T.self, derivative, op, n * m * d))
        }
        try withScalar(y, op) { try run($0) }
        return done
    }

    public func pathWeightedSumTimes(n: Int, m: Int, d: Int, g: BufferView, multiplier: BufferView, weights: BufferView, y: BufferView) throws -> Bool {
        let op = "pathWeightedSumTimes"
        func run<T: CPUScalar>(_: T.Type) throws {
            CPUKernels.pathWeightedSum(n, m, d, try pointer(T.self, g, op, n * m * d), try pointer(T.self, weights, op, m), try pointer(T.self, y, op, n * d),
                                       times: try pointer(T.self, multiplier, op, n * m * d))
        }
        try withScalar(y, op) { try run($0) }
        return true
    }

    // MARK: helpers

    func buffer(_ view: BufferView, _ op: String) throws -> CPUBuffer {
        guard let b = view.buffer as? CPUBuffer else {
            throw AttribError.deviceMismatch(op: op, detail: "a buffer from another device was passed to the CPU backend")
        }
        return b
    }

    /// The typed pointer for a view, after checking its dtype and that `extent` elements fit.
    func pointer<T>(_: T.Type, _ view: BufferView, _ op: String, _ extent: Int = 0) throws -> UnsafeMutablePointer<T> {
        let b = try buffer(view, op)
        let expected: DType = T.self == Double.self ? .float64 : T.self == Int32.self ? .int32 : .float32
        guard b.dtype == expected else {
            throw AttribError.invalidArgument(op: op, detail: "a \(b.dtype) buffer where \(expected) was expected")
        }
        try view.require(extent, op, "operand")
        return b.typed(T.self, view.offset)
    }

    /// Calls body with Float.self or Double.self, by the view's dtype.
    func withScalar(_ view: BufferView, _ op: String, _ body: (any CPUScalar.Type) throws -> Void) throws {
        switch try buffer(view, op).dtype {
        case .float32: try body(Float.self)
        case .float64: try body(Double.self)
        case let t: throw AttribError.unsupportedDType(op: op, dtype: t, device: info.summary)
        }
    }
}
