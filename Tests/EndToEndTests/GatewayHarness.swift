import GatewaySecrets
import GatewayRuntime
import GatewayAccess
import CurlHTTP
import HTTPTransport
import Foundation
import GatewayConfig
import GatewayCore
import GatewayHTTP
import GatewayTestSupport
import Logging
import NIOPosix
import ServiceLifecycle
import ResponseCache
import Synchronization
import Testing
import VeeamSimulator

/// A gateway built as `veeam-gateway serve` builds it: from a YAML file on disk, secrets in files,
/// TLS to the simulators with their CA and verification on, HTTP on a free loopback port.
struct RunningGateway: Sendable {
    let baseURL: String
    let client: CurlClient
    /// The gateway's own client, to its upstreams.
    let upstreamClient: CurlClient
    let state: GatewayState
    let logs: LogCapture
    /// The cache's clock: tests advance it instead of sleeping.
    let clock: ManualClock
    let configPath: String
    /// `http://127.0.0.1:port` of `metrics.listen`, when the config sets it.
    var metricsURL: String?
    /// The options callers' requests use (the front end's CA when it serves HTTPS).
    var callerOptions = TransferOptions(totalTimeout: .seconds(30))
    var service: TenantService { state.snapshot.service }

    /// GET with an API key (the portal administrator's unless told otherwise; nil sends none).
    func get(_ path: String, key: String? = TestKeys.portalAdmin, headers: [(name: String, value: String)] = []) async throws -> UpstreamResponse {
        var all = headers
        if let key { all.append(("X-API-Key", key)) }
        return try await client.perform(UpstreamRequest(url: baseURL + path, headers: all), options: callerOptions)
    }

    func send(_ method: HTTPMethod, _ path: String, key: String? = TestKeys.portalAdmin) async throws -> UpstreamResponse {
        let headers: [(name: String, value: String)] = key.map { [("X-API-Key", $0)] } ?? []
        return try await client.perform(UpstreamRequest(method: method, url: baseURL + path, headers: headers), options: callerOptions)
    }

    func json(_ path: String, key: String? = TestKeys.portalAdmin) async throws -> [String: Any] {
        let response = try await get(path, key: key)
        return try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response.status) \(response.text)")
    }
}

/// API keys of the test callers (the config holds only their hashes).
enum TestKeys {
    static let portalAdmin = "e2e-portal-admin-key-0123456789"
    static let spGlobalAdmin = "e2e-sp-global-admin-key-0123456789"
    static let spAdmin = "e2e-sp-admin-key-0123456789"
    static let spOperator = "e2e-sp-operator-key-0123456789"
    static let companyOwner = "e2e-company-owner-key-0123456789"
    static let readOnly = "e2e-read-only-key-0123456789"
    static let abcApp = "e2e-abc-app-key-0123456789"
    static let limited = "e2e-limited-key-0123456789"
    static let bulk = "e2e-bulk-key-0123456789"
    static let signingKey = "e2e-gateway-token-signing-key-with-48-bytes-0123"

    static let callers: [(id: String, key: String, roles: [String], scopes: [String])] = [
        ("portal-admin", portalAdmin, ["PortalAdministrator"], []),
        ("sp-global-admin", spGlobalAdmin, ["ServiceProviderGlobalAdministrator"], []),
        ("sp-admin", spAdmin, ["ServiceProviderAdministrator"], []),
        ("sp-operator", spOperator, ["ServiceProviderOperator"], []),
        ("company-owner", companyOwner, ["CompanyOwner"], []),
        ("read-only", readOnly, ["ReadOnlyUser"], []),
        ("abc-app", abcApp, [], ["vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"]),
    ]

    static var yaml: String {
        var text = "callers:\n"
        for caller in callers {
            text += "  - id: \(caller.id)\n    keyHash: \"\(APIKey.hash(caller.key))\"\n    roles: [\(caller.roles.joined(separator: ", "))]\n"
            if !caller.scopes.isEmpty { text += "    scopes: [\(caller.scopes.map { "\"\($0)\"" }.joined(separator: ", "))]\n" }
        }
        text += "  - id: bulk\n    keyHash: \"\(APIKey.hash(bulk))\"\n    roles: [PortalAdministrator]\n    rateLimit: { requestsPerSecond: 100000, burst: 100000 }\n"
        text += "  - id: limited\n    keyHash: \"\(APIKey.hash(limited))\"\n    roles: [PortalAdministrator]\n    rateLimit: { requestsPerSecond: 0.01, burst: 3 }\n"
        return text
    }
}

/// Secret values the harness writes to files; tests search logs and bodies for them.
let secretValues = ["Abc-Org-Pass-1", "Contoso-Org-Pass-2", "Fabrikam-Org-Pass-3", "Gateway-Svc-Pass-1", "Bravo-Tenant-Pass-7", "a9d5f1e0c3b2a8f7e6d5c4b3a2f1e0d9"]

func gatewayYAML(
    vb365: RunningSimulator?, vspc: RunningSimulator?, secrets: String, vspcPassword: String = "gateway-svc.pw", vspcUser: String = "gateway-svc",
    total: String = "10s", jwksURL: String? = nil, idpRefresh: String = "0s", cache: String = "", vspcTLS: String? = nil, listen: String = "",
    extra: String = "", vspcExtra: String = "", extraCallers: String = "", vb365Extra: String = ""
) -> String {
    var yaml = "listen: { host: 127.0.0.1, port: 0\(listen.isEmpty ? "" : ", " + listen) }\nlog: { level: debug }\nlimits: { failedAuthPerMinute: 5 }\n"
        + "auth:\n  tokens: { signingKey: { file: \(secrets)/jwt.key }, lifetime: 5m }\n"
    if let jwksURL {
        yaml += "  idp: { issuer: 'https://idp.test', audience: veeam-gateway, jwksURL: '\(jwksURL)', rolesClaim: roles, scopesClaim: veeam_scopes, minimumRefreshInterval: \(idpRefresh) }\n"
    }
    if !cache.isEmpty { yaml += "cache: \(cache)\n" }
    if !extra.isEmpty { yaml += extra + "\n" }
    yaml += TestKeys.yaml + extraCallers + "upstreams:\n"
    if let vb365 {
        yaml += """
              - name: vb365-eu
                product: vb365
                baseURL: \(vb365.vb365BaseURL)
                tls: { caFile: \(vb365.caFile) }
                timeouts: { connect: 1s, total: \(total) }
                organizations:
                  - { username: backup-admin@abc.onmicrosoft.com, password: { file: \(secrets)/abc.pw } }
                  - { username: svc-backup@contoso.local, password: { file: \(secrets)/contoso.pw } }
                  - { username: backup@fabrikam-hybrid.onmicrosoft.com, password: { file: \(secrets)/fabrikam.pw } }
            \(vb365Extra)
            """
    }
    if let vspc {
        yaml += """
              - name: vspc-main
                product: vspc
                baseURL: \(vspc.vspcBaseURL)
                tls: \(vspcTLS ?? "{ caFile: \(vspc.caFile) }")
                timeouts: { connect: 1s, total: \(total) }
                account: { username: \(vspcUser), password: { file: \(secrets)/\(vspcPassword) } }
            \(vspcExtra)
            """
    }
    return yaml
}

func withGateway<T: Sendable>(
    vb365: RunningSimulator?, vspc: RunningSimulator?, vspcPassword: String = "gateway-svc.pw", vspcUser: String = "gateway-svc", total: String = "10s",
    jwksURL: String? = nil, idpRefresh: String = "0s", cache: String = "", vspcTLS: String? = nil, listen: String = "",
    extra: String = "", vspcExtra: String = "", extraCallers: String = "", vb365Extra: String = "",
    /// The CA file of the front end's certificate, when `listen` sets `tls`: requests go over HTTPS.
    frontCAFile: String? = nil,
    /// The gateway's one clock: flowing in real time unless a test needs it frozen (two gateways
    /// compared header by header, `Age` included).
    clock: ManualClock = ManualClock(flowing: true),
    _ body: (RunningGateway) async throws -> T
) async throws -> T {
    let directory = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let files = ["abc.pw": "Abc-Org-Pass-1", "contoso.pw": "Contoso-Org-Pass-2", "fabrikam.pw": "Fabrikam-Org-Pass-3", "gateway-svc.pw": "Gateway-Svc-Pass-1", "wrong.pw": "Not-The-Password-9", "company-owner.pw": "Company-Owner-Pass-6", "jwt.key": TestKeys.signingKey]
    for (name, value) in files { try Data((value + "\n").utf8).write(to: URL(fileURLWithPath: directory + "/" + name)) }
    let configPath = directory + "/gateway.yaml"
    try Data(gatewayYAML(vb365: vb365, vspc: vspc, secrets: directory, vspcPassword: vspcPassword, vspcUser: vspcUser, total: total, jwksURL: jwksURL, idpRefresh: idpRefresh, cache: cache, vspcTLS: vspcTLS, listen: listen,
        extra: extra, vspcExtra: vspcExtra, extraCallers: extraCallers, vb365Extra: vb365Extra).utf8)
        .write(to: URL(fileURLWithPath: configPath))
    let configuration = try GatewayConfiguration.load(path: configPath)

    let logs = LogCapture()
    let logger = logs.logger(label: "veeam-gateway")
    // Event loops of its own, as `serve` has in a process of its own (swift-nio's shared group
    // there): the front end and libcurl on them, not on the group every simulator and caller of
    // the test process shares.
    let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    let upstreamClient = try CurlClient(eventLoopGroup: loops, logger: logger)
    let metrics = MetricsEndpoint()
    let state = try await GatewayState(configuration: configuration, client: upstreamClient, metrics: metrics, logger: logger, clock: clock.clock)
    // `apiVersion: auto` (the default) probes the VB365 server at start; let it finish, then
    // zero the simulator's counters so that tests count only what their own requests caused
    // (VersionTests count the probes themselves).
    await state.snapshot.service.clients.prepare()
    vb365?.simulator.state.resetCounters()
    let port = PortBox()
    let app = GatewayApplication.make(state: state.source, logger: logger, metrics: metrics, eventLoopGroup: loops) { bound in
        port.set(bound)
    }
    var services: [any Service] = [upstreamClient, app]
    let metricsPort = PortBox()
    if let metricsApp = GatewayApplication.makeMetrics(state: state.source, logger: logger, metrics: metrics, onRunning: { metricsPort.set($0) }) {
        services.append(metricsApp)
    }
    let group = ServiceGroup(configuration: .init(services: services, logger: logger))
    let server = Task { try await group.run() }
    let bound = await port.wait()
    let caller = try CurlClient()
    var gateway = RunningGateway(
        baseURL: "\(frontCAFile == nil ? "http" : "https")://127.0.0.1:\(bound)", client: caller, upstreamClient: upstreamClient, state: state, logs: logs, clock: clock, configPath: configPath)
    if let frontCAFile { gateway.callerOptions.tls.caFile = frontCAFile }
    if configuration.metricsListen != nil { gateway.metricsURL = "http://127.0.0.1:\(await metricsPort.wait())" }
    let result: Result<T, any Error>
    do { result = .success(try await body(gateway)) } catch { result = .failure(error) }
    await caller.shutdown()
    await group.triggerGracefulShutdown()
    _ = await server.result
    try? await loops.shutdownGracefully()
    return try result.get()
}

/// Hands the bound port from the server's callback to the test.
final class PortBox: Sendable {
    private let state = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))
    func set(_ port: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Int, Never>] in
            state.port = port
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }
    func wait() async -> Int {
        await withCheckedContinuation { continuation in
            let port = state.withLock { state -> Int? in
                if state.port == nil { state.waiters.append(continuation) }
                return state.port
            }
            if let port { continuation.resume(returning: port) }
        }
    }
}
