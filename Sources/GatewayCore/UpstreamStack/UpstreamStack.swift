public import GatewayObservability
public import HTTPTransport
public import Logging
public import TokenBroker
import VeeamAPI

/// The one way the gateway calls anything upstream: each concern is an ``UpstreamTransport``
/// middleware in a file of its own, composed here and nowhere else (in the spirit of KrakenD's
/// proxy chain), for tenant reads, logins, readiness probes and the identity provider's JWKS
/// alike. Outermost first:
///
///     reads of an account:  Tracing → Gate → Token (re-login on a 401) → RequestID → Throttle (refuses in a 429 quiet period) → Metrics → Deadline → transport
///     probes of an account:                  Token                    → RequestID → Throttle (records 429s)                 → Metrics → Deadline → transport
///     probes:                                                            RequestID → Throttle (records 429s)                 → Metrics → Deadline → transport
///     logins:               Tracing                                               → Throttle (records 429s)                 → Metrics → Deadline → transport
///
/// Tracing (a client span per read and per login, when tracing is on) is outermost, so a read's
/// span covers its wait at the gate and the token layer's retry. A read holds its place at the gate across the token layer's retry after a 401: the retry is
/// not queued again behind other callers. Logins carry no caller's `X-Request-Id` (VSPC takes it
/// for an idempotency key, and a login serves every caller); neither logins nor probes queue
/// behind callers' reads (logins are coalesced per account) or are refused in a quiet period (a
/// token must stay obtainable; a throttling upstream is reachable). Every middleware throws
/// ``UpstreamError`` (or the token layer's ``TokenError``); what a caller is answered is decided
/// once, by ``GatewayError/upstream(_:_:)``.
public struct UpstreamStack: Sendable {
    /// Readiness probes without an account: no gate, no quiet-period refusal.
    public let probes: any UpstreamTransport
    /// Token logins and refreshes: as probes, without the caller's request id.
    public let logins: any UpstreamTransport
    public let gate: ConcurrencyGate
    /// The upstream's name, as its spans carry it.
    public let name: String
    public let throttle: ThrottleState
    /// Tenant reads below the token layer (refused in a quiet period), to which ``reads(as:)``
    /// adds an account's token and the gate.
    private let readsBelowToken: any UpstreamTransport

    /// The stack of the upstream `name` over `transport`. `uuidRequestIDs`: send `X-Request-Id`
    /// only when it is a UUID (VSPC takes it for an idempotency key). `retryAfter`: the seconds a
    /// 429 asks for, as the product says it (by default, the `Retry-After` header).
    public init(
        name: String, transport: any UpstreamTransport, totalTimeout: Duration, metrics: GatewayMetrics?, logger: Logger,
        maxConcurrentRequests: Int, maxQueuedRequests: Int, uuidRequestIDs: Bool,
        retryAfter: @escaping @Sendable (UpstreamResponse) -> Int? = { $0.retryAfterHeader }
    ) {
        let timed = DeadlineTransport(base: transport, upstream: name, limit: totalTimeout)
        let counted: any UpstreamTransport = metrics.map { MetricsTransport(base: timed, upstream: name, metrics: $0) } ?? timed
        let throttle = ThrottleState()
        let recording = ThrottleTransport(base: counted, upstream: name, state: throttle, refusing: false, retryAfter: retryAfter, logger: logger)
        let refusing = ThrottleTransport(base: counted, upstream: name, state: throttle, refusing: true, retryAfter: retryAfter, logger: logger)
        self.readsBelowToken = RequestIDTransport(base: refusing, uuidOnly: uuidRequestIDs)
        self.probes = RequestIDTransport(base: recording, uuidOnly: uuidRequestIDs)
        self.logins = TracingTransport(base: recording, upstream: name, operation: "login")
        self.gate = ConcurrencyGate(upstream: name, limit: maxConcurrentRequests, queue: maxQueuedRequests)
        self.throttle = throttle
        self.name = name
    }

    /// The stack of an upstream of the configuration (a 429's wait as the Veeam products say it).
    public init(_ definition: UpstreamDefinition, transport: any UpstreamTransport, metrics: GatewayMetrics?, logger: Logger) {
        self.init(
            name: definition.name, transport: transport, totalTimeout: definition.options.totalTimeout, metrics: metrics, logger: logger,
            maxConcurrentRequests: definition.maxConcurrentRequests, maxQueuedRequests: definition.maxQueuedRequests,
            uuidRequestIDs: definition.product == .vspc, retryAfter: { VeeamAPIError.from($0).retryAfter })
    }

    /// Tenant reads with `broker`'s account: queued at the upstream's gate, then the account's
    /// token (one re-login on a 401, inside the same place at the gate).
    public func reads(as broker: TokenBroker) -> any UpstreamTransport {
        TracingTransport(base: GatedTransport(base: AuthenticatedTransport(base: readsBelowToken, broker: broker), gate: gate), upstream: name, operation: "read")
    }

    /// Readiness probes with `broker`'s account: no gate, no quiet-period refusal.
    public func probes(as broker: TokenBroker) -> any UpstreamTransport {
        AuthenticatedTransport(base: probes, broker: broker)
    }
}
