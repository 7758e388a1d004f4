import AttribCore
import COpenCL

/// One argument of a kernel launch. `real` values are passed as float or
/// double to match the program's REAL.
enum KernelArgument {
    case int(Int)
    case real(Double)
    case buffer(CLBuffer)
    case local(bytes: Int)
}
