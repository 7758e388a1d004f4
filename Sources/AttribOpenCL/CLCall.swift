import AttribCore
import COpenCL

/// Throws AttribError.openCL unless `code` is CL_SUCCESS.
@inline(__always)
func check(_ code: cl_int, _ call: String, _ device: String) throws {
    if code != CL_SUCCESS { throw AttribError.openCL(call: call, code: code, device: device) }
}

/// clGet*Info readers for the device and platform queries discovery makes.
enum CLInfo {
    static func string(_ device: cl_device_id, _ param: cl_device_info) -> String {
        var size = 0
        guard clGetDeviceInfo(device, param, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        guard clGetDeviceInfo(device, param, size, &bytes, nil) == CL_SUCCESS else { return "" }
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingSpaces
    }

    static func value<T: FixedWidthInteger>(_ device: cl_device_id, _ param: cl_device_info, _: T.Type) -> T {
        var v: T = 0
        _ = clGetDeviceInfo(device, param, MemoryLayout<T>.size, &v, nil)
        return v
    }

    static func platformString(_ platform: cl_platform_id, _ param: cl_platform_info) -> String {
        var size = 0
        guard clGetPlatformInfo(platform, param, 0, nil, &size) == CL_SUCCESS, size > 0 else { return "" }
        var bytes = [CChar](repeating: 0, count: size)
        guard clGetPlatformInfo(platform, param, size, &bytes, nil) == CL_SUCCESS else { return "" }
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .trimmingSpaces
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
