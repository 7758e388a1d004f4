/// Every error the engine throws. Each case names what went wrong and where
/// (op, tensor, shape, device, file), so a message alone tells a user what to fix.
public enum AttribError: Error, CustomStringConvertible, Equatable {
    /// Shapes that do not fit an op: `op` and a sentence naming the tensors and shapes.
    case shapeMismatch(op: String, detail: String)
    /// A tensor with a zero or negative dimension.
    case emptyTensor(op: String, shape: [Int])
    /// An argument out of its domain (negative size, bad leading dimension, …).
    case invalidArgument(op: String, detail: String)
    /// A dtype the op or device does not support.
    case unsupportedDType(op: String, dtype: DType, device: String)
    /// Tensors from different devices passed to one op.
    case deviceMismatch(op: String, detail: String)
    /// An index outside the table it indexes.
    case indexOutOfRange(op: String, detail: String)
    /// A device spec that matches no device; `available` lists what exists.
    case unknownDevice(spec: String, available: [String])
    /// An OpenCL kernel source that failed to build, with the compiler's log.
    case kernelBuildFailed(file: String, device: String, options: String, log: String)
    /// An OpenCL call that returned an error code.
    case openCL(call: String, code: Int32, device: String)
    /// An allocation larger than the device allows.
    case outOfMemory(device: String, bytes: Int, limit: Int)
    /// A size that does not fit the device's 32-bit index arithmetic.
    case tooLarge(op: String, detail: String)
    /// Reading or writing a file failed.
    case io(path: String, detail: String)

    public var description: String {
        switch self {
        case let .shapeMismatch(op, detail): return "\(op): shape mismatch: \(detail)"
        case let .emptyTensor(op, shape): return "\(op): zero-sized tensor of shape \(shape); every dimension must be at least 1"
        case let .invalidArgument(op, detail): return "\(op): \(detail)"
        case let .unsupportedDType(op, dtype, device): return "\(op): \(dtype) is not supported on \(device)"
        case let .deviceMismatch(op, detail): return "\(op): tensors live on different devices: \(detail)"
        case let .indexOutOfRange(op, detail): return "\(op): index out of range: \(detail)"
        case let .unknownDevice(spec, available):
            return "unknown device '\(spec)'. Available devices:\n" + available.map { "  " + $0 }.joined(separator: "\n")
                + "\nUse auto, cpu, opencl, opencl:N, or a substring of a device name."
        case let .kernelBuildFailed(file, device, options, log):
            return "OpenCL kernel \(file) failed to build on \(device) (options: \(options)): \(log)"
        case let .openCL(call, code, device): return "OpenCL error \(code) (\(openCLErrorName(code))) from \(call) on \(device)"
        case let .outOfMemory(device, bytes, limit): return "allocation of \(bytes) bytes exceeds the limit of \(limit) bytes on \(device)"
        case let .tooLarge(op, detail): return "\(op): \(detail)"
        case let .io(path, detail): return "\(path): \(detail)"
        }
    }
}

/// The symbolic name of an OpenCL error code, for messages.
public func openCLErrorName(_ code: Int32) -> String {
    switch code {
    case -1: return "CL_DEVICE_NOT_FOUND"
    case -2: return "CL_DEVICE_NOT_AVAILABLE"
    case -3: return "CL_COMPILER_NOT_AVAILABLE"
    case -4: return "CL_MEM_OBJECT_ALLOCATION_FAILURE"
    case -5: return "CL_OUT_OF_RESOURCES"
    case -6: return "CL_OUT_OF_HOST_MEMORY"
    case -11: return "CL_BUILD_PROGRAM_FAILURE"
    case -30: return "CL_INVALID_VALUE"
    case -33: return "CL_INVALID_DEVICE"
    case -34: return "CL_INVALID_CONTEXT"
    case -36: return "CL_INVALID_COMMAND_QUEUE"
    case -38: return "CL_INVALID_MEM_OBJECT"
    case -44: return "CL_INVALID_PROGRAM"
    case -45: return "CL_INVALID_PROGRAM_EXECUTABLE"
    case -46: return "CL_INVALID_KERNEL_NAME"
    case -48: return "CL_INVALID_KERNEL"
    case -49: return "CL_INVALID_ARG_INDEX"
    case -50: return "CL_INVALID_ARG_VALUE"
    case -51: return "CL_INVALID_ARG_SIZE"
    case -52: return "CL_INVALID_KERNEL_ARGS"
    case -54: return "CL_INVALID_WORK_GROUP_SIZE"
    case -55: return "CL_INVALID_WORK_ITEM_SIZE"
    case -61: return "CL_INVALID_BUFFER_SIZE"
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver registered with the ICD loader)"
    default: return "unknown"
    }
}
