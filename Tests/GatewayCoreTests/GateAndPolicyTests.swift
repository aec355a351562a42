import GatewayCore
import Synchronization
import Testing

@Suite("ConcurrencyGate")
struct ConcurrencyGateTests {
    @Test("at most `limit` run, at most `queue` wait, the rest get 503 with Retry-After")
    func boundedQueue() async throws {
        let gate = ConcurrencyGate(upstream: "vspc-main", limit: 2, queue: 3)
        try await gate.acquire()
        try await gate.acquire()
        #expect(gate.inFlight == 2)
        let waiters = (0..<3).map { _ in Task { try await gate.acquire() } }
        try await Task.sleep(for: .milliseconds(50))
        let refused = await #expect(throws: GatewayError.self) { try await gate.acquire() }
        #expect(refused?.status == 503)
        #expect(refused?.code == "upstream.overloaded")
        #expect(refused?.retryAfter == 1)
        #expect(refused?.upstream == "vspc-main")
        // Releasing hands the slot to a waiter; all waiters get through in turn.
        for _ in 0..<3 { gate.release() }
        for waiter in waiters { try await waiter.value }
        #expect(gate.inFlight == 2)
        gate.release()
        gate.release()
        #expect(gate.inFlight == 0)
    }

    @Test("a cancelled waiter leaves the queue")
    func cancelledWaiter() async throws {
        let gate = ConcurrencyGate(upstream: "u", limit: 1, queue: 1)
        try await gate.acquire()
        let waiter = Task { try await gate.acquire() }
        try await Task.sleep(for: .milliseconds(30))
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        let next = Task { try await gate.acquire() }  // the queue has room again
        gate.release()
        try await next.value
        #expect(gate.inFlight == 1)
    }
}

@Suite("AccessPolicy")
struct AccessPolicyTests {
    let policy = AccessPolicy()
    let org = "vb365-eu.cbc52c37-df7f-4b03-98f3-036e7d4b3127"

    @Test("seed 004's three roles read cloud tenants; others are told which roles are needed")
    func cloudTenants() {
        for role in ["PortalAdministrator", "ServiceProviderGlobalAdministrator", "ServiceProviderAdministrator"] {
            #expect(policy.canRead(Caller(id: "c", roles: [role]), kind: .cloudTenant, id: "v.x") == .allow)
        }
        let decision = policy.canRead(Caller(id: "c", roles: ["ServiceProviderOperator"]), kind: .cloudTenant, id: "v.x")
        #expect(decision == .forbidden(requiredRoles: ["PortalAdministrator", "ServiceProviderAdministrator", "ServiceProviderGlobalAdministrator"]))
    }

    @Test("an organization's own scoped caller reads it and nothing else, which looks absent")
    func scopes() {
        let app = Caller(id: "abc", roles: [], scopes: [org])
        #expect(policy.canRead(app, kind: .organization, id: org) == .allow)
        #expect(policy.canRead(app, kind: .organization, id: "vb365-eu.5d0f3b52-7b58-4c3e-9d0a-3d2b1f6a9e11") == .hidden)
        #expect(policy.canRead(app, kind: .cloudTenant, id: org) == .hidden)
    }

    @Test("API keys match in constant time against every caller; only the hash is kept")
    func directory() {
        let directory = CallerDirectory([
            CallerRecord(id: "a", keyHash: APIKey.hash("key-a-0123456789"), roles: ["PortalAdministrator"]),
            CallerRecord(id: "b", keyHash: APIKey.hash("key-b-0123456789"), roles: []),
        ])
        #expect(directory.authenticate(apiKey: "key-b-0123456789")?.id == "b")
        #expect(directory.authenticate(apiKey: "key-b-012345678") == nil)
        #expect(directory.authenticate(apiKey: "") == nil)
        #expect(APIKey.hash("key-a-0123456789").hasPrefix("sha256:"))
        #expect(!directory.records.contains { $0.keyHash.contains("key-a") })
    }

    @Test("token buckets: burst, then Retry-After; failed-auth windows")
    func limiters() {
        let limiter = RateLimiter()
        let rate = RateLimit(requestsPerSecond: 1, burst: 2)
        #expect(limiter.take("c", rate: rate) == nil)
        #expect(limiter.take("c", rate: rate) == nil)
        #expect(limiter.take("c", rate: rate) == 1)
        #expect(limiter.take("other", rate: rate) == nil)
        let failures = FailedAuthLimiter(limit: 2)
        #expect(failures.blocked("1.2.3.4") == nil)
        failures.recordFailure("1.2.3.4")
        failures.recordFailure("1.2.3.4")
        #expect((failures.blocked("1.2.3.4") ?? 0) >= 1)
        #expect(failures.blocked("5.6.7.8") == nil)
    }
}
