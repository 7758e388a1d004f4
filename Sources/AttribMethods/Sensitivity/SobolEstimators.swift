/// Estimators of Sobol' indices from Saltelli-design outputs.
///
/// Notation: y = f(A), y' = f(AB_i) (A with column i from B, so y and y'
/// share every input but X_i), f(B), over N base points; mean(·) is the
/// average over those N. V is the output variance over f(A) and f(B)
/// together, population form (1/(2N)·Σ(y − ȳ)²), as SALib's `np.var(np.r_[A, B])`.
///
/// SALib's guards are kept: where f(A) ∪ f(B) is constant (range ≤ machine
/// epsilon) or V ≤ machine epsilon, an index is 0, not NaN.
public enum SobolEstimators {
    /// Machine epsilon, SALib's threshold for "constant".
    static let eps = Double.ulpOfOne

    /// V: the population variance of f(A) and f(B) together.
    public static func variance(a: [Double], b: [Double]) -> Double {
        let n = Double(a.count + b.count)
        let mean = (a.reduce(0, +) + b.reduce(0, +)) / n
        var s = 0.0
        for y in a { s += (y - mean) * (y - mean) }
        for y in b { s += (y - mean) * (y - mean) }
        return s / n
    }

    /// True where f(A) ∪ f(B) is constant to machine epsilon (SALib's `np.ptp(y) <= eps`).
    public static func isConstant(a: [Double], b: [Double]) -> Bool {
        var lo = Double.infinity, hi = -Double.infinity
        for y in a { lo = min(lo, y); hi = max(hi, y) }
        for y in b { lo = min(lo, y); hi = max(hi, y) }
        return !(hi - lo > eps)
    }

    /// Divides by V the SALib way: 0 where V ≤ eps (or is NaN).
    static func ratio(_ num: Double, _ v: Double) -> Double { v > eps ? num / v : 0 }

    /// First-order index, Saltelli et al. 2010 (Table 2, (a)):
    ///     S_i = mean(f(B) · (f(AB_i) − f(A))) / V.
    public static func firstOrder(a: [Double], b: [Double], ab: [Double]) -> Double {
        if isConstant(a: a, b: b) { return 0 }
        var s = 0.0
        for n in a.indices { s += b[n] * (ab[n] - a[n]) }
        return ratio(s / Double(a.count), variance(a: a, b: b))
    }

    /// Total-order index by `estimator` (Jansen by default, SALib's).
    public static func totalOrder(_ estimator: TotalOrderEstimator = .jansen,
                                  a: [Double], b: [Double], ab: [Double]) -> Double {
        if isConstant(a: a, b: b) { return 0 }
        return estimator.estimate(a: a, ab: ab, variance: variance(a: a, b: b))
    }

    /// Second-order index, SALib's formula (after Saltelli 2002):
    ///     S_jk = mean(f(BA_j) · f(AB_k) − f(A) · f(B)) / V − S_j − S_k,
    /// with S_j, S_k the first-order estimates above.
    public static func secondOrder(a: [Double], b: [Double], abJ: [Double], abK: [Double], baJ: [Double]) -> Double {
        if isConstant(a: a, b: b) { return 0 }
        var s = 0.0
        for n in a.indices { s += baJ[n] * abK[n] - a[n] * b[n] }
        let vjk = ratio(s / Double(a.count), variance(a: a, b: b))
        return vjk - firstOrder(a: a, b: b, ab: abJ) - firstOrder(a: a, b: b, ab: abK)
    }
}

/// Estimators of the total-order index ST_i. Each is written from its paper;
/// y = f(A), y' = f(AB_i), V as in `SobolEstimators`, means over the N base points.
public enum TotalOrderEstimator: String, CaseIterable, Sendable {
    /// Jansen 1999 (Saltelli et al. 2010, Table 2 (f)); SALib's ST:
    ///     ST_i = mean((y − y')²) / (2V).
    case jansen
    /// Homma & Saltelli 1996: V_(~i) = mean(y·y') − f0², with f0 = mean(y), so
    ///     ST_i = 1 − (mean(y·y') − mean(y)²) / V.
    case homma
    /// Janon et al. 2014 (the asymptotically efficient closed-index estimator
    /// applied to the complementary set ~i), with m = mean((y + y')/2):
    ///     ST_i = 1 − (mean(y·y') − m²) / (mean((y² + y'²)/2) − m²).
    /// Self-normalised: it does not use V.
    case janon
    /// Glen & Isaacs 2012: one minus the sample correlation of y and y',
    ///     ST_i = 1 − Σ(y − ȳ)(y' − ȳ') / √(Σ(y − ȳ)² · Σ(y' − ȳ')²)
    /// (their (N−1) factors cancel). Self-normalised: it does not use V.
    case glen
    /// Saltelli et al. 2010, Table 2 (e) (Sobol' 2007):
    ///     ST_i = mean(y · (y − y')) / V.
    case saltelli

    /// ST_i from y = f(A), y' = f(AB_i) and V. Where a denominator is ≤ machine
    /// epsilon (constant outputs) the index is 0, SALib's convention.
    public func estimate(a y: [Double], ab y2: [Double], variance v: Double) -> Double {
        let n = Double(y.count)
        switch self {
        case .jansen:
            var s = 0.0
            for k in y.indices { s += (y[k] - y2[k]) * (y[k] - y2[k]) }
            return SobolEstimators.ratio(0.5 * s / n, v)
        case .homma:
            var s = 0.0, f0 = 0.0
            for k in y.indices { s += y[k] * y2[k]; f0 += y[k] }
            f0 /= n
            guard v > SobolEstimators.eps else { return 0 }
            return 1 - (s / n - f0 * f0) / v
        case .janon:
            var sp = 0.0, sm = 0.0, sq = 0.0
            for k in y.indices {
                sp += y[k] * y2[k]; sm += (y[k] + y2[k]) / 2; sq += (y[k] * y[k] + y2[k] * y2[k]) / 2
            }
            let m = sm / n
            let den = sq / n - m * m
            guard den > SobolEstimators.eps else { return 0 }
            return 1 - (sp / n - m * m) / den
        case .glen:
            let m1 = y.reduce(0, +) / n, m2 = y2.reduce(0, +) / n
            var c = 0.0, s1 = 0.0, s2 = 0.0
            for k in y.indices {
                c += (y[k] - m1) * (y2[k] - m2); s1 += (y[k] - m1) * (y[k] - m1); s2 += (y2[k] - m2) * (y2[k] - m2)
            }
            let den = (s1 * s2).squareRoot()
            guard den > SobolEstimators.eps else { return 0 }
            return 1 - c / den
        case .saltelli:
            var s = 0.0
            for k in y.indices { s += y[k] * (y[k] - y2[k]) }
            return SobolEstimators.ratio(s / n, v)
        }
    }
}
