#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Attrib
import Synchronization

@main
struct AttribCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attrib",
        abstract: "Feature and component attribution on GPUs (OpenCL), with an OpenBLAS CPU fallback.",
        version: BuildInfo.line,
        subcommands: [DevicesCommand.self, PredictCommand.self, IGCommand.self, LayerIGCommand.self, SaliencyCommand.self, SmoothGradCommand.self,
                      ExpectedGradientsCommand.self, SobolCommand.self, EvaluateCommand.self, SensitivityCommand.self, ExperimentCommand.self, BenchCommand.self, TuneCommand.self,
                      PatchCommand.self, AtPCommand.self, AtPStarCommand.self, CompareCommand.self, MergeCommand.self])

    static func main() {
        // Before anything else: OpenBLAS's kernels can only be chosen at load (see OpenBLASCore).
        OpenBLASCore.reexecWithFittingCore()
        main(nil)
    }
}

/// Options every command that computes takes.
extension MatmulPrecision: ExpressibleByArgument {}

struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Device: auto (first OpenCL GPU, else cpu), cpu, opencl, opencl:N, or part of a device name. Sweeps also take a list (opencl:0,opencl:1: batches of inputs go to whichever device is free) or all-gpus; under mpirun or srun each process takes the GPU of its local rank. Default: $ATTRIB_DEVICE, else auto.",
        valueName: "spec"))
    var device: String?

    @Option(name: .long, help: ArgumentHelp(
        "Arithmetic of Float32 matrix products: fp32 (default), tf32 or bf16 (operands rounded to 10 or 7 significand bits, products and sums in Float32, as PyTorch's allow_tf32 and autocast). On NVIDIA GPUs of compute capability ≥ 8.0 tf32 and bf16 run on the tensor cores; other OpenCL devices round the operands in their FP32 kernels. The CPU backend computes in FP32 only.",
        valueName: "p"))
    var precision: MatmulPrecision = .fp32

    func selectedDevice() throws -> any Device {
        registerProfileReport()
        let d = try Devices.select(device)
        if let w = d.info.blas?.warning { writeStandardError("warning: \(w)\n") }
        try apply(precision, to: d)
        return d
    }

    /// Sets --precision on a device, and says on standard error which path it takes there.
    private func apply(_ p: MatmulPrecision, to d: any Device) throws {
        guard p != .fp32 else { return }
        try d.setMatmulPrecision(p)
        if let cl = d as? OpenCLDevice { writeStandardError("precision \(p.rawValue) on \(d.info.id): \(cl.tensorCoreStatus(p))\n") }
    }

    /// The devices a sweep runs on in this process: --device as a list (opencl:0,opencl:1) or
    /// all-gpus; without one, under a launcher with several processes, the GPU of this process's
    /// local rank (local rank mod the GPU count), else the default device.
    func selectedDevices(launch: LaunchEnvironment) throws -> [any Device] {
        registerProfileReport()
        let spec = device ?? (Devices.defaultSpec == "auto" ? nil : Devices.defaultSpec)
        let list = try Devices.selectMany(spec, localRank: launch.localRank, processes: launch.size)
        for d in list { if let w = d.info.blas?.warning { writeStandardError("warning: \(w)\n") } }
        for d in list { try apply(precision, to: d) }
        return list
    }
}

/// With ATTRIB_PROFILE=1, the graph ops' time table on standard error when the process ends.
func registerProfileReport() {
    guard OpProfile.enabled, !profileRegistered.exchange(true, ordering: .relaxed) else { return }
    atexit { writeStandardError(OpProfile.report()) }
}
let profileRegistered = Atomic<Bool>(false)
