/// What a device is, as `attrib devices` prints it.
public enum DeviceKind: String, Sendable, Codable {
    case gpu = "GPU", cpu = "CPU", accelerator = "accelerator", cpuBackend = "CPU (BLAS)", other
}

/// The CPU backend's BLAS library.
public struct BLASInfo: Sendable, Codable, Equatable {
    public var library: String
    public var config: String
    public var threads: Int
    /// Set when the library's kernels do not suit this CPU (see `HostSIMD.blasCoreWarning`).
    public var warning: String?
    /// The kernel set in use and how it was chosen (`OpenBLASCore.description`).
    public var core: String?
    public init(library: String, config: String, threads: Int, warning: String? = nil, core: String? = nil) {
        self.library = library; self.config = config; self.threads = threads; self.warning = warning; self.core = core
    }
}

/// A device's description. Fields that do not apply (OpenCL fields on the
/// CPU backend) are nil.
public struct DeviceInfo: Sendable, Codable, Equatable {
    /// The device's handle for --device: "cpu" or "opencl:N".
    public var id: String
    public var kind: DeviceKind
    public var vendor: String
    public var name: String
    public var driverVersion: String?
    public var openCLVersion: String?
    public var platform: String?
    public var computeUnits: Int
    public var clockMHz: Int?
    public var globalMemoryBytes: Int
    public var maxAllocationBytes: Int
    public var localMemoryBytes: Int?
    public var fp64: Bool
    public var maxWorkGroupSize: Int?
    public var blas: BLASInfo?
    /// The FP32 peak in GFLOP/s where it can be derived from what the device
    /// reports (see PeakFLOPS.swift), else nil.
    public var fp32PeakGFLOPS: Double?
    /// How the peak was derived, or why it could not be.
    public var peakBasis: String

    public init(id: String, kind: DeviceKind, vendor: String, name: String, driverVersion: String? = nil,
                openCLVersion: String? = nil, platform: String? = nil, computeUnits: Int, clockMHz: Int? = nil,
                globalMemoryBytes: Int, maxAllocationBytes: Int, localMemoryBytes: Int? = nil, fp64: Bool,
                maxWorkGroupSize: Int? = nil, blas: BLASInfo? = nil, fp32PeakGFLOPS: Double? = nil, peakBasis: String = "") {
        self.id = id; self.kind = kind; self.vendor = vendor; self.name = name
        self.driverVersion = driverVersion; self.openCLVersion = openCLVersion; self.platform = platform
        self.computeUnits = computeUnits; self.clockMHz = clockMHz
        self.globalMemoryBytes = globalMemoryBytes; self.maxAllocationBytes = maxAllocationBytes
        self.localMemoryBytes = localMemoryBytes; self.fp64 = fp64; self.maxWorkGroupSize = maxWorkGroupSize
        self.blas = blas; self.fp32PeakGFLOPS = fp32PeakGFLOPS; self.peakBasis = peakBasis
    }

    /// One line for lists and errors: "opencl:0  GPU  NVIDIA H100 …".
    public var summary: String { "\(id)  \(kind.rawValue)  \(name) (\(vendor))" }
}
