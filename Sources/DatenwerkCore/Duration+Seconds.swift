extension Duration {
    /// The duration in seconds, with its fraction (for timeouts, rates and log lines).
    package var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
