import GatewayTracing
public import GatewayClock
public import Synchronization

/// How long an entry is fresh, and how long past that it may still be served.
public struct FreshnessPolicy: Sendable, Equatable {
    /// Fresh for this long after it was stored.
    public var ttl: Duration
    /// After `ttl`, served at once (as stale) for this long while one background refresh runs.
    public var staleWhileRevalidate: Duration
    /// After `ttl`, served (as stale) for this long when a refresh fails.
    public var staleIfError: Duration

    public init(ttl: Duration, staleWhileRevalidate: Duration = .zero, staleIfError: Duration = .zero) {
        self.ttl = ttl
        self.staleWhileRevalidate = staleWhileRevalidate
        self.staleIfError = staleIfError
    }
}

/// A stored value with what the cache needs to know about it.
public struct CacheEntry<Value>: Sendable where Value: Sendable {
    public var value: Value
    /// Its size, counted against `maxBytes` (the ready-to-write bytes, for a response).
    public var bytes: Int
    public var etag: String
    public var storedAt: ContinuousClock.Instant
    public var policy: FreshnessPolicy
    /// Labels for purging (e.g. the upstream, the tenant id).
    public var tags: Set<String>
}

/// Where an answer came from, as `X-Cache` says it.
public enum CacheStatus: String, Sendable {
    case hit = "HIT"
    case miss = "MISS"
    case stale = "STALE"
    case bypass = "BYPASS"
}

/// An answer from the cache.
public struct CacheAnswer<Value>: Sendable where Value: Sendable {
    public var entry: CacheEntry<Value>
    public var status: CacheStatus
    /// Seconds since the entry was stored.
    public var age: Int
    /// When served stale because the refresh failed: that failure.
    public var refreshError: (any Error)?
}

/// What a fill produces.
public struct CacheFill<Value>: Sendable where Value: Sendable {
    public var value: Value
    public var bytes: Int
    public var etag: String
    public var tags: Set<String>
    /// False to answer without storing (e.g. an upstream error page).
    public var cacheable: Bool
    /// How old the value already is (one taken from a shared level was stored there earlier):
    /// its entry counts its freshness from then, not from now.
    public var age: Duration

    public init(value: Value, bytes: Int, etag: String, tags: Set<String> = [], cacheable: Bool = true, age: Duration = .zero) {
        self.value = value
        self.bytes = bytes
        self.etag = etag
        self.tags = tags
        self.cacheable = cacheable
        self.age = age
    }
}

/// Counters for the metrics endpoint.
public struct CacheStatistics: Sendable, Equatable {
    public var hits = 0
    public var misses = 0
    public var staleAnswers = 0
    public var refreshes = 0
    public var fills = 0
    public var evictions = 0
    public var notStoredTooLarge = 0
    public var bytes = 0
    public var entries = 0
    public init() {}
}

/// Where fills run. A fill is a task of its own (it outlives a cancelled waiter), and an
/// unstructured task does not inherit its starter's executor preference: a caller that wants its
/// fills on the executor it runs on (the hot path's event loop) says so here, for the fills it
/// starts. Nil (the default): the global concurrent executor.
public enum FillExecutor {
    @TaskLocal public static var preferred: (any TaskExecutor)?
}

/// A response cache knowing nothing of Veeam: TTL, stale-while-revalidate, stale-if-error,
/// single-flight fills, and an LRU bounded by bytes.
///
/// Lookups (``peek(_:)``) are synchronous and thread-safe (a `Mutex`-guarded LRU), so an event-loop
/// hot path can answer hits without `await`; fills and refreshes are async. A fill runs in a task
/// of its own: a waiter that is cancelled does not cancel it for the others.
public final class ResponseCache<Value: Sendable>: Sendable {
    @usableFromInline
    struct State: ~Copyable {
        @usableFromInline var store: LRUStore<Value>
        var fills: [String: Task<CacheEntry<Value>, any Error>] = [:]
        @usableFromInline var statistics = CacheStatistics()

        init(store: LRUStore<Value>) {
            self.store = store
        }
    }

    @usableFromInline let state: Mutex<State>
    /// An entry charged more than this share of `maxBytes` (its bytes, key and ETag and the
    /// store's fixed overhead, as ``LRUStore`` charges it) is answered but not stored. With a
    /// share of at most 1, no entry alone exceeds the bound.
    public let maxEntryBytes: Int
    public let maxBytes: Int
    /// What decides freshness (injected: tests move it instead of sleeping).
    public let clock: GatewayClock

    public init(maxBytes: Int, maxEntryShare: Double = 0.1, clock: GatewayClock = .continuous) {
        self.maxBytes = max(0, maxBytes)
        let share = maxEntryShare.isFinite ? min(max(maxEntryShare, 0), 1) : 0
        let entryBytes = (Double(max(0, maxBytes)) * share).rounded(.down)
        self.maxEntryBytes = entryBytes < 0x1p63 ? Int(entryBytes) : Int.max
        self.clock = clock
        self.state = Mutex(State(store: LRUStore(maxBytes: max(0, maxBytes))))
    }

    /// Whether `entry` may be stored under `key`: what the store would charge it is within
    /// ``maxEntryBytes``.
    private func admits(_ key: String, _ entry: CacheEntry<Value>) -> Bool {
        LRUStore<Value>.charge(key, entry) <= maxEntryBytes
    }

    public var statistics: CacheStatistics {
        state.withLock { state in
            var statistics = state.statistics
            statistics.bytes = state.store.bytes
            statistics.entries = state.store.count
            return statistics
        }
    }

    /// The entry for `key` if it is fresh; synchronous, for the hot path. Counts a hit unless
    /// `countingHit` is false (the caller then counts with ``recordHits(_:)`` once it answers).
    public func peek(_ key: String, countingHit: Bool = true) -> CacheAnswer<Value>? {
        let now = clock.now
        return state.withLock { state in
            guard let entry = state.store.get(key), now - entry.storedAt < entry.policy.ttl else { return nil }
            if countingHit { state.statistics.hits += 1 }
            return CacheAnswer(entry: entry, status: .hit, age: Self.seconds(now - entry.storedAt), refreshError: nil)
        }
    }

    /// Reads a *fresh* entry in place, under the lock: `read` takes what it needs (and copies only
    /// that), for the hot path. Counts a hit when found.
    @inlinable
    public func withFreshEntry<R: Sendable>(_ key: String, _ read: @Sendable (borrowing CacheEntry<Value>, _ age: Int) -> R?) -> R? {
        let now = clock.now
        return state.withLock { state in
            guard let result = state.store.withEntry(key, { entry -> R? in
                guard now - entry.storedAt < entry.policy.ttl else { return nil }
                return read(entry, Self.seconds(now - entry.storedAt))
            }) else { return nil }
            state.statistics.hits += 1
            return result
        }
    }

    /// Counts hits found by ``peek(_:countingHit:)`` without counting.
    public func recordHits(_ count: Int) {
        state.withLock { $0.statistics.hits += count }
    }

    /// Stores a value directly (no fill, no single-flight): for derived values computed from
    /// other entries. Too-large values are not stored.
    public func store(_ key: String, value: Value, bytes: Int, etag: String, policy: FreshnessPolicy, tags: Set<String> = []) {
        let entry = CacheEntry(value: value, bytes: bytes, etag: etag, storedAt: clock.now, policy: policy, tags: tags)
        state.withLock { state in
            guard admits(key, entry) else {
                state.statistics.notStoredTooLarge += 1
                return
            }
            state.statistics.evictions += state.store.set(key, entry)
        }
    }

    /// The answer for `key`: fresh from the cache, stale while one refresh runs, or filled by
    /// `fill` (concurrent callers share one fill). `bypass` skips the lookup and refreshes.
    public func value(
        for key: String, policy: FreshnessPolicy, bypass: Bool = false,
        fill: @escaping @Sendable () async throws -> CacheFill<Value>
    ) async throws -> CacheAnswer<Value> {
        let now = clock.now
        let plan: Plan = state.withLock { state in
            let cached = bypass ? nil : state.store.get(key)
            if let entry = cached {
                let age = now - entry.storedAt
                if age < entry.policy.ttl {
                    state.statistics.hits += 1
                    return .answer(CacheAnswer(entry: entry, status: .hit, age: Self.seconds(age), refreshError: nil))
                }
                if age < entry.policy.ttl + entry.policy.staleWhileRevalidate {
                    state.statistics.staleAnswers += 1
                    if state.fills[key] == nil {
                        state.statistics.refreshes += 1
                        state.fills[key] = startFill(key: key, policy: policy, fill: fill)
                    }
                    return .answer(CacheAnswer(entry: entry, status: .stale, age: Self.seconds(age), refreshError: nil))
                }
            }
            let stale = bypass ? state.store.get(key) : cached
            state.statistics.misses += 1
            if let running = state.fills[key] { return .wait(running, stale: stale) }
            let task = startFill(key: key, policy: policy, fill: fill)
            state.fills[key] = task
            return .wait(task, stale: stale)
        }
        switch plan {
        case .answer(let answer):
            return answer
        case .wait(let task, let stale):
            do {
                let entry = try await task.value
                return CacheAnswer(entry: entry, status: bypass ? .bypass : .miss, age: Self.seconds(clock.now - entry.storedAt), refreshError: nil)
            } catch {
                // stale-if-error: an entry past its TTL but within its window answers instead.
                if let stale, now - stale.storedAt < stale.policy.ttl + stale.policy.staleIfError {
                    state.withLock { $0.statistics.staleAnswers += 1 }
                    return CacheAnswer(entry: stale, status: .stale, age: Self.seconds(now - stale.storedAt), refreshError: error)
                }
                throw error
            }
        }
    }

    enum Plan {
        case answer(CacheAnswer<Value>)
        case wait(Task<CacheEntry<Value>, any Error>, stale: CacheEntry<Value>?)
    }

    /// A task that runs `fill`, stores the result (unless too large or not cacheable) and
    /// unregisters itself. Called under the lock; the task body takes the lock later.
    private func startFill(
        key: String, policy: FreshnessPolicy, fill: @escaping @Sendable () async throws -> CacheFill<Value>
    ) -> Task<CacheEntry<Value>, any Error> {
        Task(executorPreference: FillExecutor.preferred) { [self] in
            defer { state.withLock { _ = $0.fills.removeValue(forKey: key) } }
            // A span for the fill (tracing on), a child of the request that started it; it names
            // the kind of entry (the key's first part), never the key itself (ids, accounts).
            let produced = try await GatewayTracing.span("cache fill", ofKind: .internal) { span in
                span?.attributes["veeam_gateway.cache.entry"] = String(key.prefix { $0 != "|" })
                return try await fill()
            }
            let entry = CacheEntry(
                value: produced.value, bytes: produced.bytes, etag: produced.etag, storedAt: clock.now - max(.zero, produced.age), policy: policy,
                tags: produced.tags)
            state.withLock { state in
                state.statistics.fills += 1
                guard produced.cacheable else { return }
                guard admits(key, entry) else {
                    state.statistics.notStoredTooLarge += 1
                    state.store.remove(key)
                    return
                }
                state.statistics.evictions += state.store.set(key, entry)
            }
            return entry
        }
    }

    /// Waits until no fill or refresh is running (those started meanwhile included): for tests
    /// and shutdown, instead of polling the counters.
    public func settle() async {
        for _ in 0..<10_000 {
            let running = state.withLock { Array($0.fills.values) }
            if running.isEmpty { return }
            for fill in running { _ = try? await fill.value }
        }
    }

    /// Removes every entry; returns how many.
    @discardableResult
    public func purgeAll() -> Int {
        state.withLock { state in state.store.removeAll { _, _ in true } }
    }

    /// Removes the entries carrying `tag`; returns how many.
    @discardableResult
    public func purge(tag: String) -> Int {
        state.withLock { state in state.store.removeAll { _, entry in entry.tags.contains(tag) } }
    }

    @inlinable
    static func seconds(_ duration: Duration) -> Int { max(0, Int(duration.wholeSeconds)) }
}
