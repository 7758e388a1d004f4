import AttribCore
import COpenCL

/// Device memory on an OpenCL device, released with the last reference.
public final class CLBuffer: DeviceBuffer, @unchecked Sendable {
    public let count: Int
    public let dtype: DType
    let mem: cl_mem
    /// The device that made it, so ops can refuse buffers from another context.
    let owner: ObjectIdentifier

    init(mem: cl_mem, count: Int, dtype: DType, owner: ObjectIdentifier) {
        self.mem = mem; self.count = count; self.dtype = dtype; self.owner = owner
    }

    deinit { clReleaseMemObject(mem) }
}
