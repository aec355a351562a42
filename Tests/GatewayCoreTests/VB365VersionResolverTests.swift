import Foundation
import GatewayCore
import HTTPTransport
import Logging
import Synchronization
import Testing
import TokenBroker
import VeeamAPI
import VeeamWire

/// A VB365 server in one version, answering probes (401 or 404) slowly enough for callers to pile
/// up; it records every request and its X-Request-Id.
final class ProbedServer: UpstreamTransport {
    let version = Mutex<VB365APIVersion?>(.v7)
    let status = Mutex<Int?>(nil)
    let requests = Mutex<[(url: String, requestID: String?)]>([])
    func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
        requests.withLock { $0.append((request.url, request.header("X-Request-Id"))) }
        try await Task.sleep(for: .milliseconds(20))
        if let forced = status.withLock({ $0 }) { return UpstreamResponse(status: forced) }
        guard let served = version.withLock({ $0 }) else { return UpstreamResponse(status: 404) }
        return UpstreamResponse(status: request.url.contains("/\(served)/") ? 401 : 404)
    }
    var count: Int { requests.withLock { $0.count } }
}

@Suite("VB365VersionResolver: discovery once, shared, forgotten when no longer served")
struct VB365VersionResolverTests {
    func resolver(_ server: ProbedServer, _ setting: VB365VersionResolver.Setting = .auto, clock: TestInstant = TestInstant()) -> VB365VersionResolver {
        VB365VersionResolver(
            setting: setting, upstream: "vb", baseURL: "https://vb:4443", transport: server, timeout: .seconds(5), logger: Logger(label: "test"),
            retryAfter: .seconds(5), clock: clock.clock)
    }

    @Test("100 concurrent callers share one round of probes (v8 404, v7 401)")
    func coalesced() async throws {
        let server = ProbedServer()
        let versions = resolver(server)
        let found = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<100 { group.addTask { try await versions.current().rawValue } }
            var all: [String] = []
            for try await version in group { all.append(version) }
            return all
        }
        #expect(found == Array(repeating: "v7", count: 100))
        #expect(server.count == 2)
        _ = try await versions.current()
        #expect(server.count == 2, "known: no more probes")
    }

    @Test("a fixed version never probes")
    func fixed() async throws {
        let server = ProbedServer()
        #expect(try await resolver(server, .fixed(.v6)).current() == .v6)
        #expect(server.count == 0)
    }

    @Test("the probes carry none of the first caller's request id, and its deadline does not bound the others")
    func detached() async throws {
        let server = ProbedServer()
        let versions = resolver(server)
        // A caller whose own deadline is all but spent starts the discovery.
        _ = try? await UpstreamDeadline.within(.milliseconds(1)) {
            try await versions.current()
        }
        #expect(try await versions.current() == .v7)
        #expect(server.requests.withLock { $0 }.allSatisfy { $0.requestID == nil })
    }

    @Test("a failed discovery is answered from memory for 5 s, then tried again; 5xx and 429 are errors, not old servers")
    func failureRemembered() async throws {
        let server = ProbedServer()
        server.status.withLock { $0 = 503 }
        let clock = TestInstant()
        let versions = resolver(server, clock: clock)
        await #expect(throws: VeeamAPIError.self) { try await versions.current() }
        await #expect(throws: VeeamAPIError.self) { try await versions.current() }
        #expect(server.count == 1, "the second caller got the remembered error")
        server.status.withLock { $0 = 429 }
        clock.advance(.seconds(6))
        let throttled = await #expect(throws: VeeamAPIError.self) { try await versions.current() }
        #expect(throttled?.code == .throttled)
        server.status.withLock { $0 = nil }
        clock.advance(.seconds(6))
        #expect(try await versions.current() == .v7)
        #expect(versions.known == .v7)
    }

    @Test("a proxy answering 403 for every path is not taken for a v8 server")
    func proxy() async throws {
        let server = ProbedServer()
        server.status.withLock { $0 = 403 }
        let error = await #expect(throws: VeeamAPIError.self) { try await resolver(server).current() }
        #expect(error?.code == .badResponse)
    }

    @Test("a server downgraded from v8 to v6: the 404 forgets v8, the next call finds v6")
    func downgrade() async throws {
        let server = ProbedServer()
        server.version.withLock { $0 = .v8 }
        let versions = resolver(server)
        #expect(try await versions.current() == .v8)
        server.version.withLock { $0 = .v6 }
        versions.note(TokenError(.rejected, "refused"))
        #expect(versions.known == .v8, "other errors forget nothing")
        versions.note(VeeamAPIError(code: .versionUnsupported, status: 404))
        #expect(versions.known == nil)
        #expect(try await versions.current() == .v6)
        let fixed = resolver(server, .fixed(.v8))
        fixed.note(TokenError(.versionUnsupported, "404"))
        #expect(fixed.known == .v8, "a fixed version is never forgotten")
    }

    @Test("a server that serves no known version: versionUnsupported, after four probes")
    func none() async throws {
        let server = ProbedServer()
        server.version.withLock { $0 = nil }
        let error = await #expect(throws: VeeamAPIError.self) { try await resolver(server).current() }
        #expect(error?.code == .versionUnsupported)
        #expect(server.count == 4)
    }
}
