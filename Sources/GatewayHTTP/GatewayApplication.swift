public import GatewayObservability
import GatewayLogging
public import GatewayAccess
import Foundation
public import Prometheus
public import CurlHTTP
public import GatewayConfig
public import GatewayCore
public import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
public import NIOCore
public import NIOPosix
public import Logging
import TenantModel
import ResponseCache
import HTTPTypes

/// The gateway's HTTP front end: routes, request ids, access log, problem+json for every error.
public enum GatewayApplication {
    /// The OpenAPI document of this API (docs/openapi.yaml is a link to the bundled copy).
    public static let openAPIDocument: String? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { try? String(contentsOf: $0, encoding: .utf8) }

    public static func router(state: SnapshotSource, logger: Logger, metrics: MetricsEndpoint, accessLog: AccessLog? = nil) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        let recorder = RequestRecorder(metrics: metrics.metrics, accessLog: accessLog ?? AccessLog(logger: logger), logger: logger)
        router.add(middleware: RouterRecording(state: state, recorder: recorder))
        // `/metrics` is served here unless it has an address of its own (`metrics.listen`).
        if state.snapshot.configuration.metricsListen == nil {
            router.get("/metrics") { request, context in try await metricsAnswer(request, context: context, metrics: metrics) }
        }

        router.get("/healthz") { _, _ in try JSON.response(["status": "ok"]) }
        router.get("/openapi.yaml") { _, _ -> Response in
            guard let document = openAPIDocument else { throw GatewayError.routeNotFound }
            return Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: document)))
        }
        router.get("/readyz") { request, context in
            // Anonymous callers (load balancers, orchestrators) learn ready or not; upstream
            // names, account roles and reasons are for an administrator only.
            let snapshot = try snapshot(context)
            let caller = try await Authenticate.caller(request, context: context)
            if let caller { context.callerNote.id = caller.id }
            let report = await snapshot.service.readiness()
            let details = caller.map { snapshot.access.policy.isAdministrator($0) } ?? false
            // The shared tier never makes a replica unready (each falls back to its own
            // behaviour); an administrator is told its state.
            return try JSON.response(
                Readiness(
                    status: report.ready ? "ready" : "not ready", upstreams: details ? report.upstreams : nil,
                    sharedTier: details ? snapshot.service.sharedStatus?().line : nil),
                status: report.ready ? .ok : .serviceUnavailable)
        }
        router.post("/v1/auth/token") { request, context in
            try await issueToken(request, context: context, access: try snapshot(context).access)
        }
        // The operator's status page: the page and its assets (no data, anyone), the session
        // exchange, and the JSON it renders (administrators: a key, a token, or the session cookie).
        let sessions = StatusSessions()
        StatusPage.register(on: router, sessions: sessions, board: metrics.metrics.board)
        // Every /v1 read and administration: the request pipeline (RequestPipeline.swift), as
        // the hot path calls it.
        PipelineRoutes.register(on: router, pipeline: RequestPipeline(logger: logger))
        return router
    }

    /// The Prometheus exposition (`GET /metrics`), authenticated when `metrics.requireCaller` is set;
    /// on the API's address or on `metrics.listen`.
    static func metricsAnswer(_ request: Request, context: GatewayRequestContext, metrics: MetricsEndpoint) async throws -> Response {
        let snapshot = try snapshot(context)
        if snapshot.configuration.metricsRequireCaller {
            guard let caller = try await Authenticate.caller(request, context: context) else { throw GatewayError.authRequired }
            context.callerNote.id = caller.id
        }
        await snapshot.service.collectMetrics(into: metrics.metrics)
        metrics.metrics.syncCounter("veeam_gateway_log_lines_dropped_total", to: LogSink.standardError.droppedLines)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
    }

    /// The application serving `/metrics` (and `/healthz`) on `metrics.listen`, when set: the
    /// same problems, request ids and access log as the API's router, no other route.
    /// `onRunning` receives the bound port.
    public static func makeMetrics(
        state: SnapshotSource, logger: Logger, metrics: MetricsEndpoint, accessLog: AccessLog? = nil,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> (some ApplicationProtocol)? {
        let configuration = state.snapshot.configuration
        guard let address = configuration.metricsListen else { return Application<RouterResponder<GatewayRequestContext>>?.none }
        let router = Router(context: GatewayRequestContext.self)
        let recorder = RequestRecorder(metrics: metrics.metrics, accessLog: accessLog ?? AccessLog(logger: logger), logger: logger)
        router.add(middleware: RouterRecording(state: state, recorder: recorder))
        router.get("/metrics") { request, context in try await metricsAnswer(request, context: context, metrics: metrics) }
        router.get("/healthz") { _, _ in try JSON.response(["status": "ok"]) }
        return Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// `POST /v1/auth/token`, OAuth2 `client_credentials`: client id and key in the form body or
    /// HTTP Basic; answers a short-lived signed JWT carrying the caller's roles and scopes.
    static func issueToken(_ request: Request, context: GatewayRequestContext, access: AccessControl) async throws -> Response {
        guard let tokens = access.tokens else { throw GatewayError.tokensDisabled }
        let address = Authenticate.client(request, context: context, access: access)
        if let wait = access.failedAuth.blocked(address) { throw GatewayError.tooManyFailures(wait) }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: 16 * 1024)
        } catch {
            throw GatewayError.bodyTooLarge
        }
        var form: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (s: Substring) in s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            form[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        guard form["grant_type"] == "client_credentials" else { throw GatewayError.unsupportedGrant }
        var id = form["client_id"]
        var secret = form["client_secret"]
        if let authorization = request.headers[.authorization], authorization.lowercased().hasPrefix("basic "),
            let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
            let colon = decoded.firstIndex(of: ":")
        {
            id = String(decoded[..<colon]).removingPercentEncoding
            secret = String(decoded[decoded.index(after: colon)...]).removingPercentEncoding
        }
        guard let id, let secret, let record = access.clientCredentials(id: id, secret: secret, address: address) else {
            throw GatewayError.authInvalid
        }
        let (token, expiresIn) = try await tokens.issue(for: record)
        var response = try JSON.response(IssuedToken(access_token: token, token_type: "Bearer", expires_in: expiresIn))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    /// The snapshot ``RouterRecording`` took (always set for routed requests).
    static func snapshot(_ context: GatewayRequestContext) throws -> GatewaySnapshot {
        guard let snapshot = context.snapshot else {
            throw GatewayError.internalError
        }
        return snapshot
    }

    static func caller(_ context: GatewayRequestContext) throws -> Caller {
        guard let caller = context.caller else { throw GatewayError.authRequired }
        return caller
    }

    /// The event loops of the HTTP server: `listen.threads` of its own, or swift-nio's shared
    /// group (one loop per core) when that is 0. The upstream client must run on the same group
    /// (``CurlClient/init(configuration:eventLoopGroup:logger:)``), so that a miss served on a
    /// connection's loop reaches its upstream from that loop.
    public static func eventLoopGroup(for configuration: GatewayConfiguration) -> any EventLoopGroup {
        configuration.threads > 0 ? MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads) : MultiThreadedEventLoopGroup.singleton
    }

    /// The application for `configuration`, on `eventLoopGroup` (see ``eventLoopGroup(for:)``);
    /// `onRunning` receives the bound port. Access lines go through `logger` unless `accessLog`
    /// says otherwise.
    public static func make(
        state: SnapshotSource, logger: Logger, metrics: MetricsEndpoint, port: Int? = nil, accessLog: AccessLog? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        let accessLog = accessLog ?? AccessLog(logger: logger)
        let configuration = state.snapshot.configuration
        // Request heads are bounded (``RequestHeadLimits``, applied alike by the hot path).
        let decoder = HTTP1Channel.Configuration.DecoderConfiguration(
            maxHeaderFieldSize: RequestHeadLimits.fieldSize, maxHeaderListSize: RequestHeadLimits.headSize,
            maxHeaderFieldCount: RequestHeadLimits.fieldCount)
        func amount(_ duration: Duration) -> TimeAmount {
            .nanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
        }
        // The raw-bytes handler fronts every connection: it frames heads, owns the idle timeout
        // and the head deadline on both paths, and answers cache hits only when `listen.hotPath`
        // is on (off, it hands every request to the router, byte for byte).
        let hot = HotPathResponder(
            state: state, pipeline: RequestPipeline(logger: logger), recorder: RequestRecorder(metrics: metrics.metrics, accessLog: accessLog, logger: logger))
        let idle = amount(configuration.idleTimeout)
        let headTimeout = amount(configuration.requestHeadTimeout)
        let answers = configuration.hotPath
        @Sendable func http1(_ responder: @escaping HTTPChannelHandler.Responder) -> HotPathChannel {
            HotPathChannel(
                inner: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: nil, httpDecoderConfiguration: decoder)),
                responder: hot, answers: answers, idleTimeout: idle, headTimeout: headTimeout)
        }
        let server: HTTPServerBuilder
        if configuration.tls != nil {
            // HTTPS: TLS from the current snapshot, then ALPN to HTTP/2 or to the same HTTP/1.1
            // channel as plain HTTP (see FrontTLS.swift).
            // HTTP/2 keeps HTTP/1's protections (HTTP2Guard.swift): each stream gets the head
            // deadline, the idle timeout while its request is unfinished, and the head limits.
            let http2 = HTTP2ChannelConfiguration(
                idleTimeout: configuration.idleTimeout, gracefulCloseTimeout: .seconds(5),
                streamConfiguration: .init(
                    additionalChannelHandlers: [HTTP2StreamGuard(headTimeout: headTimeout, idleTimeout: idle)], httpDecoderConfiguration: decoder))
            server = HTTPServerBuilder { responder in
                TLSFrontChannel(state: state, http1: http1(responder), http2: HTTP2Channel(responder: responder, configuration: http2))
            }
        } else {
            server = HTTPServerBuilder { responder in http1(responder) }
        }
        return Application(
            router: router(state: state, logger: logger, metrics: metrics, accessLog: accessLog),
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: port ?? configuration.port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
    }
}

struct IssuedToken: Encodable {
    var access_token: String
    var token_type: String
    var expires_in: Int
}

struct Readiness: Encodable {
    var status: String
    /// Only for an administrator.
    var upstreams: [UpstreamReadiness]?
    /// Only for an administrator, when a shared tier is configured: `redis host:port/db: open`.
    var sharedTier: String?
}

/// The Prometheus registry behind `/metrics` and the swift-metrics factory that feeds it. One per
/// gateway instance (no global bootstrap), so tests can run several gateways in one process.
public struct MetricsEndpoint: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let metrics: GatewayMetrics

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.metrics = GatewayMetrics(factory: PrometheusMetricsFactory(registry: registry))
    }
}
