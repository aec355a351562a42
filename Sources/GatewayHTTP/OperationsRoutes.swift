import GatewayCore
import GatewayLogging
import Hummingbird
import NIOCore

/// The operations routes: `/healthz`, `/readyz` (anonymous callers learn ready or not, an
/// administrator why), `/openapi.yaml` and `/metrics`.
enum OperationsRoutes {
    static func register(on router: Router<GatewayRequestContext>, state: SnapshotSource, metrics: MetricsEndpoint) {
        // `/metrics` is served here unless it has an address of its own (`metrics.listen`).
        if state.snapshot.configuration.metricsListen == nil { registerMetrics(on: router, metrics: metrics) }

        router.get("/healthz") { _, _ in try JSON.response(["status": "ok"]) }
        router.get("/openapi.yaml") { _, _ -> Response in
            guard let document = GatewayApplication.openAPIDocument else { throw GatewayError.routeNotFound }
            return Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: document)))
        }
        router.get("/readyz") { request, context in
            // Anonymous callers (load balancers, orchestrators) learn ready or not; upstream
            // names, account roles and reasons are for an administrator only.
            let snapshot = try GatewayApplication.snapshot(context)
            let caller = try await Authenticate.caller(request, context: context)
            if let caller { context.callerNote.id = caller.id }
            let report = await snapshot.service.health.readiness()
            let details = caller.map { snapshot.access.policy.isAdministrator($0) } ?? false
            // The shared tier never makes a replica unready (each falls back to its own
            // behaviour); an administrator is told its state.
            return try JSON.response(
                Readiness(
                    status: report.ready ? "ready" : "not ready", upstreams: details ? report.upstreams : nil,
                    sharedTier: details ? snapshot.service.sharedStatus?().line : nil, feed: details ? snapshot.feed?.mode : nil),
                status: report.ready ? .ok : .serviceUnavailable)
        }
    }

    /// `GET /metrics`, on the API's router or on the one of `metrics.listen`.
    static func registerMetrics(on router: Router<GatewayRequestContext>, metrics: MetricsEndpoint) {
        router.get("/metrics") { request, context in try await metricsAnswer(request, context: context, metrics: metrics) }
    }

    /// The Prometheus exposition (`GET /metrics`), authenticated when `metrics.requireCaller` is set;
    /// on the API's address or on `metrics.listen`.
    static func metricsAnswer(_ request: Request, context: GatewayRequestContext, metrics: MetricsEndpoint) async throws -> Response {
        let snapshot = try GatewayApplication.snapshot(context)
        if snapshot.configuration.metricsRequireCaller {
            guard let caller = try await Authenticate.caller(request, context: context) else { throw GatewayError.authRequired }
            context.callerNote.id = caller.id
        }
        await snapshot.service.collectMetrics(into: metrics.metrics)
        snapshot.webhooks?.collect(into: metrics.metrics)
        metrics.metrics.syncCounter("veeam_gateway_log_lines_dropped_total", to: LogSink.standardError.droppedLines)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
    }
}

struct Readiness: Encodable {
    var status: String
    /// Only for an administrator.
    var upstreams: [UpstreamReadiness]?
    /// Only for an administrator, when a shared tier is configured: `redis host:port/db: open`.
    var sharedTier: String?
    /// Only for an administrator, when the change feed is configured: where its events are.
    var feed: String?
}
