#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// libm's double functions under names of their own, from whichever C library the build links
// (glibc, or musl for a fully static binary). Inside a type that has its own `exp` (CPUScalar's
// Double), an unqualified call would be that member; `Glibc.exp` would not build on musl.
@inline(__always) func libmExp(_ x: Double) -> Double { exp(x) }
@inline(__always) func libmLog(_ x: Double) -> Double { log(x) }
@inline(__always) func libmLog1p(_ x: Double) -> Double { log1p(x) }
@inline(__always) func libmTanh(_ x: Double) -> Double { tanh(x) }
@inline(__always) func libmErf(_ x: Double) -> Double { erf(x) }
@inline(__always) func libmErfc(_ x: Double) -> Double { erfc(x) }
