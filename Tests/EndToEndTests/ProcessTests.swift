import GatewayAccess
import CurlHTTP
import HTTPTransport
import Foundation
import GatewayCore
import GatewayTestSupport
import Synchronization
import Testing

/// Finds a built executable next to the test bundle (`swift build --build-tests` builds them).
func executable(_ name: String) throws -> String {
    let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name).path
    try #require(FileManager.default.isExecutableFile(atPath: path), "\(name) is not built next to the tests")
    return path
}

/// A child process, terminated (SIGTERM) when the test ends. Its output (stdout and stderr) is
/// read as it comes, so tests can wait for a line instead of sleeping.
///
/// The output is read by blocking `read(2)` calls on a thread of its own until end of file, not
/// through `FileHandle.readabilityHandler`: that installs a libdispatch read source, and tearing
/// such sources down on Linux can leave libdispatch's epoll bookkeeping pointing at freed memory
/// (a SIGSEGV in libdispatch's event loop, taking the whole test process down).
final class Child: @unchecked Sendable {
    let process = Process()
    let output = Pipe()
    private final class Captured: Sendable {
        let bytes = Mutex<[UInt8]>([])
        let finished = Atomic<Bool>(false)
    }
    private let captured = Captured()
    init(_ path: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        // The reader holds the pipe's read end open until it has read everything.
        let reading = output.fileHandleForReading
        let thread = Thread { [captured] in
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(reading.fileDescriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    captured.bytes.withLock { $0 += buffer[0..<count] }
                } else if count < 0, errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            captured.finished.store(true, ordering: .releasing)
        }
        thread.name = "child-output"
        thread.start()
    }

    /// What the child has written so far.
    var text: String { captured.bytes.withLock { String(decoding: $0, as: UTF8.self) } }

    /// All the child wrote, once it has exited: waits (at most 10 s) for the reader to reach the
    /// end of the output, and records an issue if it did not (a check of what was never written
    /// must not pass on part of the output).
    func allOutput() -> String {
        let deadline = ContinuousClock.now + .seconds(10)
        while !captured.finished.load(ordering: .acquiring), ContinuousClock.now < deadline { usleep(5_000) }
        if !captured.finished.load(ordering: .acquiring) { Issue.record("the child's output did not end within 10 s") }
        return text
    }

    /// Waits (bounded) until the child's output holds `needle` `count` times.
    func waitForOutput(_ needle: String, count: Int = 1, within limit: Duration = .seconds(10)) async -> Bool {
        await eventually(within: limit) { self.text.components(separatedBy: needle).count - 1 >= count }
    }

    /// SIGTERM, then the exit status; SIGKILL after 30 s (a child that ignores SIGTERM, which it
    /// may have inherited ignored, never hangs the suite).
    func stop() -> Int32 {
        if process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning, ContinuousClock.now < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Waits (bounded: 10 s) until the gateway at `base` answers `/healthz` with 200.
func waitForHealth(_ client: CurlClient, _ base: String) async throws {
    for _ in 0..<200 {
        if (try? await client.perform(UpstreamRequest(url: base + "/healthz"), options: TransferOptions()))?.status == 200 { return }
        try await Task.sleep(for: .milliseconds(50))
    }
}

func waitForFile(_ path: String, timeout: Duration = .seconds(20)) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("\(path) did not appear")
}

/// `veeam-sim` as a process (both products on free ports, its CA in `directory`), stopped by the caller.
struct SimulatorProcess {
    let child: Child
    let vb365Port: Int
    let vspcPort: Int

    static func start(in directory: String) async throws -> SimulatorProcess {
        let sim = try Child(
            try executable("veeam-sim"),
            ["--vb365-port", "0", "--vspc-port", "0", "--write-ca", directory + "/ca.pem", "--write-ports", directory + "/ports.json",
             "--fixtures", simulatorFixtureDirectory, "--log-level", "warning"])
        try await waitForFile(directory + "/ports.json")
        let ports = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/ports.json"))) as? [String: Int])
        return SimulatorProcess(child: sim, vb365Port: try #require(ports["vb365"]), vspcPort: try #require(ports["vspc"]))
    }

    /// The config's `upstreams:` for both products, passwords from E2E_ABC_PASSWORD and E2E_VSPC_PASSWORD.
    func upstreamsYAML(caDirectory directory: String) -> String {
        """
        upstreams:
          - name: vb365-eu
            product: vb365
            baseURL: https://127.0.0.1:\(vb365Port)
            tls: { caFile: \(directory)/ca.pem }
            organizations:
              - { username: backup-admin@abc.onmicrosoft.com, password: { env: E2E_ABC_PASSWORD } }
          - name: vspc-main
            product: vspc
            baseURL: https://127.0.0.1:\(vspcPort)
            tls: { caFile: \(directory)/ca.pem }
            account: { username: gateway-svc, password: { env: E2E_VSPC_PASSWORD } }
        """
    }
}

@Suite("End to end: separate processes, as in production", .serialized)
struct ProcessTests {
    @Test("a gateway token follows the caller list: after SIGHUP, a removed caller's token is refused and a narrowed caller's token is narrowed")
    func tokensFollowReload() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let gatewayPort = try refusedPort()
        let upstreamPort = try refusedPort()  // nothing listens: no test here reaches an upstream
        let goneKey = "e2e-token-gone-key-0123456789"
        let narrowedKey = "e2e-token-narrowed-key-0123456789"
        func config(callers: String) -> String {
            """
            listen: { host: 127.0.0.1, port: \(gatewayPort) }
            auth: { tokens: { signingKey: { env: E2E_SIGNING_KEY }, lifetime: 1h } }
            callers:
            \(callers)
            upstreams:
              - name: vspc-main
                product: vspc
                baseURL: https://127.0.0.1:\(upstreamPort)
                account: { username: gateway-svc, password: { env: E2E_VSPC_PASSWORD } }
            """
        }
        let both = """
              - { id: gone, keyHash: "\(APIKey.hash(goneKey))", roles: [PortalAdministrator] }
              - { id: narrowed, keyHash: "\(APIKey.hash(narrowedKey))", roles: [PortalAdministrator] }
            """
        try Data(config(callers: both).utf8).write(to: URL(fileURLWithPath: directory + "/gateway.yaml"))
        let gateway = try Child(
            try executable("veeam-gateway"), ["serve", "--config", directory + "/gateway.yaml"],
            environment: ["E2E_SIGNING_KEY": TestKeys.signingKey, "E2E_VSPC_PASSWORD": "Gateway-Svc-Pass-1"])
        defer { _ = gateway.stop() }
        let client = try CurlClient()
        let base = "http://127.0.0.1:\(gatewayPort)"
        try await waitForHealth(client, base)
        func token(_ id: String, _ key: String) async throws -> String {
            let response = try await client.perform(
                UpstreamRequest(method: .post, url: base + "/v1/auth/token", body: .form([("grant_type", "client_credentials"), ("client_id", id), ("client_secret", key)])),
                options: TransferOptions())
            let body = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], "\(response.status) \(response.text)")
            return try #require(body["access_token"] as? String)
        }
        func status(_ path: String, _ token: String) async throws -> Int {
            try await client.perform(UpstreamRequest(url: base + path, headers: [("Authorization", "Bearer " + token)]), options: TransferOptions()).status
        }
        let goneToken = try await token("gone", goneKey)
        let narrowedToken = try await token("narrowed", narrowedKey)
        #expect(try await status("/v1/upstreams", goneToken) == 200)
        #expect(try await status("/v1/upstreams", narrowedToken) == 200)

        // `gone` leaves the list and `narrowed` becomes a CompanyOwner; SIGHUP.
        let after = """
              - { id: narrowed, keyHash: "\(APIKey.hash(narrowedKey))", roles: [CompanyOwner] }
            """
        try Data(config(callers: after).utf8).write(to: URL(fileURLWithPath: directory + "/gateway.yaml"))
        kill(gateway.process.processIdentifier, SIGHUP)
        var refused = 0
        for _ in 0..<100 {
            refused = try await status("/v1/upstreams", goneToken)
            if refused == 401 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(refused == 401, "the removed caller's token is refused at once")
        #expect(try await status("/v1/upstreams", narrowedToken) == 403, "the narrowed caller is no administrator now")
        // A cloud tenant needs seed 004's roles: refused before any upstream call, on either path.
        #expect(try await status("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", narrowedToken) == 403)
        #expect(try await status("/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", goneToken) == 401)
        await client.shutdown()
    }

    @Test("listen.tls: SIGHUP renews the front end's certificate for new connections; a broken key is refused and the old certificate stays")
    func frontCertificateReload() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let gatewayPort = try refusedPort()
        let upstreamPort = try refusedPort()  // no test here reaches an upstream
        let first = try FrontTLSFiles(directory: directory)
        let secondDirectory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: secondDirectory) }
        let second = try FrontTLSFiles(directory: secondDirectory)
        try Data("""
            listen: { host: 127.0.0.1, port: \(gatewayPort), \(first.listen()) }
            upstreams:
              - name: vspc-main
                product: vspc
                baseURL: https://127.0.0.1:\(upstreamPort)
                account: { username: gateway-svc, password: { env: E2E_VSPC_PASSWORD } }
            """.utf8).write(to: URL(fileURLWithPath: directory + "/gateway.yaml"))
        let gateway = try Child(
            try executable("veeam-gateway"), ["serve", "--config", directory + "/gateway.yaml"], environment: ["E2E_VSPC_PASSWORD": "Gateway-Svc-Pass-1"])
        defer { _ = gateway.stop() }
        /// `/healthz` on a new connection, trusting only `caFile`: the status, or nil when the
        /// handshake fails (the server's certificate is not from that CA).
        func health(trusting caFile: String) async -> Int? {
            guard let client = try? CurlClient() else { return nil }
            defer { Task { await client.shutdown() } }
            return try? await client.perform(
                UpstreamRequest(url: "https://127.0.0.1:\(gatewayPort)/healthz"), options: TransferOptions(tls: .init(caFile: caFile), totalTimeout: .seconds(5))
            ).status
        }
        for _ in 0..<200 {
            if await health(trusting: first.ca) == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(await health(trusting: first.ca) == 200)
        #expect(await health(trusting: second.ca) == nil)

        // The operator renews: the second certificate and key replace the first; SIGHUP.
        try FileManager.default.removeItem(atPath: first.certificate)
        try FileManager.default.removeItem(atPath: first.key)
        try FileManager.default.copyItem(atPath: second.certificate, toPath: first.certificate)
        try FileManager.default.copyItem(atPath: second.key, toPath: first.key)
        kill(gateway.process.processIdentifier, SIGHUP)
        var renewed: Int?
        for _ in 0..<100 {
            renewed = await health(trusting: second.ca)
            if renewed == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(renewed == 200, "new connections get the renewed certificate")
        #expect(await health(trusting: first.ca) == nil, "and no longer the old one")

        // A broken key: the reload is refused, the running certificate stays, the process serves.
        try Data("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".utf8).write(to: URL(fileURLWithPath: first.key))
        kill(gateway.process.processIdentifier, SIGHUP)
        #expect(await gateway.waitForOutput("configuration reload refused"), "\(gateway.text.suffix(2000))")
        #expect(gateway.process.isRunning)
        #expect(await health(trusting: second.ca) == 200)
    }

    @Test("veeam-sim and veeam-gateway serve, over TLS and HTTP, then SIGTERM exits 0")
    func processes() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let simulator = try await SimulatorProcess.start(in: directory)
        defer { _ = simulator.child.stop() }
        let vspc = simulator.vspcPort

        let gatewayPort = try refusedPort()  // a free port for the gateway to bind
        let config = """
            listen: { host: 127.0.0.1, port: \(gatewayPort) }
            callers:
              - { id: portal, keyHash: "\(APIKey.hash(TestKeys.portalAdmin))", roles: [PortalAdministrator] }
            \(simulator.upstreamsYAML(caDirectory: directory))
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/gateway.yaml"))
        let gateway = try Child(
            try executable("veeam-gateway"), ["serve", "--config", directory + "/gateway.yaml"],
            environment: ["E2E_ABC_PASSWORD": "Abc-Org-Pass-1", "E2E_VSPC_PASSWORD": "Gateway-Svc-Pass-1"])
        defer { _ = gateway.stop() }

        let client = try CurlClient()
        let base = "http://127.0.0.1:\(gatewayPort)"
        var health: UpstreamResponse?
        for _ in 0..<200 {
            health = try? await client.perform(UpstreamRequest(url: base + "/healthz"), options: TransferOptions())
            if health?.status == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(health?.status == 200)
        let org = try await client.perform(UpstreamRequest(url: base + "/v1/tenants/vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127", headers: [("X-API-Key", TestKeys.portalAdmin)]), options: TransferOptions())
        #expect(org.status == 200)
        #expect(org.text.contains("\"firstBackupAt\":\"2020-05-29T10:29:05.5413083Z\""))
        let tenant = try await client.perform(UpstreamRequest(url: base + "/v1/tenants/vspc-main.c386d34c-0ab6-4e13-b30a-67fcb05b83e4", headers: [("Authorization", "Bearer " + TestKeys.portalAdmin)]), options: TransferOptions())
        #expect(tenant.status == 200)
        #expect(tenant.text.contains("\"type\":\"General\""))

        // SIGHUP re-reads the file: a caller added to it is accepted without a restart.
        let reloadKey = "e2e-process-reload-key-0123456789"
        let withCaller = config.replacingOccurrences(
            of: "callers:\n", with: "callers:\n  - { id: added, keyHash: \"\(APIKey.hash(reloadKey))\", roles: [PortalAdministrator] }\n")
        try Data(withCaller.utf8).write(to: URL(fileURLWithPath: directory + "/gateway.yaml"))
        kill(gateway.process.processIdentifier, SIGHUP)
        var reloaded = 0
        for _ in 0..<100 {
            reloaded = try await client.perform(UpstreamRequest(url: base + "/v1/upstreams", headers: [("X-API-Key", reloadKey)]), options: TransferOptions()).status
            if reloaded == 200 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(reloaded == 200)
        // SIGTERM while a request is in flight: the request still gets its answer, then exit 0.
        let slow = Data(#"{"latencyMs":1500}"#.utf8)
        _ = try await client.perform(
            UpstreamRequest(method: .put, url: "https://127.0.0.1:\(vspc)/_sim/faults/vspc", body: .json(Array(slow))),
            options: TransferOptions(tls: .init(caFile: directory + "/ca.pem")))
        let simOptions = TransferOptions(tls: .init(caFile: directory + "/ca.pem"))
        /// How often the simulator's VSPC has been asked for one tenant.
        func tenantReads() async throws -> Int {
            let body = try await client.perform(UpstreamRequest(url: "https://127.0.0.1:\(vspc)/_sim/counters"), options: simOptions).body
            let counters = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any]
            let requests = (counters?["vspc"] as? [String: Any])?["requests"] as? [String: Any]
            return requests?["GET /api/v3/infrastructure/sites/tenants/{tenantUid}"] as? Int ?? 0
        }
        let readsBefore = try await tenantReads()
        let inFlight = Task {
            try await client.perform(
                UpstreamRequest(url: base + "/v1/tenants/vspc-main.0f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19", headers: [("X-API-Key", TestKeys.portalAdmin)]),
                options: TransferOptions(totalTimeout: .seconds(20)))
        }
        // Terminate once the simulator holds the request (it answers after 1.5 s), not after a guess.
        var held = false
        for _ in 0..<400 where !held {
            held = try await tenantReads() > readsBefore
            if !held { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(held, "the request reached the simulator")
        gateway.process.terminate()
        let answered = try await inFlight.value
        #expect(answered.status == 200, "the in-flight request finished during graceful shutdown")
        await client.shutdown()

        #expect(gateway.stop() == 0, "SIGTERM stops the gateway cleanly")
        let log = gateway.allOutput()
        #expect(log.contains("request"))
        #expect(!log.contains("Abc-Org-Pass-1"))
        #expect(!log.contains("Gateway-Svc-Pass-1"))
        #expect(!log.contains(TestKeys.portalAdmin), "API keys are never logged")
    }
}

/// Resident memory of a process, from `/proc/{pid}/status` (`VmRSS`), in bytes.
func residentBytes(_ pid: Int32) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { return 0 }
    return kilobytes * 1024
}

@Suite("End to end: list requests keyed by caller input stay within cache.maxBytes (RSS of the real process)", .serialized)
struct ListMemoryBoundTests {
    @Test("20,000 distinct empty pages (q of combining marks, offset 0…19,999) leave the process within cache.maxBytes plus a fixed allowance")
    func distinctPagesAreBounded() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let simulator = try await SimulatorProcess.start(in: directory)
        defer { _ = simulator.child.stop() }
        let gatewayPort = try refusedPort()
        let maxBytes = 8 << 20
        let config = """
            listen: { host: 127.0.0.1, port: \(gatewayPort) }
            log: { level: warning }
            cache: { maxBytes: \(maxBytes) }
            callers:
              - { id: portal, keyHash: "\(APIKey.hash(TestKeys.portalAdmin))", roles: [PortalAdministrator], rateLimit: { requestsPerSecond: 100000, burst: 100000 } }
            \(simulator.upstreamsYAML(caDirectory: directory))
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: directory + "/gateway.yaml"))
        let gateway = try Child(
            try executable("veeam-gateway"), ["serve", "--config", directory + "/gateway.yaml"],
            environment: ["E2E_ABC_PASSWORD": "Abc-Org-Pass-1", "E2E_VSPC_PASSWORD": "Gateway-Svc-Pass-1"])
        defer { _ = gateway.stop() }
        let pid = gateway.process.processIdentifier

        /// `count` list requests on fresh connections, `batch` pipelined per connection; their statuses.
        func pages(q: String, offsets: Range<Int>, batch: Int = 250) async throws -> [Int] {
            var statuses: [Int] = []
            var start = offsets.lowerBound
            while start < offsets.upperBound {
                let end = min(start + batch, offsets.upperBound)
                let requests = (start..<end).map {
                    "GET /v1/tenants?q=\(q)&limit=1&offset=\($0) HTTP/1.1\r\nHost: x\r\nX-API-Key: \(TestKeys.portalAdmin)\r\n\r\n"
                }.joined()
                statuses += try await RawConnection.exchange(port: gatewayPort, chunks: [Array(requests.utf8)], responses: end - start).map(\.status)
                start = end
            }
            return statuses
        }
        var ready = false
        for _ in 0..<200 where !ready {
            ready = (try? await pages(q: "x", offsets: 0..<1))?.first == 200
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready)
        // Warm up: the lists are in the cache, the allocator has its arenas.
        let warm = try await pages(q: "warm", offsets: 0..<2_000)
        #expect(warm.allSatisfy { $0 == 200 }, "\(Set(warm))")
        let before = residentBytes(pid)

        // One visible character made of 2,400 combining marks (4,801 bytes): refused, keeps nothing.
        let marks = "a" + String(repeating: "%CC%81", count: 2_400)
        let refused = try await pages(q: marks, offsets: 0..<20_000, batch: 100)
        #expect(refused.allSatisfy { $0 == 400 }, "q is limited in bytes: \(Set(refused))")
        let afterRefused = residentBytes(pid)

        // The longest q allowed (199 bytes: "a" and 99 combining marks), 20,000 distinct pages.
        let longest = "a" + String(repeating: "%CC%81", count: 99)
        let served = try await pages(q: longest, offsets: 0..<20_000)
        #expect(served.allSatisfy { $0 == 200 }, "\(Set(served))")
        let after = residentBytes(pid)

        let allowance = 24 << 20
        #expect(afterRefused - before <= allowance, "refused requests keep nothing: \((afterRefused - before) >> 10) KiB")
        #expect(after - before <= maxBytes + allowance, "RSS grew \((after - before) >> 20) MiB for cache.maxBytes \(maxBytes >> 20) MiB")
        let status = try await CurlClient().perform(
            UpstreamRequest(url: "http://127.0.0.1:\(gatewayPort)/v1/status", headers: [("X-API-Key", TestKeys.portalAdmin)]), options: TransferOptions())
        #expect(status.status == 200)
        print("RSS before \(before >> 20) MiB, after 20,000 refused \(afterRefused >> 20) MiB, after 20,000 pages \(after >> 20) MiB")
    }
}
