import AttribCore
import COpenCL

/// The FP32 peak of an OpenCL device, derived from what it reports:
/// compute units × FP32 lanes per unit × 2 (FMA) × clock. The lanes per unit
/// come from vendor extensions (NVIDIA's compute capability, AMD's SIMD
/// attributes) or the host's SIMD width for CPU devices; anything else is
/// reported as unknown rather than guessed.
enum PeakFLOPS {
    static func derive(device id: cl_device_id, kind: DeviceKind, vendor: String, computeUnits: Int,
                       clockMHz: Int, extensions: String) -> (Double?, String) {
        guard clockMHz > 0, computeUnits > 0 else { return (nil, "unknown: no clock or compute-unit count reported") }
        let ghz = Double(clockMHz) / 1000
        if extensions.contains("cl_nv_device_attribute_query") {
            let major = Int(CLInfo.value(id, 0x4000, cl_uint.self)), minor = Int(CLInfo.value(id, 0x4001, cl_uint.self))
            guard let lanes = nvidiaLanesPerSM(major: major, minor: minor) else {
                return (nil, "unknown: NVIDIA compute capability \(major).\(minor) not in the table")
            }
            let g = Double(computeUnits * lanes * 2) * ghz
            return (g, "\(computeUnits) SMs × \(lanes) FP32 lanes × 2 × \(clockMHz) MHz (compute capability \(major).\(minor))")
        }
        if extensions.contains("cl_amd_device_attribute_query") {
            let simds = Int(CLInfo.value(id, 0x4040, cl_uint.self)), width = Int(CLInfo.value(id, 0x4041, cl_uint.self))
            if simds > 0, width > 0 {
                let lanes = simds * width
                return (Double(computeUnits * lanes * 2) * ghz,
                        "\(computeUnits) CUs × \(simds)×\(width) lanes × 2 × \(clockMHz) MHz")
            }
        }
        if kind == .cpu, let perCycle = HostSIMD.fp32FlopsPerCycle() {
            return (Double(computeUnits * perCycle.flops) * ghz,
                    "\(computeUnits) threads × \(perCycle.flops) flop/cycle (\(perCycle.isa)) × \(clockMHz) MHz")
        }
        return (nil, "unknown: \(vendor) does not report its FP32 lanes per compute unit")
    }

    /// FP32 cores per SM by compute capability (NVIDIA's CUDA programming guide table).
    static func nvidiaLanesPerSM(major: Int, minor: Int) -> Int? {
        switch (major, minor) {
        case (3, _): return 192
        case (5, _): return 128
        case (6, 0): return 64
        case (6, _): return 128
        case (7, _): return 64
        case (8, 0): return 64
        case (8, _): return 128
        case (9, _): return 128
        case (10, _), (12, _): return 128
        default: return nil
        }
    }

    /// Dense tensor-core FLOP per clock per SM with Float32 accumulation (NVIDIA's
    /// A100 and H100 whitepapers: 312 and 989 TFLOP/s BF16 at 108 SMs × 1410 MHz and
    /// 132 SMs × 1830 MHz); TF32 runs at half the BF16 rate. nil where not tabled.
    static func nvidiaTensorFlopsPerClockPerSM(major: Int, minor: Int, _ p: MatmulPrecision) -> Int? {
        let bf16: Int
        switch (major, minor) {
        case (8, 0): bf16 = 2048
        case (9, 0): bf16 = 4096
        default: return nil
        }
        switch p { case .bf16: return bf16; case .tf32: return bf16 / 2; case .fp32: return nil }
    }
}

extension OpenCLDevice {
    /// The dense tensor-core peak for a precision at the clock the device reports, with
    /// its basis; nil off the table (then reports give no share of peak).
    public func tensorPeakGFLOPS(_ p: MatmulPrecision) -> (gflops: Double, basis: String)? {
        guard let cc = nvidiaComputeCapability, let clock = info.clockMHz,
              let perClock = PeakFLOPS.nvidiaTensorFlopsPerClockPerSM(major: cc.major, minor: cc.minor, p) else { return nil }
        return (Double(info.computeUnits * perClock) * Double(clock) / 1000,
                "\(info.computeUnits) SMs × \(perClock) dense \(p.rawValue) FLOP/clock × \(clock) MHz (compute capability \(cc.major).\(cc.minor))")
    }
}
