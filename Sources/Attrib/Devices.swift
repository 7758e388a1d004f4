import FoundationEssentials

/// Every device this process can use, and selection by spec.
public enum Devices {
    /// The OpenCL devices in platform order, then the CPU backend.
    public static var all: [any Device] { OpenCLDiscovery.shared.devices + [CPUDevice.shared] }

    /// The OpenCL devices alone.
    public static var openCL: [OpenCLDevice] { OpenCLDiscovery.shared.devices }

    /// Why OpenCL shows no device, when it shows none.
    public static var openCLNote: String? { OpenCLDiscovery.shared.note }

    /// The spec in force when none is given: ATTRIB_DEVICE, else "auto".
    public static var defaultSpec: String {
        let env = ProcessInfo.processInfo.environment["ATTRIB_DEVICE"] ?? ""
        return env.isEmpty ? "auto" : env
    }

    /// Selects a device:
    /// - `auto`: the first OpenCL GPU, else the CPU backend;
    /// - `cpu`: the CPU backend; `opencl`: the first OpenCL device of any kind;
    /// - `opencl:N`: OpenCL device N (as `attrib devices` numbers them);
    /// - anything else: the first device whose name contains it (case-insensitive).
    public static func select(_ spec: String? = nil) throws -> any Device {
        let spec = (spec ?? defaultSpec).trimmingSpacesAndLowercased
        // "cpu" never loads the OpenCL drivers: PoCL's start-up (LLVM, its worker
        // threads) cost a CPU run more than a short sweep itself.
        if spec == "cpu" { return CPUDevice.shared }
        let cl = openCL
        switch spec {
        case "auto", "":
            return cl.first { $0.info.kind == .gpu } ?? CPUDevice.shared
        case "opencl":
            if let d = cl.first { return d }
        default:
            if spec.hasPrefix("opencl:"), let n = Int(spec.dropFirst(7)) {
                if n >= 0, n < cl.count { return cl[n] }
            } else if let d = all.first(where: { $0.info.name.lowercased().contains(spec) }) {
                return d
            }
        }
        var available = all.map { $0.info.summary }
        if let note = openCLNote { available.append("(OpenCL: \(note))") }
        throw AttribError.unknownDevice(spec: spec, available: available)
    }
}

extension Devices {
    /// The devices of a sweep: `spec` as a comma-separated list of specs, or `all-gpus` (every
    /// OpenCL GPU). With no spec: under a launcher of several processes, the OpenCL GPU of this
    /// process's local rank (round robin when there are more processes than GPUs), else `auto`.
    public static func selectMany(_ spec: String?, localRank: Int = 0, processes: Int = 1) throws -> [any Device] {
        guard let spec, !spec.isEmpty else {
            let gpus = openCL.filter { $0.info.kind == .gpu }
            if processes > 1, !gpus.isEmpty { return [gpus[localRank % gpus.count]] }
            return [try select(nil)]
        }
        if spec.trimmingSpacesAndLowercased == "all-gpus" {
            let gpus = openCL.filter { $0.info.kind == .gpu }
            guard !gpus.isEmpty else {
                throw AttribError.unknownDevice(spec: "all-gpus", available: all.map { $0.info.summary } + (openCLNote.map { ["(OpenCL: \($0))"] } ?? []))
            }
            return gpus
        }
        var out: [any Device] = []
        for part in spec.split(separator: ",") {
            let d = try select(String(part))
            guard !out.contains(where: { $0 === d }) else {
                throw AttribError.invalidArgument(op: "--device", detail: "'\(part)' names \(d.info.summary) a second time in '\(spec)'")
            }
            out.append(d)
        }
        return out
    }
}

extension String {
    var trimmingSpacesAndLowercased: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()).lowercased()
    }
}
