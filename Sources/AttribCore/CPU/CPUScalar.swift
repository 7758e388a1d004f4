#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CBLAS

/// The floating types the CPU backend computes in, with the libm and BLAS
/// entry points for each, so every loop is written once.
protocol CPUScalar: BinaryFloatingPoint, Sendable {
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func log1p(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    static func erfc(_ x: Self) -> Self
    static func gemm(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
                     _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>, _ ldb: Int,
                     _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
}

private func cblasTranspose(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: CPUScalar {
    static func exp(_ x: Float) -> Float { expf(x) }
    static func log(_ x: Float) -> Float { logf(x) }
    static func log1p(_ x: Float) -> Float { log1pf(x) }
    static func tanh(_ x: Float) -> Float { tanhf(x) }
    static func erf(_ x: Float) -> Float { erff(x) }
    static func erfc(_ x: Float) -> Float { erfcf(x) }
    static func gemm(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                     _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                     _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(CblasRowMajor, cblasTranspose(tA), cblasTranspose(tB), blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
}

extension Double: CPUScalar {
    static func exp(_ x: Double) -> Double { libmExp(x) }
    static func log(_ x: Double) -> Double { libmLog(x) }
    static func log1p(_ x: Double) -> Double { libmLog1p(x) }
    static func tanh(_ x: Double) -> Double { libmTanh(x) }
    static func erf(_ x: Double) -> Double { libmErf(x) }
    static func erfc(_ x: Double) -> Double { libmErfc(x) }
    static func gemm(_ tA: Bool, _ tB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
                     _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
                     _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        cblas_dgemm(CblasRowMajor, cblasTranspose(tA), cblasTranspose(tB), blasint(m), blasint(n), blasint(k),
                    alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
}
