public import HTTPTransport
public import Logging
import Synchronization

/// An upstream's quiet period after it answered 429: until its `retryAfter` (default 5 s, at most 1 h) has
/// passed, no request is sent to it; each is refused at once with ``UpstreamError/Code/throttled``
/// (the caller's 503, with `Retry-After`), so stale-if-error can answer from the cache and the
/// refusal cannot be taken for the upstream's own 429.
public final class ThrottleState: Sendable {
    private struct Quiet {
        /// The end of the quiet period in force, if any.
        var until: ContinuousClock.Instant?
        /// Quiet periods started (each one a 429 the upstream answered).
        var started = 0
    }
    private let quiet = Mutex(Quiet())

    public init() {}

    /// Quiet periods started (each one a 429 the upstream answered), for `/metrics`.
    public var started: Int { quiet.withLock { $0.started } }

    /// Seconds left of the quiet period, or nil when there is none.
    public func remaining(now: ContinuousClock.Instant = .now) -> Int? {
        guard let until = quiet.withLock({ $0.until }), until > now else { return nil }
        return max(1, Int((until - now).components.seconds))
    }

    func start(seconds: Int, now: ContinuousClock.Instant = .now) {
        quiet.withLock {
            $0.until = now + .seconds(seconds)
            $0.started += 1
        }
    }
}

/// Keeps an upstream's ``ThrottleState``: starts a quiet period when the upstream answers 429,
/// and (when `refusing`, as for tenant reads) refuses requests during it. Logins and readiness
/// probes record 429s but are not refused: a token must stay obtainable, and a throttling
/// upstream is reachable, not down.
public struct ThrottleTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let upstream: String
    public let state: ThrottleState
    public let refusing: Bool
    /// The seconds a 429 asks the gateway to wait (the product's body or header), if it says.
    let retryAfter: @Sendable (UpstreamResponse) -> Int?
    let logger: Logger

    public init(
        base: any UpstreamTransport, upstream: String, state: ThrottleState, refusing: Bool = true, retryAfter: @escaping @Sendable (UpstreamResponse) -> Int?,
        logger: Logger
    ) {
        self.base = base
        self.upstream = upstream
        self.state = state
        self.refusing = refusing
        self.retryAfter = retryAfter
        self.logger = logger
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        if refusing, let seconds = state.remaining() {
            throw UpstreamError(.throttled, "not called: in the quiet period after a 429", retryAfter: seconds)
        }
        let response = try await base.send(request)
        if response.status == 429 {
            let seconds = retryAfter(response) ?? 5
            state.start(seconds: seconds)
            logger.warning("upstream throttled the gateway", metadata: ["upstream": "\(upstream)", "retry_after": "\(seconds)"])
        }
        return response
    }
}
