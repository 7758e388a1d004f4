#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// AtP*'s QK fix for keys on the CPU backend (the same two passes as Kernels/atp.cl's
// atp_row_stats and atp_key_effects, computed in Double for both float types).

extension CPUDevice {
    public func atpKeyEffects(n: Int, t: Int, scores: BufferView, delta: BufferView, grad: BufferView, y: BufferView) throws {
        let op = "atpKeyEffects"
        try AttribError.requirePositive(op, ["n": n, "t": t])
        let tt = t
        func run<T: CPUScalar>(_: T.Type) throws {
            let xp = try pointer(T.self, scores, op, n * tt * tt), dp = try pointer(T.self, delta, op, n * tt * tt)
            let gp = try pointer(T.self, grad, op, n * tt * tt), yp = try pointer(T.self, y, op, n * tt)
            parallelChunks(n, grain: max(1, (1 << 14) / (tt * tt))) { range in
                var stats = [Double](repeating: 0, count: tt * 7)
                for b in range {
                    let base = b * tt * tt
                    // Row statistics (see atp.cl): m, s*, m2, S, SG, S2, SG2.
                    for r in 0..<tt {
                        let row = base + r * tt
                        var m = Double(xp[row]), sstar = 0
                        if r > 0 { for s in 1...r where Double(xp[row + s]) > m { m = Double(xp[row + s]); sstar = s } }
                        var m2 = -Double.infinity
                        for s in 0...r where s != sstar && Double(xp[row + s]) > m2 { m2 = Double(xp[row + s]) }
                        var S = 0.0, SG = 0.0, S2 = 0.0, SG2 = 0.0
                        for s in 0...r {
                            let xv = Double(xp[row + s]), gv = Double(gp[row + s])
                            let e = libmExp(xv - m)
                            S += e; SG += e * gv
                            if s != sstar { let e2 = libmExp(xv - m2); S2 += e2; SG2 += e2 * gv }
                        }
                        stats.withUnsafeMutableBufferPointer { o in
                            let k = r * 7
                            o[k] = m; o[k + 1] = Double(sstar); o[k + 2] = m2; o[k + 3] = S; o[k + 4] = SG; o[k + 5] = S2; o[k + 6] = SG2
                        }
                    }
                    for s in 0..<tt {
                        var acc = 0.0
                        var r = max(s, 1)
                        while r < tt {
                            let k = r * 7, idx = base + r * tt + s
                            let m = stats[k], sstar = Int(stats[k + 1])
                            let xv = Double(xp[idx]), dv = Double(dp[idx]), gv = Double(gp[idx])
                            let l: Double, gbar: Double
                            if s == sstar {
                                l = (m - stats[k + 2]) - libmLog(stats[k + 5])
                                gbar = stats[k + 6] / stats[k + 5]
                            } else {
                                let ex = libmExp(xv - m), den = stats[k + 3] - ex
                                l = (xv - m) - libmLog(den)
                                gbar = (stats[k + 4] - ex * gv) / den
                            }
                            acc += (atpSigmoid(l + dv) - atpSigmoid(l)) * (gv - gbar)
                            r += 1
                        }
                        yp[b * tt + s] = T(acc)
                    }
                }
            }
        }
        try withScalar(y, op) { try run($0) }
    }
}

/// σ(z) without overflow for either sign.
@inline(__always) func atpSigmoid(_ z: Double) -> Double {
    if z >= 0 { return 1 / (1 + libmExp(-z)) }
    let e = libmExp(z)
    return e / (1 + e)
}
