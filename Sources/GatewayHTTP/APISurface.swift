public import HTTPTypes

/// The gateway's HTTP surface: every path it serves with the methods each answers, and the route
/// template a path is counted under. Read by the router (405 with `Allow`), the metrics, the
/// status board and the access log, whichever front end served the request.
public enum APISurface {
    /// Every operation the gateway serves, by path (Hummingbird syntax): the methods each path
    /// answers. Any other method on these paths is a 405 with `Allow`. A test checks that the
    /// router and docs/openapi.yaml list exactly these.
    public static let operations: [String: [HTTPRequest.Method]] = [
        "/healthz": [.get], "/readyz": [.get], "/openapi.yaml": [.get], "/metrics": [.get], "/v1/auth/token": [.post],
        "/v1/tenants": [.get], "/v1/tenants/:id": [.get], "/v1/upstreams": [.get], "/v1/cache": [.delete],
        "/v1/customers": [.get], "/v1/customers/drift": [.get], "/v1/customers/:id": [.get],
        "/v1/events": [.get], "/v1/events/stream": [.get],
        "/v1/tenants/:id/api/**": [.get, .post], "/v1/upstreams/:name/api/**": [.get, .post],
        "/v1/status": [.get], "/v1/auth/session": [.post], "/status": [.get], "/status.js": [.get], "/status.css": [.get], "/status.svg": [.get],
    ]

    /// The methods a path answers, when the path is one of ours (any other method is a 405 with
    /// `Allow`); nil for a path that is not ours (404).
    public static func allowedMethods(forPath path: String) -> [HTTPRequest.Method]? {
        if let methods = operations[path] { return methods }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count == 4, parts[1] == "v1", parts[2] == "tenants", !parts[3].isEmpty { return operations["/v1/tenants/:id"] }
        if parts.count == 4, parts[1] == "v1", parts[2] == "customers", !parts[3].isEmpty { return operations["/v1/customers/:id"] }
        if parts.count > 5, parts[1] == "v1", parts[4] == "api", !parts[3].isEmpty {
            if parts[2] == "tenants" { return operations["/v1/tenants/:id/api/**"] }
            if parts[2] == "upstreams" { return operations["/v1/upstreams/:name/api/**"] }
        }
        return nil
    }

    /// The route template a path is counted under (never the raw path: ids are caller input).
    /// Asked once per request on every path, so it compares bytes and allocates nothing.
    public static func routeTemplate(_ path: String) -> String {
        var path = path
        let passThrough = path.withUTF8 { bytes -> String? in
            if starts(bytes, "/v1/tenants/") {
                return isPassThrough(bytes, after: 12) ? "/v1/tenants/{id}/api/{path}" : tenantRoute
            }
            if starts(bytes, "/v1/upstreams/"), isPassThrough(bytes, after: 14) { return "/v1/upstreams/{name}/api/{path}" }
            return nil
        }
        if let passThrough { return passThrough }
        if path.utf8.starts(with: "/v1/customers/".utf8), path != "/v1/customers/drift" { return "/v1/customers/{id}" }
        return operations[path] != nil ? path : "other"
    }

    /// The route template of one tenant, `/v1/tenants/{id}`.
    static let tenantRoute = "/v1/tenants/{id}"

    private static func starts(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        RawRequest.hasPrefix(UnsafeRawBufferPointer(bytes), prefix)
    }

    /// Whether the bytes after `start` are `{segment}/api/{anything}`.
    private static func isPassThrough(_ bytes: UnsafeBufferPointer<UInt8>, after start: Int) -> Bool {
        let rest = UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[start...]))
        guard let slash = RawRequest.index(of: UInt8(ascii: "/"), in: rest) else { return false }
        return RawRequest.hasPrefix(UnsafeRawBufferPointer(rebasing: rest[slash...]), "/api/")
    }
}
