public import HTTPTransport
public import Logging
import Synchronization

/// An upstream's quiet period after it answered 429: until its `Retry-After` (default 5 s) has
/// passed, no request is sent to it; each is refused at once with our own `upstream.throttled`
/// (503, with `Retry-After`), so stale-if-error can answer from the cache and the refusal cannot
/// be taken for the upstream's own 429.
public final class ThrottleState: Sendable {
    private let until = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    /// Seconds left of the quiet period, or nil when there is none.
    public func remaining(now: ContinuousClock.Instant = .now) -> Int? {
        guard let until = until.withLock({ $0 }), until > now else { return nil }
        return max(1, Int((until - now).components.seconds))
    }

    func start(seconds: Int, now: ContinuousClock.Instant = .now) {
        until.withLock { $0 = now + .seconds(seconds) }
    }
}

/// Keeps an upstream's ``ThrottleState``: refuses requests during its quiet period, and starts
/// one when the upstream answers 429.
public struct ThrottleTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let upstream: String
    public let state: ThrottleState
    let logger: Logger

    public init(base: any UpstreamTransport, upstream: String, state: ThrottleState, logger: Logger) {
        self.base = base
        self.upstream = upstream
        self.state = state
        self.logger = logger
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        if let seconds = state.remaining() {
            throw GatewayError(
                .upstream("upstream.throttled", .upstreamBusy), detail: "Upstream \(upstream) is throttling requests.", upstream: upstream,
                retryAfter: seconds, logDetail: "not called: in the quiet period after a 429")
        }
        let response = try await base.send(request)
        if response.status == 429 {
            let seconds = max(1, response.header("retry-after").flatMap { Int($0) } ?? 5)
            state.start(seconds: seconds)
            logger.warning("upstream throttled the gateway", metadata: ["upstream": "\(upstream)", "retry_after": "\(seconds)"])
        }
        return response
    }
}
