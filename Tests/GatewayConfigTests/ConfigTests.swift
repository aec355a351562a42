import GatewayLogging
import GatewayAccess
import Foundation
import GatewayConfig
import GatewayCore
import GatewayTestSupport
import Testing
import TokenBroker
import GatewayHTTP
import Logging
import Synchronization

/// A directory with readable secret and CA files for config tests.
struct ConfigFixture {
    let directory: String
    init() throws {
        directory = try makeTemporaryDirectory()
        try Data("pw\n".utf8).write(to: URL(fileURLWithPath: directory + "/secret"))
        try Data("-----BEGIN CERTIFICATE-----\n".utf8).write(to: URL(fileURLWithPath: directory + "/ca.pem"))
    }

    var environment: [String: String] {
        ["VB365_ABC_PASSWORD": "x", "SECRET_DIR": directory, "GATEWAY_TOKEN_KEY": "a-token-signing-key-of-at-least-32-bytes"]
    }

    /// What `veeam-gateway check-config` did with a file.
    struct CheckConfigRun {
        var status: Int32
        /// Its standard error.
        var errors: String
    }

    /// Runs the built `veeam-gateway check-config path` with the fixture's environment.
    func checkConfig(_ path: String) throws -> CheckConfigRun {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("veeam-gateway").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the executables first (swift build --build-tests)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["check-config", path]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        // Read to the end before waiting: a long list of errors must not fill the pipe and stall it.
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return CheckConfigRun(status: process.terminationStatus, errors: text)
    }

    /// A minimal valid config with one line replaced or appended.
    func yaml(_ upstreamExtra: String = "", vspcAccount: String? = nil) -> String {
        """
        listen: { host: 127.0.0.1, port: 8081 }
        upstreams:
          - name: vb365-eu
            product: vb365
            baseURL: https://vb365.example:4443
            tls: { caFile: \(directory)/ca.pem }
            timeouts: { connect: 2s, total: 10s }
        \(upstreamExtra)
            organizations:
              - username: backup-admin@abc.onmicrosoft.com
                password: { env: VB365_ABC_PASSWORD }
          - name: vspc-main
            product: vspc
            baseURL: https://vspc.example:1280
            account:
              username: gateway-svc
              password: \(vspcAccount ?? "{ file: \(directory)/secret }")
        """
    }
}

@Suite("GatewayConfiguration")
struct ConfigTests {
    @Test("the committed example config is valid, given its secrets")
    func example() throws {
        let fixture = try ConfigFixture()
        let text = try String(contentsOfFile: repositoryRoot + "/config/gateway.yaml", encoding: .utf8)
            .replacingOccurrences(of: "/etc/veeam-gateway/vb365-eu-ca.pem", with: fixture.directory + "/ca.pem")
            .replacingOccurrences(of: "/run/secrets/vb365-contoso-password", with: fixture.directory + "/secret")
            .replacingOccurrences(of: "/run/secrets/vspc-password", with: fixture.directory + "/secret")
        let config = try GatewayConfiguration.parse(yaml: text, file: "config/gateway.yaml", environment: fixture.environment)
        #expect(config.upstreams.map(\.name) == ["vb365-eu", "vspc-main"])
        #expect(config.upstreams[0].organizations.count == 2)
        #expect(config.upstreams[0].options.connectTimeout == .seconds(2))
        #expect(config.upstreams[0].options.maxResponseBytes == 16 << 20)
        #expect(config.upstreams[1].options.tls.pinnedPublicKey?.hasPrefix("sha256//") == true)
        #expect(config.upstreams[1].account?.password == .file(fixture.directory + "/secret"))
        #expect(config.callers.map(\.id) == ["portal", "abc-app"])
        #expect(config.callers[1].rate == RateLimit(requestsPerSecond: 5, burst: 10))
        #expect(config.tokenSigningKey == .env("GATEWAY_TOKEN_KEY"))
        #expect(config.tokenLifetime == .seconds(900))
        #expect(config.policy == AccessPolicy())
        #expect(config.cacheMaxBytes == 64 << 20)
        #expect(config.upstreams[0].freshness.ttl == .seconds(30))
        #expect(config.upstreams[0].listFreshness.ttl == .seconds(60))
        #expect(config.upstreams[0].freshness.staleIfError == .seconds(600))
        #expect(config.upstreams[1].listFreshness.ttl == .seconds(30))
        #expect(config.upstreams[0].maxConcurrentRequests == 4)
    }

    @Test("the demo config is valid with the demo's variables")
    func demo() throws {
        let environment = ["DEMO_VB365_ABC_PASSWORD": "a", "DEMO_VB365_CONTOSO_PASSWORD": "b", "DEMO_VB365_FABRIKAM_PASSWORD": "c", "DEMO_VSPC_PASSWORD": "d", "DEMO_TOKEN_KEY": String(repeating: "k", count: 64)]
        let config = try GatewayConfiguration.load(path: repositoryRoot + "/config/demo.yaml", environment: environment)
        #expect(config.upstreams.count == 2)
        // The documented demo keys are the demo callers' keys, with the documented roles and scope.
        let directory = CallerDirectory(config.callers)
        #expect(directory.authenticate(apiKey: "demo-portal-admin")?.roles == ["PortalAdministrator"])
        #expect(directory.authenticate(apiKey: "demo-sp-admin")?.roles == ["ServiceProviderAdministrator"])
        #expect(directory.authenticate(apiKey: "demo-company-owner")?.roles == ["CompanyOwner"])
        let app = directory.authenticate(apiKey: "demo-abc-app")
        #expect(app?.roles.isEmpty == true)
        #expect(app?.scopes == ["vb365-demo.cbc52c37-df7f-4b03-98f3-036e7d4b3127"])
        #expect(directory.authenticate(apiKey: "demo-portal-admin ") == nil)
    }

    @Test(
        "callers: hashes only, known roles, scopes on configured upstreams",
        arguments: [
            ("callers:\n  - { id: a, keyHash: plain-key-oops, roles: [PortalAdministrator] }", "callers[0].keyHash", "hash-key"),
            ("callers:\n  - { id: a, keyHash: \"sha256:\(String(repeating: "0", count: 64))\", roles: [Admin] }", "callers[0].roles[0]", "unknown role"),
            ("callers:\n  - { id: a, keyHash: \"sha256:\(String(repeating: "0", count: 64))\", roles: [], scopes: [\"nowhere.c386d34c-0ab6-4e13-b30a-67fcb05b83e4\"] }", "callers[0].scopes[0]", "not configured"),
            ("callers:\n  - { id: a, keyHash: \"sha256:\(String(repeating: "0", count: 64))\", roles: [] }\n  - { id: a, keyHash: \"sha256:\(String(repeating: "1", count: 64))\", roles: [] }", "callers[1].id", "another caller"),
            ("callers:\n  - { id: a, keyHash: \"sha256:\(String(repeating: "0", count: 64))\", roles: [], scopes: [{ company: bad }] }", "callers[0].scopes[0].company", "customer id"),
            ("callers:\n  - { id: a, keyHash: \"sha256:\(String(repeating: "0", count: 64))\", roles: [], scopes: [{ company: \"x.c386d34c-0ab6-4e13-b30a-67fcb05b83e4\" }] }", "callers[0].scopes[0].company", "not a configured vspc upstream"),
            ("callers:\n  - { id: a, keyHash: \"sha256:\(String(repeating: "0", count: 64))\", roles: [], scopes: [{ tenant: x }] }", "callers[0].scopes[0].tenant", "unknown key"),
            ("policy: { cloudTenant: [Root] }", "policy.cloudTenant[0]", "unknown role"),
            ("auth: { tokens: { signingKey: { env: SHORT } } }", "auth.tokens.signingKey", "32 bytes"),
        ]
    )
    func callerErrors(section: String, key: String, fragment: String) throws {
        let yaml = section + "\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }"
        let error = #expect(throws: ConfigError.self) {
            try GatewayConfiguration.parse(yaml: yaml, file: "gw.yaml", environment: ["P": "x", "SHORT": "too-short"])
        }
        #expect(error?.key == key)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test(
        "errors name the file, the key and what is wrong",
        arguments: [
            ("    baseUrl: https://x:1\n", "upstreams[0].baseUrl", "did you mean baseURL"),
            ("    maxResponseBytes: lots\n", "upstreams[0].maxResponseBytes", "size"),
            ("    refreshSkew: soon\n", "upstreams[0].refreshSkew", "duration"),
            // Numbers an unchecked conversion would trap on (beyond `Int.max`, NaN): refused, never a trap.
            ("    refreshSkew: 1e16s\n", "upstreams[0].refreshSkew", "at most a year"),
            ("    refreshSkew: 1e306h\n", "upstreams[0].refreshSkew", "at most a year"),
            ("    refreshSkew: 100000000000000000\n", "upstreams[0].refreshSkew", "at most a year"),
            ("    refreshSkew: nan\n", "upstreams[0].refreshSkew", "duration"),
            ("    refreshSkew: -1s\n", "upstreams[0].refreshSkew", "duration"),
            ("    maxResponseBytes: infB\n", "upstreams[0].maxResponseBytes", "at most 1TiB"),
            ("    maxResponseBytes: 1e30MiB\n", "upstreams[0].maxResponseBytes", "at most 1TiB"),
            ("    maxResponseBytes: 9223372036854775807\n", "upstreams[0].maxResponseBytes", "at most 1TiB"),
        ]
    )
    func errors(extra: String, key: String, fragment: String) throws {
        let fixture = try ConfigFixture()
        let error = #expect(throws: ConfigError.self) {
            try GatewayConfiguration.parse(yaml: fixture.yaml(extra), file: "gw.yaml", environment: fixture.environment)
        }
        #expect(error?.file == "gw.yaml")
        #expect(error?.key == key)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
        #expect(error?.description.hasPrefix("gw.yaml: \(key): ") == true)
    }

    @Test(
        "whole-document errors",
        arguments: [
            ("upstreams: []", "upstreams", "at least one"),
            ("listen: { port: 70000 }\nupstreams: []", "listen.port", "between"),
            ("upstreams:\n  - name: Bad_Name\n    product: vb365\n    baseURL: https://x:1", "upstreams[0].name", "[a-z0-9-]"),
            ("upstreams:\n  - name: a\n    product: nas\n    baseURL: https://x:1", "upstreams[0].product", "vb365 or vspc"),
            ("upstreams:\n  - name: a\n    product: vb365\n    baseURL: https://x:1/v5", "upstreams[0].baseURL", "no path"),
            ("upstreams:\n  - name: a\n    product: vb365\n    baseURL: https://x:1", "upstreams[0].organizations", "seed 000"),
            ("upstreams:\n  - name: a\n    product: vspc\n    baseURL: https://x:1", "upstreams[0].account", "gateway's account"),
            ("upstreams:\n  - name: a\n    product: vspc\n    baseURL: https://x:1\n    account: { username: u, password: hunter2 }", "upstreams[0].account.password", "never written"),
            ("upstreams:\n  - name: a\n    product: vspc\n    baseURL: https://x:1\n    account: { username: u, password: { env: NOT_SET_ANYWHERE } }", "upstreams[0].account.password", "NOT_SET_ANYWHERE"),
            ("upstreams:\n  - name: a\n    product: vspc\n    baseURL: https://x:1\n    tls: { pinnedPublicKey: md5//abc }\n    account: { username: u, password: { env: P } }", "upstreams[0].tls.pinnedPublicKey", "sha256//"),
            ("upstreams:\n  - name: a\n    product: vspc\n    baseURL: https://x:1\n    timeouts: { connect: 10s, total: 1s }\n    account: { username: u, password: { env: P } }", "upstreams[0].timeouts.total", "at least"),
            ("upstreams: [ {", "", "not valid YAML"),
            ("listen: { port: 1 }\nlisten: { port: 2 }\nupstreams: []", "listen", "appears twice"),
            ("listen: { idleTimeout: 1e10s }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "listen.idleTimeout", "at most a year"),
            ("metrics: { listen: { host: 0.0.0.0 } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "metrics.listen.port", "is required"),
            ("listen: { port: 9000 }\nmetrics: { listen: { port: 9000 } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "metrics.listen.port", "must differ"),
            ("listen: { tls: { certificateFile: /etc/passwd } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "listen.tls.keyFile", "is required"),
            ("listen: { tls: { certificateFile: /nonexistent/front.crt, keyFile: /etc/passwd } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "listen.tls.certificateFile", "cannot read"),
            ("listen: { tls: { certificateFile: /etc/passwd, keyFile: /etc/passwd, http2: maybe } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "listen.tls.http2", "true or false"),
            ("callers:\n  - { id: a, certificate: { subject: 'CN=a' }, roles: [] }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "callers[0].certificate", "clientCAFile"),
            ("listen: { tls: { certificateFile: /etc/passwd, keyFile: /etc/passwd, clientCAFile: /etc/passwd } }\ncallers:\n  - { id: a, certificate: { subject: 'CN=a', san: a.test }, roles: [] }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "callers[0].certificate", "exactly one"),
            ("callers:\n  - { id: a, roles: [] }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "callers[0].keyHash", "is required"),
            ("shared: { redis: { url: 'rediss://cache:6380', encryptionKey: { env: P } } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "shared.redis.url", "not supported"),
            ("shared: { redis: { url: 'redis://:hunter2@cache:6379', encryptionKey: { env: P } } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "shared.redis.url", "no password in the URL"),
            ("shared: { redis: { url: 'redis://cache:6379' } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "shared.redis.encryptionKey", "is required"),
            ("shared: { redis: { url: 'redis://cache:6379', encryptionKey: { env: P } } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "shared.redis.encryptionKey", "at least 32 bytes"),
            ("shared: { redis: { url: 'redis://cache:6379', timeout: 10s, encryptionKey: { env: P } } }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "shared.redis.timeout", "1ms to 5s"),
            ("upstreams:\n  - { name: a, product: vspc, baseURL: 'https://user:pw@x:1', account: { username: u, password: { env: P } } }", "upstreams[0].baseURL", "no user"),
            ("upstreams:\n  - { name: a, product: vb365, baseURL: 'https://x:1', apiVersion: v9, organizations: [{ username: u, password: { env: P } }] }", "upstreams[0].apiVersion", "auto or one of v5, v6, v7, v8"),
            ("upstreams:\n  - { name: a, product: vb365, baseURL: 'https://x:1', clientVersion: '3.6', organizations: [{ username: u, password: { env: P } }] }", "upstreams[0].clientVersion", "only vspc"),
            ("upstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', apiVersion: v8, account: { username: u, password: { env: P } } }", "upstreams[0].apiVersion", "only vb365"),
            ("upstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', clientVersion: three, account: { username: u, password: { env: P } } }", "upstreams[0].clientVersion", "such as 3.6"),
            ("cache: { maxBytes: 9223372036854775807, maxEntryShare: 1 }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }", "cache.maxBytes", "at most 1TiB"),
        ]
    )
    func documentErrors(yaml: String, key: String, fragment: String) throws {
        let error = #expect(throws: ConfigError.self) {
            try GatewayConfiguration.parse(yaml: yaml, file: "gw.yaml", environment: ["P": "x"])
        }
        #expect(error?.key == key)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
        #expect(error?.description.contains("hunter2") == false)
    }

    @Test(
        "passThrough: routes name an upstream or a product, a plain path, GET or POST, roles for the upstream form and for writes",
        arguments: [
            ("passThrough: { routes: [ { upstream: nowhere, path: /x, roles: [PortalAdministrator] } ] }", "passThrough.routes[0].upstream", "no upstream"),
            ("passThrough: { routes: [ { upstream: vspc-main, product: vspc, path: /x, roles: [PortalAdministrator] } ] }", "passThrough.routes[0].product", "not both"),
            ("passThrough: { routes: [ { product: vspc, path: /x } ] }", "passThrough.routes[0].roles", "deny by default"),
            ("passThrough: { routes: [ { product: vspc, path: 'x/../y', roles: [PortalAdministrator] } ] }", "passThrough.routes[0].path", "must start with /"),
            ("passThrough: { routes: [ { product: vspc, path: '/a%2Fb', roles: [PortalAdministrator] } ] }", "passThrough.routes[0].path", "only letters"),
            ("passThrough: { routes: [ { product: vspc, path: /x, methods: [DELETE], roles: [PortalAdministrator] } ] }", "passThrough.routes[0].methods[0]", "GET or POST"),
            ("passThrough: { routes: [ { product: vb365, form: tenant, path: /Jobs/*/start, methods: [POST] } ] }", "passThrough.routes[0].roles", "may write"),
            ("passThrough: { routes: [ { product: vb365, form: sideways, path: /Jobs } ] }", "passThrough.routes[0].form", "upstream or tenant"),
            ("passThrough: { routes: [ { product: vspc, path: /x, roles: [Root] } ] }", "passThrough.routes[0].roles[0]", "unknown role"),
            ("passThrough: { rotues: [] }", "passThrough.rotues", "allowed here: defaultRoutes, redact, routes"),
        ]
    )
    func passThroughErrors(section: String, key: String, fragment: String) throws {
        let fixture = try ConfigFixture()
        let error = #expect(throws: ConfigError.self) {
            try GatewayConfiguration.parse(yaml: section + "\n" + fixture.yaml(), file: "gw.yaml", environment: fixture.environment)
        }
        #expect(error?.key == key)
        #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
    }

    @Test("passThrough: operator routes come first, then the shipped table unless turned off; a vb365 upstream's passThrough.account, never a vspc one's")
    func passThroughPolicy() throws {
        let fixture = try ConfigFixture()
        let section = """
            passThrough:
              redact: [customerNotes]
              routes:
                - { upstream: vspc-main, path: /alarms/active*, roles: [PortalOperator], ttl: 5s }
                - { product: vb365, form: tenant, path: /Jobs/*/start, methods: [POST], roles: [ServiceProviderAdministrator] }
            """
        let configured = try GatewayConfiguration.parse(
            yaml: section + "\n" + fixture.yaml("    passThrough: { account: { username: admin, password: { env: VB365_ABC_PASSWORD } } }"),
            file: "gw.yaml", environment: fixture.environment)
        let routes = configured.passThrough.routes
        #expect(routes.count == 2 + PassThroughPolicy.defaultRoutes.count)
        #expect(routes[0].applies == .upstream("vspc-main") && routes[0].roles == ["PortalOperator"] && routes[0].ttl == .seconds(5))
        #expect(routes[1].form == .tenant && routes[1].methods == ["POST"])
        #expect(configured.passThrough.redact == ["customernotes"])
        #expect(configured.upstreams[0].passThroughAccount?.username == "admin")
        let alone = try GatewayConfiguration.parse(
            yaml: "passThrough: { defaultRoutes: false }\n" + fixture.yaml(), file: "gw.yaml", environment: fixture.environment)
        #expect(alone.passThrough.routes.isEmpty)
        #expect(try GatewayConfiguration.parse(yaml: fixture.yaml(), file: "gw.yaml", environment: fixture.environment).passThrough == PassThroughPolicy())
        let vspcAccount = #expect(throws: ConfigError.self) {
            try GatewayConfiguration.parse(
                yaml: fixture.yaml().replacingOccurrences(of: "    account:\n      username: gateway-svc", with: "    passThrough: { account: { username: x, password: { env: P } } }\n    account:\n      username: gateway-svc"),
                file: "gw.yaml", environment: fixture.environment)
        }
        #expect(vspcAccount?.key == "upstreams[1].passThrough")
    }

    @Test("vspcServer: a vb365 upstream names a configured vspc upstream and the server's uid")
    func vspcServer() throws {
        let fixture = try ConfigFixture()
        let good = try GatewayConfiguration.parse(
            yaml: fixture.yaml("    vspcServer: { upstream: vspc-main, serverUid: b3650000-5e4f-4a3b-9c2d-1e0f00000365 }"), file: "gw.yaml",
            environment: fixture.environment)
        #expect(good.upstreams[0].vspcServer == VSPCServerReference(upstream: "vspc-main", serverUid: "b3650000-5e4f-4a3b-9c2d-1e0f00000365"))
        for (extra, key, fragment) in [
            ("    vspcServer: { upstream: nowhere, serverUid: b3650000-5e4f-4a3b-9c2d-1e0f00000365 }", "upstreams[0].vspcServer.upstream", "no vspc upstream"),
            ("    vspcServer: { upstream: vspc-main, serverUid: server-1 }", "upstreams[0].vspcServer.serverUid", "UUID"),
            ("    vspcServer: { upstream: vspc-main }", "upstreams[0].vspcServer.serverUid", ""),
        ] {
            let error = #expect(throws: ConfigError.self) {
                try GatewayConfiguration.parse(yaml: fixture.yaml(extra), file: "gw.yaml", environment: fixture.environment)
            }
            #expect(error?.key == key, "\(extra)")
            if !fragment.isEmpty { #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")") }
        }
    }

    @Test("apiVersion (vb365) and clientVersion (vspc): defaults auto and 3.6, fixed values kept, null sends none")
    func upstreamVersions() throws {
        let yaml = """
            upstreams:
              - { name: a, product: vb365, baseURL: 'https://x:1', organizations: [{ username: u, password: { env: P } }] }
              - { name: b, product: vb365, baseURL: 'https://x:2', apiVersion: v7, organizations: [{ username: u, password: { env: P } }] }
              - { name: c, product: vspc, baseURL: 'https://x:3', account: { username: u, password: { env: P } } }
              - { name: d, product: vspc, baseURL: 'https://x:4', clientVersion: 3.6.1, account: { username: u, password: { env: P } } }
              - { name: e, product: vspc, baseURL: 'https://x:5', clientVersion: null, account: { username: u, password: { env: P } } }
            """
        let upstreams = try GatewayConfiguration.parse(yaml: yaml, file: "gw.yaml", environment: ["P": "x"]).upstreams
        #expect(upstreams.map(\.vb365APIVersion) == [.auto, .fixed(.v7), .auto, .auto, .auto])
        #expect(upstreams.map(\.vspcClientVersion) == ["3.6", "3.6", "3.6", "3.6.1", nil])
    }

    @Test("duplicate upstream names are refused")
    func duplicates() throws {
        let yaml = "upstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }\n  - { name: a, product: vspc, baseURL: 'https://y:1', account: { username: u, password: { env: P } } }"
        let error = #expect(throws: ConfigError.self) { try GatewayConfiguration.parse(yaml: yaml, file: "gw.yaml", environment: ["P": "x"]) }
        #expect(error?.key == "upstreams[1].name")
    }

    @Test("environment variables override keys, present or not")
    func overrides() throws {
        let fixture = try ConfigFixture()
        var environment = fixture.environment
        environment["VEEAM_GATEWAY__LISTEN__PORT"] = "9999"
        environment["VEEAM_GATEWAY__UPSTREAMS__1__BASEURL"] = "https://other.example:1280"
        environment["VEEAM_GATEWAY__UPSTREAMS__1__TIMEOUTS__TOTAL"] = "6s"
        let config = try GatewayConfiguration.parse(yaml: fixture.yaml(), file: "gw.yaml", environment: environment)
        #expect(config.port == 9999)
        #expect(config.upstreams[1].baseURL == "https://other.example:1280")
        #expect(config.upstreams[1].options.totalTimeout == .seconds(6))
        environment["VEEAM_GATEWAY__LISTEN__PORT"] = "not-a-port"
        let error = #expect(throws: ConfigError.self) { try GatewayConfiguration.parse(yaml: fixture.yaml(), file: "gw.yaml", environment: environment) }
        #expect(error?.key == "listen.port")
    }

    @Test(
        "check-config exits non-zero and names the key",
        arguments: [
            ("    refreshSkew: never\n", "listen: { host: 127.0.0.1, port: 8081 }", "upstreams[0].refreshSkew"),
            // A readable file that is no PEM certificate: found by loading it as serving would.
            ("", "listen: { host: 127.0.0.1, port: 8081, tls: { certificateFile: /etc/passwd, keyFile: /etc/passwd } }", "listen.tls.certificateFile"),
        ])
    func checkConfigCommand(upstreamExtra: String, listen: String, key: String) throws {
        let fixture = try ConfigFixture()
        let path = fixture.directory + "/bad.yaml"
        let yaml = fixture.yaml(upstreamExtra).replacingOccurrences(of: "listen: { host: 127.0.0.1, port: 8081 }", with: listen)
        try Data(yaml.utf8).write(to: URL(fileURLWithPath: path))
        let run = try fixture.checkConfig(path)
        #expect(run.status == 1)
        #expect(run.errors.contains(path))
        #expect(run.errors.contains(key), "\(run.errors)")
    }
}

@Suite("Log lines: formats and the buffered writer")
struct JSONLogTests {
    @Test("log.format: text is one line, metadata sorted as key=value, values that could forge a line quoted and escaped")
    func textLines() throws {
        final class Lines: Sendable { let all = Mutex<[String]>([]) }
        let lines = Lines()
        var logger = Logger(label: "veeam-gateway") { GatewayLogHandler(label: $0, format: .text, write: { line in lines.all.withLock { $0.append(line) } }) }
        logger.logLevel = .info
        logger.info("request", metadata: ["status": "200", "path": "/v1/tenants/x\n2026-01-01 error forged", "caller": "-"])
        let line = try #require(lines.all.withLock { $0.first })
        #expect(!line.contains("\n"))
        #expect(line.contains(" info veeam-gateway: request caller=- path=\"/v1/tenants/x\\n2026-01-01 error forged\" status=200"), "\(line)")
        #expect(line.first?.isNumber == true && line.contains("Z info"))
    }

    @Test("an access line formatted directly is the line the handler makes of the same fields", arguments: [GatewayLogHandler.Format.text, .json])
    func accessLineSameBothWays(format: GatewayLogHandler.Format) throws {
        final class Lines: Sendable { let all = Mutex<[String]>([]) }
        let viaHandler = Lines()
        let direct = Lines()
        var logger = Logger(label: "veeam-gateway") { GatewayLogHandler(label: $0, format: format, write: { line in viaHandler.all.withLock { $0.append(line) } }) }
        logger.logLevel = .info
        let path = "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4"
        AccessLog(logger: logger).record(requestID: "r-1", method: "GET", path: path, caller: "portal \"admin\"", status: 200, elapsed: .microseconds(1234))
        AccessLog.standard(format: format, logger: logger, write: { line in direct.all.withLock { $0.append(line) } })
            .record(requestID: "r-1", method: "GET", path: path, caller: "portal \"admin\"", status: 200, elapsed: .microseconds(1234))
        func withoutTimestamp(_ line: String) -> String {
            format == .text ? String(line.drop { $0 != " " }) : line.replacingOccurrences(of: #""timestamp":"[^"]*""#, with: "", options: .regularExpression)
        }
        let a = try #require(viaHandler.all.withLock { $0.first })
        let b = try #require(direct.all.withLock { $0.first })
        #expect(withoutTimestamp(a) == withoutTimestamp(b))
        #expect(b.contains("1.23"), "\(b)")
        logger.logLevel = .warning
        AccessLog.standard(format: format, logger: logger, write: { line in direct.all.withLock { $0.append(line) } })
            .record(requestID: "r-2", method: "GET", path: path, caller: nil, status: 200, elapsed: .zero)
        #expect(direct.all.withLock { $0.count } == 1, "above info, no access line")
    }

    @Test("LogSink writes every line whole and in order from its own thread")
    func sinkWritesInOrder() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let sink = LogSink(fileDescriptor: fds[1])
        let reader = Thread.detachedReader(fds[0])
        for i in 0..<5_000 { #expect(sink.append("line \(i) " + String(repeating: "x", count: i % 50))) }
        sink.flush()
        close(fds[1])
        let text = reader.wait()
        let got = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(got.count == 5_000)
        #expect(got.enumerated().allSatisfy { $0.element == "line \($0.offset) " + String(repeating: "x", count: $0.offset % 50) })
        #expect(sink.writtenLines == 5_000 && sink.droppedLines == 0)
    }

    @Test("LogSink never blocks its callers: with nobody reading, lines beyond its capacity are dropped and counted")
    func sinkDropsWhenFull() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let sink = LogSink(fileDescriptor: fds[1], capacity: 64 * 1024)
        let line = String(repeating: "a", count: 99)
        // 1 MB into a 64 KiB pipe nobody reads and a 64 KiB buffer: the appends all return.
        var accepted = 0
        for _ in 0..<10_000 where sink.append(line) { accepted += 1 }
        #expect(sink.droppedLines == 10_000 - accepted)
        #expect(sink.droppedLines > 8_000, "\(sink.droppedLines) dropped")
        // Once read, everything accepted is written.
        let reader = Thread.detachedReader(fds[0])
        sink.flush(timeout: .seconds(10))
        close(fds[1])
        let written = reader.wait().split(separator: "\n").count
        #expect(written == accepted)
        #expect(sink.writtenLines == accepted)
    }

    @Test("log.format: json writes one JSON object per line with the metadata")
    func jsonLines() throws {
        final class Lines: Sendable { let all = Mutex<[String]>([]) }
        let lines = Lines()
        var logger = Logger(label: "veeam-gateway") { GatewayLogHandler(label: $0, format: .json, write: { line in lines.all.withLock { $0.append(line) } }) }
        logger.logLevel = .info
        logger.info("request", metadata: ["request_id": "r-1", "status": "200", "duration_ms": "1.25"])
        let line = try #require(lines.all.withLock { $0.first })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
        #expect(object["message"] == "request")
        #expect(object["request_id"] == "r-1")
        #expect(object["level"] == "info")
        #expect(object["timestamp"]?.hasSuffix("Z") == true)
        #expect(!line.contains("\n"))
        let config = try GatewayConfiguration.parse(
            yaml: "log: { format: json }\nupstreams:\n  - { name: a, product: vspc, baseURL: 'https://x:1', account: { username: u, password: { env: P } } }",
            file: "gw.yaml", environment: ["P": "x"])
        #expect(config.logFormat == "json")
    }
}

extension Thread {
    /// Reads `fd` to its end on a thread of its own; `wait()` returns what was read.
    final class Reader: Sendable {
        let done = DispatchSemaphore(value: 0)
        let text = Mutex("")
        func wait() -> String {
            done.wait()
            return text.withLock { $0 }
        }
    }

    static func detachedReader(_ fd: Int32) -> Reader {
        let reader = Reader()
        Thread.detachNewThread {
            var data = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count <= 0 { break }
                data += buffer[0..<count]
            }
            reader.text.withLock { $0 = String(decoding: data, as: UTF8.self) }
            reader.done.signal()
        }
        return reader
    }
}

@Suite("Configuration nesting bound")
struct ConfigNestingTests {
    @Test("YAML nested thousands deep (flow, block, sequences on one line) is a config error, not a stack overflow")
    func deepNesting() {
        let flow = "listen: " + String(repeating: "{a: ", count: 3_000) + "1" + String(repeating: "}", count: 3_000)
        let block = (0..<3_000).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1"
        let dashes = "upstreams:\n" + String(repeating: "- ", count: 3_000) + "x"
        let brackets = "callers: " + String(repeating: "[", count: 100_000)
        // Found by fuzzing the bound itself: a quote inside a plain scalar, explicit keys.
        let quoteInPlain = "a: [b'c, " + String(repeating: "[", count: 5_000)
        let explicitKeys = String(repeating: "? ", count: 5_000) + "x"
        for yaml in [flow, block, dashes, brackets, quoteInPlain, explicitKeys] {
            #expect {
                _ = try GatewayConfiguration.parse(yaml: yaml, file: "deep.yaml", environment: [:])
            } throws: { error in
                (error as? ConfigError)?.message.contains("nesting deeper than 64 levels") == true
            }
        }
    }

    @Test("the shipped and demo configurations are far within the bound; brackets in strings and comments do not count")
    func ordinaryNesting() throws {
        for path in ["config/gateway.yaml", "config/demo.yaml"] where FileManager.default.fileExists(atPath: path) {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(YAMLNesting.lineDeeperThan(YAMLNesting.limit, in: text) == nil, "\(path)")
        }
        #expect(YAMLNesting.lineDeeperThan(YAMLNesting.limit, in: "a: '" + String(repeating: "[", count: 500) + "' # " + String(repeating: "{", count: 500)) == nil)
    }
}
