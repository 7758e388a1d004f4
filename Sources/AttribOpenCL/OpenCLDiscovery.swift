import AttribCore
import COpenCL

/// Finds every OpenCL platform and device through the ICD loader.
public enum OpenCLDiscovery {
    /// What discovery found: the devices in platform order, and a note when
    /// there were none (no platform registered, or the loader's error).
    public struct Result: Sendable {
        public var devices: [OpenCLDevice]
        public var note: String?
    }

    /// Discovery runs once per process; devices are shared.
    public static let shared: Result = discover()

    private static func discover() -> Result {
        var count: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &count)
        guard status == CL_SUCCESS, count > 0 else {
            let why = status == -1001 || count == 0
                ? "no OpenCL platform: the ICD loader found no driver (.icd files in /etc/OpenCL/vendors, or OCL_ICD_VENDORS)"
                : "clGetPlatformIDs failed: \(status) (\(openCLErrorName(status)))"
            return Result(devices: [], note: why)
        }
        var platforms = [cl_platform_id?](repeating: nil, count: Int(count))
        clGetPlatformIDs(count, &platforms, nil)
        var devices: [OpenCLDevice] = []
        var notes: [String] = []
        for case let platform? in platforms {
            let platformName = CLInfo.platformString(platform, cl_platform_info(CL_PLATFORM_NAME))
            var n: cl_uint = 0
            let s = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &n)
            guard s == CL_SUCCESS, n > 0 else {
                notes.append("platform '\(platformName)' has no devices (\(openCLErrorName(s)))")
                continue
            }
            var ids = [cl_device_id?](repeating: nil, count: Int(n))
            clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), n, &ids, nil)
            for case let id? in ids {
                devices.append(OpenCLDevice(id: id, index: devices.count, platformName: platformName))
            }
        }
        return Result(devices: devices, note: notes.isEmpty ? nil : notes.joined(separator: "; "))
    }
}
