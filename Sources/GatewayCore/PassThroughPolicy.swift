public import GatewayAccess
import HTTPTransport
public import TenantModel

/// Which Veeam reads the gateway passes through, for whom: deny by default. A request is allowed
/// when a route matches its form, upstream, method and path (the first that matches decides),
/// and the caller holds one of the route's roles (the upstream form) or may read the
/// organization whose own session reads it (the tenant form).
public struct PassThroughPolicy: Sendable, Equatable {
    /// The operator's routes first, then (unless turned off) the shipped table.
    public var routes: [PassThroughRoute]
    /// Member names removed from every pass-through body besides ``SecretMembers``' own
    /// (`passThrough.redact`), compared without case.
    public var redact: Set<String>

    public init(routes: [PassThroughRoute] = PassThroughPolicy.defaultRoutes, redact: Set<String> = []) {
        self.routes = routes
        self.redact = Set(redact.map { $0.lowercased() })
        self.redactionTag = redact.isEmpty ? "" : "#redact=" + self.redact.sorted().joined(separator: ",")
    }

    /// Ends a pass-through cache key when the operator removes more members, so an entry redacted
    /// under one list is never answered under another (replicas mid-reload share the shared level).
    let redactionTag: String

    /// The first route for a request of `form` to an upstream, or nil (403).
    public func route(form: PassThroughRoute.Form, upstream: String, product: Tenant.Product, method: String, path: PassThroughPath) -> PassThroughRoute? {
        routes.first { $0.form == form && $0.applies(to: upstream, product: product) && $0.methods.contains(method) && $0.matches(path) }
    }

    /// The roles seed 004 names for reading a cloud tenant; the default table asks them for
    /// every upstream-form read (see docs/api.md for where each role list comes from).
    static let seed004 = Set(Role.tenantReaders)

    /// The shipped table: the most-used reads of both products (API-NOTES, "Pass-through").
    /// VB365 paths are relative to the version (`/v8/…`), VSPC's to `/api/v3`.
    public static let defaultRoutes: [PassThroughRoute] = {
        let vb365Reads = [
            "/Jobs*", "/JobSessions*", "/RestorePoints*", "/LicensedUsers*", "/License", "/BackupRepositories*", "/Proxies*",
            "/Organizations/*/Users*", "/Organizations/*/Groups*", "/Organizations/*/Sites*", "/Organizations/*/Teams*",
            "/Organizations/*/LicensingInformation*",
        ]
        let vspcReads = [
            "/organizations/companies*", "/infrastructure/sites/tenants*", "/infrastructure/backupServers/jobs*", "/alarms/active*",
            "/licensing/usage/organizations*", "/infrastructure/vb365Servers/organizations*",
        ]
        var routes: [PassThroughRoute] = []
        for path in vb365Reads {
            // An organization's own session: VB365 confines the answer to that organization.
            routes.append(PassThroughRoute(form: .tenant, applies: .product(.vb365), pattern: path, roles: [], ttl: .seconds(30), origin: .organizationRead))
            routes.append(PassThroughRoute(form: .upstream, applies: .product(.vb365), pattern: path, roles: seed004, ttl: .seconds(30), origin: .seed004))
        }
        for path in vspcReads {
            routes.append(PassThroughRoute(form: .upstream, applies: .product(.vspc), pattern: path, roles: seed004, ttl: .seconds(30), origin: .seed004))
        }
        return routes
    }()
}

/// One route of the pass-through policy (`passThrough.routes[]`).
public struct PassThroughRoute: Sendable, Equatable {
    /// Which of the two endpoints a route serves.
    public enum Form: String, Sendable, Equatable {
        /// `GET /v1/tenants/{id}/api/{path}`: a VB365 organization, with its own session.
        case tenant
        /// `GET /v1/upstreams/{name}/api/{path}`: the upstream's pass-through account.
        case upstream
    }

    /// Which upstreams a route applies to.
    public enum Applies: Sendable, Equatable {
        case upstream(String)
        case product(Tenant.Product)
        case any
    }

    /// Where a route's role list comes from (docs/api.md's table says it per route).
    public enum Origin: String, Sendable, Equatable {
        /// The configuration.
        case configured
        /// Seed 004's roles (documented there for reading a cloud tenant).
        case seed004
        /// Whoever may read the organization (its roles, or its scope).
        case organizationRead
    }

    public var form: Form
    public var applies: Applies
    /// The path, relative to the upstream's API root: literal segments, `*` matching within one
    /// segment, and a `*` at the very end matching the rest of the path, slashes included.
    public var pattern: String
    /// Upper-case HTTP methods; the default table has only `GET`.
    public var methods: Set<String>
    /// Upstream form: the caller needs one of these. Tenant form: unused (the organization's read decides).
    public var roles: Set<String>
    /// How long an answer is fresh in the cache (zero: not cached).
    public var ttl: Duration
    public var origin: Origin

    public init(
        form: Form, applies: Applies, pattern: String, methods: Set<String> = ["GET"], roles: Set<String>, ttl: Duration, origin: Origin = .configured
    ) {
        self.form = form
        self.applies = applies
        self.pattern = pattern
        self.methods = methods
        self.roles = roles
        self.ttl = ttl
        self.origin = origin
    }

    func applies(to upstream: String, product: Tenant.Product) -> Bool {
        switch applies {
        case .any: true
        case .upstream(let name): name == upstream
        case .product(let wanted): wanted == product
        }
    }

    /// Whether `path` is one this route names.
    public func matches(_ path: PassThroughPath) -> Bool {
        Self.glob(Array(pattern.utf8), Array(path.path.utf8))
    }

    /// `*` matches any run of bytes but `/`; a `*` ending the pattern matches everything left.
    static func glob(_ pattern: [UInt8], _ text: [UInt8]) -> Bool {
        var p = 0
        var t = 0
        // The last `*` seen and where in the text it started matching (backtracking within a segment).
        var star: Int?
        var starText = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                if p == pattern.count - 1 { return true }
                star = p
                starText = t
                p += 1
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if let star, text[starText] != UInt8(ascii: "/") {
                p = star + 1
                starText += 1
                t = starText
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}

/// A pass-through request's path and query, checked before anything else: plain segments of
/// unreserved characters (no percent-encoding, so no encoded slash, dot or query), no `.` or
/// `..`, no empty segment, no scheme or authority; a query of plain names and values, re-encoded
/// by the gateway when it builds the upstream URL. Bounded, as it is caller input.
public struct PassThroughPath: Sendable, Equatable, Hashable {
    /// `/segment/segment…`, as validated.
    public let path: String
    /// The segments of ``path``.
    public let segments: [String]
    /// The query's items in order, decoded.
    public let query: [QueryItem]

    public struct QueryItem: Sendable, Equatable, Hashable {
        public var name: String
        public var value: String
    }

    static let maxPathBytes = 1024
    static let maxSegments = 32
    static let maxQueryBytes = 2048
    static let maxQueryItems = 32

    /// Checks `rawPath` (after `/api`, starting with `/`) and `rawQuery` (without `?`).
    public init(rawPath: Substring, rawQuery: Substring?) throws(GatewayError) {
        func refuse(_ why: String) -> GatewayError {
            GatewayError(.passThroughInvalidPath, detail: "The pass-through path is refused: \(why).")
        }
        guard rawPath.utf8.count <= Self.maxPathBytes else { throw refuse("it is longer than \(Self.maxPathBytes) bytes") }
        guard rawPath.first == "/", rawPath.count > 1 else { throw refuse("it must name a path below the upstream's API root") }
        let segments = rawPath.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count <= Self.maxSegments else { throw refuse("it has more than \(Self.maxSegments) segments") }
        for segment in segments {
            guard !segment.isEmpty else { throw refuse("it has an empty segment") }
            guard segment != ".", segment != ".." else { throw refuse("it has a '.' or '..' segment") }
            guard segment.utf8.allSatisfy(Self.isUnreserved) else {
                throw refuse("a segment may hold only letters, digits, '-', '.', '_' and '~' (no percent-encoding)")
            }
        }
        var items: [QueryItem] = []
        if let rawQuery, !rawQuery.isEmpty {
            guard rawQuery.utf8.count <= Self.maxQueryBytes else { throw refuse("its query is longer than \(Self.maxQueryBytes) bytes") }
            let parts = rawQuery.split(separator: "&", omittingEmptySubsequences: true)
            guard parts.count <= Self.maxQueryItems else { throw refuse("its query has more than \(Self.maxQueryItems) parameters") }
            for part in parts {
                let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard let name = Self.decode(pair[0]), !name.isEmpty, name.utf8.allSatisfy({ Self.isUnreserved($0) || $0 == UInt8(ascii: "$") }) else {
                    throw refuse("a query parameter's name may hold only letters, digits, '$', '-', '.', '_' and '~'")
                }
                guard let value = pair.count > 1 ? Self.decode(pair[1]) : "",
                    !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
                else { throw refuse("a query value is not valid percent-encoded UTF-8 without control characters") }
                items.append(QueryItem(name: name, value: value))
            }
        }
        self.path = String(rawPath)
        self.segments = segments.map(String.init)
        self.query = items
    }

    /// `A-Z a-z 0-9 - . _ ~` (RFC 3986's unreserved characters).
    static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"): true
        default: false
        }
    }

    /// Percent-decoding (`+` is a space, as forms write it); nil for a broken escape or invalid UTF-8.
    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else { return nil }
                bytes.append(high << 4 | low)
            } else if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// `pages=all`: the gateway walks the upstream's pages (``PageWalk``); not forwarded.
    public var allPages: Bool { query.contains { $0.name == "pages" && $0.value == "all" } }

    /// The query sent upstream, in order: every item but the gateway's own `pages`.
    public var forwardedQuery: [(String, String)] {
        query.filter { $0.name != "pages" }.map { ($0.name, $0.value) }
    }

    /// The path and query as one canonical text (cache keys): the query re-encoded in order.
    public var canonical: String {
        guard !query.isEmpty else { return path }
        return path + "?" + query.map { URLBuilder.percentEncode($0.name) + "=" + URLBuilder.percentEncode($0.value) }.joined(separator: "&")
    }
}
