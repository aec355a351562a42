import GatewayTestSupport
import ResponseCache
import Synchronization
import Testing

/// A fill that counts its calls and can be made to fail or wait.
final class Origin: Sendable {
    let calls = Mutex(0)
    let failing = Mutex(false)
    let delay: Duration

    init(delay: Duration = .zero) { self.delay = delay }

    func fill(_ text: String, bytes: Int = 100) -> @Sendable () async throws -> CacheFill<String> {
        { [self] in
            let n = calls.withLock { $0 += 1; return $0 }
            if delay > .zero { try? await Task.sleep(for: delay) }
            if failing.withLock({ $0 }) { throw OriginDown() }
            return CacheFill(value: "\(text)#\(n)", bytes: bytes, etag: "\"e\(n)\"", tags: ["upstream:a", "tenant:\(text)"])
        }
    }
}

struct OriginDown: Error {}

let policy = FreshnessPolicy(ttl: .seconds(30), staleWhileRevalidate: .seconds(60), staleIfError: .seconds(600))

@Suite("ResponseCache")
struct ResponseCacheTests {
    @Test("a fresh entry is a hit until its TTL passes; then a miss fills again")
    func ttl() async throws {
        let clock = ManualClock()
        let cache = ResponseCache<String>(maxBytes: 10_000, clock: clock.clock)
        let origin = Origin()
        let noSWR = FreshnessPolicy(ttl: .seconds(30))
        #expect(try await cache.value(for: "k", policy: noSWR, fill: origin.fill("a")).status == .miss)
        clock.advance(by: .seconds(29))
        let hit = try await cache.value(for: "k", policy: noSWR, fill: origin.fill("a"))
        #expect(hit.status == .hit)
        #expect(hit.age == 29)
        #expect(cache.peek("k")?.entry.value == "a#1")
        clock.advance(by: .seconds(2))
        #expect(cache.peek("k") == nil)
        let refilled = try await cache.value(for: "k", policy: noSWR, fill: origin.fill("a"))
        #expect(refilled.status == .miss)
        #expect(refilled.entry.value == "a#2")
        #expect(origin.calls.withLock { $0 } == 2)
    }

    @Test("stale-while-revalidate answers stale at once and makes exactly one refresh")
    func staleWhileRevalidate() async throws {
        let clock = ManualClock()
        let cache = ResponseCache<String>(maxBytes: 10_000, clock: clock.clock)
        let origin = Origin(delay: .milliseconds(50))
        _ = try await cache.value(for: "k", policy: policy, fill: origin.fill("a"))
        clock.advance(by: .seconds(40))
        let answers = try await withThrowingTaskGroup(of: CacheAnswer<String>.self) { group in
            for _ in 0..<100 { group.addTask { try await cache.value(for: "k", policy: policy, fill: origin.fill("a")) } }
            var all: [CacheAnswer<String>] = []
            for try await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.allSatisfy { $0.status == .stale && $0.entry.value == "a#1" })
        // Let the one refresh finish.
        await cache.settle()
        #expect(cache.statistics.fills == 2)
        #expect(origin.calls.withLock { $0 } == 2)
        #expect(cache.statistics.refreshes == 1)
        let fresh = try await cache.value(for: "k", policy: policy, fill: origin.fill("a"))
        #expect(fresh.status == .hit)
        #expect(fresh.entry.value == "a#2")
    }

    @Test("stale-if-error answers the stale entry within its window, and the error after it")
    func staleIfError() async throws {
        let clock = ManualClock()
        let cache = ResponseCache<String>(maxBytes: 10_000, clock: clock.clock)
        let origin = Origin()
        _ = try await cache.value(for: "k", policy: policy, fill: origin.fill("a"))
        origin.failing.withLock { $0 = true }
        clock.advance(by: .seconds(300))  // past TTL + SWR, within stale-if-error
        let answer = try await cache.value(for: "k", policy: policy, fill: origin.fill("a"))
        #expect(answer.status == .stale)
        #expect(answer.entry.value == "a#1")
        #expect(answer.refreshError is OriginDown)
        clock.advance(by: .seconds(400))  // past the stale-if-error window
        await #expect(throws: OriginDown.self) { try await cache.value(for: "k", policy: policy, fill: origin.fill("a")) }
    }

    @Test("1,000 concurrent cold requests for one key make exactly 1 fill")
    func coalescing() async throws {
        let cache = ResponseCache<String>(maxBytes: 10_000)
        let origin = Origin(delay: .milliseconds(100))
        let answers = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<1000 { group.addTask { try await cache.value(for: "k", policy: policy, fill: origin.fill("a")).entry.value } }
            var all: [String] = []
            for try await value in group { all.append(value) }
            return all
        }
        #expect(answers.count == 1000)
        #expect(Set(answers) == ["a#1"])
        #expect(origin.calls.withLock { $0 } == 1)
    }

    @Test("a cancelled waiter does not cancel the fill for the others")
    func cancelledWaiter() async throws {
        let cache = ResponseCache<String>(maxBytes: 10_000)
        let origin = Origin(delay: .milliseconds(200))
        let first = Task { try await cache.value(for: "k", policy: policy, fill: origin.fill("a")) }
        let started = await eventually { origin.calls.withLock { $0 } == 1 }  // the fill runs
        try #require(started)
        let second = Task { try await cache.value(for: "k", policy: policy, fill: origin.fill("a")) }
        first.cancel()
        let value = try await second.value
        #expect(value.entry.value == "a#1")
        #expect(origin.calls.withLock { $0 } == 1)
        #expect(cache.peek("k")?.entry.value == "a#1")
    }

    @Test("eviction keeps the bytes under the bound with entries of random sizes; oversize entries are not stored")
    func boundedBytes() async throws {
        let cache = ResponseCache<String>(maxBytes: 50_000, maxEntryShare: 0.1)
        var generator = SystemRandomNumberGenerator()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<2000 {
                let size = Int.random(in: 1...6_000, using: &generator)
                group.addTask {
                    _ = try await cache.value(for: "k\(i % 700)", policy: policy, fill: { CacheFill(value: "v", bytes: size, etag: "e") })
                    #expect(cache.statistics.bytes <= 50_000)
                }
            }
            try await group.waitForAll()
        }
        let statistics = cache.statistics
        #expect(statistics.bytes <= 50_000)
        #expect(statistics.evictions > 0)
        #expect(statistics.notStoredTooLarge > 0, "entries over 5,000 bytes (10 %) are answered, not stored")
        let big = try await cache.value(for: "big", policy: policy, fill: { CacheFill(value: "huge", bytes: 6_000, etag: "e") })
        #expect(big.entry.value == "huge")
        #expect(cache.peek("big") == nil)
    }

    @Test("entries are charged for their keys and ETags too: 20,000 tiny entries under long keys stay within the bound")
    func keysAreCharged() async throws {
        let cache = ResponseCache<String>(maxBytes: 1_000_000, maxEntryShare: 0.5)
        let longKey = String(repeating: "q", count: 190)
        for index in 0..<20_000 {
            cache.store("\(longKey)|\(index)", value: "", bytes: 1, etag: "\"\(index)\"", policy: policy)
        }
        let statistics = cache.statistics
        #expect(statistics.bytes <= 1_000_000)
        #expect(statistics.evictions > 0, "the keys alone (about 4 MB) do not fit in 1 MB")
        // What is charged per entry is at least what the key holds.
        #expect(statistics.bytes >= statistics.entries * (longKey.utf8.count + 256))
    }

    @Test("admission weighs what the store charges (bytes, key, ETag, overhead): with a share of 1 no entry alone exceeds the bound")
    func admissionByCharge() async throws {
        // 1,200 bytes, share 1: an entry of 1,000 bytes is charged 1,000 + its key + its ETag +
        // 256, over the bound; it is answered and not stored, and what was stored stays.
        let cache = ResponseCache<String>(maxBytes: 1_200, maxEntryShare: 1)
        let origin = Origin()
        _ = try await cache.value(for: "a", policy: policy, fill: origin.fill("a"))
        let big = try await cache.value(for: "big", policy: policy, fill: origin.fill("big", bytes: 1_000))
        #expect(big.entry.value == "big#2")
        #expect(cache.peek("big") == nil)
        #expect(cache.peek("a") != nil)
        cache.store("stored", value: "s", bytes: 1_000, etag: "\"s\"", policy: policy)
        #expect(cache.peek("stored") == nil)
        #expect(cache.statistics.notStoredTooLarge == 2)
        #expect(cache.statistics.bytes <= 1_200)
        // One that fits alone is stored, and evicts what no longer fits beside it.
        _ = try await cache.value(for: "fits", policy: policy, fill: origin.fill("fits", bytes: 900))
        #expect(cache.peek("fits") != nil)
        #expect(cache.peek("a") == nil)
        #expect(cache.statistics.bytes <= 1_200)
    }

    @Test("least recently used goes first")
    func lruOrder() async throws {
        // Each entry is charged 100 bytes, its key, its ETag and 256 of overhead: three fit, not four.
        let cache = ResponseCache<String>(maxBytes: 1_200, maxEntryShare: 1)
        let origin = Origin()
        for key in ["a", "b", "c"] { _ = try await cache.value(for: key, policy: policy, fill: origin.fill(key)) }
        _ = cache.peek("a")  // a is now the most recent; b the least
        _ = try await cache.value(for: "d", policy: policy, fill: origin.fill("d"))
        #expect(cache.peek("b") == nil)
        #expect(cache.peek("a") != nil)
        #expect(cache.peek("c") != nil)
        #expect(cache.peek("d") != nil)
    }

    @Test("second chance: an entry read since it was stored outlives every unread one; all read, the oldest goes; the new entry is never the one evicted")
    func secondChance() async throws {
        let cache = ResponseCache<String>(maxBytes: 1_200, maxEntryShare: 1)
        let origin = Origin()
        for key in ["a", "b", "c"] { _ = try await cache.value(for: key, policy: policy, fill: origin.fill(key)) }
        _ = cache.peek("a")
        _ = try await cache.value(for: "d", policy: policy, fill: origin.fill("d"))  // b goes, a passed over
        _ = try await cache.value(for: "e", policy: policy, fill: origin.fill("e"))  // c goes
        #expect(cache.peek("b") == nil)
        #expect(cache.peek("c") == nil)
        // Every entry now read (a, d, e): the scan passes over each once and evicts the oldest.
        #expect(cache.peek("a") != nil && cache.peek("d") != nil && cache.peek("e") != nil)
        _ = try await cache.value(for: "f", policy: policy, fill: origin.fill("f"))
        let kept = ["a", "d", "e", "f"].filter { cache.peek($0) != nil }
        #expect(kept.count == 3 && kept.contains("f"), "\(kept)")
        #expect(cache.statistics.bytes <= 1_200)
        #expect(cache.statistics.evictions == 3)
    }

    @Test("bypass refreshes the entry; purge by tag and purge all")
    func bypassAndPurge() async throws {
        let cache = ResponseCache<String>(maxBytes: 10_000)
        let origin = Origin()
        _ = try await cache.value(for: "x", policy: policy, fill: origin.fill("x"))
        _ = try await cache.value(for: "y", policy: policy, fill: origin.fill("y"))
        let bypassed = try await cache.value(for: "x", policy: policy, bypass: true, fill: origin.fill("x"))
        #expect(bypassed.status == .bypass)
        #expect(bypassed.entry.value == "x#3")
        #expect(cache.peek("x")?.entry.value == "x#3")
        #expect(cache.purge(tag: "tenant:y") == 1)
        #expect(cache.peek("y") == nil)
        #expect(cache.peek("x") != nil)
        #expect(cache.purgeAll() == 1)
        #expect(cache.statistics.entries == 0)
        #expect(cache.statistics.bytes == 0)
    }

    @Test("errors are not cached, and every waiter gets the error")
    func errorsReachEveryWaiter() async throws {
        let cache = ResponseCache<String>(maxBytes: 10_000)
        let origin = Origin(delay: .milliseconds(50))
        origin.failing.withLock { $0 = true }
        let failures = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 {
                group.addTask { (try? await cache.value(for: "k", policy: policy, fill: origin.fill("a"))) == nil }
            }
            var count = 0
            for await failed in group where failed { count += 1 }
            return count
        }
        #expect(failures == 50)
        #expect(origin.calls.withLock { $0 } == 1)
        #expect(cache.statistics.entries == 0)
    }
}
