import AttribCore
import AttribKernels
import COpenCL
import Synchronization

/// An OpenCL device: one context and one in-order queue, programs built from
/// Kernels/ on first use and cached for the life of the process. Ops are
/// enqueued without waiting; `download` and `synchronize` wait.
public final class OpenCLDevice: Device, @unchecked Sendable {
    public let info: DeviceInfo
    let id: cl_device_id
    let extensions: String

    /// Everything mutable, behind one lock: the context and queue (made on
    /// first use, so listing devices touches no driver state), the built
    /// programs and kernels. Kernel arguments are set and enqueued under the
    /// lock, since clSetKernelArg on a shared kernel object is not thread-safe.
    struct State: @unchecked Sendable {
        var context: cl_context?
        var queue: cl_command_queue?
        var programs: [String: cl_program] = [:]
        var kernels: [String: cl_kernel] = [:]
        /// GEMM tiles per variant: the tuned ones from the cache, else the defaults.
        var gemmParameters: [GEMMVariant: GEMMParameters] = [:]
        /// The arithmetic of Float32 products (--precision).
        var precision: MatmulPrecision = .fp32
        /// The tensor-core probe's result per precision, and the variants whose check passed.
        var tensorCores: [MatmulPrecision: TensorCoreStatus] = [:]
        var verifiedMMA: Set<String> = []
        /// gemm_mma.cl with the mma emulated (tests), and large tiles set per precision.
        var emulateMMA = false
        var mmaTiles: [MatmulPrecision: MMATile] = [:]
        /// Split-K: the forced chunk count (tests), and the workspace per dtype.
        var forcedSplitK: Int?
        var splitKWorkspace: [DType: CLBuffer] = [:]
        /// Implicit-GEMM convolutions on a device that is not a GPU (tests).
        var implicitConvolution = false
        /// Whether gemmFused fuses (ATTRIB_FUSED_EPILOGUE=0 turns it off, for timing both).
        var fusedEpilogues = OpenCLDevice.fusedEpiloguesByDefault
        /// Host copies of uploads still in flight (OpenCLDevice.upload), and their bytes.
        var staging: [UnsafeMutableRawPointer] = []
        var stagingBytes = 0
    }
    let state = Mutex(State())

    /// Work-group size of the row kernels (softmax, reductions): a power of two.
    let reductionGroupSize: Int

    init(id: cl_device_id, index: Int, platformName: String) {
        self.id = id
        let type = CLInfo.value(id, cl_device_info(CL_DEVICE_TYPE), cl_device_type.self)
        let kind: DeviceKind = type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 ? .gpu
            : type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 ? .cpu
            : type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 ? .accelerator : .other
        extensions = CLInfo.string(id, cl_device_info(CL_DEVICE_EXTENSIONS))
        let fp64 = CLInfo.value(id, cl_device_info(CL_DEVICE_DOUBLE_FP_CONFIG), cl_device_fp_config.self) != 0
            || extensions.contains("cl_khr_fp64")
        let vendor = CLInfo.string(id, cl_device_info(CL_DEVICE_VENDOR))
        let units = Int(CLInfo.value(id, cl_device_info(CL_DEVICE_MAX_COMPUTE_UNITS), cl_uint.self))
        let clock = Int(CLInfo.value(id, cl_device_info(CL_DEVICE_MAX_CLOCK_FREQUENCY), cl_uint.self))
        let maxWG = Int(CLInfo.value(id, cl_device_info(CL_DEVICE_MAX_WORK_GROUP_SIZE), Int.self))
        let (peak, basis) = PeakFLOPS.derive(device: id, kind: kind, vendor: vendor, computeUnits: units,
                                             clockMHz: clock, extensions: extensions)
        info = DeviceInfo(
            id: "opencl:\(index)", kind: kind, vendor: vendor,
            name: CLInfo.string(id, cl_device_info(CL_DEVICE_NAME)),
            driverVersion: CLInfo.string(id, cl_device_info(CL_DRIVER_VERSION)),
            openCLVersion: CLInfo.string(id, cl_device_info(CL_DEVICE_VERSION)),
            platform: platformName, computeUnits: units, clockMHz: clock,
            globalMemoryBytes: Int(CLInfo.value(id, cl_device_info(CL_DEVICE_GLOBAL_MEM_SIZE), cl_ulong.self)),
            maxAllocationBytes: Int(CLInfo.value(id, cl_device_info(CL_DEVICE_MAX_MEM_ALLOC_SIZE), cl_ulong.self)),
            localMemoryBytes: Int(CLInfo.value(id, cl_device_info(CL_DEVICE_LOCAL_MEM_SIZE), cl_ulong.self)),
            fp64: fp64, maxWorkGroupSize: maxWG, fp32PeakGFLOPS: peak, peakBasis: basis)
        var wg = 1
        while wg * 2 <= min(256, max(maxWG, 1)) { wg *= 2 }
        reductionGroupSize = wg
    }

    /// A second handle on the same device with its own context, queue, programs and
    /// settings (GEMM tiles, --precision): work that must not see another's settings,
    /// such as tests of one precision beside tests of another. Buffers belong to the
    /// handle that made them.
    public func independentHandle() -> OpenCLDevice {
        OpenCLDevice(id: id, index: Int(info.id.dropFirst("opencl:".count)) ?? 0, platformName: info.platform ?? "")
    }

    deinit {
        state.withLock { s in
            if let q = s.queue { clFinish(q) }
            releaseStaging(&s)
            for k in s.kernels.values { clReleaseKernel(k) }
            for p in s.programs.values { clReleaseProgram(p) }
            if let q = s.queue { clReleaseCommandQueue(q) }
            if let c = s.context { clReleaseContext(c) }
        }
    }

    public func supports(_ dtype: DType) -> Bool { dtype != .float64 || info.fp64 }

    /// The context and queue, made on first use.
    func contextAndQueue(_ s: inout State) throws -> (cl_context, cl_command_queue) {
        if let c = s.context, let q = s.queue { return (c, q) }
        var err: cl_int = 0
        var device: cl_device_id? = id
        guard let ctx = clCreateContext(nil, 1, &device, nil, nil, &err), err == CL_SUCCESS else {
            throw AttribError.openCL(call: "clCreateContext", code: err, device: info.summary)
        }
        guard let queue = clCreateCommandQueue(ctx, id, 0, &err), err == CL_SUCCESS else {
            clReleaseContext(ctx)
            throw AttribError.openCL(call: "clCreateCommandQueue", code: err, device: info.summary)
        }
        s.context = ctx; s.queue = queue
        return (ctx, queue)
    }

    // MARK: memory

    public func allocate(count: Int, dtype: DType) throws -> any DeviceBuffer {
        guard count >= 1 else { throw AttribError.emptyTensor(op: "allocate", shape: [count]) }
        guard supports(dtype) else { throw AttribError.unsupportedDType(op: "allocate", dtype: dtype, device: info.summary) }
        let bytes = count * dtype.size
        guard bytes <= info.maxAllocationBytes else {
            throw AttribError.outOfMemory(device: info.summary, bytes: bytes, limit: info.maxAllocationBytes)
        }
        return try state.withLock { s in
            let (ctx, _) = try contextAndQueue(&s)
            var err: cl_int = 0
            guard let mem = clCreateBuffer(ctx, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &err), err == CL_SUCCESS else {
                throw err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES
                    ? AttribError.outOfMemory(device: info.summary, bytes: bytes, limit: info.globalMemoryBytes)
                    : AttribError.openCL(call: "clCreateBuffer(\(bytes) bytes)", code: err, device: info.summary)
            }
            return CLBuffer(mem: mem, count: count, dtype: dtype, owner: ObjectIdentifier(self))
        }
    }

    /// Uploads do not wait for the queue: the bytes are copied into a staging allocation
    /// and the write is enqueued behind the work already queued, so an upload between two
    /// batches (a sweep's upstream gradients) does not drain the device: it keeps working on
    /// the previous batch while the host prepares the next. Staging memory is freed at the
    /// next point that waits for the queue (a download, synchronize), when the pending
    /// bytes pass `stagingLimit`, or, for one upload larger than that, by writing it blocking.
    public func upload(_ bytes: UnsafeRawBufferPointer, to view: BufferView) throws {
        let b = try clBuffer(view, "upload")
        guard bytes.count % b.dtype.size == 0 else {
            throw AttribError.invalidArgument(op: "upload", detail: "\(bytes.count) bytes is not a whole number of \(b.dtype) elements")
        }
        try view.require(bytes.count / b.dtype.size, "upload", "destination")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try state.withLock { s in
            let (_, q) = try contextAndQueue(&s)
            let offset = view.offset * b.dtype.size
            if bytes.count > Self.stagingLimit {
                try check(clEnqueueWriteBuffer(q, b.mem, cl_bool(CL_TRUE), offset, bytes.count, base, 0, nil, nil),
                          "clEnqueueWriteBuffer", info.summary)
                releaseStaging(&s)   // the queue has drained behind the blocking write
                return
            }
            if s.stagingBytes + bytes.count > Self.stagingLimit {
                try check(clFinish(q), "clFinish", info.summary)
                releaseStaging(&s)
            }
            let staging = UnsafeMutableRawPointer.allocate(byteCount: bytes.count, alignment: 64)
            staging.copyMemory(from: base, byteCount: bytes.count)
            let status = clEnqueueWriteBuffer(q, b.mem, cl_bool(CL_FALSE), offset, bytes.count, staging, 0, nil, nil)
            guard status == CL_SUCCESS else {
                staging.deallocate()
                throw AttribError.openCL(call: "clEnqueueWriteBuffer", code: status, device: info.summary)
            }
            s.staging.append(staging)
            s.stagingBytes += bytes.count
        }
    }

    /// Pending staging bytes past which an upload first waits for the queue.
    static let stagingLimit = 256 << 20

    /// Frees the staging allocations of uploads that have completed: call only after a
    /// blocking command on the (in-order) queue.
    func releaseStaging(_ s: inout State) {
        for p in s.staging { p.deallocate() }
        s.staging.removeAll(keepingCapacity: true)
        s.stagingBytes = 0
    }

    public func download(_ view: BufferView, into bytes: UnsafeMutableRawBufferPointer) throws {
        let b = try clBuffer(view, "download")
        try view.require(bytes.count / b.dtype.size, "download", "source")
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try state.withLock { s in
            let (_, q) = try contextAndQueue(&s)
            try check(clEnqueueReadBuffer(q, b.mem, cl_bool(CL_TRUE), view.offset * b.dtype.size, bytes.count, base, 0, nil, nil),
                      "clEnqueueReadBuffer", info.summary)
            releaseStaging(&s)
        }
    }

    public func synchronize() throws {
        try state.withLock { s in
            let (_, q) = try contextAndQueue(&s)
            try check(clFinish(q), "clFinish", info.summary)
            releaseStaging(&s)
        }
    }

    func clBuffer(_ view: BufferView, _ op: String) throws -> CLBuffer {
        guard let b = view.buffer as? CLBuffer, b.owner == ObjectIdentifier(self) else {
            throw AttribError.deviceMismatch(op: op, detail: "a buffer from another device was passed to \(info.id)")
        }
        return b
    }
}
