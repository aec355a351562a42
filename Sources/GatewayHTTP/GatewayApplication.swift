public import GatewayObservability
import GatewayClock
import GatewayLogging
import GatewayAccess
import Foundation
public import Prometheus
public import GatewayConfig
import GatewayCore
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
        OperationsRoutes.register(on: router, state: state, metrics: metrics)
        // The operator's status page and its assets (no data, anyone). The session exchange and
        // the JSON the page renders (administrators: a key, a token, or the session cookie) are
        // pipeline routes.
        let sessions = StatusSessions()
        StatusPage.register(on: router)
        // Every /v1 route: the request pipeline (RequestPipeline.swift), as the hot path calls it.
        PipelineRoutes.register(on: router, pipeline: RequestPipeline(logger: logger, sessions: sessions, board: metrics.metrics.board))
        return router
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
        OperationsRoutes.registerMetrics(on: router, metrics: metrics)
        router.get("/healthz") { _, _ in try JSON.response(["status": "ok"]) }
        return Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
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
    /// (`CurlClient` in CurlHTTP), so that a miss served on a
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
            .nanoseconds(duration.wholeNanoseconds)
        }
        // The raw-bytes handler fronts every connection: it frames heads, owns the idle timeout
        // and the head deadline on both paths, and answers cache hits only when `listen.hotPath`
        // is on (off, it hands every request to the router, byte for byte).
        let hot = HotPathResponder(state: state, logger: logger, metrics: metrics, accessLog: accessLog)
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
                    additionalChannelHandlers: [HTTP2StreamGuard(headTimeout: headTimeout, idleTimeout: idle, recorder: hot.recorder)],
                    httpDecoderConfiguration: decoder))
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
