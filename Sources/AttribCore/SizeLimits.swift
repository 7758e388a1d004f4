/// Sizes read from files, checked before any arithmetic or allocation: a dimension below 1,
/// a product that overflows Int, or one past a stated limit is an error naming the limit,
/// never a trap or an allocation that the OOM killer ends.
public enum SizeLimits {
    /// The most values one sample (one row of a batch) may hold: the OpenCL kernels index
    /// with 32-bit ints, and no device holds one sample larger than this.
    public static let maxSampleElements = Int(Int32.max)

    /// The product of `dims`, or nil where a dimension is below `minimum` or the product
    /// passes `limit` (overflow included).
    public static func product(_ dims: [Int], minimum: Int = 1, limit: Int = maxSampleElements) -> Int? {
        var total = 1
        for d in dims {
            guard d >= minimum else { return nil }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            guard !overflow, p <= limit else { return nil }
            total = p
        }
        return total
    }

    /// `product`, or an error: "`what` \(dims): every dimension ≥ 1 and at most \(limit) values".
    public static func checkedProduct(_ dims: [Int], _ what: String, op: String, limit: Int = maxSampleElements) throws -> Int {
        guard let p = product(dims, limit: limit) else {
            throw AttribError.tooLarge(op: op, detail: "\(what) \(dims): every dimension must be ≥ 1 and the product at most \(limit) values (the 32-bit index limit of one sample)")
        }
        return p
    }

    /// a + b and a·b for sizes, nil on overflow.
    public static func sum(_ a: Int, _ b: Int) -> Int? { let (s, o) = a.addingReportingOverflow(b); return o ? nil : s }
    public static func times(_ a: Int, _ b: Int) -> Int? { let (s, o) = a.multipliedReportingOverflow(by: b); return o ? nil : s }
}
