import Foundation
public import GatewayConfig
public import GatewayCore
public import Hummingbird
public import Logging
import TenantModel

/// The gateway's HTTP front end: routes, request ids, access log, problem+json for every error.
public enum GatewayApplication {
    /// Routes, for the OpenAPI cross-check of a later part: method and path template.
    public static let routes: [(method: String, path: String)] = [
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/v1/tenants"), ("GET", "/v1/tenants/{id}"), ("GET", "/v1/upstreams"),
    ]

    public static func router(service: TenantService, access: AccessControl, logger: Logger) -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(middleware: RequestIDAndAccessLog(logger: logger))

        router.get("/healthz") { _, _ in JSON.response(["status": "ok"]) }
        router.get("/readyz") { _, _ in
            let upstreams = await service.readiness()
            let ready = upstreams.allSatisfy(\.ready)
            return JSON.response(Readiness(status: ready ? "ready" : "not ready", upstreams: upstreams), status: ready ? .ok : .serviceUnavailable)
        }
        let v1 = router.group("v1").add(middleware: Authenticate(access: access))
        v1.get("tenants") { request, context in
            let query = try query(request)
            return JSON.response(await service.list(query, caller: try caller(context), policy: access.policy))
        }
        v1.get("tenants/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            let tenant = try await service.tenant(id: id, caller: try caller(context), policy: access.policy)
            return JSON.response(SingleTenant(data: tenant))
        }
        v1.get("upstreams") { _, context in
            guard access.policy.isAdministrator(try caller(context)) else { throw GatewayError.adminRequired(access.policy.administrators) }
            return JSON.response(UpstreamList(data: await service.upstreamInfo()))
        }
        for path in ["/healthz", "/readyz", "/v1/tenants", "/v1/tenants/:id", "/v1/upstreams"] {
            for method in [HTTPRequest.Method.post, .put, .delete, .patch] {
                router.on(RouterPath(path), method: method) { _, _ -> Response in throw GatewayError.methodNotAllowed("GET") }
            }
        }
        return router
    }

    static func caller(_ context: GatewayRequestContext) throws -> Caller {
        guard let caller = context.caller else { throw GatewayError.authRequired }
        return caller
    }

    /// Validates `GET /v1/tenants` parameters before any upstream call.
    static func query(_ request: Request) throws -> TenantQuery {
        let parameters = request.uri.queryParameters
        var query = TenantQuery()
        if let raw = parameters["product"] {
            guard let product = Tenant.Product(rawValue: String(raw)) else {
                throw GatewayError.badRequest("request.invalid_parameter", "product must be vb365 or vspc.")
            }
            query.product = product
        }
        if let raw = parameters["upstream"] {
            guard TenantID.isValidUpstreamName(String(raw)) else {
                throw GatewayError.badRequest("request.invalid_parameter", "upstream must match [a-z0-9-]{1,32}.")
            }
            query.upstream = String(raw)
        }
        if let raw = parameters["q"] {
            let q = String(raw)
            guard q.count <= 200, !q.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw GatewayError.badRequest("request.invalid_parameter", "q must be at most 200 characters, without control characters.")
            }
            query.q = q
        }
        if let raw = parameters["limit"] {
            guard let limit = Int(String(raw)), (1...500).contains(limit) else {
                throw GatewayError.badRequest("request.invalid_parameter", "limit must be a whole number from 1 to 500.")
            }
            query.limit = limit
        }
        if let raw = parameters["offset"] {
            guard let offset = Int(String(raw)), (0...1_000_000).contains(offset) else {
                throw GatewayError.badRequest("request.invalid_parameter", "offset must be a whole number from 0 to 1000000.")
            }
            query.offset = offset
        }
        return query
    }

    /// The application for `configuration`; `onRunning` receives the bound port.
    public static func make(
        configuration: GatewayConfiguration, service: TenantService, access: AccessControl, logger: Logger, port: Int? = nil,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(service: service, access: access, logger: logger),
            configuration: .init(address: .hostname(configuration.host, port: port ?? configuration.port), serverName: nil),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }
}

struct SingleTenant: Encodable {
    var data: Tenant
}

struct Readiness: Encodable {
    var status: String
    var upstreams: [UpstreamReadiness]
}

struct UpstreamList: Encodable {
    var data: [UpstreamInfo]
}

extension AccessControl {
    /// The access settings of a configuration.
    public convenience init(_ configuration: GatewayConfiguration) {
        self.init(
            callers: configuration.callers, policy: configuration.policy, defaultRate: configuration.defaultRate,
            failedAuthPerMinute: configuration.failedAuthPerMinute)
    }
}
