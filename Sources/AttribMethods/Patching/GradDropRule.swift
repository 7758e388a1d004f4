/// How AtP*'s GradDrop estimates ĉ_l (layer l's residual contribution cut from the backward)
/// become one score per node.
///
/// Why not the paper's mean alone: for a node in layer m, ĉ_l = ĉ for l < m, ĉ_m = 0 and only
/// l > m differ, so paper(n) = (m·|ĉ| + Σ_{l>m} |ĉ_l|)/(L − 1). When a node's effect runs through
/// one later layer l*, ĉ_{l*} ≈ 0; in a deep model that costs one term of L − 1, but in a 2-layer
/// model the mean has only that term, and a layer-0 head whose whole effect runs through layer 1
/// (the previous-token head of an induction circuit) scores ≈ 0: Models/induction-2l's true top
/// node ranked last (Benchmarks/graddrop.sh measures every rule against exact patching).
///
/// GradDrop exists to catch cancellation: ĉ = a + b ≈ 0 with a and b reaching the output
/// through different layers; cutting one of them exposes the other. `floor` keeps that
/// protection (the mean still lifts a cancelled node) and never scores a node below the plain
/// |ĉ| that AtP itself gives it, so GradDrop can only add nodes to the top of the ranking, never
/// push a first-order-large node to the bottom. Scores stay magnitudes (≥ 0).
public enum GradDropRule: String, Sendable, CaseIterable {
    /// max(|ĉ|, paper): the default.
    case floor
    /// (1/(L − 1))·Σ_l |ĉ_l|, Kramár et al. 2024 exactly.
    case paper
    /// max(|ĉ|, max_l |ĉ_l|): the largest single estimate; no 1/(L − 1) dilution of a cancelled
    /// node in deep models, at the price of ranking by one path where two add up.
    case max

    public static let `default`: GradDropRule = .floor

    /// Scores from the plain signed estimate ĉ and ĉ_l per dropped layer (`AtPStar.Result.perDrop`,
    /// L vectors of the node count, ĉ_l = ĉ for nodes above l and 0 in layer l).
    public func scores(signed: [Double], perDrop: [[Double]]) -> [Double] {
        let layers = perDrop.count
        guard layers > 1 else { return signed.map(Swift.abs) }
        return signed.indices.map { i in
            let plain = Swift.abs(signed[i])
            switch self {
            case .paper, .floor:
                var sum = 0.0
                for est in perDrop { sum += Swift.abs(est[i]) }
                let mean = sum / Double(layers - 1)
                return self == .paper ? mean : Swift.max(plain, mean)
            case .max:
                var m = plain
                for est in perDrop { m = Swift.max(m, Swift.abs(est[i])) }
                return m
            }
        }
    }
}
