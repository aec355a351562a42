public import HTTPTransport
public import Logging

/// The one way the gateway calls anything upstream: each concern is an ``UpstreamTransport``
/// middleware in a file of its own, composed here (in the spirit of KrakenD's proxy chain), for
/// tenant reads, logins, readiness probes and the identity provider's JWKS alike. Outermost first:
///
///     ConcurrencyGate (tenant reads only) → RequestID → Throttle (429 quiet period)
///       → Metrics → Deadline (timeouts.total, once per read) → the transport (libcurl)
///
/// The token (``AuthenticatedTransport``, per account) wraps the result where a client needs one.
public struct UpstreamStack: Sendable {
    /// Tenant reads: queued by the upstream's gate.
    public let reads: any UpstreamTransport
    /// Logins and readiness probes: everything but the gate (logins are coalesced per account;
    /// probes must not queue behind callers' reads).
    public let unqueued: any UpstreamTransport
    public let gate: ConcurrencyGate
    public let throttle: ThrottleState

    /// The stack of the upstream `name` over `transport`. `uuidRequestIDs`: send `X-Request-Id`
    /// only when it is a UUID (VSPC takes it for an idempotency key).
    public init(
        name: String, transport: any UpstreamTransport, totalTimeout: Duration, metrics: GatewayMetrics?, logger: Logger,
        maxConcurrentRequests: Int, maxQueuedRequests: Int, uuidRequestIDs: Bool
    ) {
        let timed = DeadlineTransport(base: transport, upstream: name, limit: totalTimeout)
        let counted: any UpstreamTransport = metrics.map { MetricsTransport(base: timed, upstream: name, metrics: $0) } ?? timed
        let throttle = ThrottleState()
        let throttled = ThrottleTransport(base: counted, upstream: name, state: throttle, logger: logger)
        let identified = RequestIDTransport(base: throttled, uuidOnly: uuidRequestIDs)
        let gate = ConcurrencyGate(upstream: name, limit: maxConcurrentRequests, queue: maxQueuedRequests)
        self.reads = GatedTransport(base: identified, gate: gate)
        self.unqueued = identified
        self.gate = gate
        self.throttle = throttle
    }

    /// The stack of an upstream of the configuration.
    public init(_ definition: UpstreamDefinition, transport: any UpstreamTransport, metrics: GatewayMetrics?, logger: Logger) {
        self.init(
            name: definition.name, transport: transport, totalTimeout: definition.options.totalTimeout, metrics: metrics, logger: logger,
            maxConcurrentRequests: definition.maxConcurrentRequests, maxQueuedRequests: definition.maxQueuedRequests,
            uuidRequestIDs: definition.product == .vspc)
    }
}
