/// One deadline for everything a read of an upstream does (its login, its pages, its fan-out):
/// `timeouts.total`, applied once. ``within(_:_:)`` sets it for the task and every task it starts;
/// ``DeadlineTransport`` cuts each transfer's own timeout to what is left of it, and refuses a
/// transfer once it has passed. No timer task runs beside the read: the transfers themselves (the
/// libcurl total timeout of each) enforce it.
public enum UpstreamDeadline {
    /// The deadline of the read in progress, if any.
    @TaskLocal public static var current: ContinuousClock.Instant?

    /// Runs `operation` with a deadline `limit` from now, or the enclosing one if that is sooner.
    public static func within<T: Sendable>(_ limit: Duration, _ operation: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + limit
        let effective = current.map { min($0, deadline) } ?? deadline
        return try await $current.withValue(effective) { try await operation() }
    }

    /// The time a transfer may take: `limit`, cut to what is left of the deadline; throws
    /// `upstream.timeout` when nothing is left.
    public static func remaining(upTo limit: Duration, upstream: String) throws -> Duration {
        guard let current else { return limit }
        let left = current - ContinuousClock.now
        guard left > .zero else { throw UpstreamError(.timeout, "no complete answer from \(upstream) within the total timeout") }
        return min(limit, left)
    }
}

/// Applies ``UpstreamDeadline`` to every request through `base`: each transfer's timeout is its
/// own (or `limit`) cut to what is left of the read's deadline.
public struct DeadlineTransport: UpstreamTransport {
    public let base: any UpstreamTransport
    public let upstream: String
    /// The transport's own total timeout (`timeouts.total`), for requests that set none.
    public let limit: Duration

    public init(base: any UpstreamTransport, upstream: String, limit: Duration) {
        self.base = base
        self.upstream = upstream
        self.limit = limit
    }

    public func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        guard UpstreamDeadline.current != nil else { return try await base.send(request) }
        var request = request
        request.timeout = try UpstreamDeadline.remaining(upTo: request.timeout ?? limit, upstream: upstream)
        return try await base.send(request)
    }
}
