extension Duration {
    /// The duration in seconds, as a Double: what every timing in the engine reports.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
