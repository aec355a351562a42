public import GatewayObservability
public import HTTPTransport
public import Logging

/// The one way the gateway calls anything upstream: each concern is an ``UpstreamTransport``
/// middleware in a file of its own, composed here (in the spirit of KrakenD's proxy chain), for
/// tenant reads, logins, readiness probes and the identity provider's JWKS alike. Outermost first:
///
///     reads:  ConcurrencyGate → RequestID → Throttle (refuses in a 429 quiet period) → Metrics → Deadline → transport
///     probes:                   RequestID → Throttle (records 429s)               → Metrics → Deadline → transport
///     logins:                               Throttle (records 429s)               → Metrics → Deadline → transport
///
/// Logins carry no caller's `X-Request-Id` (VSPC takes it for an idempotency key, and a login
/// serves every caller); neither logins nor probes queue behind callers' reads (logins are
/// coalesced per account) or are refused in a quiet period (a token must stay obtainable; a
/// throttling upstream is reachable). The token (``AuthenticatedTransport``, per account) wraps
/// `reads` or `probes` where a client needs one.
public struct UpstreamStack: Sendable {
    /// Tenant reads: queued by the upstream's gate.
    public let reads: any UpstreamTransport
    /// Readiness probes: no gate, no quiet-period refusal.
    public let probes: any UpstreamTransport
    /// Token logins and refreshes: as probes, without the caller's request id.
    public let logins: any UpstreamTransport
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
        let recording = ThrottleTransport(base: counted, upstream: name, state: throttle, refusing: false, logger: logger)
        let refusing = ThrottleTransport(base: counted, upstream: name, state: throttle, refusing: true, logger: logger)
        let gate = ConcurrencyGate(upstream: name, limit: maxConcurrentRequests, queue: maxQueuedRequests)
        self.reads = GatedTransport(base: RequestIDTransport(base: refusing, uuidOnly: uuidRequestIDs), gate: gate)
        self.probes = RequestIDTransport(base: recording, uuidOnly: uuidRequestIDs)
        self.logins = recording
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
