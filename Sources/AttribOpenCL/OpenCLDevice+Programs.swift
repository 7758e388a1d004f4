import AttribCore
import AttribKernels
import COpenCL

extension OpenCLDevice {
    /// The build options every program gets: the compute type, the row-kernel
    /// work-group size, and the family's own -D values (GEMM tiles).
    func buildOptions(dtype: DType, defines: [(String, Int)]) -> String {
        var o = "-cl-std=CL1.2 -DREAL=\(dtype == .float64 ? "double" : "float")"
        if dtype == .float64 { o += " -DUSE_FP64=1" }
        o += " -DRED_WG=\(reductionGroupSize)"
        for (k, v) in defines { o += " -D\(k)=\(v)" }
        return o
    }

    /// Builds `source`; a failure throws kernelBuildFailed with the compiler's log.
    func buildProgram(_ s: inout State, source: String, file: String, options: String) throws -> cl_program {
        let (ctx, _) = try contextAndQueue(&s)
        var err: cl_int = 0
        let program: cl_program? = source.withCString { cstr in
            var p: UnsafePointer<CChar>? = cstr
            var len = source.utf8.count
            return clCreateProgramWithSource(ctx, 1, &p, &len, &err)
        }
        guard let program, err == CL_SUCCESS else {
            throw AttribError.openCL(call: "clCreateProgramWithSource(\(file))", code: err, device: info.summary)
        }
        var device: cl_device_id? = id
        let status = clBuildProgram(program, 1, &device, options, nil, nil)
        if status != CL_SUCCESS {
            let log = buildLog(program)
            clReleaseProgram(program)
            // The status always: NVIDIA's compiler can fail with only warnings in the log
            // (after an earlier kernel faulted, every build in the process does).
            throw AttribError.kernelBuildFailed(file: file, device: info.summary, options: options,
                                                log: "clBuildProgram returned \(status) (\(openCLErrorName(status)))"
                                                    + (log.isEmpty ? "; no log" : "; log:\n" + log))
        }
        return program
    }

    private func buildLog(_ program: cl_program) -> String {
        var size = 0
        clGetProgramBuildInfo(program, id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size)
        guard size > 1 else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        clGetProgramBuildInfo(program, id, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil)
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).trimmingSpaces
    }

    /// Builds an arbitrary OpenCL C source and discards it: checks that a
    /// source compiles here, and surfaces the build log when it does not.
    public func compile(source: String, name: String, options: String = "-cl-std=CL1.2") throws {
        try state.withLock { s in
            let p = try buildProgram(&s, source: source, file: name, options: options)
            clReleaseProgram(p)
        }
    }

    /// The key of a family's built program in State.programs.
    static func programKey(_ family: KernelSource, options: String) -> String { family.rawValue + " " + options }

    /// A kernel of a family's program for this dtype and defines, built on first use.
    func kernel(_ s: inout State, _ family: KernelSource, _ name: String, dtype: DType,
                defines: [(String, Int)]) throws -> cl_kernel {
        let options = buildOptions(dtype: dtype, defines: defines)
        let programKey = Self.programKey(family, options: options)
        let kernelKey = programKey + " " + name
        if let k = s.kernels[kernelKey] { return k }
        let program: cl_program
        if let p = s.programs[programKey] {
            program = p
        } else {
            program = try buildProgram(&s, source: family.text, file: "Kernels/" + family.fileName, options: options)
            s.programs[programKey] = program
        }
        var err: cl_int = 0
        guard let k = clCreateKernel(program, name, &err), err == CL_SUCCESS else {
            throw AttribError.openCL(call: "clCreateKernel(\(name) in \(family.fileName))", code: err, device: info.summary)
        }
        s.kernels[kernelKey] = k
        return k
    }

    /// Sets the arguments and enqueues one launch. `local` nil lets the driver choose.
    func launch(_ family: KernelSource, _ name: String, dtype: DType, defines: [(String, Int)] = [],
                _ args: [KernelArgument], global: [Int], local: [Int]?) throws {
        for case let .int(v) in args where v > Int(Int32.max) || v < Int(Int32.min) {
            throw AttribError.tooLarge(op: name, detail: "size or offset \(v) exceeds the 32-bit indexing of the OpenCL kernels; split the work into smaller tensors")
        }
        try state.withLock { s in
            let k = try kernel(&s, family, name, dtype: dtype, defines: defines)
            let (_, q) = try contextAndQueue(&s)
            for (i, a) in args.enumerated() {
                let idx = cl_uint(i)
                let status: cl_int
                switch a {
                case .int(let v):
                    var x = cl_int(v); status = clSetKernelArg(k, idx, MemoryLayout<cl_int>.size, &x)
                case .real(let v):
                    if dtype == .float64 { var x = v; status = clSetKernelArg(k, idx, 8, &x) }
                    else { var x = Float(v); status = clSetKernelArg(k, idx, 4, &x) }
                case .buffer(let b):
                    var m: cl_mem? = b.mem; status = clSetKernelArg(k, idx, MemoryLayout<cl_mem>.size, &m)
                case .local(let bytes):
                    status = clSetKernelArg(k, idx, bytes, nil)
                }
                try check(status, "clSetKernelArg(\(name), \(i))", info.summary)
            }
            var g = global
            let status: cl_int
            if var l = local {
                status = clEnqueueNDRangeKernel(q, k, cl_uint(g.count), nil, &g, &l, 0, nil, nil)
            } else {
                status = clEnqueueNDRangeKernel(q, k, cl_uint(g.count), nil, &g, nil, 0, nil, nil)
            }
            try check(status, "clEnqueueNDRangeKernel(\(name), global \(global), local \(local.map { "\($0)" } ?? "auto"))", info.summary)
        }
    }

    /// A 1-D launch over n items, local size 256 (or the device's maximum), global rounded up.
    func launch1D(_ family: KernelSource, _ name: String, dtype: DType, _ args: [KernelArgument], n: Int) throws {
        let local = min(256, info.maxWorkGroupSize ?? 256)
        try launch(family, name, dtype: dtype, args, global: [(n + local - 1) / local * local], local: [local])
    }

    /// A row launch: one work-group of reductionGroupSize items per row.
    func launchRows(_ family: KernelSource, _ name: String, dtype: DType, _ args: [KernelArgument], rows: Int) throws {
        try launch(family, name, dtype: dtype, args, global: [rows * reductionGroupSize], local: [reductionGroupSize])
    }
}
