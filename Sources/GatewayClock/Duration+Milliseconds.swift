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

extension Int {
    /// `value` rounded toward zero and saturated: `Int.max` or `Int.min` beyond the range, 0 for
    /// NaN. For every number an upstream or a caller can reach (`Int(_:)` traps on those).
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9.2233720368547758e18 {
            self = .max
        } else if value <= -9.2233720368547758e18 {
            self = .min
        } else {
            self = Int(value)
        }
    }
}

extension Duration {
    /// `seconds` as a duration within `range` (NaN counts as the lower bound): never traps,
    /// whatever the number, and never leaves the range.
    public static func clamped(seconds: Double, to range: ClosedRange<Duration>) -> Duration {
        let lower = range.lowerBound.inSeconds
        let upper = range.upperBound.inSeconds
        guard !seconds.isNaN, seconds > lower else { return range.lowerBound }
        guard seconds < upper else { return range.upperBound }
        return .milliseconds(Int64(Int(saturating: seconds * 1000)))
    }

    /// The duration in seconds, as a Double (attoseconds included).
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// Whole nanoseconds, rounded toward zero and saturated to `Int64`. One native 128-bit
    /// division of the attoseconds: `components` splits them with a software division three
    /// times as slow, which what runs on every request should not pay.
    public var wholeNanoseconds: Int64 { Int64(clamping: attoseconds / 1_000_000_000) }

    /// Whole microseconds, rounded toward zero and saturated to `Int64` (as ``wholeNanoseconds``).
    public var wholeMicroseconds: Int64 { Int64(clamping: attoseconds / 1_000_000_000_000) }

    /// Whole seconds, rounded toward zero and saturated to `Int64` (as ``wholeNanoseconds``).
    public var wholeSeconds: Int64 { Int64(clamping: attoseconds / 1_000_000_000_000_000_000) }
}
