/// The gateway's one clock: a Swift `Clock` of `ContinuousClock` instants, injected wherever time
/// decides something (token expiry and refresh, cache freshness, rate and failed-authentication
/// windows, readiness intervals, JWKS refreshes, the 5 s memory of a failed version discovery).
/// Production uses ``continuous``; tests pass a manual clock (GatewayTestSupport's `ManualClock`)
/// and advance it instead of sleeping.
///
/// Two kinds of time stay outside it, on purpose: transfer deadlines (`UpstreamDeadline`), which
/// libcurl enforces in real time and so must be real time too, and elapsed times measured for
/// metrics and logs; wall-clock dates (`Date`) are for what is shown or signed: `fetchedAt`, JWT
/// `iat`/`exp`.
public struct GatewayClock: Clock, Sendable {
    public typealias Instant = ContinuousClock.Instant
    public typealias Duration = Swift.Duration

    private let read: @Sendable () -> Instant
    private let wait: @Sendable (Instant, Duration?) async throws -> Void

    /// A clock reading `now` and sleeping with `sleep` (until an instant, with a tolerance).
    public init(now: @escaping @Sendable () -> Instant, sleep: @escaping @Sendable (Instant, Duration?) async throws -> Void) {
        self.read = now
        self.wait = sleep
    }

    /// The real, monotonic clock.
    public static let continuous = GatewayClock(now: { ContinuousClock.now }, sleep: { deadline, tolerance in
        try await ContinuousClock().sleep(until: deadline, tolerance: tolerance)
    })

    public var now: Instant { read() }

    public var minimumResolution: Duration { ContinuousClock().minimumResolution }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await wait(deadline, tolerance)
    }
}
