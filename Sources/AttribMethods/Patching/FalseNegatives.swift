#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import AttribCore
import AttribModels

/// AtP*'s false-negative diagnostic: verify the top K nodes of an estimate by exact patching, plus a
/// uniform random sample (seeded) of the other N − K, and bound the fraction of those N − K nodes
/// whose true |effect| exceeds a threshold (default: the K-th largest verified |effect|) with a
/// one-sided Clopper–Pearson bound from the sample: with probability ≥ `confidence` over the draw,
/// the fraction is ≤ `upperBound` (x exceedances in m draws; x = 0 gives 1 − (1 − confidence)^{1/m}).
/// The sample is drawn without replacement from a finite set, for which the binomial bound is conservative.
public enum FalseNegativeCheck {
    public struct Report: Sendable {
        public let topK: Int, sampled: Int
        /// Nodes outside the top K (the population the bound is about) and those never verified.
        public let population: Int, unverified: Int
        public let threshold: Double
        /// Sampled nodes with |effect| > threshold.
        public let exceedances: Int
        public let confidence: Double
        /// Upper confidence bound on the fraction of the population with |effect| > threshold.
        public let upperBound: Double
        /// upperBound · unverified: a bound on the expected number of missed nodes.
        public let missedBound: Double
        /// (node index, exact effect) of every verified node: the top K then the sample.
        public let verified: [(index: Int, effect: Double)]
        public let seconds: Double

        /// The verified nodes outside the estimate's top K whose exact |effect| exceeds the
        /// threshold: the nodes the estimate ranked too low, each with the 1-based rank
        /// `scores` (the estimate that was checked) gives it. Largest |effect| first.
        public func missed(scores: [Double]) -> [(index: Int, effect: Double, rank: Int)] {
            var rank = [Int](repeating: 0, count: scores.count)
            for (r, i) in RankAgreement.order(scores).enumerated() { rank[i] = r + 1 }
            return verified.dropFirst(topK).filter { abs($0.effect) > threshold }
                .sorted { abs($0.effect) > abs($1.effect) }
                .map { (index: $0.index, effect: $0.effect, rank: rank[$0.index]) }
        }

        /// The result in words: what was verified, what was found, and what the bound says.
        public func statement(nodeCount n: Int) -> String {
            let pct = fmt(confidence * 100, 0) + "%"
            var s = "verified the estimate's top \(topK) of \(n) nodes by exact patching"
            let found = exceedances == 0 ? "none of them has" : "\(exceedances) of them \(exceedances == 1 ? "has" : "have")"
            let tau = "|effect| > \(fmt(threshold, 4)) (the \(ordinal(topK)) largest verified |effect|)"
            if sampled == 0 {
                return s + "; no random sample was drawn (--samples 0), so nothing is bounded about the other \(population) nodes"
            }
            if unverified == 0 {
                s += ", and every one of the other \(population) as well: \(found) \(tau)"
                return s + (exceedances == 0 ? "; nothing was missed." : ": the estimate MISSED \(exceedances == 1 ? "it" : "them") (listed below).")
            }
            s += " and a random \(sampled) of the other \(population): \(found) \(tau)"
            if exceedances > 0 { s += "; the estimate MISSED \(exceedances == 1 ? "it" : "them") (listed below)" }
            return s + ". With \(pct) confidence, at most \(fmt(upperBound * 100, 2))% of the \(population) nodes outside the top \(topK) exceed that"
                + " threshold: about \(fmt(missedBound, 1)) of the \(unverified) never verified."
        }

        private func ordinal(_ k: Int) -> String {
            let tens = k % 100 / 10, last = k % 10
            let suffix = tens == 1 ? "th" : last == 1 ? "st" : last == 2 ? "nd" : last == 3 ? "rd" : "th"
            return "\(k)\(suffix)"
        }

        private func fmt(_ v: Double, _ digits: Int) -> String {
            if v != 0 && (abs(v) >= 1e6 || abs(v) < 1e-3) { return "\(v)" }
            var p = 1.0
            for _ in 0..<digits { p *= 10 }
            let r = (v * p).rounded() / p
            var t = "\(r)"
            if digits == 0, t.hasSuffix(".0") { t.removeLast(2) }
            return t
        }
    }

    public static func run(_ model: DecoderModel, pair: PromptPair, metric: TokenMetric, granularity: ComponentGranularity,
                           scores: [Double], topK: Int, samples: Int, seed: UInt64 = 0, threshold: Double? = nil,
                           confidence: Double = 0.95, batchSize: Int? = nil) throws -> Report {
        let start = ContinuousClock.now
        let op = "FalseNegativeCheck"
        let nodes = try ComponentNodeSet(granularity, config: model.config, tokens: pair.clean.count)
        guard scores.count == nodes.count else {
            throw AttribError.shapeMismatch(op: op, detail: "\(scores.count) scores for \(nodes.count) \(granularity.rawValue) nodes")
        }
        guard topK >= 1, topK <= nodes.count, samples >= 0, confidence > 0, confidence < 1 else {
            throw AttribError.invalidArgument(op: op, detail: "top K = \(topK) of \(nodes.count) nodes, \(samples) samples, confidence \(confidence): need 1 ≤ K ≤ N, samples ≥ 0, 0 < confidence < 1")
        }
        let order = scores.indices.sorted { abs(scores[$0]) != abs(scores[$1]) ? abs(scores[$0]) > abs(scores[$1]) : $0 < $1 }
        let top = Array(order.prefix(topK))
        var rest = Array(order.dropFirst(topK))
        let m = min(samples, rest.count)
        var rng = SplitMix64(seed: seed)
        for i in 0..<m {                                  // partial Fisher–Yates
            let j = i + Int(rng.next() % UInt64(rest.count - i))
            rest.swapAt(i, j)
        }
        let sample = Array(rest.prefix(m))
        let exact = try ActivationPatching.effects(model, pair: pair, metric: metric, granularity: granularity,
                                                   only: top + sample, batchSize: batchSize).scores
        let verifiedTop = top.map { ($0, exact[$0]) }, verifiedSample = sample.map { ($0, exact[$0]) }
        let all = (verifiedTop + verifiedSample).map { abs($0.1) }.sorted(by: >)
        let tau = threshold ?? all[min(topK, all.count) - 1]
        let x = verifiedSample.filter { abs($0.1) > tau }.count
        let p = m > 0 ? clopperPearsonUpper(successes: x, trials: m, confidence: confidence) : 1
        let population = nodes.count - topK, unverified = population - m
        return Report(topK: topK, sampled: m, population: population, unverified: unverified, threshold: tau, exceedances: x,
                      confidence: confidence, upperBound: p, missedBound: p * Double(unverified),
                      verified: (verifiedTop + verifiedSample).map { (index: $0.0, effect: $0.1) }, seconds: secondsSince(start))
    }

    /// The one-sided Clopper–Pearson upper bound on a binomial proportion: the p with
    /// P(Bin(n, p) ≤ x) = 1 − confidence (1 when x = n).
    public static func clopperPearsonUpper(successes x: Int, trials n: Int, confidence: Double) -> Double {
        precondition(n >= 1 && x >= 0 && x <= n)
        if x == n { return 1 }
        let alpha = 1 - confidence
        if x == 0 { return 1 - pow(alpha, 1 / Double(n)) }
        var lo = Double(x) / Double(n), hi = 1.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if binomialCDF(x, n, mid) > alpha { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }

    /// P(Bin(n, p) ≤ x), summed in log space.
    static func binomialCDF(_ x: Int, _ n: Int, _ p: Double) -> Double {
        if p <= 0 { return 1 }
        if p >= 1 { return x >= n ? 1 : 0 }
        func lg(_ v: Double) -> Double { lgamma(v) }
        let lp = log(p), lq = log1p(-p), ln = lg(Double(n) + 1)
        var s = 0.0
        for k in 0...x { s += exp(ln - lg(Double(k) + 1) - lg(Double(n - k) + 1) + Double(k) * lp + Double(n - k) * lq) }
        return min(1, s)
    }
}

/// Agreement of estimated and exact node effects (on magnitudes: AtP*'s GradDrop scores are ≥ 0).
public enum RankAgreement {
    /// Spearman's ρ between |a| and |b| (average ranks for ties).
    public static func spearman(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count)
        let ra = ranks(a.map(abs)), rb = ranks(b.map(abs))
        let n = Double(a.count), ma = ra.reduce(0, +) / n, mb = rb.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in ra.indices { sab += (ra[i] - ma) * (rb[i] - mb); saa += (ra[i] - ma) * (ra[i] - ma); sbb += (rb[i] - mb) * (rb[i] - mb) }
        return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : 0
    }

    /// The K that "recall of the true top K" uses for n nodes: min(10, n/4), at least 1, so that
    /// recall can be below 1 (the top 10 of 8 nodes is every node: recall 1 whatever the estimate).
    public static func defaultK(nodes n: Int) -> Int { Swift.max(1, Swift.min(10, n / 4)) }

    /// Node indices by |v| descending (ties: lower index first); position r holds the node ranked r + 1.
    public static func order(_ v: [Double]) -> [Int] {
        v.indices.sorted { abs(v[$0]) != abs(v[$1]) ? abs(v[$0]) > abs(v[$1]) : $0 < $1 }
    }

    /// The true top k (by |truth|), each with the 1-based rank the estimate gives it (by |estimate|).
    public static func ranksOfTrueTop(truth: [Double], estimate: [Double], k: Int) -> [(node: Int, rank: Int)] {
        precondition(truth.count == estimate.count)
        var rank = [Int](repeating: 0, count: estimate.count)
        for (r, i) in order(estimate).enumerated() { rank[i] = r + 1 }
        return order(truth).prefix(Swift.min(k, truth.count)).map { (node: $0, rank: rank[$0]) }
    }

    /// The fraction of the true top k (by |truth|) among the estimate's top k (by |estimate|).
    public static func recall(truth: [Double], estimate: [Double], k: Int) -> Double {
        let k = min(k, truth.count)
        guard k > 0 else { return 1 }
        func top(_ v: [Double]) -> Set<Int> { Set(order(v).prefix(k)) }
        return Double(top(truth).intersection(top(estimate)).count) / Double(k)
    }

    static func ranks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var r = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            let avg = Double(i + j) / 2 + 1
            for k in i...j { r[order[k]] = avg }
            i = j + 1
        }
        return r
    }
}
