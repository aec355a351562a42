/// What a pass-through request names, before anything is checked: its target as sent
/// (`/v1/tenants/{id}/api/{path}` or `/v1/upstreams/{name}/api/{path}`, with its query), taken
/// apart only when ``PassThroughReads/locate(_:)`` has not seen it before.
public struct PassThroughTarget: Sendable {
    /// A target taken apart: slices of it, nothing copied.
    struct Parts {
        /// `tenant` for `/v1/tenants/{id}/…`, `upstream` for `/v1/upstreams/{name}/…`.
        var form: PassThroughRoute.Form
        /// The tenant id or upstream name, as written.
        var name: Substring
        /// The path after `/api`, as sent (still percent-encoded, if it was).
        var rawPath: Substring
        /// The query, without `?`.
        var rawQuery: Substring?
    }

    /// The request target as sent: path and query.
    public var target: String
    /// The method, upper case.
    public var method: String
    /// A write's body (JSON), when it has one.
    public var body: [UInt8]?

    public init(target: String, method: String, body: [UInt8]? = nil) {
        self.target = target
        self.method = method
        self.body = body
    }

    /// Whether a request target names a pass-through. Both front ends ask this (the hot path of
    /// every such head), so they agree; it copies nothing.
    public static func names(_ target: Substring) -> Bool { split(target) != nil }

    /// The target's parts, or nil when it is no pass-through target.
    static func split(_ target: Substring) -> Parts? {
        var path = target
        var query: Substring?
        if let mark = target.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        }
        let form: PassThroughRoute.Form
        let rest: Substring
        if path.hasPrefix("/v1/tenants/") {
            form = .tenant
            rest = path.dropFirst("/v1/tenants/".count)
        } else if path.hasPrefix("/v1/upstreams/") {
            form = .upstream
            rest = path.dropFirst("/v1/upstreams/".count)
        } else {
            return nil
        }
        guard let slash = rest.utf8.firstIndex(of: UInt8(ascii: "/")), slash != rest.startIndex else { return nil }
        let after = rest[rest.index(after: slash)...]
        guard after.hasPrefix("api/") else { return nil }
        return Parts(form: form, name: rest[..<slash], rawPath: after.dropFirst(3), rawQuery: query)
    }
}
