import ArgumentParser
import Attrib

@main
struct AttribCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attrib",
        abstract: "Feature and component attribution on GPUs (OpenCL), with an OpenBLAS CPU fallback.",
        version: BuildInfo.line,
        subcommands: [DevicesCommand.self, PredictCommand.self, IGCommand.self, SaliencyCommand.self, SmoothGradCommand.self,
                      ExpectedGradientsCommand.self, SobolCommand.self, EvaluateCommand.self, SensitivityCommand.self, ExperimentCommand.self, BenchCommand.self, TuneCommand.self,
                      PatchCommand.self, AtPCommand.self, AtPStarCommand.self, CompareCommand.self])
}

/// Options every command that computes takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Device: auto (first OpenCL GPU, else cpu), cpu, opencl, opencl:N, or part of a device name. Default: $ATTRIB_DEVICE, else auto.",
        valueName: "spec"))
    var device: String?

    func selectedDevice() throws -> any Device {
        let d = try Devices.select(device)
        if let w = d.info.blas?.warning { writeStandardError("warning: \(w)\n") }
        return d
    }
}
