import HTTPTransport
public import Foundation
public import GatewayCore
import TenantModel
public import TokenBroker
import ResponseCache
import Yams

/// The validated configuration of a gateway process.
///
/// Keys (see config/gateway.yaml and docs/configuration.md): `listen.host`, `listen.port`,
/// `listen.hotPath`, `listen.idleTimeout`, `listen.threads`,
/// `log.level`, `upstreams[]` (`name`, `product`, `baseURL`, `tls.caFile`,
/// `tls.pinnedPublicKey`, `tls.insecure`, `timeouts.connect`, `timeouts.total`,
/// `maxResponseBytes`, `refreshSkew`, `maxConnections`, `organizations[]`, `account`), and
/// `callers` (read by a later part). Any key can be overridden by an environment variable named
/// `VEEAM_GATEWAY__` + the key path in capitals with `__` between parts, e.g.
/// `VEEAM_GATEWAY__LISTEN__PORT=9090` or `VEEAM_GATEWAY__UPSTREAMS__0__BASEURL=https://…`.
public struct GatewayConfiguration: Sendable, Equatable {
    public var file: String
    public var host: String
    public var port: Int
    public var logLevel: String
    /// `log.format`: `text` (default) or `json` (one JSON object per line).
    public var logFormat = "text"
    public var upstreams: [UpstreamDefinition]
    /// libcurl connections per upstream host.
    public var maxConnectionsPerHost: Int
    /// Who may call, with key hashes, roles and scopes.
    public var callers: [CallerRecord] = []
    /// Which roles read what (seed 004 by default).
    public var policy = AccessPolicy()
    /// Per-caller request rate unless a caller sets its own (`limits.requestsPerSecond`, `limits.burst`).
    public var defaultRate = RateLimit(requestsPerSecond: 50, burst: 100)
    /// Failed authentications per address per minute before 429 (`limits.failedAuthPerMinute`).
    public var failedAuthPerMinute = 20
    /// `auth.tokens.signingKey`: enables `POST /v1/auth/token` (HS256, at least 32 bytes).
    public var tokenSigningKey: SecretReference?
    /// `auth.tokens.lifetime` (default 15m) and `auth.tokens.issuer` (default veeam-gateway).
    public var tokenLifetime: Duration = .seconds(900)
    public var tokenIssuer = "veeam-gateway"
    /// `cache.maxBytes` (default 64MiB; 0 turns storing off) and `cache.maxEntryShare` (default 0.1).
    public var cacheMaxBytes = 64 << 20
    /// `listen.hotPath`: answer authenticated cache hits on the event loop (see docs/architecture.md).
    public var hotPath = true
    /// `listen.threads`: event-loop threads serving HTTP; 0 (default) is one per core.
    public var threads = 0
    /// `listen.idleTimeout`: close a keep-alive connection idle this long.
    public var idleTimeout: Duration = .seconds(60)
    /// `listen.requestHeadTimeout`: close a connection whose request head is not complete this
    /// long after its first byte (slow or partial heads).
    public var requestHeadTimeout: Duration = .seconds(10)
    public var cacheMaxEntryShare = 0.1
    /// `auth.idp`: accept JWTs from an external identity provider.
    public var identityProvider: IdentityProviderSettings?
    /// `health.probeInterval` (default 10s): `/readyz` answers from the last probe of the
    /// upstreams, and probes them at most once per interval, however many ask.
    public var probeInterval: Duration = .seconds(10)
    /// `metrics.requireCaller` (default false): `/metrics` answers authenticated callers only.
    public var metricsRequireCaller = false
    /// `listen.trustedProxies` (default none): peers whose `X-Forwarded-For` names the client
    /// that failed authentication is counted against.
    public var trustedProxies: [AddressRange] = []

    public init(file: String, host: String = "127.0.0.1", port: Int = 8080, logLevel: String = "info", upstreams: [UpstreamDefinition], maxConnectionsPerHost: Int = 8) {
        self.file = file
        self.host = host
        self.port = port
        self.logLevel = logLevel
        self.upstreams = upstreams
        self.maxConnectionsPerHost = maxConnectionsPerHost
    }

    /// Reads and validates `path`; every problem is a ``ConfigError`` naming the file and key.
    /// Secret references are resolved once here, so a missing secret stops the start.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, key: "", message: "cannot read the file")
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), file: path, environment: environment)
    }

    /// Parses YAML text (as `load`, without the file read).
    public static func parse(yaml: String, file: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GatewayConfiguration {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(file: file, key: "", message: "not valid YAML: \(error)")
        }
        let overrides = environment.filter { $0.key.hasPrefix("VEEAM_GATEWAY__") }
        let root = ConfigNode(node: node, path: "", file: file, overrides: overrides)
        try root.requireMapping()
        try root.requireKeys(["listen", "log", "upstreams", "callers", "cache", "policy", "auth", "limits", "health", "metrics"])

        let listen = root.child("listen")
        try listen.requireKeys(["host", "port", "hotPath", "idleTimeout", "threads", "trustedProxies", "requestHeadTimeout"])
        let log = root.child("log")
        try log.requireKeys(["level", "format"])
        let level = try log.child("level").string(default: "info")
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
            throw log.child("level").error("must be one of trace, debug, info, notice, warning, error, critical")
        }

        let host = try listen.child("host").string(default: "127.0.0.1")
        let port = try listen.child("port").int(default: 8080, range: 0...65535)
        let hotPath = try listen.child("hotPath").bool(default: true)
        let cacheNode = root.child("cache")
        try cacheNode.requireKeys(["maxBytes", "maxEntryShare", "ttl", "staleWhileRevalidate", "staleIfError", "list"])
        let cacheMaxBytes = cacheNode.child("maxBytes").isMissing ? 64 << 20 : (try cacheNode.child("maxBytes").string() == "0" ? 0 : try cacheNode.child("maxBytes").byteSize(default: 64 << 20))
        let share = cacheNode.child("maxEntryShare")
        let cacheShare = share.isMissing ? 0.1 : (Double(try share.string()) ?? -1)
        guard (0.0...1.0).contains(cacheShare) else { throw share.error("must be a number from 0 to 1") }
        let defaultFreshness = try freshness(cacheNode, default: FreshnessPolicy(ttl: .seconds(30), staleWhileRevalidate: .seconds(60), staleIfError: .seconds(600)))
        try cacheNode.child("list").requireKeys(["ttl", "staleWhileRevalidate", "staleIfError"])
        let defaultListFreshness = try freshness(cacheNode.child("list"), default: defaultFreshness)
        let upstreamNodes = try root.child("upstreams").array()
        guard !upstreamNodes.isEmpty else { throw root.child("upstreams").error("at least one upstream is required") }
        var upstreams: [UpstreamDefinition] = []
        var maxConnections = 8
        for node in upstreamNodes {
            var definition = try upstream(node, environment: environment)
            let upstreamCache = node.child("cache")
            try upstreamCache.requireKeys(["ttl", "staleWhileRevalidate", "staleIfError", "list"])
            definition.freshness = try freshness(upstreamCache, default: defaultFreshness)
            try upstreamCache.child("list").requireKeys(["ttl", "staleWhileRevalidate", "staleIfError"])
            let listDefault = upstreamCache.isMissing ? defaultListFreshness : try freshness(upstreamCache, default: defaultListFreshness)
            definition.listFreshness = try freshness(upstreamCache.child("list"), default: listDefault)
            definition.maxConcurrentRequests = try node.child("maxConcurrentRequests").int(default: 4, range: 1...256)
            definition.maxQueuedRequests = try node.child("maxQueuedRequests").int(default: 100, range: 0...100_000)
            if upstreams.contains(where: { $0.name == definition.name }) {
                throw node.child("name").error("\(definition.name) is used by another upstream; names must be unique")
            }
            maxConnections = max(maxConnections, try node.child("maxConnections").int(default: 8, range: 1...256))
            upstreams.append(definition)
        }
        let format = try log.child("format").string(default: "text")
        guard ["text", "json"].contains(format) else { throw log.child("format").error("must be text or json") }
        var configuration = GatewayConfiguration(
            file: file,
            host: host,
            port: port,
            logLevel: level,
            upstreams: upstreams,
            maxConnectionsPerHost: maxConnections
        )
        configuration.logFormat = format
        configuration.hotPath = hotPath
        configuration.threads = try listen.child("threads").int(default: 0, range: 0...256)
        configuration.idleTimeout = try listen.child("idleTimeout").duration(default: .seconds(60))
        guard configuration.idleTimeout >= .seconds(1) else { throw listen.child("idleTimeout").error("must be at least 1s") }
        configuration.requestHeadTimeout = try listen.child("requestHeadTimeout").duration(default: .seconds(10))
        guard configuration.requestHeadTimeout >= .milliseconds(100) else { throw listen.child("requestHeadTimeout").error("must be at least 100ms") }
        configuration.cacheMaxBytes = cacheMaxBytes
        configuration.cacheMaxEntryShare = cacheShare
        configuration.trustedProxies = try listen.child("trustedProxies").array().map { node in
            guard let range = AddressRange(try node.string()) else {
                throw node.error("must be an IPv4 or IPv6 address or CIDR range, such as 10.0.0.0/8 or 2001:db8::/32")
            }
            return range
        }
        let health = root.child("health")
        try health.requireKeys(["probeInterval"])
        configuration.probeInterval = try health.child("probeInterval").duration(default: .seconds(10))
        guard configuration.probeInterval >= .seconds(1) else { throw health.child("probeInterval").error("must be at least 1s") }
        let metrics = root.child("metrics")
        try metrics.requireKeys(["requireCaller"])
        configuration.metricsRequireCaller = try metrics.child("requireCaller").bool(default: false)
        let limits = root.child("limits")
        try limits.requireKeys(["requestsPerSecond", "burst", "failedAuthPerMinute"])
        configuration.defaultRate = try rate(limits, default: configuration.defaultRate)
        configuration.failedAuthPerMinute = try limits.child("failedAuthPerMinute").int(default: 20, range: 1...100_000)
        configuration.policy = try policy(root.child("policy"))
        let auth = root.child("auth")
        try auth.requireKeys(["tokens", "idp"])
        configuration.identityProvider = try identityProvider(auth.child("idp"))
        let tokens = auth.child("tokens")
        try tokens.requireKeys(["signingKey", "lifetime", "issuer"])
        if !tokens.child("signingKey").isMissing {
            let reference = try secretReference(tokens.child("signingKey"), environment: environment)
            if let secret = try? reference.resolve(environment: environment), secret.value.utf8.count < 32 {
                throw tokens.child("signingKey").error("must be at least 32 bytes (e.g. openssl rand -base64 48)")
            }
            configuration.tokenSigningKey = reference
            configuration.tokenLifetime = try tokens.child("lifetime").duration(default: .seconds(900))
            guard configuration.tokenLifetime >= .seconds(10), configuration.tokenLifetime <= .seconds(86_400) else {
                throw tokens.child("lifetime").error("must be between 10s and 24h")
            }
            configuration.tokenIssuer = try tokens.child("issuer").string(default: "veeam-gateway")
        }
        configuration.callers = try callers(root.child("callers"), upstreams: upstreams)
        return configuration
    }

    static func freshness(_ node: ConfigNode, default value: FreshnessPolicy) throws -> FreshnessPolicy {
        FreshnessPolicy(
            ttl: try node.child("ttl").duration(default: value.ttl),
            staleWhileRevalidate: try node.child("staleWhileRevalidate").duration(default: value.staleWhileRevalidate),
            staleIfError: try node.child("staleIfError").duration(default: value.staleIfError))
    }

    static func identityProvider(_ node: ConfigNode) throws -> IdentityProviderSettings? {
        guard !node.isMissing else { return nil }
        try node.requireMapping()
        try node.requireKeys(["issuer", "audience", "jwksURL", "rolesClaim", "scopesClaim", "tls", "timeouts", "minimumRefreshInterval", "algorithms"])
        var algorithms = IdentityProviderSettings.defaultAlgorithms
        if !node.child("algorithms").isMissing {
            algorithms = try node.child("algorithms").array().map { item in
                let name = try item.string()
                guard IdentityProviderSettings.supportedAlgorithms.contains(name) else {
                    throw item.error("must be one of \(IdentityProviderSettings.supportedAlgorithms.joined(separator: ", ")) (never none or HS*)")
                }
                return name
            }
            guard !algorithms.isEmpty else { throw node.child("algorithms").error("must name at least one algorithm") }
        }
        let jwksURL = try node.child("jwksURL").string()
        guard jwksURL.hasPrefix("https://") || jwksURL.hasPrefix("http://127.0.0.1") || jwksURL.hasPrefix("http://localhost") else {
            throw node.child("jwksURL").error("must be an https:// URL (plain http only on loopback)")
        }
        let tls = node.child("tls")
        try tls.requireKeys(["caFile", "pinnedPublicKey"])
        let caFile = try tls.child("caFile").optionalString()
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { throw tls.child("caFile").error("cannot read \(caFile)") }
        let timeouts = node.child("timeouts")
        try timeouts.requireKeys(["connect", "total"])
        let options = TransferOptions(
            tls: .init(caFile: caFile, pinnedPublicKey: try tls.child("pinnedPublicKey").optionalString()),
            connectTimeout: try timeouts.child("connect").duration(default: .seconds(5)),
            totalTimeout: try timeouts.child("total").duration(default: .seconds(10)),
            maxResponseBytes: 1 << 20)
        return IdentityProviderSettings(
            issuer: try node.child("issuer").string(), audience: try node.child("audience").string(), jwksURL: jwksURL,
            rolesClaim: try node.child("rolesClaim").string(default: "roles"), scopesClaim: try node.child("scopesClaim").optionalString(),
            options: options, minimumRefreshInterval: try node.child("minimumRefreshInterval").duration(default: .seconds(30)), algorithms: algorithms)
    }

    static func rate(_ node: ConfigNode, default value: RateLimit) throws -> RateLimit {
        func number(_ child: ConfigNode, _ fallback: Double) throws -> Double {
            if child.isMissing { return fallback }
            guard let parsed = Double(try child.string()), parsed > 0, parsed.isFinite else { throw child.error("must be a positive number") }
            return parsed
        }
        let perSecond = try number(node.child("requestsPerSecond"), value.requestsPerSecond)
        let burst = try number(node.child("burst"), max(value.burst, perSecond))
        guard burst >= 1 else { throw node.child("burst").error("must be at least 1") }
        return RateLimit(requestsPerSecond: perSecond, burst: burst)
    }

    static func roles(_ node: ConfigNode) throws -> Set<String> {
        var roles = Set<String>()
        for item in try node.array() {
            let role = try item.string()
            guard Role.all.contains(role) else {
                throw item.error("unknown role \(role); known roles: \(Role.all.sorted().joined(separator: ", "))")
            }
            roles.insert(role)
        }
        return roles
    }

    static func policy(_ node: ConfigNode) throws -> AccessPolicy {
        try node.requireKeys(["cloudTenant", "organization", "admin"])
        var policy = AccessPolicy()
        if !node.child("cloudTenant").isMissing { policy.cloudTenantReaders = try roles(node.child("cloudTenant")) }
        if !node.child("organization").isMissing { policy.organizationReaders = try roles(node.child("organization")) }
        if !node.child("admin").isMissing { policy.administrators = try roles(node.child("admin")) }
        return policy
    }

    static func callers(_ node: ConfigNode, upstreams: [UpstreamDefinition]) throws -> [CallerRecord] {
        var records: [CallerRecord] = []
        for item in try node.array() {
            try item.requireMapping()
            try item.requireKeys(["id", "keyHash", "roles", "scopes", "rateLimit"])
            let id = try item.child("id").string()
            guard (1...64).contains(id.count), id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
                throw item.child("id").error("must be 1-64 letters, digits, '-', '_' or '.'")
            }
            guard !records.contains(where: { $0.id == id }) else { throw item.child("id").error("\(id) is used by another caller") }
            let hash = try item.child("keyHash").string()
            guard APIKey.isValidHash(hash) else {
                throw item.child("keyHash").error("must be sha256:<64 hex digits>, from `veeam-gateway hash-key` (never the key itself)")
            }
            guard !records.contains(where: { $0.keyHash.lowercased() == hash.lowercased() }) else {
                throw item.child("keyHash").error("is the same as another caller's")
            }
            var scopes = Set<String>()
            for scope in try item.child("scopes").array() {
                let value = try scope.string()
                guard let (upstream, _) = TenantID.parse(value) else { throw scope.error("must be a tenant id, {upstream}.{uuid}") }
                guard upstreams.contains(where: { $0.name == upstream }) else { throw scope.error("names upstream \(upstream), which is not configured") }
                scopes.insert(value.lowercased())
            }
            let rateNode = item.child("rateLimit")
            try rateNode.requireKeys(["requestsPerSecond", "burst"])
            let rate = rateNode.isMissing ? nil : try rate(rateNode, default: RateLimit(requestsPerSecond: 50, burst: 100))
            records.append(CallerRecord(id: id, keyHash: hash.lowercased(), roles: try roles(item.child("roles")), scopes: scopes, rate: rate))
        }
        return records
    }

    static func upstream(_ node: ConfigNode, environment: [String: String]) throws -> UpstreamDefinition {
        try node.requireMapping()
        try node.requireKeys([
            "name", "product", "baseURL", "tls", "timeouts", "maxResponseBytes", "refreshSkew", "maxConnections", "organizations", "account", "cache",
            "maxConcurrentRequests", "maxQueuedRequests",
        ])
        let name = try node.child("name").string()
        guard TenantID.isValidUpstreamName(name) else {
            throw node.child("name").error("must match [a-z0-9-]{1,32} (it becomes part of every tenant id)")
        }
        let productText = try node.child("product").string()
        guard let product = Tenant.Product(rawValue: productText) else { throw node.child("product").error("must be vb365 or vspc") }
        var baseURL = try node.child("baseURL").string()
        while baseURL.hasSuffix("/") { baseURL.removeLast() }
        guard baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://"), let url = URL(string: baseURL), url.host != nil,
            url.query == nil, url.path.isEmpty
        else {
            throw node.child("baseURL").error("must be https://host:port (no path, no query), e.g. https://vspc.example.internal:1280")
        }

        let tlsNode = node.child("tls")
        try tlsNode.requireKeys(["caFile", "pinnedPublicKey", "insecure", "clientCertificateFile", "clientKeyFile"])
        let caFile = try tlsNode.child("caFile").optionalString()
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw tlsNode.child("caFile").error("cannot read \(caFile)")
        }
        let pin = try tlsNode.child("pinnedPublicKey").optionalString()
        if let pin {
            let pins = pin.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard pins.allSatisfy({ $0.hasPrefix("sha256//") && Data(base64Encoded: String($0.dropFirst(8)))?.count == 32 }) else {
                throw tlsNode.child("pinnedPublicKey").error("must be sha256//<base64 of 32 bytes> (several joined with ;)")
            }
        }
        let timeouts = node.child("timeouts")
        try timeouts.requireKeys(["connect", "total"])
        let connect = try timeouts.child("connect").duration(default: .seconds(5))
        let total = try timeouts.child("total").duration(default: .seconds(30))
        guard connect > .zero else { throw timeouts.child("connect").error("must be more than 0") }
        guard total >= connect else { throw timeouts.child("total").error("must be at least timeouts.connect") }

        let options = TransferOptions(
            tls: .init(
                caFile: caFile, pinnedPublicKey: pin, insecure: try tlsNode.child("insecure").bool(default: false),
                clientCertificateFile: try tlsNode.child("clientCertificateFile").optionalString(),
                clientKeyFile: try tlsNode.child("clientKeyFile").optionalString()),
            connectTimeout: connect,
            totalTimeout: total,
            maxResponseBytes: try node.child("maxResponseBytes").byteSize(default: 16 << 20)
        )

        var organizations: [Credential] = []
        var account: Credential?
        switch product {
        case .vb365:
            let orgNodes = try node.child("organizations").array()
            guard !orgNodes.isEmpty else {
                throw node.child("organizations").error("a vb365 upstream lists each organization's own account (seed 000: never an administrator's)")
            }
            if !node.child("account").isMissing { throw node.child("account").error("vb365 upstreams use organizations, not account") }
            organizations = try orgNodes.map { try credential($0, environment: environment) }
        case .vspc:
            guard !node.child("account").isMissing else { throw node.child("account").error("a vspc upstream needs the gateway's account") }
            if !node.child("organizations").isMissing { throw node.child("organizations").error("only vb365 upstreams list organizations") }
            account = try credential(node.child("account"), environment: environment)
        }
        return UpstreamDefinition(
            name: name, product: product, baseURL: baseURL, options: options, organizations: organizations, account: account,
            refreshSkew: try node.child("refreshSkew").duration(default: .seconds(60)))
    }

    static func credential(_ node: ConfigNode, environment: [String: String]) throws -> Credential {
        try node.requireMapping()
        try node.requireKeys(["username", "password"])
        let username = try node.child("username").string()
        return Credential(username: username, password: try secretReference(node.child("password"), environment: environment))
    }

    /// `{env: NAME}` or `{file: PATH}`, resolved once to fail early (the value is not kept).
    static func secretReference(_ node: ConfigNode, environment: [String: String]) throws -> SecretReference {
        guard case .mapping? = node.node else {
            throw node.error("must be a secret reference, {env: NAME} or {file: PATH}; a secret is never written in the config")
        }
        try node.requireKeys(["env", "file"])
        let env = try node.child("env").optionalString()
        let file = try node.child("file").optionalString()
        let reference: SecretReference
        switch (env, file) {
        case (let name?, nil): reference = .env(name)
        case (nil, let path?): reference = .file(path)
        default: throw node.error("give exactly one of env or file")
        }
        do {
            _ = try reference.resolve(environment: environment)
        } catch let error as SecretError {
            throw node.error(error.reason)
        }
        return reference
    }
}
