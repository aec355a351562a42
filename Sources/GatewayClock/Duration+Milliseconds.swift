extension Duration {
    /// Whole milliseconds, at least 1 for a positive duration, 0 for none, clamped to `Int.max`:
    /// what libcurl's and Redis's millisecond options are given.
    public var clampedMilliseconds: Int {
        let (seconds, attoseconds) = self.components
        if seconds < 0 { return 0 }
        let (ms, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return Int.max }
        let total = ms + attoseconds / 1_000_000_000_000_000
        if total == 0 && attoseconds > 0 { return 1 }
        return Int(clamping: total)
    }
}
