import DequeModule
public import Foundation
public import GatewayClock
import Synchronization
import VeeamWire

/// What the operator's status page shows of the last 15 minutes: requests, errors and latency by
/// route, upstream calls and errors, cache outcomes, in 10-second buckets, and the last 50
/// kinds of problem (repeats grouped, at most 10 per caller). One per process (it lives in ``GatewayMetrics``, so reloads keep it). Recording is
/// one lock and a few increments; nothing here holds a body, a key, a token or a password.
public final class StatusBoard: Sendable {
    /// Seconds per bucket and buckets kept: 90 × 10 s = 15 minutes.
    public static let bucketSeconds = 10
    public static let bucketCount = 90
    /// Upper bounds of the latency histogram, in microseconds (the last bucket is unbounded).
    static let latencyBounds: [Int] = [
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
        30_000_000,
    ]

    struct RouteCounts {
        var requests = 0
        var errors = 0
        var latency = [Int](repeating: 0, count: StatusBoard.latencyBounds.count + 1)

        mutating func record(status: Int, slot: Int) {
            requests += 1
            if status >= 500 { errors += 1 }
            latency[slot] += 1
        }

        mutating func add(_ other: RouteCounts) {
            requests += other.requests
            errors += other.errors
            for slot in latency.indices { latency[slot] += other.latency[slot] }
        }
    }

    /// A route as counted: the method and the template apart (no string is built per request).
    struct RouteKey: Hashable {
        var method: String
        var route: String
        var name: String { method + " " + route }
    }

    struct UpstreamCounts {
        var requests = 0
        var errors = 0
        var throttled = 0
    }

    struct Bucket {
        var epoch: Int
        /// Changed only by ``recordRoute(_:status:slot:)`` and ``add(_:)``, which keep `lastRoute` true.
        private(set) var routes: [RouteKey: RouteCounts] = [:]
        /// Where the route recorded last sits in `routes`: the same route again is counted without
        /// hashing its key. An insertion can move every entry, so it is set again after one.
        private var lastRoute: (key: RouteKey, index: [RouteKey: RouteCounts].Index)?
        var upstreams: [String: UpstreamCounts] = [:]
        var cacheHits = 0
        var cacheMisses = 0
        var staleServed = 0

        init(epoch: Int = -1) {
            self.epoch = epoch
        }

        /// Counts one answer of `key`.
        mutating func recordRoute(_ key: RouteKey, status: Int, slot: Int) {
            if let last = lastRoute, last.key == key {
                routes.values[last.index].record(status: status, slot: slot)
                return
            }
            routes[key, default: RouteCounts()].record(status: status, slot: slot)
            if let index = routes.index(forKey: key) { lastRoute = (key, index) }
        }

        /// Adds another shard's counts of the same epoch.
        mutating func add(_ other: Bucket) {
            lastRoute = nil
            for (key, counts) in other.routes { routes[key, default: RouteCounts()].add(counts) }
            for (key, counts) in other.upstreams {
                var sum = upstreams[key, default: UpstreamCounts()]
                sum.requests += counts.requests
                sum.errors += counts.errors
                sum.throttled += counts.throttled
                upstreams[key] = sum
            }
            cacheHits += other.cacheHits
            cacheMisses += other.cacheMisses
            staleServed += other.staleServed
        }
    }

    /// One kind of problem answered (repeats grouped): what an operator needs to find it in the
    /// log, nothing more.
    public struct Problem: Sendable, Encodable, Equatable {
        /// When it was last answered.
        public var at: String
        public var route: String
        public var status: Int
        public var code: String
        public var upstream: String?
        /// The request id of the last answer.
        public var requestId: String
        /// The tenant id of the last request, when it was a well-formed one.
        public var tenant: String?
        /// The caller's id (from the configuration, never a credential); nil when none was identified.
        public var caller: String?
        /// How often it was answered since it was first listed.
        public var count: Int
        /// When it was first listed.
        public var firstAt: String

        /// What makes two answers the same problem.
        func sameKind(as other: Problem) -> Bool {
            route == other.route && status == other.status && code == other.code && upstream == other.upstream && caller == other.caller
        }
    }

    /// Problems kept in all, and at most per caller: one caller repeating a failure, or making
    /// many kinds of it, cannot flush what the others caused.
    public static let problemLimit = 50
    public static let problemsPerCaller = 10

    /// An upstream's last failure.
    public struct LastError: Sendable, Encodable, Equatable {
        public var code: String
        public var at: String
    }

    struct State {
        var problems = Deque<Problem>()
        var lastErrors: [String: LastError] = [:]
        /// Each upstream's mark (ok/degraded/down) and since when it holds.
        var marks: [String: (mark: String, since: String)] = [:]
    }

    private let state = Mutex(State())
    /// The counting buckets: a ring per thread shard, so that requests answered on different
    /// event loops at once do not contend; ``recent()`` adds the shards up.
    private let rings = ThreadShards { [Bucket](repeating: Bucket(), count: StatusBoard.bucketCount) }
    private let clock: GatewayClock
    private let origin: ContinuousClock.Instant
    /// When this process started (wall clock, for the page).
    public let startedAt = Date()

    public init(clock: GatewayClock = .continuous) {
        self.clock = clock
        self.origin = clock.now
    }

    private func epoch(_ instant: ContinuousClock.Instant) -> Int {
        max(0, Int((instant - origin).wholeSeconds) / Self.bucketSeconds)
    }

    /// Seconds since the board started (what a window can cover at most).
    var uptimeSeconds: Int { max(1, Int((clock.now - origin).wholeSeconds)) }

    /// The bucket of now, reset if it last held an older epoch.
    private func withBucket(_ body: (inout Bucket) -> Void) {
        let current = epoch(clock.now)
        rings.withCurrent { ring in
            let index = current % Self.bucketCount
            if ring[index].epoch != current { ring[index] = Bucket(epoch: current) }
            body(&ring[index])
        }
    }

    // MARK: Recording

    /// One answered request: `route` is a template, `cache` the `X-Cache` value if any. A 5xx is an error.
    public func request(method: String, route: String, status: Int, duration: Duration, cache: String?) {
        let micros = Int(duration.wholeMicroseconds)
        let slot = Self.latencyBounds.firstIndex { micros <= $0 } ?? Self.latencyBounds.count
        let key = RouteKey(method: method, route: route)
        withBucket { bucket in
            bucket.recordRoute(key, status: status, slot: slot)
            switch cache {
            case "HIT": bucket.cacheHits += 1
            case "MISS", "BYPASS": bucket.cacheMisses += 1
            case "STALE": bucket.staleServed += 1
            default: break
            }
        }
    }

    /// One upstream call: `outcome` is `2xx`…`5xx` or a transport error code. 5xx and transport
    /// errors count as errors, 429 as throttled; other 4xx (a tenant not found, a 401 before a
    /// re-login) are answers, not failures of the upstream.
    public func upstreamCall(upstream: String, outcome: String, status: Int?) {
        withBucket { bucket in
            bucket.upstreams[upstream, default: UpstreamCounts()].requests += 1
            if status == 429 {
                bucket.upstreams[upstream, default: UpstreamCounts()].throttled += 1
            } else if status.map({ $0 >= 500 }) ?? true {
                bucket.upstreams[upstream, default: UpstreamCounts()].errors += 1
            }
        }
    }

    /// A problem answered to `caller`. A repeat of a listed kind (route, status, code, upstream,
    /// caller) updates that entry and moves it last; a new kind is added, dropping the caller's
    /// own oldest beyond ``problemsPerCaller`` and the oldest of all beyond ``problemLimit``.
    public func problem(route: String, status: Int, code: String, upstream: String?, requestID: String, tenant: String?, caller: String?) {
        let now = Self.timestamp(Date())
        var record = Problem(
            at: now, route: route, status: status, code: code, upstream: upstream, requestId: requestID, tenant: tenant, caller: caller, count: 1, firstAt: now)
        state.withLock { state in
            if let index = state.problems.firstIndex(where: { $0.sameKind(as: record) }) {
                let known = state.problems.remove(at: index)
                record.count = known.count + 1
                record.firstAt = known.firstAt
            } else if state.problems.lazy.filter({ $0.caller == caller }).count >= Self.problemsPerCaller,
                let oldest = state.problems.firstIndex(where: { $0.caller == caller })
            {
                state.problems.remove(at: oldest)
            }
            state.problems.append(record)
            if state.problems.count > Self.problemLimit { state.problems.removeFirst() }
        }
    }

    /// An upstream failed (a read, a login, a probe): its code and when.
    public func upstreamFailed(_ upstream: String, code: String) {
        let record = LastError(code: code, at: Self.timestamp(Date()))
        state.withLock { $0.lastErrors[upstream] = record }
    }

    /// Records an upstream's mark and returns since when it holds (set when it changes).
    public func mark(_ upstream: String, _ mark: String) -> String {
        let now = Self.timestamp(Date())
        return state.withLock { state in
            if let known = state.marks[upstream], known.mark == mark { return known.since }
            state.marks[upstream] = (mark, now)
            return now
        }
    }

    public func lastError(_ upstream: String) -> LastError? {
        state.withLock { $0.lastErrors[upstream] }
    }

    public var problems: [Problem] { state.withLock { Array($0.problems.reversed()) } }

    // MARK: Windows

    /// Sums over the last 1, 5 and 15 minutes.
    public struct Windows<Value: Sendable & Encodable & Equatable>: Sendable, Encodable, Equatable {
        public var m1: Value
        public var m5: Value
        public var m15: Value
        enum CodingKeys: String, CodingKey {
            case m1 = "1m"
            case m5 = "5m"
            case m15 = "15m"
        }
    }

    /// The buckets of the last 15 minutes, oldest first (an empty bucket where nothing happened).
    func recent() -> [Bucket] {
        let current = epoch(clock.now)
        var merged = (0..<Self.bucketCount).map { back in Bucket(epoch: current - (Self.bucketCount - 1 - back)) }
        rings.forEach { ring in
            for index in merged.indices where merged[index].epoch >= 0 {
                let bucket = ring[merged[index].epoch % Self.bucketCount]
                if bucket.epoch == merged[index].epoch { merged[index].add(bucket) }
            }
        }
        return merged
    }

    /// The last `minutes` of `buckets` (oldest first).
    static func last(_ minutes: Int, of buckets: [Bucket]) -> ArraySlice<Bucket> {
        buckets.suffix(minutes * 60 / bucketSeconds)
    }

    static func windows<V>(_ buckets: [Bucket], _ value: (ArraySlice<Bucket>) -> V) -> Windows<V> {
        Windows(m1: value(last(1, of: buckets)), m5: value(last(5, of: buckets)), m15: value(last(15, of: buckets)))
    }

    /// The 99th percentile of a histogram, as its bucket's upper bound in milliseconds (nil: no requests).
    static func p99(_ histogram: [Int]) -> Double? {
        let total = histogram.reduce(0, +)
        guard total > 0 else { return nil }
        let wanted = Int((Double(total) * 0.99).rounded(.up))
        var seen = 0
        for (index, count) in histogram.enumerated() {
            seen += count
            if seen >= wanted {
                let bound = index < latencyBounds.count ? latencyBounds[index] : latencyBounds[latencyBounds.count - 1] * 2
                return Double(bound) / 1000
            }
        }
        return nil
    }

    /// RFC 3339 UTC with milliseconds, formatted as `fetchedAt` is (one formatter for the gateway's times).
    public static func timestamp(_ date: Date) -> String {
        VeeamTimestamp(epochMilliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.down))).rfc3339UTC
    }
}
