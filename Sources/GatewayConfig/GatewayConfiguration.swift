public import GatewaySecrets
public import GatewayAccess
import HTTPTransport
public import Foundation
public import GatewayCore
import TenantModel
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
    /// `listen.tls`: the front end's certificate and key (PEM files, re-read on reload), and
    /// optionally the CA whose client certificates authenticate callers.
    public struct FrontTLSSettings: Sendable, Equatable {
        /// `certificateFile`: the server certificate, then any intermediates (PEM).
        public var certificateFile: String
        /// `keyFile`: its private key (PEM).
        public var keyFile: String
        /// `clientCAFile`: verify client certificates against these CAs (PEM); a caller bound
        /// to a certificate (`callers[].certificate`) needs it. Clients without a certificate
        /// still connect (and use keys or tokens).
        public var clientCAFile: String?
        /// `http2` (default true): offer HTTP/2 through ALPN beside HTTP/1.1.
        public var http2: Bool
        /// `crlFile`: certificate revocation lists (PEM or DER) of the client CAs; a client
        /// certificate they revoke fails the handshake. Re-read on reload, as the certificate is.
        public var crlFile: String?
        public init(certificateFile: String, keyFile: String, clientCAFile: String? = nil, http2: Bool = true, crlFile: String? = nil) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.clientCAFile = clientCAFile
            self.http2 = http2
            self.crlFile = crlFile
        }
    }

    /// A host and port to listen on.
    public struct ListenAddress: Sendable, Equatable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

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
    /// `metrics.listen` (`host`, default 127.0.0.1, and `port`): serve `/metrics` on an address
    /// of its own (e.g. one only the monitoring network reaches) instead of the API's. Read at
    /// start; a change takes a restart.
    public var metricsListen: ListenAddress?
    /// `shared.redis`: the shared tier of several replicas; nil runs alone.
    public var sharedRedis: SharedRedisConfiguration?
    /// `listen.tls`: serve HTTPS (HTTP/2 through ALPN) instead of plain HTTP.
    public var tls: FrontTLSSettings?
    /// `listen.trustedProxies` (default none): peers whose `X-Forwarded-For` names the client
    /// that failed authentication is counted against.
    public var trustedProxies: [AddressRange] = []
    /// Which Veeam reads are passed through, for whom (`passThrough`; the shipped table by default).
    public var passThrough = PassThroughPolicy()
    /// `events`: the change feed; nil without the section.
    public var events: EventsConfiguration?
    /// `tracing`: OpenTelemetry traces; nil (no span made) without the section. Read at start.
    public var tracing: TracingConfiguration?

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
        // The YAML parser recurses once per level of nesting: thousands of levels exhaust the
        // stack (found by fuzzing). No configuration needs more than a few; refuse deep ones first.
        if let line = YAMLNesting.lineDeeperThan(YAMLNesting.limit, in: yaml) {
            throw ConfigError(file: file, key: "", message: "nesting deeper than \(YAMLNesting.limit) levels at line \(line)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw ConfigError(file: file, key: "", message: "not valid YAML: \(error)")
        }
        let overrides = environment.filter { $0.key.hasPrefix("VEEAM_GATEWAY__") }
        let diagnostics = ConfigDiagnostics()
        let root = ConfigNode(node: node, path: "", file: file, overrides: overrides, diagnostics: diagnostics)
        guard root.requireMapping() else { throw diagnostics.combined ?? root.error("must be a mapping (key: value)") }
        let configuration = read(root, environment: environment)
        // Every section was read, whatever the others held: one answer lists every error.
        if let errors = diagnostics.combined { throw errors }
        return configuration
    }

    /// Reads every section of the file, noting each error in the root's diagnostics and going
    /// on with defaults, so that what follows is read (and checked) too.
    private static func read(_ root: ConfigNode, environment: [String: String]) -> GatewayConfiguration {
        root.requireKeys(["listen", "log", "upstreams", "callers", "cache", "policy", "auth", "limits", "health", "metrics", "shared", "passThrough", "events", "tracing"])

        let listen = root.child("listen")
        listen.requireKeys(["host", "port", "hotPath", "idleTimeout", "threads", "trustedProxies", "requestHeadTimeout", "tls"])
        let log = root.child("log")
        log.requireKeys(["level", "format"])
        var level = log.child("level").string(default: "info")
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) {
            log.child("level").note("must be one of trace, debug, info, notice, warning, error, critical")
            level = "info"
        }

        let host = listen.child("host").string(default: "127.0.0.1")
        let port = listen.child("port").int(default: 8080, range: 0...65535)
        let hotPath = listen.child("hotPath").bool(default: true)
        let cacheNode = root.child("cache")
        cacheNode.requireKeys(["maxBytes", "maxEntryShare", "ttl", "staleWhileRevalidate", "staleIfError", "list"])
        let maxBytesNode = cacheNode.child("maxBytes")
        let cacheMaxBytes = maxBytesNode.isMissing ? 64 << 20 : (maxBytesNode.string() == "0" ? 0 : maxBytesNode.byteSize(default: 64 << 20))
        let share = cacheNode.child("maxEntryShare")
        var cacheShare = share.isMissing ? 0.1 : (Double(share.string()) ?? -1)
        if !(0.0...1.0).contains(cacheShare) {
            share.note("must be a number from 0 to 1")
            cacheShare = 0.1
        }
        let builtInFreshness = FreshnessPolicy(ttl: .seconds(30), staleWhileRevalidate: .seconds(60), staleIfError: .seconds(600))
        let defaultFreshness = cacheNode.collect(builtInFreshness) { try freshness(cacheNode, default: builtInFreshness) }
        cacheNode.child("list").requireKeys(["ttl", "staleWhileRevalidate", "staleIfError"])
        let defaultListFreshness = cacheNode.collect(defaultFreshness) { try freshness(cacheNode.child("list"), default: defaultFreshness) }
        let upstreamNodes = root.child("upstreams").array()
        if upstreamNodes.isEmpty { root.child("upstreams").note("at least one upstream is required") }
        var upstreams: [UpstreamDefinition] = []
        var maxConnections = 8
        for node in upstreamNodes {
            let read: UpstreamDefinition? = node.collect(nil) {
                var definition = try upstream(node, environment: environment)
                let upstreamCache = node.child("cache")
                upstreamCache.requireKeys(["ttl", "staleWhileRevalidate", "staleIfError", "list"])
                definition.freshness = try freshness(upstreamCache, default: defaultFreshness)
                upstreamCache.child("list").requireKeys(["ttl", "staleWhileRevalidate", "staleIfError"])
                let listDefault = upstreamCache.isMissing ? defaultListFreshness : try freshness(upstreamCache, default: defaultListFreshness)
                definition.listFreshness = try freshness(upstreamCache.child("list"), default: listDefault)
                definition.maxConcurrentRequests = node.child("maxConcurrentRequests").int(default: 4, range: 1...256)
                definition.maxQueuedRequests = node.child("maxQueuedRequests").int(default: 100, range: 0...100_000)
                if upstreams.contains(where: { $0.name == definition.name }) {
                    throw node.child("name").error("\(definition.name) is used by another upstream; names must be unique")
                }
                maxConnections = max(maxConnections, node.child("maxConnections").int(default: 8, range: 1...256))
                return definition
            }
            if let read {
                upstreams.append(read)
            } else if let name = node.child("name").optionalString() {
                root.diagnostics.unreadableUpstreams.insert(name)
            }
        }
        for (index, definition) in upstreams.enumerated() {
            guard let reference = definition.vspcServer else { continue }
            let node = upstreamNodes[index].child("vspcServer").child("upstream")
            if !names(reference.upstream, in: upstreams, product: .vspc, node: node) {
                node.note("no vspc upstream is named \(reference.upstream)")
            }
        }
        var format = log.child("format").string(default: "text")
        if !["text", "json"].contains(format) {
            log.child("format").note("must be text or json")
            format = "text"
        }
        var configuration = GatewayConfiguration(
            file: root.file,
            host: host,
            port: port,
            logLevel: level,
            upstreams: upstreams,
            maxConnectionsPerHost: maxConnections
        )
        configuration.logFormat = format
        configuration.hotPath = hotPath
        configuration.threads = listen.child("threads").int(default: 0, range: 0...256)
        configuration.idleTimeout = listen.child("idleTimeout").duration(default: .seconds(60))
        if configuration.idleTimeout < .seconds(1) { listen.child("idleTimeout").note("must be at least 1s") }
        configuration.requestHeadTimeout = listen.child("requestHeadTimeout").duration(default: .seconds(10))
        if configuration.requestHeadTimeout < .milliseconds(100) { listen.child("requestHeadTimeout").note("must be at least 100ms") }
        configuration.cacheMaxBytes = cacheMaxBytes
        configuration.cacheMaxEntryShare = cacheShare
        configuration.trustedProxies = listen.child("trustedProxies").array().compactMap { node in
            guard let range = AddressRange(node.string()) else {
                node.note("must be an IPv4 or IPv6 address or CIDR range, such as 10.0.0.0/8 or 2001:db8::/32")
                return nil
            }
            return range
        }
        configuration.sharedRedis = root.collect(nil) { try Self.sharedRedis(root.child("shared"), environment: environment) }
        let health = root.child("health")
        health.requireKeys(["probeInterval"])
        configuration.probeInterval = health.child("probeInterval").duration(default: .seconds(10))
        if configuration.probeInterval < .seconds(1) { health.child("probeInterval").note("must be at least 1s") }
        let metrics = root.child("metrics")
        metrics.requireKeys(["requireCaller", "listen"])
        configuration.metricsRequireCaller = metrics.child("requireCaller").bool(default: false)
        let metricsListen = metrics.child("listen")
        if !metricsListen.isMissing {
            metricsListen.requireKeys(["host", "port"])
            if metricsListen.child("port").isMissing {
                metricsListen.child("port").note("is required (0 picks a free port)")
            } else {
                let address = ListenAddress(host: metricsListen.child("host").string(default: "127.0.0.1"), port: metricsListen.child("port").int(range: 0...65535))
                if address.port != 0, address.port == configuration.port {
                    metricsListen.child("port").note("must differ from listen.port (\(configuration.port))")
                }
                configuration.metricsListen = address
            }
        }
        let limits = root.child("limits")
        limits.requireKeys(["requestsPerSecond", "burst", "failedAuthPerMinute"])
        let defaultRate = configuration.defaultRate
        configuration.defaultRate = limits.collect(defaultRate) { try rate(limits, default: defaultRate) }
        configuration.failedAuthPerMinute = limits.child("failedAuthPerMinute").int(default: 20, range: 1...100_000)
        configuration.policy = root.collect(AccessPolicy()) { try policy(root.child("policy")) }
        let auth = root.child("auth")
        auth.requireKeys(["tokens", "idp"])
        configuration.identityProvider = auth.collect(nil) { try identityProvider(auth.child("idp")) }
        let tokens = auth.child("tokens")
        tokens.requireKeys(["signingKey", "lifetime", "issuer"])
        if !tokens.child("signingKey").isMissing {
            tokens.collect(()) {
                let reference = try secretReference(tokens.child("signingKey"), environment: environment)
                if let secret = try? reference.resolve(environment: environment), secret.value.utf8.count < 32 {
                    throw tokens.child("signingKey").error("must be at least 32 bytes (e.g. openssl rand -base64 48)")
                }
                configuration.tokenSigningKey = reference
            }
            configuration.tokenLifetime = tokens.child("lifetime").duration(default: .seconds(900))
            if configuration.tokenLifetime < .seconds(10) || configuration.tokenLifetime > .seconds(86_400) {
                tokens.child("lifetime").note("must be between 10s and 24h")
            }
            configuration.tokenIssuer = tokens.child("issuer").string(default: "veeam-gateway")
        }
        configuration.tls = root.collect(nil) { try frontTLS(listen.child("tls")) }
        let tls = configuration.tls
        configuration.callers = root.collect([]) { try callers(root.child("callers"), upstreams: upstreams, frontTLS: tls) }
        configuration.passThrough = root.collect(PassThroughPolicy()) { try passThrough(root.child("passThrough"), upstreams: upstreams) }
        let callerRecords = configuration.callers
        configuration.events = root.collect(nil) { try events(root.child("events"), callers: callerRecords, environment: environment) }
        configuration.tracing = root.collect(nil) { try tracing(root.child("tracing")) }
        return configuration
    }


    static func frontTLS(_ node: ConfigNode) throws -> FrontTLSSettings? {
        guard !node.isMissing else { return nil }
        node.requireMapping()
        node.requireKeys(["certificateFile", "keyFile", "clientCAFile", "http2", "crlFile"])
        guard let certificate = node.child("certificateFile").optionalReadableFile() else {
            throw node.child("certificateFile").error("is required (a PEM certificate chain)")
        }
        guard let key = node.child("keyFile").optionalReadableFile() else { throw node.child("keyFile").error("is required (a PEM private key)") }
        let clientCA = node.child("clientCAFile").optionalReadableFile()
        let crl = node.child("crlFile").optionalReadableFile()
        if crl != nil, clientCA == nil { throw node.child("crlFile").error("needs clientCAFile (the CA whose revocations it lists)") }
        return FrontTLSSettings(certificateFile: certificate, keyFile: key, clientCAFile: clientCA, http2: node.child("http2").bool(default: true), crlFile: crl)
    }
}
