#if canImport(Glibc)
import Glibc
#endif
import CBLAS

/// Which of its kernel sets OpenBLAS runs, and the attrib CLI's remedy when the library chose
/// kernels older than the CPU (see `HostSIMD.fittingBLASCore`).
public enum OpenBLASCore {
    /// The kernel set in use, as OpenBLAS names it ("Haswell", "SkylakeX", "Prescott", …).
    public static var name: String { String(cString: openblas_get_corename()) }

    /// Set in the environment of a re-executed process: the kernel set OpenBLAS had chosen.
    static let detectedVariable = "ATTRIB_BLAS_CORE_DETECTED"

    /// Where OpenBLAS chose kernels older than the CPU and nobody set OPENBLAS_CORETYPE, sets it
    /// to the kernel set that fits and re-executes this program (same arguments, same process):
    /// OpenBLAS reads the variable only while it loads, before any of our code runs, so a
    /// restart is the one way to change it. Called first thing by the attrib CLI; a program
    /// embedding the library can call it the same way, or set the variable itself.
    /// ATTRIB_KEEP_BLAS_CORE=1 keeps OpenBLAS's own choice. Returns (without restarting) when
    /// nothing needs doing or exec fails; the CPU device's BLAS warning then says what to set.
    public static func reexecWithFittingCore() {
        guard getenv("OPENBLAS_CORETYPE") == nil, getenv("ATTRIB_KEEP_BLAS_CORE") == nil else { return }
        let chosen = name
        guard let fit = HostSIMD.fittingBLASCore(core: chosen, flags: HostCPU.read().flags) else { return }
        setenv("OPENBLAS_CORETYPE", fit, 1)
        setenv(detectedVariable, chosen, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")            // exec failed: carry on with the kernels chosen
        unsetenv(detectedVariable)
    }

    /// How the kernel set in use came to be, for `attrib devices`: "SkylakeX" or
    /// "SkylakeX (OPENBLAS_CORETYPE set by attrib; the library chose Prescott for this CPU)".
    public static var description: String {
        let n = name
        if let d = getenv(detectedVariable).map({ String(cString: $0) }), d != n {
            return "\(n) (OPENBLAS_CORETYPE set by attrib; the library chose \(d) for this CPU)"
        }
        return n
    }
}
