import GatewaySecrets
import CurlHTTP
import HTTPTransport
import Foundation
import GatewayTestSupport
import Synchronization
import Testing
import TokenBroker
import VeeamAPI
import VeeamWire
import VeeamSimulator

let abc = Credential(username: "backup-admin@abc.onmicrosoft.com", password: .env("TEST_ABC_PASSWORD"))
let abcPassword = "Abc-Org-Pass-1"

/// A broker for the abc organization on the simulator's VB365, with the password in an env var.
struct BrokerFixture {
    let client: CurlClient
    let sim: RunningSimulator
    let clock = ManualClock()
    let logs = LogCapture()

    func broker(password: String = abcPassword) -> TokenBroker {
        setenv("TEST_ABC_PASSWORD", password, 1)
        let transport = CurlTransport(client: client, options: sim.trustingOptions())
        return TokenBroker(
            upstream: "vb365-test", credential: abc,
            grants: OAuthTokenEndpoint.vb365(transport: transport, baseURL: sim.vb365BaseURL, upstream: "vb365-test", version: .v5),
            clock: clock.clock, logger: logs.logger())
    }

    func organizationClient(_ broker: TokenBroker) -> VB365Client {
        VB365Client(
            transport: AuthenticatedTransport(base: CurlTransport(client: client, options: sim.trustingOptions()), broker: broker),
            baseURL: sim.vb365BaseURL, version: .v5)
    }
}

func withBroker(_ body: (BrokerFixture) async throws -> Void) async throws {
    let client = try CurlClient()
    try await withSimulator { sim in try await body(BrokerFixture(client: client, sim: sim)) }
    await client.shutdown()
}

@Suite("TokenBroker against the simulator", .serialized)
struct TokenBrokerTests {
    @Test("every VB365 version: login, refresh ahead of expiry (v7+: the antiforgery flag lets it through), refusal in the server's words",
        arguments: SimulatorVB365API.allCases)
    func everyVersion(api: SimulatorVB365API) async throws {
        let client = try CurlClient()
        try await withSimulator(vb365API: api) { sim in
            let version = try #require(VB365APIVersion(rawValue: api.rawValue))
            let fixture = BrokerFixture(client: client, sim: sim)
            let transport = CurlTransport(client: client, options: sim.trustingOptions())
            let grants = OAuthTokenEndpoint.vb365(transport: transport, baseURL: sim.vb365BaseURL, upstream: "vb365-test", version: version)
            setenv("TEST_ABC_PASSWORD", abcPassword, 1)
            let broker = TokenBroker(upstream: "vb365-test", credential: abc, grants: grants, clock: fixture.clock.clock, logger: fixture.logs.logger())
            let reader = VB365Client(transport: AuthenticatedTransport(base: transport, broker: broker), baseURL: sim.vb365BaseURL, version: version)
            #expect(try await reader.organization().name == "abc.onmicrosoft.com")
            fixture.clock.advance(by: .seconds(3590))  // inside the refresh window, not yet expired
            #expect(try await reader.organization().name == "abc.onmicrosoft.com")
            #expect(await broker.statistics.refreshes == 1)
            #expect(sim.state.counters(.vb365).logins == 1)
            #expect(sim.state.counters(.vb365).refreshes == 1)
            #expect(sim.state.counters(.vb365).refreshFailures == 0)

            setenv("TEST_ABC_PASSWORD", "wrong", 1)
            let refused = await #expect(throws: TokenError.self) { try await grants.login(username: abc.username, password: try abc.password.resolve()) }
            #expect(refused?.code == .rejected)
            #expect(refused?.message.contains(api == .v5 ? "invalid_grant" : "incorrect") == true, "\(refused?.message ?? "")")
        }
        await client.shutdown()
    }

    @Test("500 concurrent reads with no token make exactly 1 login")
    func stampede() async throws {
        try await withBroker { f in
            let broker = f.broker()
            let reader = f.organizationClient(broker)
            let names = try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<500 { group.addTask { try await reader.organization().name } }
                var all: [String?] = []
                for try await name in group { all.append(name) }
                return all
            }
            #expect(names.count == 500)
            #expect(names.allSatisfy { $0 == "abc.onmicrosoft.com" })
            #expect(f.sim.state.counters(.vb365).logins == 1)
            #expect(f.sim.state.counters(.vb365).requests["GET /v5/Organization"] == 500)
            #expect(await broker.statistics.logins == 1)
        }
    }

    @Test("a token nearing expiry is refreshed once, however many callers wait")
    func refreshAhead() async throws {
        try await withBroker { f in
            let broker = f.broker()
            let first = try await broker.accessToken()
            f.clock.advance(by: .seconds(3600 - 30))  // inside the 60 s skew
            let tokens = try await withThrowingTaskGroup(of: Secret.self) { group in
                for _ in 0..<100 { group.addTask { try await broker.accessToken() } }
                var all: [Secret] = []
                for try await token in group { all.append(token) }
                return all
            }
            #expect(Set(tokens.map(\.value)).count == 1)
            #expect(tokens.first != first)
            #expect(f.sim.state.counters(.vb365).refreshes == 1)
            #expect(f.sim.state.counters(.vb365).logins == 1)
            // The refreshed token works.
            #expect(try await f.organizationClient(broker).organization().id == "cbc52c37-df7f-4b03-98f3-036e7d4b3127")
        }
    }

    @Test("a token shorter-lived than the refresh skew is reused until half its life, not refreshed on every call")
    func shortLivedToken() async throws {
        try await withBroker { f in
            f.sim.state.tokenLifetime = 60  // the default skew is 60 s too
            let broker = f.broker()
            let first = try await broker.accessToken()
            for _ in 0..<10 {
                f.clock.advance(by: .seconds(2))
                #expect(try await broker.accessToken() == first)
            }
            #expect(f.sim.state.counters(.vb365).refreshes == 0)
            f.clock.advance(by: .seconds(11))  // 31 s: past half of 60 s
            #expect(try await broker.accessToken() != first)
            #expect(f.sim.state.counters(.vb365).refreshes == 1)
            #expect(f.sim.state.counters(.vb365).logins == 1)
        }
    }

    @Test("a rejected refresh falls back to exactly 1 login")
    func refreshRejected() async throws {
        try await withBroker { f in
            let broker = f.broker()
            _ = try await broker.accessToken()
            f.sim.state.rejectRefresh = true
            f.clock.advance(by: .seconds(3600))
            _ = try await broker.accessToken()
            let counters = f.sim.state.counters(.vb365)
            #expect(counters.refreshFailures == 1)
            #expect(counters.refreshes == 0)
            #expect(counters.logins == 2)
            #expect(await broker.statistics.refreshFailures == 1)
        }
    }

    @Test("a revoked token leads to 1 re-login and the read succeeds")
    func revoked() async throws {
        try await withBroker { f in
            let broker = f.broker()
            let reader = f.organizationClient(broker)
            _ = try await reader.organization()
            f.sim.state.revokeTokens(product: .vb365)
            let org = try await reader.organization()
            #expect(org.name == "abc.onmicrosoft.com")
            let counters = f.sim.state.counters(.vb365)
            #expect(counters.unauthorized == 1)
            #expect(counters.logins == 2)
        }
    }

    @Test("a wrong password is a rejected login, and no log line holds the password")
    func wrongPassword() async throws {
        try await withBroker { f in
            let secret = "Wr0ng-Secret-Do-Not-Log"
            let broker = f.broker(password: secret)
            let error = await #expect(throws: TokenError.self) { try await broker.accessToken() }
            #expect(error?.code == .rejected)
            #expect(error.map { "\($0)" }?.contains(secret) == false)
            #expect(error?.message.contains("vb365-test") == true)
            #expect(await broker.state == .failed)
            #expect(!f.logs.all.isEmpty)
            #expect(f.logs.lines(containing: [secret]).isEmpty)
        }
    }

    @Test("tokens never appear in the broker's logs")
    func noTokensInLogs() async throws {
        try await withBroker { f in
            let broker = f.broker()
            let token = try await broker.accessToken()
            f.clock.advance(by: .seconds(3600))
            let refreshed = try await broker.accessToken()
            await broker.invalidate(refreshed)
            let third = try await broker.accessToken()
            #expect(f.logs.lines(containing: [token.value, refreshed.value, third.value, abcPassword]).isEmpty)
            #expect("\(token)" == "<redacted>")
        }
    }

    @Test("the broker's account for VB365 must be the organization's own: an admin token reads no organization")
    func adminTokenRefused() async throws {
        try await withBroker { f in
            setenv("TEST_ADMIN_PASSWORD", "Vbo-Admin-Pass-1", 1)
            let transport = CurlTransport(client: f.client, options: f.sim.trustingOptions())
            let admin = TokenBroker(
                upstream: "vb365-test", credential: Credential(username: "TECH\\vbo-admin", password: .env("TEST_ADMIN_PASSWORD")),
                grants: OAuthTokenEndpoint.vb365(transport: transport, baseURL: f.sim.vb365BaseURL, upstream: "vb365-test", version: .v5))
            let reader = VB365Client(transport: AuthenticatedTransport(base: transport, broker: admin), baseURL: f.sim.vb365BaseURL, version: .v5)
            let error = await #expect(throws: VeeamAPIError.self) { try await reader.organization() }
            #expect(error?.code == .forbidden)
        }
    }
}

/// Doubles for the retry rule: an upstream that always answers 401.
final class AlwaysUnauthorized: UpstreamTransport {
    let calls = Mutex(0)
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        calls.withLock { $0 += 1 }
        return UpstreamResponse(status: 401, body: Array(#"{"message":"Authorization has been denied for this request."}"#.utf8))
    }
}

@Suite("AuthenticatedTransport")
struct AuthenticatedTransportTests {
    @Test("a 401 triggers one re-login and one retry, never a loop")
    func retryOnce() async throws {
        setenv("TEST_ANY_PASSWORD", "x", 1)
        let upstream = AlwaysUnauthorized()
        let grants = CountingGrants()
        let broker = TokenBroker(upstream: "u", credential: Credential(username: "u", password: .env("TEST_ANY_PASSWORD")), grants: grants)
        let transport = AuthenticatedTransport(base: upstream, broker: broker)
        let response = try await transport.send(UpstreamRequest(url: "https://127.0.0.1:1/x"))
        #expect(response.status == 401)
        #expect(upstream.calls.withLock { $0 } == 2)
        #expect(grants.logins.withLock { $0 } == 2)
    }

    @Test("secret files lose one line ending (LF, CRLF or CR) and nothing else; a file of only a line ending is empty, not a crash")
    func secretFileEndings() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cases: [(content: String, expected: String?)] = [
            ("pass\n", "pass"), ("pass\r\n", "pass"), ("pass\r", "pass"), ("pass", "pass"), ("pass\n\n", "pass\n"),
            ("\r\n", nil), ("\n", nil), ("", nil), ("pässwörd\r\n", "pässwörd"),
        ]
        for (index, item) in cases.enumerated() {
            let path = directory + "/secret-\(index)"
            try Data(item.content.utf8).write(to: URL(fileURLWithPath: path))
            if let expected = item.expected {
                #expect(try SecretReference.file(path).resolve().value == expected)
            } else {
                let error = #expect(throws: SecretError.self) { try SecretReference.file(path).resolve() }
                #expect(error?.description.contains("empty") == true)
            }
        }
    }

    @Test("an unreadable secret is a typed error naming the reference, not the value")
    func missingSecret() async throws {
        let broker = TokenBroker(upstream: "u", credential: Credential(username: "u", password: .env("TEST_UNSET_VARIABLE_XYZ")), grants: CountingGrants())
        let error = await #expect(throws: TokenError.self) { try await broker.accessToken() }
        #expect(error?.code == .secretUnavailable)
        #expect(error?.message.contains("TEST_UNSET_VARIABLE_XYZ") == true)
    }
}

/// An upstream's `expires_in` is the upstream's to misstate: whatever it says, a grant's lifetime
/// stays within 1 s … 24 h and nothing traps (`Int(Double)` would, at Int64.max).
@Suite("Token lifetimes from upstreams are clamped", .serialized)
struct TokenLifetimeClampTests {
    @Test("TokenGrant.lifetime saturates every number and defaults what is not one")
    func lifetimeArithmetic() {
        let day = Duration.seconds(24 * 3600)
        #expect(TokenGrant.lifetime(expiresIn: 9_223_372_036_854_775_807) == day)
        #expect(TokenGrant.lifetime(expiresIn: 1e300) == day)
        #expect(TokenGrant.lifetime(expiresIn: .infinity) == day)
        #expect(TokenGrant.lifetime(expiresIn: -5) == .seconds(1))
        #expect(TokenGrant.lifetime(expiresIn: -.infinity) == .seconds(1))
        #expect(TokenGrant.lifetime(expiresIn: .nan) == .seconds(1))
        #expect(TokenGrant.lifetime(expiresIn: nil) == .seconds(3600))
        #expect(TokenGrant.lifetime(expiresIn: 1800.5) == .milliseconds(1_800_500))
        #expect(Int(saturating: 1e300) == .max && Int(saturating: -1e300) == .min && Int(saturating: .nan) == 0)
    }

    @Test("both products' token endpoints: expires_in of Int64.max, 1e300, negative and a string give a usable grant", arguments: [
        ("9223372036854775807", Duration.seconds(24 * 3600)), ("1e300", .seconds(24 * 3600)), ("-5", .seconds(1)), ("soon", .seconds(3600)),
        ("0", .seconds(1)), ("86401", .seconds(24 * 3600)),
    ])
    func grantsFromMisstatingServers(expiresIn: String, expected: Duration) async throws {
        let client = try CurlClient()
        defer { Task { await client.shutdown() } }
        try await withSimulator { sim in
            let transport = CurlTransport(client: client, options: sim.trustingOptions())
            for product in SimulatedProduct.allCases {
                var faults = SimulatorFaults()
                faults.expiresIn = expiresIn
                sim.state.setFaults(faults, for: product)
            }
            let vb365 = try await OAuthTokenEndpoint.vb365(transport: transport, baseURL: sim.vb365BaseURL, upstream: "vb365-test", version: .v5)
                .login(username: abc.username, password: Secret(abcPassword))
            #expect(vb365.lifetime == expected, "VB365, expires_in \(expiresIn)")
            let vspc = try await OAuthTokenEndpoint.vspc(transport: transport, baseURL: sim.vspcBaseURL, upstream: "vspc-test")
                .login(username: "gateway-svc", password: Secret("Gateway-Svc-Pass-1"))
            #expect(vspc.lifetime == expected, "VSPC, expires_in \(expiresIn)")
        }
    }
}
