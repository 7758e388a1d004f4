import ArgumentParser
import Attrib

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices", abstract: "List every OpenCL device and the CPU backend.")

    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Also build and run the tensor-core probe on each OpenCL device (--precision tf32 and bf16): whether the products run on tensor cores there, and why not where they do not.") var probe = false

    struct Listing: Encodable {
        var devices: [DeviceInfo]
        var openclNote: String?
        var selectedByAuto: String
    }

    func run() throws {
        let all = Devices.all
        let auto = try Devices.select("auto").info.id
        if json {
            try printJSON(Listing(devices: all.map(\.info), openclNote: Devices.openCLNote, selectedByAuto: auto))
            return
        }
        if let note = Devices.openCLNote { print("OpenCL: \(note)\n") }
        for d in all {
            let i = d.info
            print("[\(i.id)]\(i.id == auto ? "  (auto)" : "")")
            print("  kind            \(i.kind.rawValue)")
            print("  vendor          \(i.vendor)")
            print("  name            \(i.name)")
            if let p = i.platform { print("  platform        \(p)") }
            if let v = i.driverVersion { print("  driver          \(v)") }
            if let v = i.openCLVersion { print("  OpenCL          \(v)") }
            print("  compute units   \(i.computeUnits)")
            print("  clock           \(i.clockMHz.map { "\($0) MHz" } ?? "unknown")")
            print("  global memory   \(bytes(i.globalMemoryBytes))")
            print("  max allocation  \(bytes(i.maxAllocationBytes))")
            if let l = i.localMemoryBytes { print("  local memory    \(l / 1024) KiB") }
            if let w = i.maxWorkGroupSize { print("  max work-group  \(w)") }
            print("  fp64            \(i.fp64 ? "yes" : "no")")
            print("  FP32 peak       \(i.fp32PeakGFLOPS.map { fixed($0, 0) + " GFLOP/s" } ?? "unknown") (\(i.peakBasis))")
            if let b = i.blas {
                print("  BLAS            \(b.library): \(b.config)")
                print("  BLAS threads    \(b.threads)")
                if let c = b.core { print("  BLAS kernels    \(c)") }
                if let w = b.warning { print("  BLAS warning    \(w)") }
            }
            if d is CPUDevice { print("  convolutions    \(CPUDevice.convolutionLibrary)") }
            if let cl = d as? OpenCLDevice {
                for p in [MatmulPrecision.tf32, .bf16] {
                    if let peak = cl.tensorPeakGFLOPS(p) { print("  \(p.rawValue) peak       \(fixed(peak.gflops, 0)) GFLOP/s (\(peak.basis))") }
                    if probe { print("  \(p.rawValue) products  \(cl.tensorCoreStatus(p))") }
                }
            }
            print("")
        }
    }
}
