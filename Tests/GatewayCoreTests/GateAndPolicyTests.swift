import GatewaySecrets
import Foundation
import GatewayClock
import GatewayAccess
import GatewayCore
import HTTPTransport
import Logging
import Synchronization
import GatewayTestSupport
import Testing
import TokenBroker
import VeeamAPI

@Suite("ConcurrencyGate")
struct ConcurrencyGateTests {
    /// Yields until `condition` holds: no clock involved, bounded (a broken gate fails, not hangs).
    static func until(_ condition: () -> Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for _ in 0..<100_000 where !condition() { await Task.yield() }
        try #require(condition(), sourceLocation: sourceLocation)
    }

    @Test("state machine: run to the limit, queue to the bound, refuse beyond; cancel a queued waiter; release passes the slot on")
    func transitions() {
        var machine = ConcurrencyGate.StateMachine<String>(limit: 2, queue: 1)
        #expect(machine.acquire(id: 1, waiter: "a", isCancelled: false) == .run)
        #expect(machine.acquire(id: 2, waiter: "b", isCancelled: false) == .run)
        #expect(machine.acquire(id: 3, waiter: "c", isCancelled: false) == .wait)
        #expect(machine.acquire(id: 4, waiter: "d", isCancelled: false) == .refuse)
        #expect(machine.running == 2 && machine.queued == 1)
        // Cancelled before it queued: it does not wait for a slot (its cancellation handler has
        // already run and would never resume it).
        #expect(machine.acquire(id: 5, waiter: "e", isCancelled: true) == .cancelled)
        #expect(machine.queued == 1)
        // A queued waiter cancelled leaves the queue; one not queued is not found.
        #expect(machine.cancel(id: 3) == "c")
        #expect(machine.cancel(id: 3) == nil)
        #expect(machine.cancel(id: 1) == nil)
        #expect(machine.acquire(id: 6, waiter: "f", isCancelled: false) == .wait)
        // Release hands the slot to the next waiter (running stays), then frees it.
        #expect(machine.release() == "f")
        #expect(machine.running == 2 && machine.queued == 0)
        #expect(machine.release() == nil)
        #expect(machine.release() == nil)
        #expect(machine.running == 0)
        #expect(machine.release() == nil)
        #expect(machine.running == 0, "never below zero")
    }

    @Test("waiting in the queue is bounded by the read's deadline", .timeLimit(.minutes(1)))
    func queueWaitBoundedByDeadline() async throws {
        let gate = ConcurrencyGate(upstream: "vspc-main", limit: 1, queue: 5)
        try await gate.acquire()  // held throughout
        let waited = await #expect(throws: UpstreamError.self) { try await gate.acquire(until: .now + .milliseconds(100)) }
        #expect(waited?.code == .timeout)
        #expect(gate.queued == 0, "the timed-out waiter left the queue")
        // A deadline already past is refused without queueing.
        await #expect(throws: UpstreamError.self) { try await gate.acquire(until: .now - .seconds(1)) }
        gate.release()
        try await gate.acquire(until: .now + .seconds(5))  // a free slot: no wait, no timer
        #expect(gate.inFlight == 1)
        gate.release()
    }

    @Test("a 429's quiet period is the upstream's retryAfter clamped to an hour; reads are refused in it, logins and probes only record it")
    func throttleQuietPeriod() async throws {
        struct Answer429: UpstreamTransport {
            let retryAfter: String
            func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
                UpstreamResponse(status: 429, headers: [("Retry-After", retryAfter)], body: [], info: TransferInfo())
            }
        }
        let state = ThrottleState()
        let logger = Logger(label: "test")
        let veeam: @Sendable (UpstreamResponse) -> Int? = { VeeamAPIError.from($0).retryAfter }
        let recording = ThrottleTransport(
            base: Answer429(retryAfter: "9223372036854775807"), upstream: "vspc-main", state: state, refusing: false, retryAfter: veeam, logger: logger)
        let refusing = ThrottleTransport(base: Answer429(retryAfter: "1"), upstream: "vspc-main", state: state, refusing: true, retryAfter: veeam, logger: logger)
        #expect(state.remaining() == nil)
        #expect(state.started == 0)
        let first = try await recording.send(UpstreamRequest(url: "https://vspc/api/v3/token"))
        #expect(first.status == 429)
        #expect(state.started == 1, "each 429 starts a quiet period (counted for /metrics)")
        let left = try #require(state.remaining())
        #expect(left > 3500 && left <= 3600, "\(left) s: an upstream's huge Retry-After is clamped to an hour")
        // The stack throws its own error; the caller's answer (503, Retry-After) is GatewayError.upstream's.
        let refused = await #expect(throws: UpstreamError.self) { _ = try await refusing.send(UpstreamRequest(url: "https://vspc/api/v3/x")) }
        #expect(refused?.code == .throttled)
        #expect(refused?.retryAfter == left)
        let answered = try #require(refused.map { GatewayError.upstream("vspc-main", $0) })
        #expect(answered.code.rawValue == "upstream.throttled" && answered.status == 503 && answered.retryAfter == left && answered.upstream == "vspc-main")
        #expect(state.started == 1, "a refused read is not a new quiet period")
        // Logins and probes are not refused in the quiet period.
        #expect(try await recording.send(UpstreamRequest(url: "https://vspc/api/v3/token")).status == 429)
        #expect(state.started == 2)
    }

    @Test("a read's retry after a 401 keeps its place at the gate: it goes before a caller queued during the first attempt", .timeLimit(.minutes(1)))
    func retryHoldsTheGate() async throws {
        setenv("TEST_GATE_PASSWORD", "x", 1)
        /// Answers 401 to the first token and 200 to the next; during the first attempt it queues
        /// another caller at the gate and waits until that caller waits.
        final class FirstUnauthorized: UpstreamTransport {
            let events = Mutex<[String]>([])
            let gate: Mutex<ConcurrencyGate?> = Mutex(nil)
            let other: Mutex<Task<Void, any Error>?> = Mutex(nil)
            func send(_ request: UpstreamRequest) async throws -> UpstreamResponse {
                let token = request.headers.first { $0.name == "Authorization" }?.value ?? ""
                if token == "Bearer token-1", let gate = gate.withLock({ $0 }) {
                    let waiter = Task {
                        try await gate.acquire()
                        self.events.withLock { $0.append("other caller ran") }
                        gate.release()
                    }
                    other.withLock { $0 = waiter }
                    while gate.queued < 1 { try await Task.sleep(for: .milliseconds(5)) }
                    return UpstreamResponse(status: 401)
                }
                events.withLock { $0.append("retry sent with \(token)") }
                return UpstreamResponse(status: 200)
            }
        }
        let base = FirstUnauthorized()
        let stack = UpstreamStack(
            name: "vspc-main", transport: base, totalTimeout: .seconds(10), metrics: nil, logger: Logger(label: "test"), maxConcurrentRequests: 1,
            maxQueuedRequests: 5, uuidRequestIDs: true)
        base.gate.withLock { $0 = stack.gate }
        let broker = TokenBroker(upstream: "vspc-main", credential: Credential(username: "u", password: .env("TEST_GATE_PASSWORD")), grants: CountingGrants())
        let response = try await stack.reads(as: broker).send(UpstreamRequest(url: "https://127.0.0.1:1/x"))
        #expect(response.status == 200)
        try await base.other.withLock { $0 }?.value
        #expect(base.events.withLock { $0 } == ["retry sent with Bearer token-2", "other caller ran"])
        #expect(stack.gate.inFlight == 0 && stack.gate.queued == 0)
    }


    @Test("a task cancelled before it reaches the gate gets CancellationError at once, and takes no place in the queue", .timeLimit(.minutes(1)))
    func cancelledBeforeQueueing() async throws {
        let gate = ConcurrencyGate(upstream: "vspc-main", limit: 1, queue: 5)
        try await gate.acquire()  // the only slot, held throughout
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await gate.acquire()
        }
        let outcome = await cancelled.result
        #expect(throws: CancellationError.self) { try outcome.get() }
        #expect(gate.queued == 0)
        #expect(gate.inFlight == 1)
        gate.release()
        #expect(gate.inFlight == 0)
    }

    @Test("at most `limit` run, at most `queue` wait, the rest get 503 with Retry-After")
    func boundedQueue() async throws {
        let gate = ConcurrencyGate(upstream: "vspc-main", limit: 2, queue: 3)
        try await gate.acquire()
        try await gate.acquire()
        #expect(gate.inFlight == 2)
        let waiters = (0..<3).map { _ in Task { try await gate.acquire() } }
        try await Self.until { gate.queued == 3 }
        let thrown = await #expect(throws: UpstreamError.self) { try await gate.acquire() }
        #expect(thrown?.code == .overloaded)
        let refused = thrown.map { GatewayError.upstream("vspc-main", $0) }
        #expect(refused?.status == 503)
        #expect(refused?.code == .upstreamOverloaded)
        #expect(refused?.code.rawValue == "upstream.overloaded")
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
        try await Self.until { gate.queued == 1 }
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

    @Test("a company's caller reads the tenants of both kinds its customer holds; the rest look absent; membership is asked only of it")
    func companyScope() {
        let portal = Caller(id: "abc-portal", roles: [], scopes: [Scope.company("vspc-main.C0A1")])
        #expect(policy.canRead(portal, kind: .organization, id: org, customers: { ["vspc-main.c0a1"] }) == .allow)
        #expect(policy.canRead(portal, kind: .cloudTenant, id: "vspc-main.t1", customers: { ["vspc-b.x", "vspc-main.c0a1"] }) == .allow)
        #expect(policy.canRead(portal, kind: .cloudTenant, id: "vspc-main.t2", customers: { ["vspc-main.other"] }) == .hidden)
        #expect(policy.canRead(portal, kind: .cloudTenant, id: "vspc-main.t3") == .hidden)
        let admin = Caller(id: "admin", roles: ["PortalAdministrator"])
        #expect(policy.canRead(admin, kind: .cloudTenant, id: "vspc-main.t1", customers: { Issue.record("asked for a reader"); return [] }) == .allow)
        let app = Caller(id: "abc", roles: [], scopes: [org])
        #expect(policy.canRead(app, kind: .cloudTenant, id: "vspc-main.t1", customers: { Issue.record("asked for an organization's caller"); return [] }) == .hidden)
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
        #expect(!directory.records.contains { $0.keyHash?.contains("key-a") == true })
    }

    @Test("a connection's remembered key: the same key is the same caller, a reload forgets it, a wrong key still fails and counts, the rate is taken every time")
    func presentedKeyMemo() {
        let before = AccessControl(
            callers: [
                CallerRecord(id: "a", keyHash: APIKey.hash("key-a-0123456789"), roles: ["PortalAdministrator"]),
                CallerRecord(id: "b", keyHash: APIKey.hash("key-b-0123456789"), roles: []),
            ],
            policy: AccessPolicy(), defaultRate: RateLimit(requestsPerSecond: 0.001, burst: 3), failedAuthPerMinute: 2)
        var memo = PresentedKeyMemo()
        #expect(before.authenticate(apiKey: "key-a-0123456789", address: "10.0.0.1", memo: &memo) == .caller(Caller(id: "a", roles: ["PortalAdministrator"])))
        #expect(before.authenticate(apiKey: "key-a-0123456789", address: "10.0.0.1", memo: &memo) == .caller(Caller(id: "a", roles: ["PortalAdministrator"])))
        // Another key on the same connection is authenticated afresh, and replaces the memo.
        #expect(before.authenticate(apiKey: "key-b-0123456789", address: "10.0.0.1", memo: &memo) == .caller(Caller(id: "b", roles: [])))
        #expect(before.authenticate(apiKey: "key-a-0123456789", address: "10.0.0.1", memo: &memo) == .caller(Caller(id: "a", roles: ["PortalAdministrator"])))
        // The rate is the caller's, remembered or not: a's burst of 3 ends at its fourth request.
        #expect(before.authenticate(apiKey: "key-a-0123456789", address: "10.0.0.1", memo: &memo) == .rateLimited(retryAfter: 1000))
        // A wrong key after a good one fails and counts against the address (twice blocks it).
        #expect(before.authenticate(apiKey: "key-a-012345678", address: "10.0.0.1", memo: &memo) == .invalid)
        #expect(before.authenticate(apiKey: "key-a-0123456788", address: "10.0.0.1", memo: &memo) == .invalid)
        if case .tooManyFailures = before.authenticate(apiKey: "key-b-0123456789", address: "10.0.0.1", memo: &memo) {} else {
            Issue.record("a blocked address is refused even with a key it presented before")
        }
        // After a reload without caller a, its key on the old connection is invalid.
        var kept = PresentedKeyMemo()
        #expect(before.authenticate(apiKey: "key-b-0123456789", address: "10.0.0.2", memo: &kept) == .caller(Caller(id: "b", roles: [])))
        let after = AccessControl(
            callers: [CallerRecord(id: "a", keyHash: APIKey.hash("key-a-new-0123456789"), roles: [])],
            policy: AccessPolicy(), defaultRate: RateLimit(requestsPerSecond: 100, burst: 100), failedAuthPerMinute: 10)
        #expect(after.authenticate(apiKey: "key-b-0123456789", address: "10.0.0.2", memo: &kept) == .invalid)
        // A caller's own rate is remembered with it, not the default: c's burst of 1 ends at its
        // second request, answered from the memo.
        let own = AccessControl(
            callers: [CallerRecord(id: "c", keyHash: APIKey.hash("key-c-0123456789"), roles: [], rate: RateLimit(requestsPerSecond: 0.001, burst: 1))],
            policy: AccessPolicy(), defaultRate: RateLimit(requestsPerSecond: 100, burst: 100), failedAuthPerMinute: 10)
        var third = PresentedKeyMemo()
        #expect(own.authenticate(apiKey: "key-c-0123456789", address: "10.0.0.3", memo: &third) == .caller(Caller(id: "c", roles: [])))
        #expect(own.authenticate(apiKey: "key-c-0123456789", address: "10.0.0.3", memo: &third) == .rateLimited(retryAfter: 1000))
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

    @Test("a bucket refills at its rate up to its burst, and Retry-After is the time until one more request fits")
    func limiterRefill() {
        let time = ManualClock()
        let limiter = RateLimiter(clock: time.clock)
        let rate = RateLimit(requestsPerSecond: 2, burst: 3)
        for _ in 0..<3 { #expect(limiter.take("c", rate: rate) == nil) }
        #expect(limiter.take("c", rate: rate) == 1, "half a second to the next request: rounded up to 1")
        time.advance(by: .milliseconds(500))
        #expect(limiter.take("c", rate: rate) == nil)
        #expect(limiter.take("c", rate: rate) == 1)
        // A long pause fills the bucket to its burst, never beyond.
        time.advance(by: .seconds(60))
        for _ in 0..<3 { #expect(limiter.take("c", rate: rate) == nil) }
        #expect(limiter.take("c", rate: rate) == 1)
        // A slow rate: ten seconds per request, and a refusal takes nothing.
        let slow = RateLimit(requestsPerSecond: 0.1, burst: 1)
        #expect(limiter.take("slow", rate: slow) == nil)
        #expect(limiter.take("slow", rate: slow) == 10)
        time.advance(by: .milliseconds(9_500))
        #expect(limiter.take("slow", rate: slow) == 1)
        time.advance(by: .milliseconds(500))
        #expect(limiter.take("slow", rate: slow) == nil)
    }

    @Test("threads taking from one caller's bucket at once are allowed exactly its burst, not one more")
    func limiterUnderContention() {
        let time = ManualClock()
        let limiter = RateLimiter(clock: time.clock)
        let rate = RateLimit(requestsPerSecond: 0.001, burst: 500)
        let bucket = limiter.bucket("shared")
        let allowed = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { thread in
            for index in 0..<1_000 {
                // Half by the bucket a connection keeps, half by the caller's id.
                let refused = (index + thread) % 2 == 0 ? limiter.take(from: bucket, rate: rate) : limiter.take("shared", rate: rate)
                if refused == nil { allowed.add(1, ordering: .relaxed) }
            }
        }
        #expect(allowed.load(ordering: .relaxed) == 500)
    }

    @Test("a connection that remembers its API key takes from the same bucket as one that does not")
    func rememberedKeySharesTheBucket() {
        let access = AccessControl(
            callers: [CallerRecord(id: "c", keyHash: APIKey.hash("key-c-0123456789"), roles: [], rate: RateLimit(requestsPerSecond: 0.001, burst: 3))],
            policy: AccessPolicy(), defaultRate: RateLimit(requestsPerSecond: 100, burst: 100), failedAuthPerMinute: 10)
        var memo = PresentedKeyMemo()
        #expect(access.authenticate(apiKey: "key-c-0123456789", address: "10.0.0.1", memo: &memo) == .caller(Caller(id: "c", roles: [])))
        #expect(access.authenticate(apiKey: "key-c-0123456789", address: "10.0.0.1", memo: &memo) == .caller(Caller(id: "c", roles: [])))
        #expect(access.authenticate(apiKey: "key-c-0123456789", address: "10.0.0.2") == .caller(Caller(id: "c", roles: [])))
        #expect(access.authenticate(apiKey: "key-c-0123456789", address: "10.0.0.1", memo: &memo) == .rateLimited(retryAfter: 1000))
        #expect(access.authenticate(apiKey: "key-c-0123456789", address: "10.0.0.2") == .rateLimited(retryAfter: 1000))
    }
}

@Suite("Client addresses and the failed-authentication limiter")
struct ClientAddressTests {
    @Test("addresses and ranges parse with inet_pton; IPv6 counts by /64, IPv4-mapped IPv6 as IPv4")
    func parsing() throws {
        #expect(IPAddress("203.0.113.7")?.limiterKey == "203.0.113.7")
        #expect(IPAddress("::ffff:203.0.113.7")?.limiterKey == "203.0.113.7")
        #expect(IPAddress("2001:db8:1:2:aaaa:bbbb:cccc:dddd")?.limiterKey == "2001:db8:1:2::/64")
        #expect(IPAddress("[2001:db8:1:2::1]")?.limiterKey == "2001:db8:1:2::/64")
        #expect(IPAddress("2001:db8:1:3::1")?.limiterKey == "2001:db8:1:3::/64")
        for bad in ["", "300.1.1.1", "1.2.3", "nope", "2001:db8::1::2", "1.2.3.4 "] { #expect(IPAddress(bad) == nil, "\(bad)") }
        let ten = try #require(AddressRange("10.0.0.0/8"))
        #expect(ten.contains(try #require(IPAddress("10.200.3.4"))))
        #expect(!ten.contains(try #require(IPAddress("11.0.0.1"))))
        #expect(!ten.contains(try #require(IPAddress("2001:db8::1"))))
        let odd = try #require(AddressRange("192.168.0.0/23"))
        #expect(odd.contains(try #require(IPAddress("192.168.1.255"))))
        #expect(!odd.contains(try #require(IPAddress("192.168.2.0"))))
        #expect(try #require(AddressRange("2001:db8::/32")).contains(try #require(IPAddress("2001:db8:ffff::1"))))
        for bad in ["10.0.0.0/33", "10.0.0.0/-1", "2001:db8::/129", "10.0.0.0/8/1", "x/8"] { #expect(AddressRange(bad) == nil, "\(bad)") }
    }

    @Test("X-Forwarded-For counts only behind a trusted proxy, read from the right, stopping at the first untrusted hop")
    func forwardedFor() throws {
        let none = ClientAddresses()
        #expect(none.limiterKey(peer: "10.0.0.5", forwardedFor: "198.51.100.1") == "10.0.0.5", "no trusted proxies: the header is the client's word")
        let proxies = ClientAddresses(trustedProxies: [try #require(AddressRange("10.0.0.0/8"))])
        #expect(proxies.limiterKey(peer: "10.0.0.5", forwardedFor: "198.51.100.1") == "198.51.100.1")
        // The client may send its own X-Forwarded-For: the entries left of the nearest untrusted hop are not believed.
        #expect(proxies.limiterKey(peer: "10.0.0.5", forwardedFor: "6.6.6.6, 198.51.100.1, 10.0.0.9") == "198.51.100.1")
        #expect(proxies.limiterKey(peer: "203.0.113.9", forwardedFor: "198.51.100.1") == "203.0.113.9", "an untrusted peer")
        #expect(proxies.limiterKey(peer: "10.0.0.5", forwardedFor: "garbage, 198.51.100.1") == "198.51.100.1")
        #expect(proxies.limiterKey(peer: "10.0.0.5", forwardedFor: "198.51.100.1, garbage") == "10.0.0.5", "a bad nearest hop: count the proxy")
        #expect(proxies.limiterKey(peer: "10.0.0.5", forwardedFor: "2001:db8:7:7::1") == "2001:db8:7:7::/64")
    }

    @Test("the limiter tracks at most maxTracked clients, evicting the oldest windows first; expired windows leave")
    func boundedLimiter() {
        let clock = TestInstant()
        let limiter = FailedAuthLimiter(limit: 3, window: .seconds(60), maxTracked: 1_000, clock: clock.clock)
        for _ in 0..<3 { limiter.recordFailure("attacker") }
        #expect(limiter.blocked("attacker") != nil)
        clock.advance(.seconds(1))
        for index in 0..<5_000 { limiter.recordFailure("spray-\(index)") }
        #expect(limiter.trackedClients == 1_000)
        #expect(limiter.blocked("spray-4999") == nil && limiter.blocked("attacker") == nil, "the oldest (the attacker's) made room")
        // The newest stay; once their window passes, the next failure clears them all.
        for _ in 0..<3 { limiter.recordFailure("spray-4999") }
        #expect(limiter.blocked("spray-4999") != nil)
        clock.advance(.seconds(61))
        limiter.recordFailure("late")
        #expect(limiter.trackedClients == 1)
        #expect(limiter.blocked("spray-4999") == nil)
    }
}

/// A settable instant for limiter tests.
/// A clock that moves only when told (the gateway's one clock, `GatewayClock`, reading it).
final class TestInstant: Sendable {
    private let value = Mutex(ContinuousClock.now)
    var now: ContinuousClock.Instant { value.withLock { $0 } }
    func advance(_ duration: Duration) { value.withLock { $0 += duration } }
    var clock: GatewayClock { GatewayClock(now: { self.now }, sleep: { _, _ in throw CancellationError() }) }
}

@Suite("fanOut")
struct FanOutWidthTests {
    @Test("at most `width` children run at once, every element is done once, results come in the elements' order")
    func width() async {
        let running = Mutex((now: 0, most: 0))
        let results = await fanOut(Array(0..<40), width: 3) { element -> Int in
            running.withLock { state in
                state.now += 1
                state.most = max(state.most, state.now)
            }
            try? await Task.sleep(for: .milliseconds(element % 3))
            running.withLock { $0.now -= 1 }
            return element * 2
        }
        #expect(results == (0..<40).map { $0 * 2 })
        #expect(running.withLock { $0.most } <= 3)
        #expect(await fanOut([1, 2, 3]) { $0 + 1 } == [2, 3, 4])
    }
}
