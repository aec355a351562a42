import Foundation
import GatewayConfig
import GatewayTestSupport
import Testing

/// A file with ten different mistakes, in as many sections, and the key each names.
struct TenMistakes {
    let fixture: ConfigFixture
    static let tenant = "4a8e1c59-2a4f-4b1e-9c0d-0f4b1c2d3e4f"

    var yaml: String {
        """
        listen: { host: 127.0.0.1, port: 99999 }
        log: { level: loud }
        cahce: { ttl: 30s }
        cache: { ttl: soon }
        upstreams:
          - name: vb365-eu
            product: vb365
            baseURL: https://vb365.example:4443/api
            tls: { caFile: \(fixture.directory)/ca.pem }
            timeouts: { connect: 2s, total: 1s }
            organizations:
              - username: backup-admin@abc.onmicrosoft.com
                password: { env: VB365_ABC_PASSWORD }
          - name: vspc-main
            product: vspc
            baseURL: https://vspc.example:1280
            account:
              username: gateway-svc
              password: hunter2-in-the-file
        callers:
          - { id: portal, keyHash: "sha256:not-a-hash", roles: [PortalAdministrator] }
          - { id: reader, keyHash: "sha256:\(String(repeating: "ab", count: 32))", roles: [SuperUser], scopes: ["nowhere.\(Self.tenant)"] }
        """
    }

    /// Each mistake's key and a part of its message.
    static let expected: [(key: String, message: String)] = [
        ("cahce", "unknown key"),
        ("log.level", "must be one of"),
        ("listen.port", "must be between 0 and 65535"),
        ("cache.ttl", "must be a duration"),
        ("upstreams[0].baseURL", "no path, no query"),
        ("upstreams[0].timeouts.total", "at least timeouts.connect"),
        ("upstreams[1].account.password", "must be a secret reference"),
        ("callers[0].keyHash", "sha256:<64 hex digits>"),
        ("callers[1].roles[0]", "unknown role SuperUser"),
        ("callers[1].scopes[0]", "names upstream nowhere"),
    ]
}

@Suite("Configuration: every error at once")
struct ConfigErrorsTests {
    @Test("a file with ten different mistakes is refused with every one of them, each with file and key, and no secret")
    func tenMistakes() throws {
        let fixture = try ConfigFixture()
        let error = try #require(throws: ConfigError.self) {
            try GatewayConfiguration.parse(yaml: TenMistakes(fixture: fixture).yaml, file: "ten.yaml", environment: fixture.environment)
        }
        let errors = error.all
        #expect(errors.count == 10)
        #expect(Set(errors.map(\.key)) == Set(TenMistakes.expected.map(\.key)), "\(error)")
        for (key, message) in TenMistakes.expected {
            let found = errors.first { $0.key == key }
            #expect(found?.message.contains(message) == true, "\(key): \(found?.message ?? "missing")")
        }
        #expect(errors.allSatisfy { $0.file == "ten.yaml" })
        #expect(error.description.split(separator: "\n").count == errors.count)
        #expect(!error.description.contains("hunter2"))
    }

    @Test("an error is reported once: what follows from it (a caller scoped to a broken upstream) is not an error of its own")
    func noCascade() throws {
        let fixture = try ConfigFixture()
        var yaml = fixture.yaml().replacingOccurrences(of: "https://vb365.example:4443", with: "ftp://vb365.example")
        yaml += "\ncallers:\n  - { id: abc, keyHash: \"sha256:\(String(repeating: "cd", count: 32))\", roles: [PortalAdministrator], scopes: [\"vb365-eu.\(TenMistakes.tenant)\"] }\n"
        let error = try #require(throws: ConfigError.self) {
            try GatewayConfiguration.parse(yaml: yaml, file: "gw.yaml", environment: fixture.environment)
        }
        #expect(error.all.map(\.key) == ["upstreams[0].baseURL"], "\(error)")
        // A key's own follow-on errors are folded too: a port that is no number is one error.
        let port = try #require(throws: ConfigError.self) {
            try GatewayConfiguration.parse(yaml: fixture.yaml().replacingOccurrences(of: "port: 8081", with: "port: [1, 2]"), file: "gw.yaml", environment: fixture.environment)
        }
        #expect(port.all.map(\.key) == ["listen.port"], "\(port)")
    }

    @Test("check-config prints every error, one line each with file and key, and exits 1")
    func checkConfigListsAll() throws {
        let fixture = try ConfigFixture()
        let path = fixture.directory + "/ten.yaml"
        try Data(TenMistakes(fixture: fixture).yaml.utf8).write(to: URL(fileURLWithPath: path))
        let run = try fixture.checkConfig(path)
        let text = run.errors
        #expect(run.status == 1)
        let lines = text.split(separator: "\n")
        #expect(lines.first == "invalid configuration: \(TenMistakes.expected.count) errors", "\(text)")
        for (key, _) in TenMistakes.expected {
            #expect(lines.contains { $0.contains("\(path): \(key): ") }, "\(key) missing in \(text)")
        }
        #expect(lines.count == TenMistakes.expected.count + 1)
        #expect(!text.contains("hunter2"))
    }
}
